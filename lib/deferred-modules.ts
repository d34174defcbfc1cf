/**
 * Deferred CommonJS modules: stand-ins put in require's cache for modules a package
 * loads when it is loaded but that Flint's use of it never calls. Each stand-in loads
 * the real module the first time something of it is used, so nothing is taken away;
 * the process only stops paying, for as long as it idles, for JavaScript it never
 * runs (its source stays in the heap once compiled). lib/docker.ts and lib/bullmq.ts
 * use them; docs/packaging.md has the figures.
 *
 * A stand-in is installed only when the module's file exists and it has not run yet, so a dependency release that moves a file costs memory, never correctness.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';

const require = createRequire(import.meta.url);

/** standIns: the exports of every stand-in, to tell them from a real module in the cache. */
const standIns = new WeakSet<object>();

/** standIn puts a finished module with `exports` in require's cache under `path`. */
function standIn(path: string, exports: unknown): void {
  const module = new Module(path);
  module.filename = path;
  module.loaded = true;
  module.exports = exports;
  require.cache[path] = module;
}

/**
 * installable: the file exists and has not run. An ES module's `import` of a CommonJS
 * package enters the files that package re-exports in the cache before any of them
 * runs (Node reads their export names from their source); such an entry, not yet
 * loaded, is replaced.
 */
function installable(path: string): boolean {
  return existsSync(path) && !hasRun(path);
}

/** hasRun: the module at `path` has run, or is running, in this process. */
export function hasRun(path: string): boolean {
  const cached = require.cache[path];
  return cached !== undefined && (cached.loaded || cached.children.length > 0 || Object.keys(cached.exports as object).length > 0);
}

/** loadReal drops the stand-in and loads the module itself (once: require caches it). */
function loadReal<T>(path: string): T {
  const cached = require.cache[path];
  if (cached !== undefined && standIns.has(cached.exports as object)) delete require.cache[path];
  return require(path) as T;
}

/** deferOnFirstCall: for a module whose export is one function, a function that loads the module on its first call (or construction). */
export function deferOnFirstCall(path: string): void {
  if (!installable(path)) return;
  let real: ((...args: unknown[]) => unknown) | undefined;
  const deferred = function deferred(this: unknown, ...args: unknown[]): unknown {
    real ??= loadReal<(...args: unknown[]) => unknown>(path);
    // `new` on the stand-in builds an instance of the real constructor (a subclass's new.target is kept)
    return new.target ? Reflect.construct(real, args, new.target === deferred ? real : new.target) : real.apply(this, args);
  };
  standIns.add(deferred);
  standIn(path, deferred);
}

/**
 * deferByProperty: for a module its users only read properties of, at the time they
 * call them (`const m = require(...)`, later `m.parse(...)`), an object that loads the
 * module when a property is first read, or its properties are listed or described.
 * Once loaded, the real module's properties are copied onto the object behind the
 * proxy (as getters), so listing them and describing them answer as the module would.
 */
export function deferByProperty(path: string): void {
  if (!installable(path)) return;
  const target: Record<PropertyKey, unknown> = {};
  let real: Record<PropertyKey, unknown> | undefined;
  const load = (): Record<PropertyKey, unknown> => {
    if (real === undefined) {
      const loaded = loadReal<Record<PropertyKey, unknown>>(path);
      for (const key of Reflect.ownKeys(loaded)) {
        const enumerable = Object.getOwnPropertyDescriptor(loaded, key)?.enumerable ?? false;
        Object.defineProperty(target, key, { enumerable, configurable: true, get: () => loaded[key] });
      }
      real = loaded;
    }
    return real;
  };
  const proxy = new Proxy(target, {
    get: (_target, key) => load()[key],
    has: (_target, key) => key in load(),
    ownKeys: (inner) => (load(), Reflect.ownKeys(inner)),
    getOwnPropertyDescriptor: (inner, key) => (load(), Reflect.getOwnPropertyDescriptor(inner, key)),
  });
  standIns.add(proxy);
  standIn(path, proxy);
}

/** EXPORT_NAMES: how TypeScript's CommonJS output names an export: `exports.name =` and `Object.defineProperty(exports, "name"`. */
const EXPORT_NAMES = /\bexports\.([A-Za-z_$][\w$]*)\s*=|Object\.defineProperty\(exports,\s*"([^"]+)"/g;

/** OTHER_EXPORTS: ways a module can export names that EXPORT_NAMES does not see. */
const OTHER_EXPORTS = /__exportStar|module\.exports|\bexports\[/;

/**
 * deferExports: for a module another re-exports with `export *` (tslib's
 * __exportStar copies its names when it loads), an exports object with the same
 * names, read from the module's source without compiling it, each loading the module
 * when first read. Not installed when no names are found, or when the source also
 * exports in a way the names cannot be read from (a stand-in missing a name would
 * make it undefined without an error).
 */
export function deferExports(path: string): void {
  if (!installable(path)) return;
  const source = readFileSync(path, 'utf8');
  if (OTHER_EXPORTS.test(source)) return;
  const names = new Set<string>();
  for (const match of source.matchAll(EXPORT_NAMES)) names.add(match[1] ?? match[2]!);
  names.delete('__esModule');
  if (names.size === 0) return;
  let real: Record<string, unknown> | undefined;
  const exports: Record<string, unknown> = {};
  Object.defineProperty(exports, '__esModule', { value: true });
  for (const name of names) {
    Object.defineProperty(exports, name, { enumerable: true, get: () => (real ??= loadReal<Record<string, unknown>>(path))[name] });
  }
  standIns.add(exports);
  standIn(path, exports);
}
