/**
 * Every deploy message of Flint, grouped by direction as Spark's DeployMessage.scala
 * groups them. Commands are imperative (LaunchExecutor), facts past tense
 * (ExecutorStateChanged). Each message has one zod schema; `parseMessage` is the
 * single place where bytes from Redis or HTTP become typed messages, and it
 * returns a clear reason instead of throwing.
 *
 * Transport (see docs/architecture.md):
 *  - inbound to the master: BullMQ queue `master` (job name = message type);
 *    asks (RegisterWorker, RequestSubmitDriver, ...) get their reply as the job's return value;
 *  - Heartbeat: a direct Redis call (functions/store), never a queue job;
 *  - master → worker: the worker's inbox stream, written inside the commit script;
 *  - master → application: the application's event stream, written inside the commit script.
 */
import { z } from 'zod';
import { EXECUTOR_STATES, DRIVER_STATES, APPLICATION_STATES, WORKER_STATES } from './states.ts';
import {
  groupDigits,
  MAX_ARG_BYTES,
  MAX_COMMAND_ARGS,
  MAX_ENV_NAME_LENGTH,
  MAX_ENV_VALUE_BYTES,
  MAX_ENV_VARS,
  MAX_LABEL_KEY_LENGTH,
  MAX_LABEL_VALUE_LENGTH,
  MAX_LABELS,
  MAX_PROPERTIES,
  MAX_PROPERTY_KEY_LENGTH,
  MAX_PROPERTY_VALUE_BYTES,
  MAX_RESOURCE_AMOUNT,
  MAX_RESOURCE_NAME_LENGTH,
  MAX_RESOURCES,
  MAX_SHORT_TEXT,
  MAX_URL_LENGTH,
  oversizedDescription,
  utf8Bytes,
} from './limits.ts';

// ---------------------------------------------------------------- building blocks

const id = z.string().min(1).max(256).regex(/^[A-Za-z0-9._:@/-]+$/, 'must contain only letters, digits and . _ : @ / -');

/**
 * PATH_SAFE_ID: an id that becomes a directory name on a worker (`<work-dir>/<appId>/<execId>`,
 * `<work-dir>/<driverId>`, the runtimes' `<cluster>/<workerId>`): it starts with a letter or
 * digit and holds no `/` and no `..`, so it can never leave the worker's work dir, name a
 * hidden file (the agent's own start with a dot), or be `.` or `..`.
 */
export const PATH_SAFE_ID = /^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._:@-]{0,255}$/;
export const PATH_SAFE_ID_RULE = 'must start with a letter or digit and contain only letters, digits and . _ : @ - (no "/", no "..")';

/** pathSafeIdProblem: why an id cannot be a directory name on a worker, or undefined. */
export function pathSafeIdProblem(value: string): string | undefined {
  return PATH_SAFE_ID.test(value) ? undefined : PATH_SAFE_ID_RULE;
}

const pathId = z.string().regex(PATH_SAFE_ID, PATH_SAFE_ID_RULE);
const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();
const stringMap = z.record(z.string(), z.string());
/** a Redis stream entry id, `<ms>-<seq>` */
const streamId = z.string().regex(/^\d{1,20}-\d{1,20}$/, 'must be a stream id <ms>-<seq>');

/** MAX_APP_CONF_ENTRIES / MAX_APP_CONF_VALUE: bounds of an application's `conf` (its SparkConf). */
export const MAX_APP_CONF_ENTRIES = 256;
export const MAX_APP_CONF_VALUE = 4096;

/**
 * AppConf: an application's Spark properties (its SparkConf), as strings. Keys are
 * property names; the ones Flint reads (protocol/config.ts APP_CONF_KEYS) are
 * checked by `parseAppConf`, the rest travel with the application unread.
 */
