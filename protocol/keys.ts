/**
 * Redis key names and queue names of one Flint cluster: the only place they are spelled.
 *
 * Every key of a cluster shares the hash tag `{<cluster>}` so that Lua commit
 * scripts (which touch workers, apps and streams together) are valid on Redis
 * Cluster: one Flint cluster lives in one hash slot. Tests isolate themselves by
 * using a unique cluster name; `clusterKeyPattern` finds every key of one cluster.
 */

export const DEFAULT_CLUSTER = 'default';

const CLUSTER_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function assertClusterName(name: string): string {
  if (!CLUSTER_NAME.test(name)) {
    throw new Error(`invalid cluster name '${name}': use 1-64 letters, digits, '-' or '_'`);
  }
  return name;
}

export type Keys = ReturnType<typeof clusterKeys>;

/** clusterKeys: every Redis key and queue name of the cluster `cluster`. */
export function clusterKeys(cluster: string = DEFAULT_CLUSTER) {
  assertClusterName(cluster);
  const ns = `flint{${cluster}}`;
  return {
    cluster,
    /** BullMQ prefix: queues live under the same hash tag as the state. */
    bullPrefix: ns,
    /** The master's inbound BullMQ queue (job name = message type). */
    masterQueue: 'master',

    // ---- sequences (ids come from Redis, never from memory)
    appSeq: `${ns}:seq:app`,
    driverSeq: `${ns}:seq:driver`,
    epochSeq: `${ns}:seq:epoch`,

    // ---- workers
    /** hash: id, host, port, cores, memoryMB, coresUsed, memoryUsed, state, epoch, webUiUrl, resources(JSON), resourcesUsed(JSON), labels(JSON), registeredAt, lastHeartbeat */
    worker: (workerId: string) => `${ns}:worker:${workerId}`,
    /** set of fullIds `appId/execId` placed on the worker */
    workerExecutors: (workerId: string) => `${ns}:worker:${workerId}:executors`,
    /** set of driver ids placed on the worker */
    workerDrivers: (workerId: string) => `${ns}:worker:${workerId}:drivers`,
    /** stream: the worker's inbox (LaunchExecutor, KillExecutor, ...), fields `type`, `body`, `epoch` */
    workerInbox: (workerId: string) => `${ns}:worker:${workerId}:inbox`,
    /** set of every known worker id, DEAD ones included until culled */
    workersAll: `${ns}:workers`,
    /** hash `host:port` → worker id of the live registration at that address */
    workersByAddress: `${ns}:workers:by-address`,
    /** zset worker id → last heartbeat (ms); only ALIVE/DECOMMISSIONED workers */
    heartbeats: `${ns}:workers:heartbeats`,
    /** zset worker id → last heartbeat (ms) of DEAD workers, culled after (persistence + 1) × timeout */
    deadWorkers: `${ns}:workers:dead`,
    /**
     * hash worker id → JSON {c: coresFree, t: coresTotal, m: memoryFree, e: epoch, r: {name: freeCount}, h: host, p: port}
     * of ALIVE workers only: the compact snapshot a scheduling pass reads in one HGETALL.
     */
    schedulable: `${ns}:workers:schedulable`,

    // ---- applications
    /** hash: id, clientId, desc(JSON), state, coresGranted, requestedCores, executorLimit, retryCount, nextExecutorId, startTime, endTime, submitDate, seq, priority; driverId (cluster mode); heartbeat (JSON {url, intervalMs, maxFailures}), hbTimeoutMs, hbCheckMs (executor heartbeats on); endReason */
    app: (appId: string) => `${ns}:app:${appId}`,
    /** hash execId → JSON {id, workerId, cores, memoryMB, resources, state, exitStatus?, message?} */
    appExecutors: (appId: string) => `${ns}:app:${appId}:executors`,
    /** list of the app's finished executor ids, oldest first, trimmed per spark.ui.retainedDeadExecutors (their records leave appExecutors with them) */
    appFinishedExecutors: (appId: string) => `${ns}:app:${appId}:executors:finished`,
    /** stream of the app's events (ExecutorAdded, ExecutorUpdated, WorkerRemoved, ApplicationRemoved): about 1,000 entries while it runs, 100 once it ended */
    appEvents: (appId: string) => `${ns}:app:${appId}:events`,
    /** zset of active (not finished) app ids, score = scheduling order (priority, then registration seq) */
    appsWaiting: `${ns}:apps:waiting`,
    /** list of completed app ids, oldest first, trimmed per spark.deploy.retainedApplications */
    appsCompleted: `${ns}:apps:completed`,
    /** hash clientId → appId: a repeated RegisterApplication from one client is idempotent */
    appsByClient: `${ns}:apps:by-client`,
    /**
     * zset of active app ids → when the app's client last renewed its lease (ms, Redis's
     * clock); the master finishes an app whose lease lapsed for spark.flint.app.timeout
     */
    appLeases: `${ns}:apps:leases`,
    /** ms timestamp of the last lease check (failover grace, as reaperLastRun) */
    appLeaseCheckLastRun: `${ns}:apps:leases:last-run`,
    /**
     * hash of an app's secrets: key (hex; the app token and the executors' heartbeat tokens
     * derive from it), registrar (SHA-256 of the registering credential). Under `secret:` so
     * that read-only roles can be kept away from every secret by one key pattern.
     */
    appSecret: (appId: string) => `${ns}:secret:app:${appId}`,
    /** zset execId → last heartbeat (ms, Redis's clock) of the app's RUNNING executors (heartbeats on) */
    appExecutorBeats: (appId: string) => `${ns}:app:${appId}:executor-beats`,
    /** hash execId → ms the app's heartbeat receiver claimed the executor's expiry (one expiry, however many receivers) */
    appExecutorExpiries: (appId: string) => `${ns}:app:${appId}:executor-expiries`,
    /** hash execId → JSON {at, metrics} of the executor's latest heartbeat that carried metrics */
    appExecutorMetrics: (appId: string) => `${ns}:app:${appId}:executor-metrics`,
    /** zset of app ids with executor heartbeats on → when its receiver check is next due (ms, Redis's clock) */
    executorBeatChecks: `${ns}:apps:executor-beat-checks`,

    // ---- drivers
    /** hash: id, desc(JSON), state, workerId, exception, startTime, submitDate, seq, resources(JSON), relaunchedAs */
    driver: (driverId: string) => `${ns}:driver:${driverId}`,
    /** zset of waiting driver ids, score = submission seq (FIFO) */
    driversWaiting: `${ns}:drivers:waiting`,
    /** set of active driver ids (waiting + running) */
    driversActive: `${ns}:drivers:active`,
    /** list of completed driver ids, oldest first */
    driversCompleted: `${ns}:drivers:completed`,
    /** set of the app ids a (cluster-mode) driver registered: they end when it ends */
    driverApps: (driverId: string) => `${ns}:driver:${driverId}:apps`,

    /** string, expiring: the result of a non-idempotent request (e.g. RequestSubmitDriver) by its job id */
    requestResult: (requestId: string) => `${ns}:request:${requestId}`,

    // ---- coordination
    /** counter bumped by every commit that may let the scheduler do more */
    scheduleDirty: `${ns}:schedule:dirty`,
    /** the dirty generation the last finished pass saw */
    scheduleDone: `${ns}:schedule:done`,
    /** short lease held by the process running a pass (an optimisation; commits are safe without it) */
    scheduleLease: `${ns}:schedule:lease`,
    /** short lease held by the process running the worker-timeout check */
    reaperLease: `${ns}:reaper:lease`,
    /** ms timestamp of the last completed reaper run (failover grace, see docs/consistency.md) */
    reaperLastRun: `${ns}:reaper:last-run`,

    // ---- observability
    /** stream of every state change in the cluster (UI live updates, audit) */
    clusterEvents: `${ns}:events`,
    /** stream of rejected messages: type, reason, raw body, source */
    deadLetters: `${ns}:dead-letters`,
    /** hash of counters (deadLetters, placements, ...) */
    stats: `${ns}:stats`,
    /** hash of master processes: id → JSON {pid, host, startedAt, lastSeen} */
    masters: `${ns}:masters`,
  };
}

/** clusterKeyPattern: a SCAN MATCH pattern for every key of the cluster (state and queues). */
export function clusterKeyPattern(cluster: string): string {
  assertClusterName(cluster);
  // '{' and '}' are not glob metacharacters; '_' and '-' are literal too.
  return `flint{${cluster}}*`;
}

/** fullExecutorId: Spark's `appId/execId`. */
export function fullExecutorId(appId: string, execId: number): string {
  return `${appId}/${execId}`;
}
