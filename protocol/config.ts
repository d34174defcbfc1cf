/**
 * Configuration: Spark's keys and defaults, plus Flint's own `spark.flint.*` keys.
 *
 * Sources, later wins: defaults < properties file (`key value` or `key=value`
 * lines, Spark's spark-defaults.conf format: --properties-file, else
 * $FLINT_CONF_DIR/spark-defaults.conf) < Spark's daemon variables (SPARK_MASTER_HOST,
 * SPARK_WORKER_CORES, ...: DAEMON_ENV) < environment (`FLINT_` + the key
 * upper-cased with dots as underscores, e.g. FLINT_SPARK_WORKER_TIMEOUT=30s)
 * < explicit overrides (`--conf k=v` flags, and the commands' own flags). Every value is parsed and checked
 * once, here; an invalid value is a start-up error naming the key, the value and
 * the source. Durations accept `ms` strings ("60s", "1m", "500ms") and Spark's
 * plain-number form in the key's own unit (`spark.worker.timeout=60` is seconds).
 *
 * docs/configuration.md is the reference; test/unit/config.test.ts checks that it
 * lists every key below.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ms from 'ms';

export type ConfigSource = 'default' | 'file' | 'env' | 'flag';

type Kind =
  | { kind: 'duration'; plainUnit: 's' | 'ms'; min?: number }
  | { kind: 'int'; min?: number; max?: number }
  | { kind: 'number'; min?: number; max?: number }
  | { kind: 'bool' }
  | { kind: 'string'; pattern?: RegExp; patternHint?: string }
  | { kind: 'enum'; values: readonly string[]; upperCase?: boolean }
  | { kind: 'memory' }
  | { kind: 'bytes'; min?: number };

interface KeySpec {
  key: string;
  spec: Kind;
  /** default as Spark writes it; undefined means unset */
  default: string | undefined;
  doc: string;
  aliases?: string[];
}

const INT_MAX = 2147483647;

/**
 * ID_PATTERN: spark.deploy.appIdPattern / driverIdPattern. The ids they make become
 * directory names on workers, so (as protocol/messages.ts PATH_SAFE_ID) no `/`, no `..`,
 * and a letter, digit or the timestamp first.
 */
const ID_PATTERN = /^(?!.*\.\.)(?:[A-Za-z0-9][A-Za-z0-9._:@-]*)?%s[A-Za-z0-9._:@-]*%0?\d*d[A-Za-z0-9._:@-]*$/;
const ID_PATTERN_HINT = 'a pattern with %s (timestamp) then %d/%04d (number), otherwise only letters, digits and . _ : @ - (no "/", no "..", starting with a letter, a digit or %s)';

