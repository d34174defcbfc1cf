/**
 * The cluster's Redis records as the read side sees them: worker, application,
 * executor and driver hashes written by the commit scripts (functions/store/lua),
 * and the parsers from a hash to a typed record. Parsers are tolerant of older or
 * partial records (a missing field takes its default), never throw, and return
 * undefined for a missing hash. Pure: the reading itself is functions/store/read-state.ts.
 */
import type { MasterStatus } from './states.ts';

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
  /** last heartbeat (ms, Redis's clock) of an executor of an app with heartbeats on */
  lastHeartbeat?: number;
  /** the metrics of its latest heartbeat that carried some, and when (ms) */
  latestMetrics?: { at: number; metrics: Record<string, unknown> };
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
  /** executor heartbeats are on (spark.flint.executor.heartbeat.enabled): the receiver's timeout, ms */
  heartbeatTimeoutMs?: number;
  /** the cluster-mode driver the app belongs to */
  driverId?: string;
  /** why the master ended the app (a lapsed client lease, its driver ended) */
  endReason?: string;
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
    lastHeartbeat: e.lastHeartbeat === undefined ? undefined : n(e.lastHeartbeat),
  };
}

/**
 * withExecutorHeartbeats: executors with their receiver state: the last beat of a live
 * one (app:<id>:executor-beats, member → ms) and the latest metrics (JSON {at, metrics}).
 */
export function withExecutorHeartbeats(executors: ExecutorRecord[], beats: Record<string, number>, metrics: Record<string, string>): ExecutorRecord[] {
  return executors.map((e) => {
    const key = String(e.id);
    const beat = beats[key];
    const latest = parseJson<{ at?: unknown; metrics?: unknown } | undefined>(metrics[key], undefined);
    const out: ExecutorRecord = { ...e };
    if (beat !== undefined) out.lastHeartbeat = beat;
    if (latest && typeof latest.at === 'number' && latest.metrics && typeof latest.metrics === 'object' && !Array.isArray(latest.metrics)) {
      out.latestMetrics = { at: latest.at, metrics: latest.metrics as Record<string, unknown> };
    }
    return out;
  });
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
    heartbeatTimeoutMs: optNum(h.hbTimeoutMs),
    driverId: h.driverId || undefined,
    endReason: h.endReason || undefined,
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

/** resourcesUsed: the addresses of `total` that are not in `free` (what Spark calls resourcesInfoUsed). */
export function resourcesUsed(total: ResourceAddresses, free: ResourceAddresses): ResourceAddresses {
  const out: ResourceAddresses = {};
  for (const [name, addresses] of Object.entries(total)) {
    const available = new Set(free[name] ?? []);
    out[name] = addresses.filter((a) => !available.has(a));
  }
  return out;
}
