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
import type { MasterStatus } from '../../protocol/states.ts';

/** ResourceAddresses: resource name → addresses (Spark's ResourceInformation, keyed by name). */
export type ResourceAddresses = Record<string, string[]>;

export interface WorkerRecord {
  id: string;
  host: string;
  port: number;
  cores: number;
  memoryMB: number;
  coresUsed: number;
  memoryUsed: number;
  /** ALIVE, DEAD, DECOMMISSIONED or UNKNOWN */
  state: string;
  epoch: number;
  webUiUrl: string;
  resources: ResourceAddresses;
  resourcesFree: ResourceAddresses;
  labels: Record<string, string>;
  registeredAt: number;
  lastHeartbeat: number;
  deadSince?: number;
  deathReason?: string;
}

export interface ExecutorRecord {
  id: number;
  workerId: string;
  epoch: number;
  cores: number;
  memoryMB: number;
  resources: ResourceAddresses;
  state: string;
  host: string;
  hostPort: string;
  startTime: number;
  runningSince?: number;
  endTime?: number;
  exitStatus?: number;
  message?: string;
  oomKilled?: boolean;
}

/** AppDescriptionView: the parts of the stored ApplicationDescription the read side uses (tolerant of old records). */
export interface AppDescriptionView {
  name: string;
  image: string;
  command: string[];
  env: Record<string, string>;
  maxCores?: number;
  coresPerExecutor?: number;
  memoryPerExecutorMB: number;
  resourcesPerExecutor: { name: string; amount: number }[];
  user: string;
  appUiUrl: string;
}

export interface AppRecord {
  id: string;
  clientId: string;
  name: string;
  user: string;
  desc: AppDescriptionView;
  /** WAITING, RUNNING, FINISHED, FAILED, KILLED or UNKNOWN */
  state: string;
  coresGranted: number;
  requestedCores: number;
  executorLimit: number;
  liveExecutors: number;
  retryCount: number;
  startTime: number;
  /** Spark's submitDate (ms); Flint registers and submits in one step, so it is startTime unless stored apart */
  submitDate?: number;
  /** -1 while the app is active, as Spark's ApplicationInfo.endTime */
  endTime: number;
  priority: number;
  /** executors by id, ascending (empty unless read with executors) */
  executors: ExecutorRecord[];
}

export interface DriverDescriptionView {
  name: string;
  mainClass: string;
  image: string;
  cores: number;
  memoryMB: number;
  supervise: boolean;
}

export interface DriverRecord {
  id: string;
  desc: DriverDescriptionView;
  /** SUBMITTED, RUNNING, FINISHED, RELAUNCHING, UNKNOWN, KILLED, FAILED or ERROR */
  state: string;
  cores: number;
  memoryMB: number;
  supervise: boolean;
  startTime: number;
  endTime?: number;
  resources: ResourceAddresses;
  workerId?: string;
  workerHostPort?: string;
  exception?: string;
  relaunchOf?: string;
  relaunchedAs?: string;
}

/** MasterState: what Spark's MasterStateResponse carries, read from Redis. */
export interface MasterState {
  url: string;
  restUrl?: string;
  /** every known worker, DEAD ones included until culled, sorted by id */
  workers: WorkerRecord[];
  /** active (WAITING/RUNNING) apps in scheduling order, with their executors */
  activeApps: AppRecord[];
  /** completed apps, oldest first (without executors) */
  completedApps: AppRecord[];
  /** waiting and running drivers: waiting in submission order first, then running by id */
  activeDrivers: DriverRecord[];
  /** completed drivers, oldest first */
  completedDrivers: DriverRecord[];
  status: MasterStatus;
  /** when the read started (ms), for durations */
  readAt: number;
}

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

function optNum(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

function parseJson<T>(text: string | undefined, fallback: T): T {
  if (!text) return fallback;
  try {
    const value: unknown = JSON.parse(text);
    return value === null || value === undefined ? fallback : (value as T);
  } catch {
    return fallback;
  }
}

/** resourceMap: JSON name → [addresses] with anything else (cjson's `{}` for an empty list included) dropped. */
function resourceMap(text: string | undefined): ResourceAddresses {
  const value = parseJson<unknown>(text, {});
  const out: ResourceAddresses = {};
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [name, addresses] of Object.entries(value as Record<string, unknown>)) {
      out[name] = Array.isArray(addresses) ? addresses.map(String) : [];
    }
  }
  return out;
}

/** workerFromHash: a worker hash as register-worker.lua writes it; undefined for a missing hash. */
export function workerFromHash(h: Hash): WorkerRecord | undefined {
  if (!h.id) return undefined;
  return {
    id: h.id,
    host: h.host ?? '',
    port: num(h.port),
    cores: num(h.cores),
    memoryMB: num(h.memoryMB),
    coresUsed: num(h.coresUsed),
    memoryUsed: num(h.memoryUsed),
    state: h.state ?? 'UNKNOWN',
    epoch: num(h.epoch),
    webUiUrl: h.webUiUrl ?? '',
    resources: resourceMap(h.resources),
    resourcesFree: resourceMap(h.resourcesFree),
    labels: parseJson<Record<string, string>>(h.labels, {}),
    registeredAt: num(h.registeredAt),
    lastHeartbeat: num(h.lastHeartbeat),
    deadSince: optNum(h.deadSince),
    deathReason: h.deathReason || undefined,
  };
}

