// ESLint flat config: JavaScript and TypeScript recommended rules, syntax-only
// (no type-aware rules) so `npm run lint` stays fast on a 2-core machine;
// `npm run typecheck` (tsc --noEmit) does the type checking.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// BullMQ, dockerode and prom-client load modules Flint never runs unless they are loaded
// through lib/bullmq.ts, lib/docker.ts and lib/prometheus.ts (docs/packaging.md).
const PACKAGES_LOADED_THROUGH_LIB = [
  { name: 'bullmq', message: 'import BullMQ from lib/bullmq.ts', allowTypeImports: true },
  { name: 'dockerode', message: 'import Docker from lib/docker.ts', allowTypeImports: true },
  { name: 'prom-client', message: 'import the metric classes from lib/prometheus.ts', allowTypeImports: true },
];

export default defineConfig(
  {
    ignores: ['node_modules/**', 'test-artifacts/**', '.flint/**', 'coverage/**', 'dist/**'],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: {
        // Node globals used across the tree (no browser code is linted as such).
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        URLSearchParams: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        clearImmediate: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        fetch: 'readonly',
        Response: 'readonly',
        Request: 'readonly',
        Headers: 'readonly',
        structuredClone: 'readonly',
        queueMicrotask: 'readonly',
        performance: 'readonly',
        crypto: 'readonly',
      },
    },
    rules: {
      // `_`-prefixed names mark parameters and bindings that are unused on purpose
      // (callback signatures, destructuring to drop a field).
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // zod and Redis replies are `unknown` at the boundary; an explicit `any` in a
      // narrow adapter is allowed but flagged for review rather than failing CI.
      '@typescript-eslint/no-explicit-any': 'warn',
      // An empty arrow function is a legitimate no-op listener or default callback.
      '@typescript-eslint/no-empty-function': 'off',
      // A dead store is worth seeing, but `let x = false; try { x = ... } catch { x = false }`
      // is a readable defensive idiom, so this reports without failing the build.
      'no-useless-assignment': 'warn',
      // Rethrowing with `{ cause }` keeps the original stack; missing it loses
      // diagnostics, not correctness, so it is reported without failing the build.
      'preserve-caught-error': 'warn',
    },
  },
  {
    // Only the three loaders import those packages; the master, the agent, the shared
    // modules and the client library never import the command line.
    files: ['functions/**/*.ts', 'workers/**/*.ts', 'lib/**/*.ts', 'client/**/*.ts', 'protocol/**/*.ts'],
    ignores: ['lib/bullmq.ts', 'lib/docker.ts', 'lib/prometheus.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: PACKAGES_LOADED_THROUGH_LIB,
          patterns: [{ group: ['**/cli/*'], message: 'cli/ is the top of the import graph: move what both need to lib/ or protocol/' }],
        },
      ],
    },
  },
  {
    files: ['cli/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: PACKAGES_LOADED_THROUGH_LIB,
        },
      ],
    },
  },
  {
    // Scripts served to browsers by the master and worker UIs.
    files: ['**/public/**/*.js', '**/static/**/*.js', '**/assets/**/*.js', '**/ui/**/*.js'],
    languageOptions: {
      globals: {
        window: 'readonly',
        document: 'readonly',
        location: 'readonly',
        navigator: 'readonly',
        history: 'readonly',
        localStorage: 'readonly',
        sessionStorage: 'readonly',
        EventSource: 'readonly',
        HTMLElement: 'readonly',
        Event: 'readonly',
        CustomEvent: 'readonly',
        FormData: 'readonly',
        alert: 'readonly',
        confirm: 'readonly',
        requestAnimationFrame: 'readonly',
      },
    },
  },
);