/**
 * DEFAULT_REDIS_URL: the Redis every command but `flint up` uses when
 * spark.flint.redis.url is unset. Kept here rather than in lib/redis.ts (which
 * re-exports it) so command definitions can show it in --help without loading ioredis.
 */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export const CONFIG_KEYS: readonly KeySpec[] = [
  // ---- master / deploy (Spark)
  { key: 'spark.worker.timeout', spec: { kind: 'duration', plainUnit: 's', min: 1 }, default: '60s', doc: 'A worker silent for this long is declared DEAD and its executors LOST. Heartbeats are sent every timeout/4.' },
  { key: 'spark.dead.worker.persistence', spec: { kind: 'int', min: 0 }, default: '15', doc: 'A DEAD worker stays visible for (persistence + 1) × timeout, then is forgotten.' },
  { key: 'spark.deploy.retainedApplications', spec: { kind: 'int', min: 1 }, default: '200', doc: 'Completed applications kept; trimmed by max(n/10, 1) oldest at a time.' },
  { key: 'spark.ui.retainedDeadExecutors', spec: { kind: 'int', min: 1 }, default: '100', doc: 'Finished executors the master keeps per application (for its UI, /json and late reports); older ones are trimmed like applications, max(n/10, 1) at a time, so an application that launches executors without end holds bounded memory.' },
  { key: 'spark.deploy.retainedDrivers', spec: { kind: 'int', min: 1 }, default: '200', doc: 'Completed drivers kept; trimmed like applications.' },
  { key: 'spark.deploy.maxExecutorRetries', spec: { kind: 'int', min: -1 }, default: '10', doc: 'Back-to-back abnormal executor exits after which an app with no RUNNING executor is removed as FAILED; -1 disables.' },
  { key: 'spark.deploy.spreadOut', spec: { kind: 'bool' }, default: 'true', aliases: ['spark.deploy.spreadOutApps'], doc: 'Spread executors over workers round-robin (true) or fill one worker before the next (false).' },
  { key: 'spark.deploy.spreadOutDrivers', spec: { kind: 'bool' }, default: 'true', doc: 'Place drivers round-robin over shuffled workers (true) or on the first fitting worker by id (false).' },
  { key: 'spark.deploy.workerSelectionPolicy', spec: { kind: 'enum', values: ['CORES_FREE_ASC', 'CORES_FREE_DESC', 'MEMORY_FREE_ASC', 'MEMORY_FREE_DESC', 'WORKER_ID'], upperCase: true }, default: 'CORES_FREE_DESC', doc: 'Order in which usable workers are offered executors.' },
  { key: 'spark.deploy.defaultCores', spec: { kind: 'int', min: 1 }, default: String(INT_MAX), doc: 'Cores granted to an app that does not set spark.cores.max.' },
  { key: 'spark.deploy.maxDrivers', spec: { kind: 'int', min: 1 }, default: String(INT_MAX), doc: 'Most drivers running at once; further drivers wait.' },
  { key: 'spark.deploy.appNumberModulo', spec: { kind: 'int', min: 1000 }, default: undefined, doc: 'If set, the app number in ids wraps at this value (≥ 1000).' },
  { key: 'spark.deploy.appIdPattern', spec: { kind: 'string', pattern: ID_PATTERN, patternHint: ID_PATTERN_HINT }, default: 'app-%s-%04d', doc: 'Application id format: (yyyyMMddHHmmss, number). Ids name directories on workers, so the pattern may not contain `/` or `..` and starts with a letter, a digit or %s.' },
  { key: 'spark.deploy.driverIdPattern', spec: { kind: 'string', pattern: ID_PATTERN, patternHint: ID_PATTERN_HINT }, default: 'driver-%s-%04d', doc: 'Driver id format: (yyyyMMddHHmmss, number). The driver counter never wraps. Same rules as spark.deploy.appIdPattern.' },
  { key: 'spark.master.useAppNameAsAppId.enabled', spec: { kind: 'bool' }, default: 'false', doc: 'Use the lower-cased app name without whitespace as its id.' },
  { key: 'spark.master.host', spec: { kind: 'string' }, default: '127.0.0.1', doc: 'Address a `flint master` binds its web UI to (and its REST server and application API unless their own host is set), and the host of the master URL. A non-loopback address requires spark.flint.auth.secret.' },
  { key: 'spark.master.port', spec: { kind: 'int', min: 1, max: 65535 }, default: '7077', doc: 'Port shown in the master URL (spark://host:port) for tools that expect one.' },
  { key: 'spark.master.ui.port', spec: { kind: 'int', min: 0, max: 65535 }, default: '8080', doc: 'Master web UI port (0 = any free port; the bound URL is logged). The UI binds to spark.master.host.' },
  { key: 'spark.master.ui.title', spec: { kind: 'string' }, default: undefined, doc: 'Master UI title; default "Flint Master at <url>".' },
  { key: 'spark.ui.killEnabled', spec: { kind: 'bool' }, default: 'true', doc: 'Allow killing applications and drivers from the UI.' },
  { key: 'spark.master.rest.enabled', spec: { kind: 'bool' }, default: 'true', doc: 'A `flint master` serves Spark\'s REST submission server (Spark 4.1\'s default; it refuses every submission until spark.flint.auth.secret is set).' },
  { key: 'spark.master.rest.host', spec: { kind: 'string' }, default: undefined, doc: 'REST server bind address; default spark.master.host (as Spark). A non-loopback address requires spark.flint.auth.secret.' },
  { key: 'spark.master.rest.port', spec: { kind: 'int', min: 0, max: 65535 }, default: '6066', doc: 'REST submission server port (0 = any free port; the bound URL is logged).' },
  { key: 'spark.decommission.enabled', spec: { kind: 'bool' }, default: 'false', doc: 'Allow workers to be decommissioned: an agent then acts on DecommissionWorker (no new executors), and the master UI serves `POST /workers/kill/?host=h` (admin scope; it stands in for Spark\'s spark.master.ui.decommission.allow.mode). Without it that route answers 405.' },

  // ---- worker (Spark)
  { key: 'spark.worker.cores', spec: { kind: 'int', min: 1 }, default: undefined, doc: 'Cores offered by a worker; default all processors.' },
  { key: 'spark.worker.memory', spec: { kind: 'memory' }, default: undefined, doc: 'Memory offered by a worker; default max(total − 1g, 512m).' },
  { key: 'spark.worker.initialRegistrationRetries', spec: { kind: 'int', min: 1 }, default: '6', doc: 'Registration retries at the short (fuzzed 5-15 s) interval.' },
  { key: 'spark.worker.maxRegistrationRetries', spec: { kind: 'int', min: 1 }, default: '16', doc: 'Total registration retries before the worker gives up.' },
  { key: 'spark.worker.decommission.signal', spec: { kind: 'string', pattern: /^[A-Z][A-Z0-9]{1,9}$/, patternHint: 'a signal name without SIG, e.g. PWR or USR2' }, default: 'PWR', doc: 'Signal on which a `flint worker` decommissions itself (with spark.decommission.enabled): it takes no new executors, tells the master (WorkerDecommissioning), and keeps its running tasks.' },
  { key: 'spark.worker.cleanup.enabled', spec: { kind: 'bool' }, default: 'true', doc: 'Periodically delete finished applications\' work directories.' },
  { key: 'spark.worker.cleanup.interval', spec: { kind: 'duration', plainUnit: 's', min: 1 }, default: '1800s', doc: 'Period of the work-dir cleanup.' },
  { key: 'spark.worker.cleanup.appDataTtl', spec: { kind: 'duration', plainUnit: 's', min: 0 }, default: '604800s', doc: 'A finished app\'s directory is deleted once no file in it is newer than this.' },
  { key: 'spark.worker.ui.retainedExecutors', spec: { kind: 'int', min: 1 }, default: '1000', doc: 'Finished executors a worker keeps for its UI.' },
  { key: 'spark.worker.ui.retainedDrivers', spec: { kind: 'int', min: 1 }, default: '1000', doc: 'Finished drivers a worker keeps for its UI.' },
  { key: 'spark.worker.driverTerminateTimeout', spec: { kind: 'duration', plainUnit: 'ms', min: 0 }, default: '10s', doc: 'Grace period between stop and kill of a driver container.' },
  { key: 'spark.worker.executorStateSync.maxAttempts', spec: { kind: 'int', min: 1 }, default: '5', doc: 'Attempts to deliver a state report before the agent exits.' },
  { key: 'spark.worker.idPattern', spec: { kind: 'string', pattern: /^\S*%s\S*%s\S*%d\S*$/, patternHint: 'a pattern with %s (timestamp), %s (host), %d (port)' }, default: 'worker-%s-%s-%d', doc: 'Worker id format: (yyyyMMddHHmmss, host, port).' },
  { key: 'spark.worker.ui.port', spec: { kind: 'int', min: 0, max: 65535 }, default: '8081', doc: 'Worker web UI port (0 = any free port).' },
  { key: 'spark.executor.logs.rolling.strategy', spec: { kind: 'enum', values: ['', 'size', 'time'] }, default: '', doc: 'Rolling of executor and driver logs (`stdout`, `stderr` in the task\'s directory), as Spark\'s RollingFileAppender, for both runtimes: `size` (spark.executor.logs.rolling.maxSize), `time` (spark.executor.logs.rolling.time.interval), or empty: one file, never rolled. A rolled file is renamed `stdout--<UTC time>` and a new one started; the worker UI reads rolled files and the active one as one log.' },
  { key: 'spark.executor.logs.rolling.maxSize', spec: { kind: 'bytes', min: 81920 }, default: '1048576', aliases: ['spark.executor.logs.rolling.size.maxBytes'], doc: 'With the `size` strategy, the largest a log file grows before it is rolled: bytes, or 512k, 10m (binary units). Flint never lets a file pass it (Spark may, by one buffer). At least 81920 (Spark\'s minimum).' },
  { key: 'spark.executor.logs.rolling.time.interval', spec: { kind: 'string', pattern: /^(daily|hourly|minutely|[6-9]\d|[1-9]\d{2,8})$/, patternHint: 'daily, hourly, minutely, or a number of seconds of at least 60' }, default: 'daily', doc: 'With the `time` strategy, how often logs roll: daily, hourly, minutely, or a number of seconds (at least 60, Spark\'s minimum), on multiples of the interval since the epoch; the first write after the boundary rolls.' },
  { key: 'spark.executor.logs.rolling.maxRetainedFiles', spec: { kind: 'int', min: -1 }, default: '-1', doc: 'Rolled log files kept per log (the active file not counted); older ones are deleted. -1 or 0 keeps all. With the size strategy a task\'s two logs take at most 2 × maxSize × (maxRetainedFiles + 1).' },

  // ---- Flint
  { key: 'spark.flint.cluster', spec: { kind: 'string', pattern: /^[A-Za-z0-9_-]{1,64}$/, patternHint: '1-64 letters, digits, - or _' }, default: 'default', doc: 'Cluster name: the Redis hash tag of every key, so several clusters can share one Redis.' },
  { key: 'spark.flint.redis.url', spec: { kind: 'string', pattern: /^(rediss?|sentinel|rediss?-cluster):\/\//, patternHint: 'redis://, rediss://, sentinel://host:port[,host:port]/masterName or redis-cluster://host:port[,host:port]' }, default: undefined, doc: 'Redis to keep state in: one Redis (redis://, rediss:// for TLS), the primary that Sentinels name (sentinel://), or a Redis Cluster (redis-cluster://, rediss-cluster:// for TLS; list a few nodes, the rest are discovered). On a Redis Cluster each Flint cluster lives in one hash slot; several Flint clusters spread over the shards. Unset: `flint up` starts an embedded Redis; other commands use redis://127.0.0.1:6379.' },
  { key: 'spark.flint.redis.user', spec: { kind: 'string', pattern: /^\S{1,512}$/, patternHint: 'an ACL user name without spaces' }, default: undefined, doc: 'Redis ACL user Flint authenticates as (see `flint acl` and docs/security.md); unset: the `default` user. Needs spark.flint.redis.passwordFile.' },
  { key: 'spark.flint.redis.passwordFile', spec: { kind: 'string' }, default: undefined, doc: 'File holding the Redis password (one line; must not be readable by every user), read once at start, so no password appears on a command line or in the URL. Unset: the password in the URL if any; for redis://127.0.0.1:6379 without one, infra/setup.sh\'s /etc/flint/redis-password when this process may read it.' },
  { key: 'spark.flint.app.timeout', spec: { kind: 'duration', plainUnit: 's', min: 1000 }, default: '60s', doc: 'An application whose client renewed its lease for this long is finished (FINISHED, executors killed, cores freed): Spark finishes an app when its driver disconnects; Flint\'s clients hold a lease instead (the AppClient renews every timeout/4; the app API on each request made with the app\'s token, while an event stream is open, and on POST /v1/apps/:id/heartbeat). 60 s, as spark.worker.timeout: a crashed driver frees its cluster within a minute, and a client survives three missed renewals (a GC pause, a Redis failover).' },
  { key: 'spark.flint.reaper.interval', spec: { kind: 'duration', plainUnit: 'ms', min: 10 }, default: '1s', doc: 'How often any master process checks for silent workers (Spark: 60 s; Flint detects within timeout + this).' },
  { key: 'spark.flint.master.concurrency', spec: { kind: 'int', min: 1, max: 1000 }, default: '32', doc: 'Messages one master process handles at once.' },
  { key: 'spark.flint.scheduler.maxCommitRetries', spec: { kind: 'int', min: 0, max: 100 }, default: '5', doc: 'Passes retried when a commit finds the snapshot stale (Nomad uses 5).' },
  { key: 'spark.flint.scheduler.leaseTtl', spec: { kind: 'duration', plainUnit: 'ms', min: 100 }, default: '5s', doc: 'Lease of the process running a scheduling pass; another process takes over after it lapses.' },
  { key: 'spark.flint.deploy.driverCoresFraction', spec: { kind: 'number', min: 0.01, max: 1 }, default: '1', doc: 'Guard against drivers starving applications (SPARK-27750): drivers together may hold at most this fraction of alive cores. 1 = Spark\'s behaviour.' },
  { key: 'spark.flint.master.ui.enabled', spec: { kind: 'bool' }, default: 'true', doc: 'A `flint master` serves the web UI (`/`, `/json`, `/metrics`, Spark\'s `/metrics/master/prometheus` and `/metrics/applications/prometheus`) on spark.master.ui.port, as Spark\'s master always does. Turn it off on processes that should only handle messages (e.g. a second master on the same host).' },
  { key: 'spark.flint.master.appApi.enabled', spec: { kind: 'bool' }, default: 'false', doc: 'A `flint master` serves the application HTTP API (docs/app-client.md), through which drivers in any language register applications.' },
  { key: 'spark.flint.master.appApi.host', spec: { kind: 'string' }, default: undefined, doc: 'Application HTTP API bind address; default spark.master.host. A non-loopback address requires spark.flint.auth.secret.' },
  { key: 'spark.flint.master.appApi.publicUrl', spec: { kind: 'string', pattern: /^https?:\/\/[^\s]{1,2000}$/, patternHint: 'an http:// or https:// URL' }, default: undefined, doc: 'The URL executors reach this application HTTP API at: the default spark.flint.executor.heartbeat.url of applications registered through it. Default: the URL it listens on; set it when it binds a wildcard address or sits behind a load balancer.' },
  { key: 'spark.flint.master.appApi.port', spec: { kind: 'int', min: 0, max: 65535 }, default: '6067', doc: 'Application HTTP API port (0 = any free port; the bound URL is logged).' },
  { key: 'spark.flint.worker.dir', spec: { kind: 'string' }, default: undefined, doc: 'Worker work directory (executor and driver files, logs); default ./work. `--work-dir` and SPARK_WORKER_DIR set it too.' },
  { key: 'spark.flint.appApi.maxStreams', spec: { kind: 'int', min: 1, max: 1000000 }, default: '1000', doc: 'Event streams (GET /v1/apps/:id/events) one app API process serves at once; past it a new stream gets 429. All of a process\'s streams share one blocking Redis reader.' },
  { key: 'spark.flint.auth.secret', spec: { kind: 'string' }, default: undefined, doc: 'HS256 secret for bearer tokens on mutating REST/UI routes. Required to listen on a non-loopback address.' },
  { key: 'spark.flint.rest.defaultDriverImage', spec: { kind: 'string' }, default: undefined, doc: 'Image of drivers submitted without spark.flint.image or a docker:// appResource (lets Spark\'s own REST client submit unchanged).' },
  { key: 'spark.flint.worker.registrationInterval', spec: { kind: 'duration', plainUnit: 's', min: 0.01 }, default: '10s', doc: 'Base of the short registration retry interval (fuzzed ×0.5-1.5); the long one is 6× this.' },
  { key: 'spark.flint.worker.runtime', spec: { kind: 'enum', values: ['auto', 'docker', 'process'] }, default: 'auto', doc: 'Executor runtime: docker, process, or auto (docker when its socket answers).' },
  { key: 'spark.flint.worker.process.requireLimits', spec: { kind: 'bool' }, default: 'false', doc: 'Process runtime: refuse to start when cgroups cannot enforce task cores, memory and pids (false: warn once and run tasks unconfined).' },
  { key: 'spark.flint.worker.network', spec: { kind: 'enum', values: ['host', 'none'] }, default: 'host', doc: 'Container network mode of executors and drivers.' },
  { key: 'spark.flint.worker.pidsLimit', spec: { kind: 'int', min: 1 }, default: '512', doc: 'Most processes one executor or driver container may run.' },
  { key: 'spark.flint.worker.stopGracePeriod', spec: { kind: 'duration', plainUnit: 'ms', min: 0 }, default: '10s', doc: 'Grace period between SIGTERM and SIGKILL when an executor is killed.' },
  { key: 'spark.flint.worker.relistInterval', spec: { kind: 'duration', plainUnit: 'ms', min: 100 }, default: '2s', doc: 'Full container relist period (Docker events can be missed); each relist also removes tasks nobody owns.' },
  { key: 'spark.flint.worker.reconcileInterval', spec: { kind: 'duration', plainUnit: 'ms', min: 0 }, default: '2s', doc: 'How often an agent sends WorkerLatestState, which the master reconciles in both directions (what the worker runs and the master does not know is killed; what the master holds there and the worker does not run is ended LOST). It is also sent after every registration. 0: only after registrations (less master load on very large clusters, but phantoms are found only then).' },
  { key: 'spark.flint.worker.launchTimeout', spec: { kind: 'duration', plainUnit: 's', min: 1 }, default: '2m', doc: 'Longest a task start may take (image checks, create, start; images are never pulled) before the executor is reported FAILED (a driver ERROR) and whatever the start left is removed.' },
  { key: 'spark.flint.executor.user', spec: { kind: 'string', pattern: /^\d{1,10}(:\d{1,10})?$/, patternHint: 'uid:gid (numbers), e.g. 65534:65534' }, default: '65534:65534', doc: 'The user executors and drivers run as: Docker\'s User of the container, and for the process runtime (when the worker is root) the user the command runs as (through util-linux setpriv, with no-new-privileges). The task\'s directory is given to this uid and gid. Root (uid or gid 0) is refused unless spark.flint.worker.allowRootTasks is true. A worker agent that is not root, with this key unset, runs tasks as its own user (it could not give them their directories).' },
  { key: 'spark.flint.worker.allowRootTasks', spec: { kind: 'bool' }, default: 'false', doc: 'Let this worker run tasks as root (spark.flint.executor.user with uid or gid 0). Off: such a worker refuses to start. A task that is root in its container is still without capabilities and new privileges, but owns whatever the kernel lets root own.' },
  { key: 'spark.flint.worker.dockerLogBuffer', spec: { kind: 'bytes', min: 2 * 1024 * 1024 }, default: '16m', doc: 'Docker runtime: how much of a container\'s output Docker itself keeps (json-file, two files of half this), the buffer between the container and the log capture that writes `stdout`/`stderr` (which spark.executor.logs.rolling.* bound). Deleted with the container. Output a task prints faster than Docker delivers it (10-20 MB/s on a small host) beyond this, or while the agent is down, is lost; a larger buffer costs that much disk per running container.' },
  { key: 'spark.flint.executor.readOnlyRootFilesystem', spec: { kind: 'bool' }, default: 'false', doc: 'Docker runtime: mount each container\'s root filesystem read-only (ReadonlyRootfs); the task\'s directory and its tmpfs /tmp stay writable.' },
  { key: 'spark.flint.worker.imageAllowList', spec: { kind: 'string' }, default: undefined, doc: 'Comma-separated image name prefixes executors may use; unset allows any local image.' },

  // ---- TLS (Spark's spark.ssl.* options; see docs/security.md "TLS")
  ...sslKeys('spark.ssl', 'every Flint HTTP server', 'false'),
  ...sslKeys('spark.ssl.standalone', 'the standalone daemons\' servers (REST, master UI, application API, worker UI); unset options fall back to spark.ssl.*', undefined),
];

/**
 * sslKeys: Spark's SSL options under one namespace. Flint reads the ones Node's
 * TLS can honour: PEM key and chain (Spark 4's privateKey/certChain), or a PKCS#12
 * keyStore; JKS is refused at start-up with how to convert it.
 */
function sslKeys(ns: string, scope: string, enabledDefault: string | undefined): KeySpec[] {
  return [
    { key: `${ns}.enabled`, spec: { kind: 'bool' }, default: enabledDefault, doc: `Serve HTTPS on ${scope}.` },
    { key: `${ns}.privateKey`, spec: { kind: 'string' }, default: undefined, doc: 'PEM file of the private key (with certChain; or use keyStore).' },
    { key: `${ns}.privateKeyPassword`, spec: { kind: 'string' }, default: undefined, doc: 'Passphrase of an encrypted privateKey.' },
    { key: `${ns}.certChain`, spec: { kind: 'string' }, default: undefined, doc: 'PEM file of the server certificate, then its intermediates.' },
    { key: `${ns}.keyStore`, spec: { kind: 'string' }, default: undefined, doc: 'PKCS#12 file holding key and certificate chain (instead of privateKey/certChain).' },
    { key: `${ns}.keyStorePassword`, spec: { kind: 'string' }, default: undefined, doc: 'Password of the keyStore.' },
    { key: `${ns}.keyStoreType`, spec: { kind: 'enum', values: ['PKCS12', 'JKS'], upperCase: true }, default: undefined, doc: 'PKCS12 (JKS, Spark\'s default, cannot be read by Node: convert it with `keytool -importkeystore -deststoretype PKCS12`).' },
    { key: `${ns}.protocol`, spec: { kind: 'enum', values: ['TLSv1.2', 'TLSv1.3'] }, default: undefined, doc: 'Lowest TLS version accepted (default TLSv1.2).' },
    { key: `${ns}.enabledAlgorithms`, spec: { kind: 'string' }, default: undefined, doc: 'Comma-separated cipher suites (OpenSSL names); default Node\'s.' },
    { key: `${ns}.trustStore`, spec: { kind: 'string' }, default: undefined, doc: 'PEM file of the CA certificates Flint\'s clients (`flint submit`, `status`, `kill`, the REST client) trust for this server, besides the system\'s; `--ca-file` overrides it.' },
  ];
}

/**
 * APP_CONF_KEYS: the Spark properties Flint reads from an application's own `conf`
 * (its SparkConf in the ApplicationDescription), not from a Flint process's
 * configuration. Spark's HeartbeatReceiver keys keep Spark's names, units and defaults.
 */
export const APP_CONF_KEYS: readonly KeySpec[] = [
  { key: 'spark.flint.executor.heartbeat.enabled', spec: { kind: 'bool' }, default: 'false', doc: 'Executors of this application send heartbeats to the app API, and silent ones are killed and replaced (Spark\'s HeartbeatReceiver). Off by default: executors are arbitrary commands that may not heartbeat.' },
  { key: 'spark.flint.executor.heartbeat.url', spec: { kind: 'string', pattern: /^https?:\/\/[^\s]{1,2000}$/, patternHint: 'an http:// or https:// URL of an app API' }, default: undefined, doc: 'Base URL of the app API executors send heartbeats to; the app API that registers the application fills in its own URL when this is unset.' },
  { key: 'spark.executor.heartbeatInterval', spec: { kind: 'duration', plainUnit: 'ms', min: 10 }, default: '10s', doc: 'Interval between an executor\'s heartbeats (the first comes after a random delay of one to two intervals, as in Spark).' },
  { key: 'spark.network.timeout', spec: { kind: 'duration', plainUnit: 's', min: 100 }, default: '120s', doc: 'An executor silent for longer than this is killed and replaced, and the app is told executorLost(id, "Executor heartbeat timed out after N ms"). Must be greater than spark.executor.heartbeatInterval.' },
  { key: 'spark.network.timeoutInterval', spec: { kind: 'duration', plainUnit: 'ms', min: 10 }, default: '60s', doc: 'How often the application\'s heartbeat receiver looks for silent executors: an executor is expired within spark.network.timeout + this.' },
  { key: 'spark.executor.heartbeat.maxFailures', spec: { kind: 'int', min: 1 }, default: '60', doc: 'An executor whose heartbeats fail this many times in a row exits with code 56 (Spark\'s ExecutorExitCode.HEARTBEAT_FAILURE).' },
  { key: 'spark.flint.driver.id', spec: { kind: 'string', pattern: /^[A-Za-z0-9._:@/-]{1,256}$/, patternHint: 'a driver id' }, default: undefined, doc: 'The cluster-mode driver this application belongs to (a driver finds its id in FLINT_DRIVER_ID; the AppClient sets this from it): the application ends when that driver ends. The driver must be active when the application registers.' },
];

/** HEARTBEAT_FAILURE_EXIT_CODE: Spark's ExecutorExitCode.HEARTBEAT_FAILURE. */
export const HEARTBEAT_FAILURE_EXIT_CODE = 56;

/** ExecutorHeartbeatConf: an application's HeartbeatReceiver settings, in ms. */
export interface ExecutorHeartbeatConf {
  intervalMs: number;
  timeoutMs: number;
  checkIntervalMs: number;
  maxFailures: number;
  /** spark.flint.executor.heartbeat.url, when the application set it */
  url?: string;
}

/** AppConfSettings: what Flint reads from an application's conf. */
export interface AppConfSettings {
  /** set when spark.flint.executor.heartbeat.enabled is true */
  heartbeat?: ExecutorHeartbeatConf;
  /** spark.flint.driver.id */
  driverId?: string;
}

const APP_SPEC_BY_KEY = new Map(APP_CONF_KEYS.map((spec) => [spec.key, spec]));

/**
 * parseAppConf reads the keys of APP_CONF_KEYS from an application's conf, with
 * Spark's defaults; an invalid value throws a ConfigError naming the key (the app API
 * answers it with 400, the master refuses the registration with it). Other keys are
 * not read. Example: {'spark.flint.executor.heartbeat.enabled': 'true',
 * 'spark.network.timeout': '3s'} → heartbeat {intervalMs: 10000, ...}: refused, because
 * the timeout is not greater than the interval.
 */
export function parseAppConf(conf: Readonly<Record<string, string>>): AppConfSettings {
  const value = <T>(key: string): T => {
    const spec = APP_SPEC_BY_KEY.get(key)!;
    const raw = Object.prototype.hasOwnProperty.call(conf, key) ? conf[key]! : spec.default;
    if (raw === undefined) return undefined as T;
    try {
      return parseValue(spec, raw) as T;
    } catch (error) {
      throw new ConfigError(`conf ${key}=${JSON.stringify(raw)}: ${(error as Error).message}`);
    }
  };
  // every key Flint knows is checked when present, whether or not it is used
  for (const spec of APP_CONF_KEYS) if (Object.prototype.hasOwnProperty.call(conf, spec.key)) value(spec.key);
  const settings: AppConfSettings = {};
  const driverId = value<string | undefined>('spark.flint.driver.id');
  if (driverId !== undefined) settings.driverId = driverId;
  if (value<boolean>('spark.flint.executor.heartbeat.enabled')) {
    const heartbeat: ExecutorHeartbeatConf = {
      intervalMs: value('spark.executor.heartbeatInterval'),
      timeoutMs: value('spark.network.timeout'),
      checkIntervalMs: value('spark.network.timeoutInterval'),
      maxFailures: value('spark.executor.heartbeat.maxFailures'),
    };
    const url = value<string | undefined>('spark.flint.executor.heartbeat.url');
    if (url !== undefined) heartbeat.url = url.replace(/\/+$/, '');
    if (heartbeat.timeoutMs <= heartbeat.intervalMs) {
      throw new ConfigError(
        `conf spark.network.timeout=${heartbeat.timeoutMs}ms must be greater than spark.executor.heartbeatInterval=${heartbeat.intervalMs}ms (an executor would be expired between two heartbeats)`,
      );
    }
    settings.heartbeat = heartbeat;
  }
  return settings;
}

const SPEC_BY_KEY = new Map<string, KeySpec>();
for (const spec of CONFIG_KEYS) {
  SPEC_BY_KEY.set(spec.key, spec);
  for (const alias of spec.aliases ?? []) SPEC_BY_KEY.set(alias, spec);
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** parseDurationMs: an `ms` string or a plain number in `plainUnit`. */
export function parseDurationMs(value: string, plainUnit: 's' | 'ms' = 'ms'): number {
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * (plainUnit === 's' ? 1000 : 1);
  let parsed: number | undefined;
  try {
    parsed = ms(trimmed as ms.StringValue);
  } catch {
    // ms throws (rather than returning undefined) on an empty string.
    parsed = undefined;
  }
  if (typeof parsed !== 'number' || !Number.isFinite(parsed) || parsed < 0) {
    throw new ConfigError(`'${value}' is not a duration (examples: 60s, 1m, 500ms, 60)`);
  }
  return parsed;
}

/** parseMemoryMb: Spark's memory strings ("512m", "2g", "1t", "4096" = MB) to MB. */
export function parseMemoryMb(value: string): number {
  const match = /^\s*(\d+)\s*([kmgtp]?)b?\s*$/i.exec(value);
  if (!match) throw new ConfigError(`'${value}' is not a memory size (examples: 512m, 2g, 4096)`);
  const amount = Number(match[1]);
  const unit = match[2]!.toLowerCase();
  const factor: Record<string, number> = { '': 1, k: 1 / 1024, m: 1, g: 1024, t: 1024 * 1024, p: 1024 * 1024 * 1024 };
  const mb = Math.floor(amount * factor[unit]!);
  if (mb <= 0) throw new ConfigError(`'${value}' is less than 1 MB`);
  return mb;
}

/** parseBytes: a byte count ("1048576") or Spark's byte strings ("512k", "10m", "1g"; binary units) to bytes. */
export function parseBytes(value: string): number {
  const match = /^\s*(\d+)\s*([kmgt]?)i?b?\s*$/i.exec(value);
  if (!match) throw new ConfigError(`'${value}' is not a size in bytes (examples: 1048576, 512k, 10m)`);
  const factor: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  return Number(match[1]) * factor[match[2]!.toLowerCase()]!;
}

export function parseBool(value: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new ConfigError(`'${value}' is not a boolean (true or false)`);
}

function parseValue(spec: KeySpec, raw: string): unknown {
  const s = spec.spec;
  switch (s.kind) {
    case 'duration': {
      const v = parseDurationMs(raw, s.plainUnit);
      if (s.min !== undefined && v < s.min) throw new ConfigError(`'${raw}' is below the minimum of ${s.min} ms`);
      return v;
    }
    case 'int': {
      if (!/^\s*-?\d+\s*$/.test(raw)) throw new ConfigError(`'${raw}' is not an integer`);
      const v = Number(raw);
      if (s.min !== undefined && v < s.min) throw new ConfigError(`'${raw}' must be ≥ ${s.min}`);
      if (s.max !== undefined && v > s.max) throw new ConfigError(`'${raw}' must be ≤ ${s.max}`);
      return v;
    }
    case 'number': {
      const v = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(v)) throw new ConfigError(`'${raw}' is not a number`);
      if (s.min !== undefined && v < s.min) throw new ConfigError(`'${raw}' must be ≥ ${s.min}`);
      if (s.max !== undefined && v > s.max) throw new ConfigError(`'${raw}' must be ≤ ${s.max}`);
      return v;
    }
    case 'bool':
      return parseBool(raw);
    case 'string':
      if (s.pattern && !s.pattern.test(raw)) throw new ConfigError(`'${raw}' is not valid: expected ${s.patternHint ?? s.pattern}`);
      return raw;
    case 'enum': {
      const v = s.upperCase ? raw.trim().toUpperCase() : raw.trim();
      if (!s.values.includes(v)) throw new ConfigError(`'${raw}' is not one of ${s.values.join(', ')}`);
      return v;
    }
    case 'memory':
      return parseMemoryMb(raw);
    case 'bytes': {
      const v = parseBytes(raw);
      if (s.min !== undefined && v < s.min) throw new ConfigError(`'${raw}' must be at least ${s.min} bytes`);
      return v;
    }
  }
}

/** envNameFor: `spark.worker.timeout` → `FLINT_SPARK_WORKER_TIMEOUT`. */
export function envNameFor(key: string): string {
  return 'FLINT_' + key.replace(/[.-]/g, '_').toUpperCase();
}

/** parsePropertiesFile: Spark's spark-defaults.conf format (`key value` or `key=value`, # comments). */
export function parsePropertiesText(text: string, origin = 'properties'): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((line, index) => {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('#') || trimmed.startsWith('!')) return;
    const match = /^([^\s=:]+)\s*(?:[=:]\s*|\s+)(.*)$/.exec(trimmed);
    if (!match) throw new ConfigError(`${origin}:${index + 1}: cannot read '${trimmed}' (expected 'key value' or 'key=value')`);
    out[match[1]!] = match[2]!.trim();
  });
  return out;
}

