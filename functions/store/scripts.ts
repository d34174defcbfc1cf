/**
 * Loads Flint's Lua commit scripts (functions/store/lua/*.lua) into an ioredis
 * client. Each script is the shared prelude plus its own body; the prelude's key
 * table `K` is generated here from protocol/keys.ts, so TypeScript and Lua can
 * never spell a key differently. `callScript` passes the calling convention
 * (namespace, now, configuration) documented in prelude.lua.
 */
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

let cachedSources: Map<ScriptName, string> | undefined;

/** scriptSources: prelude + body of every script, ready for EVALSHA. */
export function scriptSources(): Map<ScriptName, string> {
  if (cachedSources) return cachedSources;
  const prelude = readFileSync(join(LUA_DIR, 'prelude.lua'), 'utf8').replace('--@KEYS@--', `${luaKeyTable()}\n${luaTransitionTables()}`);
  cachedSources = new Map(
    SCRIPT_NAMES.map((name) => {
      const body = readFileSync(join(LUA_DIR, `${name}.lua`), 'utf8');
      return [name, `${prelude}\n-- ==== ${name}.lua ====\n${body}`];
    }),
  );
  return cachedSources;
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

type ScriptCommand = (key: string, ...args: (string | number)[]) => Promise<unknown>;

const LOADED = Symbol('flintScripts');

/** loadScripts defines every script as a command on the client (idempotent per client). */
export function loadScripts(redis: RedisConnection): void {
  const marked = redis as RedisConnection & { [LOADED]?: boolean };
  if (marked[LOADED]) return;
  for (const [name, lua] of scriptSources()) {
    redis.defineCommand(commandName(name), { numberOfKeys: 1, lua });
  }
  marked[LOADED] = true;
}

function commandName(name: ScriptName): string {
  return 'flint_' + name.replace(/-/g, '_');
}

/** callScript runs one commit script with the prelude's calling convention. */
export async function callScript<T = unknown>(
  redis: RedisConnection,
  keys: Keys,
  config: MasterScriptConfig,
  name: ScriptName,
  now: number,
  args: (string | number)[] = [],
): Promise<T> {
  loadScripts(redis);
  const command = (redis as unknown as Record<string, ScriptCommand>)[commandName(name)]!;
  const conf = JSON.stringify({ ...config, ts: sparkTimestamp(now) });
  return (await command.call(redis, keys.stats, keys.bullPrefix, now, conf, ...args)) as T;
}

export function keysFor(cluster: string): Keys {
  return clusterKeys(cluster);
}