export const AppConf = z
  .record(
    z.string().min(1).max(256).regex(/^[A-Za-z0-9._-]+$/, 'a property name must contain only letters, digits and . _ -'),
    z.string().max(MAX_APP_CONF_VALUE),
  )
  .refine((conf) => Object.keys(conf).length <= MAX_APP_CONF_ENTRIES, { message: `at most ${MAX_APP_CONF_ENTRIES} properties` });

/** text: a string of at most `maxBytes` UTF-8 bytes, without NUL (no process or container can take one). */
function text(maxBytes: number) {
  return z
    .string()
    .refine((value) => !value.includes('\0'), 'must not contain NUL')
    .refine((value) => utf8Bytes(value) <= maxBytes, `must be at most ${groupDigits(maxBytes)} bytes`);
}

/** boundedMap: a string → string record with at most `entries` entries, keys and values checked. */
function boundedMap(entries: number, key: z.ZodType<string>, value: z.ZodType<string>, what: string) {
  return z.record(key, value).refine((map) => Object.keys(map).length <= entries, `at most ${entries} ${what}`);
}

/** Env: a task's environment variables (names without '=' or NUL). */
const Env = boundedMap(
  MAX_ENV_VARS,
  z.string().min(1, 'a variable name must not be empty').max(MAX_ENV_NAME_LENGTH).regex(/^[^=\0]+$/, "a variable name must not contain '=' or NUL"),
  text(MAX_ENV_VALUE_BYTES),
  'variables',
);

/** Labels: container labels of the submitter (Flint's identity labels are set after them, so they cannot be overridden). */
const Labels = boundedMap(
  MAX_LABELS,
  z
    .string()
    .min(1)
    .max(MAX_LABEL_KEY_LENGTH)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, 'a label key is letters, digits and . _ / - (starting with a letter or digit)'),
  text(MAX_LABEL_VALUE_LENGTH),
  'labels',
);

const Command = z.array(text(MAX_ARG_BYTES)).max(MAX_COMMAND_ARGS);

export const ResourceRequirement = z.object({
  name: z.string().min(1).max(MAX_RESOURCE_NAME_LENGTH).regex(/^[A-Za-z0-9._-]+$/, 'a resource name is letters, digits and . _ -'),
  amount: posInt.max(MAX_RESOURCE_AMOUNT),
});
export type ResourceRequirement = z.infer<typeof ResourceRequirement>;

/** Resources: name → assigned or owned addresses (Spark's ResourceInformation). */
export const Resources = z.record(z.string(), z.array(z.string()));
export type Resources = z.infer<typeof Resources>;

/** withinDescriptionLimit refuses a description over MAX_DESCRIPTION_BYTES, naming the field that takes the most. */
function withinDescriptionLimit(description: Record<string, unknown>, ctx: z.RefinementCtx): void {
  const over = oversizedDescription(description);
  if (over) ctx.addIssue({ code: 'custom', path: [over.field], message: over.message });
}

/** ApplicationDescriptionFields: the fields of an ApplicationDescription, each bounded (protocol/limits.ts). */
export const ApplicationDescriptionFields = z.object({
  name: z.string().min(1).max(512),
  image: z.string().min(1).max(512),
  command: Command.default([]),
  env: Env.default({}),
  /** spark.cores.max; unset means spark.deploy.defaultCores. */
  maxCores: posInt.optional(),
  /** spark.executor.cores; unset means one executor per worker per pass taking every granted core. */
  coresPerExecutor: posInt.optional(),
  /** spark.executor.memory in MB. */
  memoryPerExecutorMB: posInt.default(1024),
  resourcesPerExecutor: z.array(ResourceRequirement).max(MAX_RESOURCES).default([]),
  /** initial executor limit (dynamic allocation); unset means unlimited. */
  initialExecutorLimit: nonNegInt.optional(),
  user: text(MAX_SHORT_TEXT).default('<unknown>'),
  appUiUrl: text(MAX_URL_LENGTH).default(''),
  /** Priority queue on top of Spark's FIFO: higher first, FIFO within a priority. */
  priority: z.number().int().min(-1000).max(1000).default(0),
  labels: Labels.default({}),
  /** conf: the application's Spark properties (spark.executor.heartbeatInterval, spark.flint.executor.heartbeat.enabled, ...). */
  conf: AppConf.optional(),
});