/** FlintConfig: the parsed configuration. Durations are in ms, memory in MB. */
export interface FlintConfig {
  /** raw string values after layering, for keys Flint does not interpret (passed through to apps) */
  readonly raw: Readonly<Record<string, string>>;
  /** where each key's value came from */
  readonly origin: Readonly<Record<string, ConfigSource>>;
  get<T = unknown>(key: string): T;
  workerTimeoutMs: number;
  deadWorkerPersistence: number;
  retainedApplications: number;
  retainedDrivers: number;
  retainedDeadExecutors: number;
  maxExecutorRetries: number;
  spreadOut: boolean;
  spreadOutDrivers: boolean;
  workerSelectionPolicy: WorkerSelectionPolicy;
  defaultCores: number;
  maxDrivers: number;
  appNumberModulo: number | undefined;
  appIdPattern: string;
  driverIdPattern: string;
  useAppNameAsAppId: boolean;
  cluster: string;
  redisUrl: string | undefined;
  reaperIntervalMs: number;
  /** spark.flint.app.timeout */
  appTimeoutMs: number;
  driverCoresFraction: number;
  authSecret: string | undefined;
}

export type WorkerSelectionPolicy = 'CORES_FREE_ASC' | 'CORES_FREE_DESC' | 'MEMORY_FREE_ASC' | 'MEMORY_FREE_DESC' | 'WORKER_ID';

