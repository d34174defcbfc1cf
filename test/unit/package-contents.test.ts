/**
 * What `npm pack` ships (package.json `files`): the compiled code, bin/, the files
 * read at run time, infra scripts and images, docs; never TypeScript, tests,
 * benchmarks or build configuration. And `dependencies` holds exactly the packages
 * the shipped code imports. The list comes from `npm pack --dry-run` without its
 * prepack build, so dist/ is checked through `files` (.ci/packed-install checks a
 * real pack and install).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/flint-process.ts';

/** RUNTIME_DIRS: the source folders compiled into dist/ (tsconfig.build.json). */
const RUNTIME_DIRS = ['lib', 'protocol', 'functions', 'workers', 'client', 'cli', 'demo'];

const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
  files: string[];
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

function packedFiles(): string[] {
  const output = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const [pack] = JSON.parse(output) as Array<{ files: Array<{ path: string }> }>;
  // dist/ is there only after a build; its place in the package is checked through `files`
  return pack!.files.map((file) => file.path).filter((path) => !path.startsWith('dist/'));
}

function filesUnder(dir: string): string[] {
  return readdirSync(join(REPO_ROOT, dir), { recursive: true, encoding: 'utf8' })
    .map((name) => join(dir, name))
    .filter((path) => statSync(join(REPO_ROOT, path)).isFile());
}

const packed = packedFiles();

test('the package runs compiled code: bin/flint.js, dist/ built before every pack', () => {
  assert.equal(manifest.bin.flint, './bin/flint.js');
  assert.ok(manifest.files.includes('dist/'), 'files holds dist/');
  assert.match(manifest.scripts.prepack ?? '', /npm run --silent build/);
  assert.match(manifest.scripts.build ?? '', /tsc -p tsconfig\.build\.json/);
  assert.ok(packed.includes('bin/flint.js'));
});

test('the package holds no TypeScript, tests, benchmarks or build configuration', () => {
  const unwanted = packed.filter(
    (path) => path.endsWith('.ts') || /^(test|bench|\.ci)\//.test(path) || /^(tsconfig.*\.json|eslint\.config\.js|package-lock\.json)$/.test(path) || path === 'infra/pack-install.sh',
  );
  assert.deepEqual(unwanted, []);
});

test('every file beside the sources that is not TypeScript ships (what the code reads at run time)', () => {
  const assets = RUNTIME_DIRS.flatMap(filesUnder).filter((path) => !path.endsWith('.ts'));
  assert.ok(assets.some((path) => path.endsWith('.lua')), 'the Lua commit scripts are among them');
  assert.deepEqual(assets.filter((path) => !packed.includes(path)), []);
});

test('infra scripts, configuration and image inputs ship, and the docs', () => {
  const infra = filesUnder('infra').filter((path) => !path.endsWith('.ts') && path !== join('infra', 'pack-install.sh'));
  assert.ok(infra.includes(join('infra', 'setup.sh')) && infra.some((path) => path.startsWith(join('infra', 'images', 'demo'))));
  assert.deepEqual(infra.filter((path) => !packed.includes(path)), []);
  const docs = filesUnder('docs').filter((path) => path.endsWith('.md'));
  assert.deepEqual(docs.filter((path) => !packed.includes(path)), []);
  assert.ok(packed.includes('README.md'));
});

test('every path the code opens through packagePath() ships', () => {
  const sources = RUNTIME_DIRS.flatMap(filesUnder).filter((path) => path.endsWith('.ts'));
  const targets = new Set<string>();
  for (const source of sources) {
    const text = readFileSync(join(REPO_ROOT, source), 'utf8');
    for (const call of text.matchAll(/packagePath\(((?:\s*'[^']+'\s*,?)+)\)/g)) {
      targets.add(join(...[...call[1]!.matchAll(/'([^']+)'/g)].map((m) => m[1]!)));
    }
  }
  assert.ok(targets.size >= 3, `found the packagePath() calls: ${[...targets].join(', ')}`);
  const missing = [...targets].filter((target) => !packed.some((path) => path === target || path.startsWith(`${target}/`)));
  assert.deepEqual(missing, []);
});

test('dependencies are exactly the packages the shipped code imports', () => {
  const builtins = new Set(builtinModules);
  const imported = new Set<string>();
  for (const source of RUNTIME_DIRS.flatMap(filesUnder).filter((path) => path.endsWith('.ts'))) {
    const text = readFileSync(join(REPO_ROOT, source), 'utf8');
    // value imports, dynamic imports and require() of bare specifiers; `import type` is erased by the build
    const specifiers = [
      ...text.matchAll(/^\s*(?:import(?!\s+type\b)[^'";]*?from\s*|import\s*\(\s*|export[^'";]*?from\s*)'([^'.][^']*)'/gm),
      ...text.matchAll(/\brequire(?:\.resolve)?\(\s*'([^'.][^']*)'/g),
    ].map((match) => match[1]!);
    for (const specifier of specifiers) {
      if (specifier.startsWith('node:') || builtins.has(specifier)) continue;
      const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;
      imported.add(name);
    }
  }
  assert.deepEqual([...imported].filter((name) => !(name in manifest.dependencies)).sort(), [], 'imported at run time but not a dependency');
  assert.deepEqual(Object.keys(manifest.dependencies).filter((name) => !imported.has(name)).sort(), [], 'a dependency the shipped code never imports');
});
