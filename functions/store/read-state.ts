/**
 * Read side of the cluster state for the master web UI, `/json` and `/metrics`.
 *
 * The commit scripts (functions/store/lua) are the only writers; this module only
 * reads, in two pipelined round trips whatever the cluster size: first the index
 * sets and lists (which workers, apps and drivers exist), then every hash at once.
 * The two rounds are not one atomic snapshot: an object deleted in between (a
 * completed app trimmed, a dead worker culled) is simply left out, as a page
 * rendered a moment later would show it.
 */
import type { RedisConnection } from '../../lib/redis.ts';
import type { Keys } from '../../protocol/keys.ts';
import { appFromHash, driverFromHash, executorFromJson, withExecutorHeartbeats, workerFromHash, type AppRecord, type DriverRecord, type ExecutorRecord, type MasterState, type WorkerRecord } from '../../protocol/records.ts';

export interface ReadMasterStateOptions {
  url: string;
  restUrl?: string;
  /** include each active app's executors (default true) */
  withExecutors?: boolean;
  now?: number;
}

type Hash = Record<string, string>;

function num(value: string | undefined, fallback = 0): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  return Number.isFinite(n) ? n : fallback;
}

function results<T>(replies: [Error | null, unknown][] | null, what: string): T[] {
  if (!replies) throw new Error(`Redis pipeline reading ${what} returned nothing`);
  return replies.map(([error, value]) => {
    if (error) throw new Error(`reading ${what}: ${error.message}`, { cause: error });
    return value as T;
  });
}

/**
 * readMasterState: the whole state Spark's RequestMasterState returns, in two
 * pipelined round trips. Flint's master is leaderless, so the status is always ALIVE.
 */
export async function readMasterState(redis: RedisConnection, keys: Keys, options: ReadMasterStateOptions): Promise<MasterState> {
  const readAt = options.now ?? Date.now();
  const withExecutors = options.withExecutors ?? true;
  const [workerIds, activeAppIds, completedAppIds, activeDriverIds, waitingDriverIds, completedDriverIds, beats] = results<string[]>(
    await redis
      .pipeline()
      .smembers(keys.workersAll)
      .zrange(keys.appsWaiting, '0', '-1')
      .lrange(keys.appsCompleted, 0, -1)
      .smembers(keys.driversActive)
      .zrange(keys.driversWaiting, '0', '-1')
      .lrange(keys.driversCompleted, 0, -1)
      .zrange(keys.heartbeats, '0', '-1', 'WITHSCORES')
      .exec(),
    'the cluster indexes',
  );
  // a live worker's last beat is in the heartbeats zset (the heartbeat script writes only there)
  const lastBeat = new Map<string, number>();
  for (let i = 0; i + 1 < beats.length; i += 2) lastBeat.set(beats[i]!, Number(beats[i + 1]));

  // Active drivers: waiting ones in FIFO order, then the running ones by id.
  const waiting = new Set(waitingDriverIds);
  const activeDriverOrder = [...waitingDriverIds.filter((id) => activeDriverIds.includes(id)), ...activeDriverIds.filter((id) => !waiting.has(id)).sort()];

  const pipe = redis.pipeline();
  for (const id of workerIds) pipe.hgetall(keys.worker(id));
  for (const id of activeAppIds) {
    pipe.hgetall(keys.app(id));
    if (withExecutors) pipe.hgetall(keys.appExecutors(id));
  }
  for (const id of completedAppIds) pipe.hgetall(keys.app(id));
  for (const id of activeDriverOrder) pipe.hgetall(keys.driver(id));
  for (const id of completedDriverIds) pipe.hgetall(keys.driver(id));
  const hashes = results<Hash>(await pipe.exec(), 'the cluster objects');

  let at = 0;
  const take = () => hashes[at++] ?? {};
  const workers: WorkerRecord[] = [];
  for (let i = 0; i < workerIds.length; i++) {
    const w = workerFromHash(take());
    if (w) workers.push({ ...w, lastHeartbeat: lastBeat.get(w.id) ?? w.lastHeartbeat });
  }
  workers.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const activeApps: AppRecord[] = [];
  for (let i = 0; i < activeAppIds.length; i++) {
    const h = take();
    const a = appFromHash(h, withExecutors ? take() : {});
    if (a) activeApps.push(a);
  }
  const completedApps: AppRecord[] = [];
  for (let i = 0; i < completedAppIds.length; i++) {
    const a = appFromHash(take());
    if (a) completedApps.push(a);
  }
  const activeDrivers: DriverRecord[] = [];
  for (let i = 0; i < activeDriverOrder.length; i++) {
    const d = driverFromHash(take());
    if (d) activeDrivers.push(d);
  }
  const completedDrivers: DriverRecord[] = [];
  for (let i = 0; i < completedDriverIds.length; i++) {
    const d = driverFromHash(take());
    if (d) completedDrivers.push(d);
  }
  return {
    url: options.url,
    restUrl: options.restUrl,
    workers,
    activeApps,
    completedApps,
    activeDrivers,
    completedDrivers,
    status: 'ALIVE',
    readAt,
  };
}