/** ApplicationDescription: Spark's, with a container image and argv instead of a JVM Command; at most MAX_DESCRIPTION_BYTES. */
export const ApplicationDescription = ApplicationDescriptionFields.superRefine(withinDescriptionLimit);
export type ApplicationDescription = z.infer<typeof ApplicationDescription>;

/** boundedDescription: `schema` (an object of description fields, possibly extended) with the total-size limit. */
export function boundedDescription<S extends z.ZodObject>(schema: S) {
  return schema.superRefine((value, ctx) => withinDescriptionLimit(value as Record<string, unknown>, ctx));
}

export const DriverDescription = z
  .object({
    name: z.string().min(1).max(512),
    /** appResource as given by the submitter (e.g. docker://image or a path). */
    appResource: text(MAX_URL_LENGTH).default(''),
    mainClass: text(MAX_SHORT_TEXT).default(''),
    image: z.string().min(1).max(512),
    command: Command.default([]),
    env: Env.default({}),
    memoryMB: posInt.default(1024),
    cores: posInt.default(1),
    supervise: z.boolean().default(false),
    resourceReqs: z.array(ResourceRequirement).max(MAX_RESOURCES).default([]),
    sparkProperties: boundedMap(MAX_PROPERTIES, z.string().min(1).max(MAX_PROPERTY_KEY_LENGTH), text(MAX_PROPERTY_VALUE_BYTES), 'properties').default({}),
  })
  .superRefine(withinDescriptionLimit);
export type DriverDescription = z.infer<typeof DriverDescription>;

export const ExecutorDescription = z.object({
  appId: id,
  execId: nonNegInt,
  cores: posInt,
  memoryMB: posInt,
  state: z.enum(EXECUTOR_STATES),
});
export type ExecutorDescription = z.infer<typeof ExecutorDescription>;

// ---------------------------------------------------------------- Worker → Master

export const RegisterWorker = z.object({
  id,
  host: z.string().min(1),
  port: posInt.max(65535),
  cores: posInt,
  memoryMB: posInt,
  webUiUrl: z.string().default(''),
  resources: Resources.default({}),
  labels: stringMap.default({}),
  /** What the agent already runs (re-registration after restart or ReconnectWorker). */
  executors: z.array(ExecutorDescription).default([]),
  driverIds: z.array(id).default([]),
  /**
   * The agent instance: a random token kept in the agent's work dir, so the same agent
   * restarted on its work dir is recognised, and another agent claiming a live worker id
   * is refused ("Duplicate worker ID", as Spark refuses it).
   */
  instance: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'must be 8-64 letters, digits, _ or -').optional(),
});

export const Heartbeat = z.object({ workerId: id, epoch: posInt });

export const ExecutorStateChanged = z.object({
  appId: id,
  execId: nonNegInt,
  state: z.enum(EXECUTOR_STATES),
  message: z.string().max(4096).optional(),
  exitStatus: z.number().int().optional(),
  /** Set when the container was killed by the kernel's OOM killer (from Docker's State.OOMKilled). */
  oomKilled: z.boolean().optional(),
  workerId: id,
  epoch: posInt,
});

export const DriverStateChanged = z.object({
  driverId: id,
  state: z.enum(DRIVER_STATES),
  exception: z.string().max(8192).optional(),
  exitStatus: z.number().int().optional(),
  workerId: id,
  epoch: posInt,
});

export const WorkerLatestState = z.object({
  id,
  epoch: posInt,
  /** every executor the agent holds: running, launching, or ended with its final report not yet delivered */
  executors: z.array(ExecutorDescription),
  driverIds: z.array(id),
  /**
   * The last inbox entry the agent had taken in (admitted, in stream order) when it built
   * this report. The master ends (LOST) a task it holds on this worker only when the task's
   * launch entry is at or before this id and the agent does not list it: a launch still on
   * its way to the agent is never mistaken for a phantom.
   */
  inboxSeenThrough: streamId.optional(),
});

