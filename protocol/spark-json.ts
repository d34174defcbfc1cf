/**
 * Spark's deploy JsonProtocol (the master's and worker's `/json`), written from
 * Flint's read-side records. Field names, order and JSON types follow Spark 4.0's
 * JsonProtocol exactly, so tools that scrape a Spark master's `/json` (monitoring
 * scripts, cluster dashboards) read Flint's unchanged. Pure: no I/O; `now` comes in.
 *
 * Where Flint's data differs from Spark's:
 *  - `submitdate` is the registration time as Java's Date.toString renders it, in
 *    GMT ("Wed Sep 04 19:32:10 GMT 2019"): Spark prints the JVM's zone, Flint's
 *    processes may run in different zones and must agree.
 *  - ApplicationDescription `command` renders Flint's image and argv in the shape
 *    of Spark's Command case class, with secret-looking environment values redacted
 *    as Spark's UI redacts them (spark.redaction.regex).
 */
import type { AppRecord, DriverRecord, ExecutorRecord, MasterState, ResourceAddresses, WorkerRecord, AppDescriptionView } from './records.ts';
import { resourcesUsed } from './records.ts';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** javaDateString: Java's Date.toString ("EEE MMM dd HH:mm:ss zzz yyyy") in GMT. */
export function javaDateString(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} GMT ${d.getUTCFullYear()}`;
}

/**
 * SPARK_REDACTION: spark.redaction.regex's default (`secret|password|token|access[.]?key`),
 * widened to `access_key` / `access-key`, the spelling environment variables use.
 */
const SPARK_REDACTION = /secret|password|token|access[._-]?key/i;
const REDACTED = '*********(redacted)';

/** writeResourcesInfo: name → {"name", "addresses"} (ResourceInformation.toJson), in the map's order. */
export function writeResourcesInfo(info: ResourceAddresses): JsonObject {
  const out: JsonObject = {};
  for (const [name, addresses] of Object.entries(info)) out[name] = { name, addresses: [...addresses] };
  return out;
}

function resourceRequirements(desc: AppDescriptionView): JsonObject[] {
  // Spark's resourceReqsPerExecutor is sorted by resource name.
  return [...desc.resourcesPerExecutor].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((r) => ({ name: r.name, amount: r.amount }));
}

/** writeWorkerInfo: Spark's WorkerInfo JSON. */
export function writeWorkerInfo(w: WorkerRecord): JsonObject {
  return {
    id: w.id,
    host: w.host,
    port: w.port,
    webuiaddress: w.webUiUrl,
    cores: w.cores,
    coresused: w.coresUsed,
    coresfree: w.cores - w.coresUsed,
    memory: w.memoryMB,
    memoryused: w.memoryUsed,
    memoryfree: w.memoryMB - w.memoryUsed,
    resources: writeResourcesInfo(w.resources),
    resourcesused: writeResourcesInfo(resourcesUsed(w.resources, w.resourcesFree)),
    resourcesfree: writeResourcesInfo(w.resourcesFree),
    state: w.state,
    lastheartbeat: w.lastHeartbeat,
  };
}

/** appDuration: Spark's ApplicationInfo.duration (endTime − startTime, or now − startTime while active). */
export function appDuration(app: AppRecord, now: number): number {
  return app.endTime !== -1 ? app.endTime - app.startTime : now - app.startTime;
}

/** writeApplicationInfo: Spark's ApplicationInfo JSON (`cores` is the cores granted now). */
export function writeApplicationInfo(app: AppRecord, now: number): JsonObject {
  const reqs = resourceRequirements(app.desc);
  return {
    id: app.id,
    starttime: app.startTime,
    name: app.desc.name || app.name,
    cores: app.coresGranted,
    user: app.desc.user || app.user,
    memoryperexecutor: app.desc.memoryPerExecutorMB,
    memoryperslave: app.desc.memoryPerExecutorMB,
    resourcesperexecutor: reqs,
    resourcesperslave: reqs.map((r) => ({ ...r })),
    submitdate: javaDateString(app.submitDate ?? app.startTime),
    state: app.state,
    duration: appDuration(app, now),
  };
}

/** commandString: Flint's image + argv + env in the shape of Spark's Command.toString. */
export function commandString(desc: Pick<AppDescriptionView, 'image' | 'command' | 'env'>): string {
  const env = Object.entries(desc.env)
    .map(([k, v]) => `${k} -> ${SPARK_REDACTION.test(k) ? REDACTED : v}`)
    .join(', ');
  return `Command(${desc.image},List(${desc.command.join(', ')}),Map(${env}),List(),List(),List())`;
}

/** writeApplicationDescription: Spark's ApplicationDescription JSON (`cores` is maxCores, 0 = unlimited). */
export function writeApplicationDescription(desc: AppDescriptionView): JsonObject {
  const reqs = resourceRequirements(desc);
  return {
    name: desc.name,
    cores: desc.maxCores ?? 0,
    memoryperexecutor: desc.memoryPerExecutorMB,
    resourcesperexecutor: reqs,
    memoryperslave: desc.memoryPerExecutorMB,
    resourcesperslave: reqs.map((r) => ({ ...r })),
    user: desc.user,
    command: commandString(desc),
  };
}

/** writeDriverInfo: Spark's DriverInfo JSON (`starttime` is a string; `worker` is "None" until placed). */
export function writeDriverInfo(d: DriverRecord): JsonObject {
  return {
    id: d.id,
    starttime: String(d.startTime),
    state: d.state,
    cores: d.desc.cores,
    memory: d.desc.memoryMB,
    resources: writeResourcesInfo(d.resources),
    submitdate: javaDateString(d.startTime),
    worker: d.workerId ?? 'None',
    mainclass: d.desc.mainClass,
  };
}

/** ExecutorRunnerView: what the worker's `/json` knows of one executor it runs or ran. */
export interface ExecutorRunnerView {
  execId: number;
  appId: string;
  memoryMB: number;
  resources?: ResourceAddresses;
  appDesc?: AppDescriptionView;
}

/** writeExecutorRunner: Spark's ExecutorRunner JSON. */
export function writeExecutorRunner(e: ExecutorRunnerView): JsonObject {
  const desc: AppDescriptionView = e.appDesc ?? {
    name: e.appId,
    image: '',
    command: [],
    env: {},
    memoryPerExecutorMB: e.memoryMB,
    resourcesPerExecutor: [],
    user: '<unknown>',
    appUiUrl: '',
  };
  return {
    id: e.execId,
    memory: e.memoryMB,
    resources: writeResourcesInfo(e.resources ?? {}),
    appid: e.appId,
    appdesc: writeApplicationDescription(desc),
  };
}

/** WorkerStateView: Spark's WorkerStateResponse, as the worker UI source provides it. */
export interface WorkerStateView {
  workerId: string;
  masterUrl: string;
  masterWebUiUrl: string;
  cores: number;
  coresUsed: number;
  memoryMB: number;
  memoryUsed: number;
  resources: ResourceAddresses;
  resourcesUsed: ResourceAddresses;
  executors: ExecutorRunnerView[];
  finishedExecutors: ExecutorRunnerView[];
}

/** writeWorkerState: Spark's WorkerStateResponse JSON (the worker's `/json`). */
export function writeWorkerState(s: WorkerStateView): JsonObject {
  return {
    id: s.workerId,
    masterurl: s.masterUrl,
    masterwebuiurl: s.masterWebUiUrl,
    cores: s.cores,
    coresused: s.coresUsed,
    memory: s.memoryMB,
    memoryused: s.memoryUsed,
    resources: writeResourcesInfo(s.resources),
    resourcesused: writeResourcesInfo(s.resourcesUsed),
    executors: s.executors.map(writeExecutorRunner),
    finishedexecutors: s.finishedExecutors.map(writeExecutorRunner),
  };
}

function aliveWorkers(state: MasterState): WorkerRecord[] {
  return state.workers.filter((w) => w.state === 'ALIVE');
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** MASTER_STATE_FIELDS: the keys of writeMasterState, in Spark's order. */
export const MASTER_STATE_FIELDS = [
  'url',
  'workers',
  'aliveworkers',
  'cores',
  'coresused',
  'memory',
  'memoryused',
  'resources',
  'resourcesused',
  'activeapps',
  'completedapps',
  'activedrivers',
  'completeddrivers',
  'status',
] as const;
export type MasterStateField = (typeof MASTER_STATE_FIELDS)[number];

function masterField(state: MasterState, field: MasterStateField, now: number, alive: WorkerRecord[]): JsonValue {
  switch (field) {
    case 'url':
      return state.url;
    case 'workers':
      return state.workers.map(writeWorkerInfo);
    case 'aliveworkers':
      return alive.length;
    case 'cores':
      return sum(alive.map((w) => w.cores));
    case 'coresused':
      return sum(alive.map((w) => w.coresUsed));
    case 'memory':
      return sum(alive.map((w) => w.memoryMB));
    case 'memoryused':
      return sum(alive.map((w) => w.memoryUsed));
    case 'resources':
      return alive.map((w) => writeResourcesInfo(w.resources));
    case 'resourcesused':
      return alive.map((w) => writeResourcesInfo(resourcesUsed(w.resources, w.resourcesFree)));
    case 'activeapps':
      return state.activeApps.map((a) => writeApplicationInfo(a, now));
    case 'completedapps':
      return state.completedApps.map((a) => writeApplicationInfo(a, now));
    case 'activedrivers':
      return state.activeDrivers.map(writeDriverInfo);
    case 'completeddrivers':
      return state.completedDrivers.map(writeDriverInfo);
    case 'status':
      return state.status;
  }
}

/**
 * writeMasterState: Spark's MasterStateResponse JSON; with `field`, only that
 * field, and `{field: ""}` for a field Spark does not know.
 */
export function writeMasterState(state: MasterState, now: number, field?: string): JsonObject {
  const alive = aliveWorkers(state);
  if (field === undefined) {
    const out: JsonObject = {};
    for (const f of MASTER_STATE_FIELDS) out[f] = masterField(state, f, now, alive);
    return out;
  }
  if ((MASTER_STATE_FIELDS as readonly string[]).includes(field)) {
    return { [field]: masterField(state, field as MasterStateField, now, alive) };
  }
  return { [field]: '' };
}

/** writeClusterUtilization: Spark's `/json/clusterutilization` (integer percentages, 100 when a total is 0). */
export function writeClusterUtilization(state: MasterState): JsonObject {
  const alive = aliveWorkers(state);
  const cores = sum(alive.map((w) => w.cores));
  const coresUsed = sum(alive.map((w) => w.coresUsed));
  const memory = sum(alive.map((w) => w.memoryMB));
  const memoryUsed = sum(alive.map((w) => w.memoryUsed));
  return {
    waitingDrivers: state.activeDrivers.filter((d) => d.state === 'SUBMITTED').length,
    cores,
    coresused: coresUsed,
    coresutilization: cores === 0 ? 100 : Math.trunc((100 * coresUsed) / cores),
    memory,
    memoryused: memoryUsed,
    memoryutilization: memory === 0 ? 100 : Math.trunc((100 * memoryUsed) / memory),
  };
}

/** JSON_FIELD_PATTERN: MasterPage's `/json/([a-zA-Z]+).*`, applied to the request path. */
const JSON_FIELD_PATTERN = /\/json\/([a-zA-Z]+)/;

/** renderMasterJson: MasterPage.renderJson for a request path (`/json`, `/json/`, `/json/<field>`). */
export function renderMasterJson(state: MasterState, path: string, now: number): JsonObject {
  const match = JSON_FIELD_PATTERN.exec(path);
  if (!match) return writeMasterState(state, now);
  if (match[1] === 'clusterutilization') return writeClusterUtilization(state);
  return writeMasterState(state, now, match[1]);
}

/** executorRunnerFrom: the worker-JSON view of a master-side executor record. */
export function executorRunnerFrom(appId: string, e: ExecutorRecord, appDesc?: AppDescriptionView): ExecutorRunnerView {
  return { execId: e.id, appId, memoryMB: e.memoryMB, resources: e.resources, appDesc };
}