/** executorFromJson: one entry of an app's executors hash. */
export function executorFromJson(text: string): ExecutorRecord | undefined {
  const e = parseJson<Record<string, unknown> | undefined>(text, undefined);
  if (!e || typeof e !== 'object') return undefined;
  const n = (v: unknown, d = 0) => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && v !== '' && Number.isFinite(Number(v)) ? Number(v) : d);
  return {
    id: n(e.id),
    workerId: String(e.workerId ?? ''),
    epoch: n(e.epoch),
    cores: n(e.cores),
    memoryMB: n(e.memoryMB),
    resources: resourceMap(JSON.stringify(e.resources ?? {})),
    state: String(e.state ?? 'UNKNOWN'),
    host: String(e.host ?? ''),
    hostPort: String(e.hostPort ?? ''),
    startTime: n(e.startTime),
    runningSince: e.runningSince === undefined ? undefined : n(e.runningSince),
    endTime: e.endTime === undefined ? undefined : n(e.endTime),
    exitStatus: e.exitStatus === undefined || e.exitStatus === null ? undefined : n(e.exitStatus),
    message: typeof e.message === 'string' ? e.message : undefined,
    oomKilled: e.oomKilled === true ? true : undefined,
  };
}

function appDescription(text: string | undefined, name: string, user: string): AppDescriptionView {
  const d = parseJson<Record<string, unknown>>(text, {});
  const reqs = Array.isArray(d.resourcesPerExecutor) ? (d.resourcesPerExecutor as { name?: unknown; amount?: unknown }[]) : [];
  return {
    name: typeof d.name === 'string' ? d.name : name,
    image: typeof d.image === 'string' ? d.image : '',
    command: Array.isArray(d.command) ? d.command.map(String) : [],
    env: d.env && typeof d.env === 'object' && !Array.isArray(d.env) ? (d.env as Record<string, string>) : {},
    maxCores: typeof d.maxCores === 'number' ? d.maxCores : undefined,
    coresPerExecutor: typeof d.coresPerExecutor === 'number' ? d.coresPerExecutor : undefined,
    memoryPerExecutorMB: typeof d.memoryPerExecutorMB === 'number' ? d.memoryPerExecutorMB : 1024,
    resourcesPerExecutor: reqs.map((r) => ({ name: String(r.name ?? ''), amount: Number(r.amount ?? 0) })),
    user: typeof d.user === 'string' ? d.user : user,
    appUiUrl: typeof d.appUiUrl === 'string' ? d.appUiUrl : '',
  };
}

/** appFromHash: an app hash as register-application.lua writes it, with its executors hash (may be empty). */
export function appFromHash(h: Hash, executors: Hash = {}): AppRecord | undefined {
  if (!h.id) return undefined;
  const user = h.user ?? '<unknown>';
  const list = Object.values(executors)
    .map(executorFromJson)
    .filter((e): e is ExecutorRecord => e !== undefined)
    .sort((a, b) => a.id - b.id);
  return {
    id: h.id,
    clientId: h.clientId ?? '',
    name: h.name ?? '',
    user,
    desc: appDescription(h.desc, h.name ?? '', user),
    state: h.state ?? 'UNKNOWN',
    coresGranted: num(h.coresGranted),
    requestedCores: num(h.requestedCores),
    executorLimit: num(h.executorLimit, -1),
    liveExecutors: num(h.liveExecutors),
    retryCount: num(h.retryCount),
    startTime: num(h.startTime),
    submitDate: optNum(h.submitDate),
    endTime: num(h.endTime, -1),
    priority: num(h.priority),
    executors: list,
  };
}

/** driverFromHash: a driver hash as prelude.lua createDriver and commit-placements.lua write it. */
export function driverFromHash(h: Hash): DriverRecord | undefined {
  if (!h.id) return undefined;
  const d = parseJson<Record<string, unknown>>(h.desc, {});
  const supervise = h.supervise === 'true';
  const desc: DriverDescriptionView = {
    name: typeof d.name === 'string' ? d.name : '',
    mainClass: typeof d.mainClass === 'string' ? d.mainClass : '',
    image: typeof d.image === 'string' ? d.image : '',
    cores: typeof d.cores === 'number' ? d.cores : num(h.cores, 1),
    memoryMB: typeof d.memoryMB === 'number' ? d.memoryMB : num(h.memoryMB, 1024),
    supervise: typeof d.supervise === 'boolean' ? d.supervise : supervise,
  };
  return {
    id: h.id,
    desc,
    state: h.state ?? 'UNKNOWN',
    cores: num(h.cores, desc.cores),
    memoryMB: num(h.memoryMB, desc.memoryMB),
    supervise,
    startTime: num(h.startTime),
    endTime: optNum(h.endTime),
    resources: resourceMap(h.resources),
    workerId: h.workerId || undefined,
    workerHostPort: h.workerHostPort || undefined,
    exception: h.exception || undefined,
    relaunchOf: h.relaunchOf || undefined,
    relaunchedAs: h.relaunchedAs || undefined,
  };
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

/** readApplication: one app (active or completed) with its executors; undefined if unknown. */
export async function readApplication(redis: RedisConnection, keys: Keys, appId: string): Promise<AppRecord | undefined> {
  const [app, executors] = results<Hash>(await redis.pipeline().hgetall(keys.app(appId)).hgetall(keys.appExecutors(appId)).exec(), `application ${appId}`);
  return appFromHash(app ?? {}, executors ?? {});
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

/** resourcesUsed: the addresses of `total` that are not in `free` (what Spark calls resourcesInfoUsed). */
export function resourcesUsed(total: ResourceAddresses, free: ResourceAddresses): ResourceAddresses {
  const out: ResourceAddresses = {};
  for (const [name, addresses] of Object.entries(total)) {
    const available = new Set(free[name] ?? []);
    out[name] = addresses.filter((a) => !available.has(a));
  }
  return out;
}