/**
 * DAEMON_ENV: Spark's daemon variables (spark-env.sh) and the key each sets. They
 * layer above the properties file and below FLINT_* variables and flags.
 */
export const DAEMON_ENV: Readonly<Record<string, string>> = {
  SPARK_MASTER_HOST: 'spark.master.host',
  SPARK_MASTER_PORT: 'spark.master.port',
  SPARK_MASTER_WEBUI_PORT: 'spark.master.ui.port',
  SPARK_WORKER_CORES: 'spark.worker.cores',
  SPARK_WORKER_MEMORY: 'spark.worker.memory',
  SPARK_WORKER_DIR: 'spark.flint.worker.dir',
  SPARK_WORKER_WEBUI_PORT: 'spark.worker.ui.port',
};

/** CONF_DIR_ENV: the variable naming the conf directory (Spark's SPARK_CONF_DIR); its spark-defaults.conf is read. */
export const CONF_DIR_ENV = 'FLINT_CONF_DIR';
/** DEFAULTS_FILE: the properties file read from the conf directory, as Spark's. */
export const DEFAULTS_FILE = 'spark-defaults.conf';

export interface LoadConfigOptions {
  /** path of a properties file (spark-defaults.conf format); replaces $FLINT_CONF_DIR/spark-defaults.conf, as Spark's --properties-file does */
  propertiesFile?: string;
  /** environment to read FLINT_* variables from (default: process.env) */
  env?: Record<string, string | undefined>;
  /** --conf k=v overrides, highest precedence */
  overrides?: Record<string, string>;
}