export const WorkerSchedulerStateResponse = z.object({
  id,
  epoch: posInt,
  executors: z.array(ExecutorDescription),
  driverIds: z.array(id),
});

export const WorkerDecommissioning = z.object({ id });

// ---------------------------------------------------------------- Master → Worker (worker inbox)

export const RegisteredWorker = z.object({
  masterUrl: z.string(),
  masterWebUiUrl: z.string(),
  duplicate: z.boolean(),
  epoch: posInt,
});
export const RegisterWorkerFailed = z.object({ message: z.string() });
/** RegisterWorkerReply: the reply to the RegisterWorker ask, as the master's handler returns it. */
export const RegisterWorkerReply = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('RegisteredWorker'),
    epoch: posInt,
    duplicate: z.boolean(),
    masterUrl: z.string().optional(),
    masterWebUiUrl: z.string().optional(),
  }),
  RegisterWorkerFailed.extend({ type: z.literal('RegisterWorkerFailed') }),
]);
export type RegisterWorkerReply = z.infer<typeof RegisterWorkerReply>;
export const MasterInStandby = z.object({});
export const ReconnectWorker = z.object({ masterUrl: z.string() });

/**
 * ExecutorHeartbeat: where and how an executor of an application with
 * `spark.flint.executor.heartbeat.enabled` sends its heartbeats: the app API's base
 * URL, a token valid for this executor of this application only (computed by the
 * master's commit; the agent never holds an application key), Spark's
 * spark.executor.heartbeatInterval and spark.executor.heartbeat.maxFailures.
 */
export const ExecutorHeartbeat = z.object({
  url: z.string().min(1).max(2048),
  token: z.string().min(1).max(256),
  intervalMs: posInt,
  maxFailures: posInt,
});
export type ExecutorHeartbeat = z.infer<typeof ExecutorHeartbeat>;

export const LaunchExecutor = z.object({
  masterUrl: z.string(),
  appId: pathId,
  execId: nonNegInt,
  rpId: nonNegInt.default(0),
  appDesc: ApplicationDescription,
  cores: posInt,
  memoryMB: posInt,
  resources: Resources.default({}),
  epoch: posInt,
  heartbeat: ExecutorHeartbeat.optional(),
});
export const KillExecutor = z.object({ masterUrl: z.string(), appId: id, execId: nonNegInt, epoch: posInt });
export const LaunchDriver = z.object({
  driverId: pathId,
  driverDesc: DriverDescription,
  resources: Resources.default({}),
  epoch: posInt,
});
export const KillDriver = z.object({ driverId: id, epoch: posInt });
export const ApplicationFinished = z.object({ id });
export const DecommissionWorker = z.object({ epoch: posInt });

// ---------------------------------------------------------------- AppClient ↔ Master

export const RegisterApplication = z.object({
  appDescription: ApplicationDescription,
  /** Spark dedups registrations by the driver's RPC address; Flint by this client-chosen id. */
  clientId: id,
  /**
   * registrar: SHA-256 (hex) of the credential the registration came with (the app API's
   * caller), unset for none. A repeated registration with the same clientId gets the app's
   * token only from the same credential (docs/security.md).
   */
  registrar: z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 in hex').optional(),
});
/** RegisteredApplication: the reply; `leaseTimeoutMs` is spark.flint.app.timeout (renew the lease well within it). */
export const RegisteredApplication = z.object({ appId: id, masterUrl: z.string(), leaseTimeoutMs: posInt.optional() });
export const UnregisterApplication = z.object({ appId: id });
export const RequestExecutors = z.object({ appId: id, requestedTotal: nonNegInt });
/**
 * KillExecutors: Spark's. `message`, when set, is why the application's heartbeat
 * receiver gives the executors up ("Executor heartbeat timed out after N ms"): the
 * master then reports each killed executor to the app as ExecutorLost with it.
 */
