/**
 * Where Flint's own files are, whether it runs from its TypeScript sources (a git
 * checkout, through tsx) or compiled (`dist/` of an installed package; see
 * docs/packaging.md).
 *
 * Compiled modules mirror the sources one level deeper: `lib/redis.ts` becomes
 * `dist/lib/redis.js`. Files that are not code — the Lua commit scripts, the image
 * inputs under infra/images, bin/flint.js — are not copied into dist/: they stay at
 * their place under the package root, in a checkout and in the package alike, so
 * every reader finds them through `packagePath` and never by a path relative to its
 * own module.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const THIS_FILE = fileURLToPath(import.meta.url);

/** RUNNING_FROM_SOURCE: this process runs the TypeScript sources (tsx), not dist/. */
export const RUNNING_FROM_SOURCE = THIS_FILE.endsWith('.ts');

/** MODULE_EXTENSION: how Flint's own modules end in this process, '.ts' or '.js'. */
export const MODULE_EXTENSION = RUNNING_FROM_SOURCE ? '.ts' : '.js';

/** PACKAGE_ROOT: the directory holding package.json, bin/ and (compiled) dist/. */
export const PACKAGE_ROOT = join(dirname(THIS_FILE), RUNNING_FROM_SOURCE ? '..' : join('..', '..'));

/** packagePath: a file that ships as is (not compiled), by its path from the package root, e.g. `packagePath('infra', 'images', 'demo')`. */
export function packagePath(...segments: string[]): string {
  return join(PACKAGE_ROOT, ...segments);
}

/** FLINT_BIN: the `flint` command's entry point; a child started with it runs the same kind of code (sources or dist/) as this process. */
export const FLINT_BIN = packagePath('bin', 'flint.js');

/**
 * nodeArgsForModule: the node arguments that run the Flint module `modulePath` (given
 * without its extension, e.g. `.../workers/runtime/task-supervisor`) as a program of its
 * own: the compiled file as is, or the source through tsx's loader. tsx is a dev
 * dependency, so it is resolved only when running from source.
 */
export function nodeArgsForModule(modulePathWithoutExtension: string): string[] {
  const file = `${modulePathWithoutExtension}${MODULE_EXTENSION}`;
  if (!RUNNING_FROM_SOURCE) return [file];
  const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return ['--import', tsxLoader, file];
}