/** loadConfig layers defaults, file, environment and overrides, and validates every known key. */
export function loadConfig(options: LoadConfigOptions = {}): FlintConfig {
  const raw: Record<string, string> = {};
  const origin: Record<string, ConfigSource> = {};
  for (const spec of CONFIG_KEYS) {
    if (spec.default !== undefined) {
      raw[spec.key] = spec.default;
      origin[spec.key] = 'default';
    }
  }
  const put = (key: string, value: string, source: ConfigSource) => {
    const spec = SPEC_BY_KEY.get(key);
    const canonical = spec ? spec.key : key;
    raw[canonical] = value;
    origin[canonical] = source;
  };
  const env = options.env ?? process.env;
  const confDir = env[CONF_DIR_ENV];
  const propertiesFile = options.propertiesFile ?? (confDir ? join(confDir, DEFAULTS_FILE) : undefined);
  if (propertiesFile) {
    let text: string | undefined;
    try {
      text = readFileSync(propertiesFile, 'utf8');
    } catch (error) {
      // a conf directory without spark-defaults.conf is fine (Spark ships only a template); a named file must exist
      const missingDefaults = options.propertiesFile === undefined && (error as NodeJS.ErrnoException).code === 'ENOENT';
      if (!missingDefaults) throw new ConfigError(`cannot read properties file ${propertiesFile}: ${(error as Error).message}`);
    }
    if (text !== undefined) for (const [k, v] of Object.entries(parsePropertiesText(text, propertiesFile))) put(k, v, 'file');
  }
  for (const [name, key] of Object.entries(DAEMON_ENV)) {
    const value = env[name];
    if (value !== undefined && value !== '') put(key, value, 'env');
  }
  for (const spec of CONFIG_KEYS) {
    for (const key of [spec.key, ...(spec.aliases ?? [])]) {
      const value = env[envNameFor(key)];
      if (value !== undefined && value !== '') put(key, value, 'env');
    }
  }
  for (const [k, v] of Object.entries(options.overrides ?? {})) put(k, v, 'flag');

  const parsed: Record<string, unknown> = {};
  const errors: string[] = [];
  for (const spec of CONFIG_KEYS) {
    const value = raw[spec.key];
    if (value === undefined) continue;
    try {
      parsed[spec.key] = parseValue(spec, value);
    } catch (error) {
      errors.push(`${spec.key}=${JSON.stringify(value)} (from ${origin[spec.key]}): ${(error as Error).message}`);
    }
  }
  if (errors.length) throw new ConfigError(`invalid configuration:\n  ${errors.join('\n  ')}`);

  const get = <T>(key: string): T => {
    const spec = SPEC_BY_KEY.get(key);
    if (!spec) throw new ConfigError(`unknown configuration key '${key}'`);
    return parsed[spec.key] as T;
  };
  return {
    raw,
    origin,
    get,
    workerTimeoutMs: get('spark.worker.timeout'),
    deadWorkerPersistence: get('spark.dead.worker.persistence'),
    retainedApplications: get('spark.deploy.retainedApplications'),
    retainedDrivers: get('spark.deploy.retainedDrivers'),
    retainedDeadExecutors: get('spark.ui.retainedDeadExecutors'),
    maxExecutorRetries: get('spark.deploy.maxExecutorRetries'),
    spreadOut: get('spark.deploy.spreadOut'),
    spreadOutDrivers: get('spark.deploy.spreadOutDrivers'),
    workerSelectionPolicy: get('spark.deploy.workerSelectionPolicy'),
    defaultCores: get('spark.deploy.defaultCores'),
    maxDrivers: get('spark.deploy.maxDrivers'),
    appNumberModulo: get('spark.deploy.appNumberModulo'),
    appIdPattern: get('spark.deploy.appIdPattern'),
    driverIdPattern: get('spark.deploy.driverIdPattern'),
    useAppNameAsAppId: get('spark.master.useAppNameAsAppId.enabled'),
    cluster: get('spark.flint.cluster'),
    redisUrl: get('spark.flint.redis.url'),
    reaperIntervalMs: get('spark.flint.reaper.interval'),
    appTimeoutMs: get('spark.flint.app.timeout'),
    driverCoresFraction: get('spark.flint.deploy.driverCoresFraction'),
    authSecret: get('spark.flint.auth.secret'),
  };
}

/** parseConfFlags: `["k=v", ...]` from repeated --conf flags; a flag without '=' is an error. */
export function parseConfFlags(flags: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const flag of flags) {
    const eq = flag.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--conf '${flag}' must be key=value`);
    out[flag.slice(0, eq).trim()] = flag.slice(eq + 1);
  }
  return out;
}

/** formatSparkId: Spark's String.format for id patterns: %s and %d / %0Nd in order. */
export function formatSparkId(pattern: string, args: ReadonlyArray<string | number>): string {
  let index = 0;
  return pattern.replace(/%(0?)(\d*)([sd])/g, (_m, zero: string, width: string, conv: string) => {
    const arg = args[index++];
    let text = String(arg);
    if (conv === 'd' && width) text = text.padStart(Number(width), zero ? '0' : ' ');
    return text;
  });
}

/** sparkTimestamp: yyyyMMddHHmmss in local time, as Spark's createDateFormat does. */
export function sparkTimestamp(now: number): string {
  const d = new Date(now);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}