export const KillExecutors = z.object({ appId: id, executorIds: z.array(z.string()), message: z.string().min(1).max(1024).optional() });
/** KillApplication: the master UI's "kill" (removeApplication(app, KILLED)). */
export const KillApplication = z.object({ appId: id });

export const ExecutorAdded = z.object({
  id: nonNegInt,
  workerId: id,
  hostPort: z.string(),
  cores: posInt,
  memoryMB: posInt,
});
export const ExecutorUpdated = z.object({
  id: nonNegInt,
  state: z.enum(EXECUTOR_STATES),
  message: z.string().optional(),
  exitStatus: z.number().int().optional(),
  oomKilled: z.boolean().optional(),
  workerHost: z.string().optional(),
});
/** ExecutorLost: the app's heartbeat receiver expired the executor (Spark's executorLost); the master killed it. */
export const ExecutorLost = z.object({ id: nonNegInt, message: z.string(), workerHost: z.string().optional() });
export const WorkerRemoved = z.object({ id, host: z.string(), message: z.string() });
export const ApplicationRemoved = z.object({ message: z.string() });

// ---------------------------------------------------------------- Driver client ↔ Master

export const RequestSubmitDriver = z.object({ driverDescription: DriverDescription });
export const SubmitDriverResponse = z.object({ success: z.boolean(), driverId: id.optional(), message: z.string() });
export const RequestKillDriver = z.object({ driverId: id });
export const KillDriverResponse = z.object({ driverId: id, success: z.boolean(), message: z.string() });
export const RequestKillAllDrivers = z.object({});
export const KillAllDriversResponse = z.object({ success: z.boolean(), message: z.string() });
export const RequestDriverStatus = z.object({ driverId: id });
export const DriverStatusResponse = z.object({
  found: z.boolean(),
  state: z.enum(DRIVER_STATES).optional(),
  workerId: z.string().optional(),
  workerHostPort: z.string().optional(),
  exception: z.string().optional(),
});
export const RequestClearCompletedDriversAndApps = z.object({});

// ---------------------------------------------------------------- Master web UI → Master

/** MAX_DECOMMISSION_HOSTS: hosts per DecommissionWorkersOnHosts (a request bigger than any real fleet is a mistake). */
export const MAX_DECOMMISSION_HOSTS = 1000;

/**
 * DecommissionWorkersOnHosts: the UI's `POST /workers/kill/?host=..` (an ask). The
 * master decommissions every worker on these hosts (names without ports, matched
 * case-insensitively) and replies how many it matched.
 */
export const DecommissionWorkersOnHosts = z.object({
  hostnames: z
    .array(z.string().min(1, 'a hostname must not be empty').max(253).regex(/^\S+$/, 'a hostname must not contain whitespace'))
    .min(1, 'name at least one host')
    .max(MAX_DECOMMISSION_HOSTS),
});

// ---------------------------------------------------------------- registry

/** Messages the master's handlers consume from its inbound queue. */
export const MasterInbound = {
  RegisterWorker,
  ExecutorStateChanged,
  DriverStateChanged,
  WorkerLatestState,
  WorkerSchedulerStateResponse,
  WorkerDecommissioning,
  RegisterApplication,
  UnregisterApplication,
  RequestExecutors,
  KillExecutors,
  KillApplication,
  RequestSubmitDriver,
  RequestKillDriver,
  RequestKillAllDrivers,
  RequestDriverStatus,
  RequestClearCompletedDriversAndApps,
  DecommissionWorkersOnHosts,
} as const;
export type MasterInboundType = keyof typeof MasterInbound;
export type MasterInboundMessage<T extends MasterInboundType> = z.infer<(typeof MasterInbound)[T]>;

