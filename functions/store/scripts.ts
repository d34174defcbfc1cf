/**
 * Flint's Lua commit scripts (functions/store/lua/*.lua) and how they are run. Each
 * script is the shared prelude plus its own body; the prelude's key table `K` is
 * generated here from protocol/keys.ts, so TypeScript and Lua can
 * never spell a key differently. `callScript` passes the calling convention
 * (namespace, now, configuration) documented in prelude.lua.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packagePath } from '../../lib/package-layout.ts';
import type { RedisConnection } from '../../lib/redis.ts';
import { clusterKeys, type Keys } from '../../protocol/keys.ts';
import { luaKeyTable } from '../../protocol/lua-keys.ts';
import { sparkTimestamp } from '../../protocol/config.ts';
import { EXECUTOR_TRANSITIONS, DRIVER_TRANSITIONS, APPLICATION_TRANSITIONS, WORKER_TRANSITIONS } from '../../protocol/states.ts';

// not compiled: found at the same place in a checkout and in the package (lib/package-layout.ts)
const LUA_DIR = packagePath('functions', 'store', 'lua');

export const SCRIPT_NAMES = [
  'register-worker',
  'register-application',
  'remove-application',
  'executor-state-changed',
  'request-executors',
  'kill-executors',
  'worker-latest-state',
  'reap-workers',
  'expire-app-leases',
  'commit-placements',
  'submit-driver',
  'kill-driver',
  'driver-state-changed',
  'finish-schedule-pass',
  'decommission-worker',
  'clear-completed',
] as const;
export type ScriptName = (typeof SCRIPT_NAMES)[number];

export { luaKeyTable };

/** luaTransitionTables renders protocol/states.ts transition tables as Lua sets. */
export function luaTransitionTables(): string {
  const render = (table: Record<string, readonly string[]>) =>
    '{' + Object.entries(table).map(([from, tos]) => `${from} = {${tos.map((to) => `${to} = true`).join(', ')}}`).join(', ') + '}';
  return [
    `local TRANSITIONS = {`,
    `  executor = ${render(EXECUTOR_TRANSITIONS)},`,
    `  driver = ${render(DRIVER_TRANSITIONS)},`,
    `  application = ${render(APPLICATION_TRANSITIONS)},`,
    `  worker = ${render(WORKER_TRANSITIONS)},`,
    `}`,
  ].join('\n');
}

/**
 * The scripts as Redis runs them are the prelude plus a body each, about 25 KB apiece.
 * Only the prelude and the bodies are kept, once per process, with each script's SHA1:
 * a master runs EVALSHA, and composes a script's source only when Redis does not have
 * it (NOSCRIPT: after a restart, a failover or SCRIPT FLUSH) to send it with EVAL,
 * which also caches it. Holding the 16 composed sources in every process kept them in
 * the heap as long as it ran (docs/packaging.md).
 */
interface LoadedScripts {
  prelude: string;
  bodies: Map<ScriptName, string>;
  shas: Map<ScriptName, string>;
}

let loaded: LoadedScripts | undefined;

/** composeScript: the source Redis runs, the prelude then the body. */
function composeScript(prelude: string, name: ScriptName, body: string): string {
  return `${prelude}\n-- ==== ${name}.lua ====\n${body}`;
}

/** loadScripts reads every script and computes its SHA1, once per process; a missing or unreadable file fails here, at start. */
export function loadScripts(): void {
  if (loaded) return;
  const prelude = readFileSync(join(LUA_DIR, 'prelude.lua'), 'utf8').replace('--@KEYS@--', `${luaKeyTable()}\n${luaTransitionTables()}`);
  const bodies = new Map(SCRIPT_NAMES.map((name) => [name, readFileSync(join(LUA_DIR, `${name}.lua`), 'utf8')]));
  const shas = new Map(SCRIPT_NAMES.map((name) => [name, createHash('sha1').update(composeScript(prelude, name, bodies.get(name)!)).digest('hex')]));
  loaded = { prelude, bodies, shas };
}

/** scriptSource: the source of one script as Redis runs it (composed on each call). */
export function scriptSource(name: ScriptName): string {
  loadScripts();
  return composeScript(loaded!.prelude, name, loaded!.bodies.get(name)!);
}

/** MasterScriptConfig: the configuration values commit scripts need (ARGV[3]). */
export interface MasterScriptConfig {
  masterUrl: string;
  retainedApps: number;
  retainedDrivers: number;
  /** spark.ui.retainedDeadExecutors: finished executors kept per application */
  retainedExecutors: number;
  maxRetries: number;
  maxDrivers: number;
  appIdPattern: string;
  driverIdPattern: string;
  appNumberModulo: number | null;
}

/** scriptSha: the SHA1 by which callScript runs one script (EVALSHA). */
export function scriptSha(name: ScriptName): string {
  loadScripts();
  return loaded!.shas.get(name)!;
}

/** callScript runs one commit script with the prelude's calling convention: EVALSHA, then EVAL if Redis lacks the script. */
export async function callScript<T = unknown>(
  redis: RedisConnection,
  keys: Keys,
  config: MasterScriptConfig,
  name: ScriptName,
  now: number,
  args: (string | number)[] = [],
): Promise<T> {
  loadScripts();
  const conf = JSON.stringify({ ...config, ts: sparkTimestamp(now) });
  const keysAndArgs = [keys.stats, keys.bullPrefix, now, conf, ...args];
  try {
    return (await redis.evalsha(scriptSha(name), 1, ...keysAndArgs)) as T;
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return (await redis.eval(scriptSource(name), 1, ...keysAndArgs)) as T;
  }
}

export function keysFor(cluster: string): Keys {
  return clusterKeys(cluster);
}
