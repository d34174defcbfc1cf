/**
 * The application client's Redis scripts (client/lua/*.lua): renewing client leases,
 * absorbing executor heartbeats and claiming the expiry of silent executors. They
 * are the client side of application liveness (docs/app-client.md); the master's
 * side (finishing apps whose lease lapsed, killing what a receiver gave up) is in
 * functions/store/lua. Each script gets a small header: the namespace, the key table
 * generated from protocol/keys.ts, and Redis's clock, which times every lease and beat.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packagePath } from '../lib/package-layout.ts';
import type { RedisConnection } from '../lib/redis.ts';
import type { Keys } from '../protocol/keys.ts';
import { luaKeyTable } from '../protocol/lua-keys.ts';

// not compiled: found at the same place in a checkout and in the package (lib/package-layout.ts)
const LUA_DIR = packagePath('client', 'lua');

const RECEIVER_SCRIPTS = ['renew-app-leases', 'record-executor-heartbeats', 'claim-silent-executors'] as const;
type ReceiverScript = (typeof RECEIVER_SCRIPTS)[number];

const HEADER = `local NS = ARGV[1]
${luaKeyTable()}
local function redisNowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

const LOADED = Symbol('flintReceiverScripts');

function commandName(name: ReceiverScript): string {
  return 'flintc_' + name.replace(/-/g, '_');
}

function load(redis: RedisConnection): void {
  const marked = redis as RedisConnection & { [LOADED]?: boolean };
  if (marked[LOADED]) return;
  for (const name of RECEIVER_SCRIPTS) {
    redis.defineCommand(commandName(name), { numberOfKeys: 1, lua: `${HEADER}\n-- ==== ${name}.lua ====\n${readFileSync(join(LUA_DIR, `${name}.lua`), 'utf8')}` });
  }
  marked[LOADED] = true;
}

async function call<T>(redis: RedisConnection, name: ReceiverScript, routeKey: string, args: (string | number)[]): Promise<T> {
  load(redis);
  const command = (redis as unknown as Record<string, (...params: (string | number)[]) => Promise<unknown>>)[commandName(name)]!;
  return (await command.apply(redis, [routeKey, ...args])) as T;
}

function namespace(keys: Keys): string {
  return `flint{${keys.cluster}}`;
}

/** renewAppLeases renews the client lease of each app; returns how many still hold one (finished apps hold none). */
export async function renewAppLeases(redis: RedisConnection, keys: Keys, appIds: readonly string[]): Promise<number> {
  if (appIds.length === 0) return 0;
  return call<number>(redis, 'renew-app-leases', keys.appLeases, [namespace(keys), ...appIds]);
}

/** ExecutorBeat: one heartbeat of one executor; `metrics` is JSON text or ''. */
export interface ExecutorBeat {
  appId: string;
  execId: number;
  metrics: string;
}

/** BeatOutcome: recorded; pending (the executor is still LAUNCHING); unknown (no such executor, or finished). */
export type BeatOutcome = 'recorded' | 'pending' | 'unknown';

const OUTCOMES: readonly BeatOutcome[] = ['unknown', 'recorded', 'pending'];

/** recordExecutorHeartbeats absorbs a batch of beats in one script call; one outcome per beat. */
export async function recordExecutorHeartbeats(redis: RedisConnection, keys: Keys, beats: readonly ExecutorBeat[]): Promise<BeatOutcome[]> {
  if (beats.length === 0) return [];
  const args: (string | number)[] = [namespace(keys)];
  for (const beat of beats) args.push(beat.appId, beat.execId, beat.metrics);
  const codes = await call<number[]>(redis, 'record-executor-heartbeats', keys.executorBeatChecks, args);
  return codes.map((code) => OUTCOMES[code] ?? 'unknown');
}

/** SilentExecutor: an executor whose expiry this caller claimed. */
export interface SilentExecutor {
  appId: string;
  execId: number;
  /** how long it has been silent, as Spark's message reports it */
  silentMs: number;
  timeoutMs: number;
}

/**
 * claimSilentExecutors runs the expiry check of every due app (or of `appId` only):
 * the executors returned are this caller's to kill; no other caller gets them.
 */
export async function claimSilentExecutors(
  redis: RedisConnection,
  keys: Keys,
  options: { appId?: string; appLimit?: number; executorLimit?: number } = {},
): Promise<SilentExecutor[]> {
  const text = await call<string>(redis, 'claim-silent-executors', keys.executorBeatChecks, [
    namespace(keys),
    options.appId ?? '',
    options.appLimit ?? 100,
    options.executorLimit ?? 100,
  ]);
  return (JSON.parse(text) as [string, number, number, number][]).map(([appId, execId, silentMs, timeoutMs]) => ({ appId, execId, silentMs, timeoutMs }));
}

/** heartbeatTimeoutMessage: Spark's reason for an expired executor. */
export function heartbeatTimeoutMessage(silentMs: number): string {
  return `Executor heartbeat timed out after ${silentMs} ms`;
}