/** Messages written to a worker's inbox stream. */
export const WorkerInbound = {
  LaunchExecutor,
  KillExecutor,
  LaunchDriver,
  KillDriver,
  ApplicationFinished,
  ReconnectWorker,
  DecommissionWorker,
} as const;
export type WorkerInboundType = keyof typeof WorkerInbound;
export type WorkerInboundMessage<T extends WorkerInboundType> = z.infer<(typeof WorkerInbound)[T]>;

/** Events written to an application's stream. */
export const AppEvents = {
  RegisteredApplication,
  ExecutorAdded,
  ExecutorUpdated,
  ExecutorLost,
  WorkerRemoved,
  ApplicationRemoved,
} as const;
export type AppEventType = keyof typeof AppEvents;
export type AppEvent<T extends AppEventType = AppEventType> = { type: T } & z.infer<(typeof AppEvents)[T]>;

export type Infer<S extends z.ZodType> = z.infer<S>;
export type RegisterWorker = z.infer<typeof RegisterWorker>;
export type RegisteredWorker = z.infer<typeof RegisteredWorker>;
export type ExecutorStateChanged = z.infer<typeof ExecutorStateChanged>;
export type DriverStateChanged = z.infer<typeof DriverStateChanged>;
export type LaunchExecutor = z.infer<typeof LaunchExecutor>;
export type LaunchDriver = z.infer<typeof LaunchDriver>;
export type SubmitDriverResponse = z.infer<typeof SubmitDriverResponse>;
export type KillDriverResponse = z.infer<typeof KillDriverResponse>;
export type KillAllDriversResponse = z.infer<typeof KillAllDriversResponse>;
export type DriverStatusResponse = z.infer<typeof DriverStatusResponse>;

export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/** formatIssues renders zod's issues as one line: `field.path: problem; ...`. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      // a record key that failed its schema: say why, not only "Invalid key in record"
      const inner = issue.code === 'invalid_key' ? issue.issues.map((i) => i.message).join(', ') : undefined;
      return `${issue.path.length ? issue.path.join('.') : '(message)'}: ${inner || issue.message}`;
    })
    .join('; ');
}

/**
 * parseMessage validates one message against a registry. `raw` may be a string
 * (JSON from a stream field) or an already-decoded value (a BullMQ job's data).
 */
export function parseMessage<R extends Record<string, z.ZodType>, T extends keyof R & string>(
  registry: R,
  type: string,
  raw: unknown,
): ParseResult<{ type: T; body: z.infer<R[T]> }> {
  if (!Object.prototype.hasOwnProperty.call(registry, type)) {
    return { ok: false, reason: `unknown message type '${type}'` };
  }
  let data = raw;
  if (typeof raw === 'string') {
    try {
      data = JSON.parse(raw);
    } catch (error) {
      return { ok: false, reason: `${type}: body is not valid JSON (${(error as Error).message})` };
    }
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    return { ok: false, reason: `${type}: body must be a JSON object` };
  }
  const result = registry[type]!.safeParse(data);
  if (!result.success) return { ok: false, reason: `${type}: ${formatIssues(result.error)}` };
  return { ok: true, value: { type: type as T, body: result.data as z.infer<R[T]> } };
}

/**
 * parseReply reads the reply to an ask (the job's return value: an object, or its JSON
 * text) with the reply's schema; anything else is an Error naming the ask and the problem.
 */
export function parseReply<S extends z.ZodType>(schema: S, ask: string, reply: unknown): z.infer<S> {
  let data = reply;
  if (typeof reply === 'string') {
    try {
      data = JSON.parse(reply);
    } catch {
      throw new Error(`unreadable reply to ${ask}: ${reply.slice(0, 200)}`);
    }
  }
  const result = schema.safeParse(data);
  if (!result.success) throw new Error(`unexpected reply to ${ask}: ${formatIssues(result.error)} (${JSON.stringify(reply)?.slice(0, 200)})`);
  return result.data;
}

export { z };
export const WORKER_STATE_VALUES = WORKER_STATES;
export const APPLICATION_STATE_VALUES = APPLICATION_STATES;