/** readApplication: one app (active or completed) with its executors and their heartbeats; undefined if unknown. */
export async function readApplication(redis: RedisConnection, keys: Keys, appId: string): Promise<AppRecord | undefined> {
  const [app, executors, beats, metrics] = results<unknown>(
    await redis
      .pipeline()
      .hgetall(keys.app(appId))
      .hgetall(keys.appExecutors(appId))
      .zrange(keys.appExecutorBeats(appId), '0', '-1', 'WITHSCORES')
      .hgetall(keys.appExecutorMetrics(appId))
      .exec(),
    `application ${appId}`,
  ) as [Hash, Hash, string[], Hash];
  const record = appFromHash(app ?? {}, executors ?? {});
  if (!record) return undefined;
  const lastBeat: Record<string, number> = {};
  for (let i = 0; i + 1 < beats.length; i += 2) lastBeat[beats[i]!] = Number(beats[i + 1]);
  return { ...record, executors: withExecutorHeartbeats(record.executors, lastBeat, metrics ?? {}) };
}

/** readWorker: one worker with the executors (fullIds) and drivers placed on it; undefined if unknown. */
export async function readWorker(
  redis: RedisConnection,
  keys: Keys,
  workerId: string,
): Promise<{ worker: WorkerRecord; executors: { appId: string; executor: ExecutorRecord }[]; drivers: DriverRecord[] } | undefined> {
  const [hash, fullIds, driverIds, beat] = results<unknown>(
    await redis
      .pipeline()
      .hgetall(keys.worker(workerId))
      .smembers(keys.workerExecutors(workerId))
      .smembers(keys.workerDrivers(workerId))
      .zscore(keys.heartbeats, workerId)
      .exec(),
    `worker ${workerId}`,
  ) as [Hash, string[], string[], string | null];
  const recorded = workerFromHash(hash);
  if (!recorded) return undefined;
  const worker = beat === null ? recorded : { ...recorded, lastHeartbeat: Number(beat) };
  const refs = fullIds.map((fullId) => {
    const slash = fullId.lastIndexOf('/');
    return { appId: fullId.slice(0, slash), execId: fullId.slice(slash + 1) };
  });
  const pipe = redis.pipeline();
  for (const ref of refs) pipe.hget(keys.appExecutors(ref.appId), ref.execId);
  for (const id of driverIds) pipe.hgetall(keys.driver(id));
  const replies = refs.length + driverIds.length > 0 ? results<unknown>(await pipe.exec(), `worker ${workerId} tasks`) : [];
  const executors: { appId: string; executor: ExecutorRecord }[] = [];
  refs.forEach((ref, i) => {
    const executor = typeof replies[i] === 'string' ? executorFromJson(replies[i] as string) : undefined;
    if (executor) executors.push({ appId: ref.appId, executor });
  });
  executors.sort((a, b) => (a.appId === b.appId ? a.executor.id - b.executor.id : a.appId < b.appId ? -1 : 1));
  const drivers = driverIds
    .map((_, i) => driverFromHash((replies[refs.length + i] as Hash) ?? {}))
    .filter((d): d is DriverRecord => d !== undefined)
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  return { worker, executors, drivers };
}

/** WorkerCapacity: the per-worker numbers /metrics needs, without resources or labels. */
export interface WorkerCapacity {
  state: string;
  cores: number;
  coresUsed: number;
  memoryMB: number;
  memoryUsed: number;
}

/** readWorkerCapacities: state and capacity of every known worker (one HMGET each, pipelined). */
export async function readWorkerCapacities(redis: RedisConnection, keys: Keys): Promise<WorkerCapacity[]> {
  const ids = await redis.smembers(keys.workersAll);
  if (ids.length === 0) return [];
  const pipe = redis.pipeline();
  for (const id of ids) pipe.hmget(keys.worker(id), 'state', 'cores', 'coresUsed', 'memoryMB', 'memoryUsed');
  const rows = results<(string | null)[]>(await pipe.exec(), 'worker capacities');
  return rows
    .filter((r) => r[0] !== null)
    .map((r) => ({ state: r[0]!, cores: num(r[1] ?? undefined), coresUsed: num(r[2] ?? undefined), memoryMB: num(r[3] ?? undefined), memoryUsed: num(r[4] ?? undefined) }));
}
