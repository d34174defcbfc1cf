/**
 * `flint worker`: one worker agent process (Spark's `start-worker.sh`), a thin
 * wrapper around `startAgent`. Flags are read into agent options by a pure
 * function (tested without starting anything); a bad flag or a start-up failure is
 * one clear line and a non-zero exit. SIGTERM/SIGINT stop the agent and exit 0;
 * running executors and drivers are left for the next agent to re-adopt unless
 * --kill-on-exit is given. The command's definition is worker-command.ts, which
 * imports this module only when the command runs.
 */
import { waitForSignal } from '../lib/signals.ts';
import { releaseStartupMemory } from '../lib/idle-memory.ts';
import { constants as osConstants } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { DEFAULT_REDIS_URL, loadConfig, parseConfFlags, parseMemoryMb, type FlintConfig } from '../protocol/config.ts';
import { createLogger } from '../lib/log.ts';
import { redactRedisUrl } from '../lib/redis.ts';
import { serverTlsFromConfig, type ServerTls } from '../lib/http/tls.ts';
import { credentialsFromConfig, resolveRedisUrl } from '../lib/redis-credentials.ts';
import type { Runtime } from './runtime/types.ts';
import { ProcessRuntime } from './runtime/process.ts';
import { selectRuntime } from './runtime/select.ts';
import { parseRollingInterval, type LogRolling } from './runtime/log-rolling.ts';
import { resolveTaskUser, type TaskUser } from './runtime/task-user.ts';
import { runtimeStateDir } from './runtime/task-identity.ts';

/** pingDocker, for `flint up`'s choice of runtime (cli/ reaches the worker only through this entry). */
export { pingDocker } from './runtime/select.ts';
import { startAgent, type AgentHandle, type AgentOptions } from './agent/agent.ts';
import { defaultCores, defaultMemoryMb, parseLabelFlags, parseResourceFlags } from './host-defaults.ts';

/** WorkerFlags: what commander hands the action. */
export interface WorkerFlags {
  cores?: string;
  memory?: string;
  workDir?: string;
  resource?: string[];
  label?: string[];
  redis?: string;
  cluster?: string;
  host?: string;
  port?: string;
  runtime?: string;
  network?: string;
  killOnExit?: boolean;
  propertiesFile?: string;
  conf?: string[];
  id?: string;
}

/** WorkerSettings: the flags resolved against configuration and host defaults. */
export interface WorkerSettings {
  config: FlintConfig;
  redisUrl: string;
  cluster: string;
  cores: number;
  memoryMB: number;
  workDir: string;
  host: string;
  port: number;
  resources: Record<string, string[]>;
  labels: Record<string, string>;
  runtime: 'auto' | 'docker' | 'process';
  network: 'host' | 'none';
  killOnExit: boolean;
  id?: string;
  imageAllowList?: string[];
  /** HTTPS for the worker UI, from spark.ssl[.standalone].* (lib/http/tls.ts); undefined serves plain HTTP */
  tls?: ServerTls;
  /** who tasks run as (spark.flint.executor.user; root only with spark.flint.worker.allowRootTasks) */
  taskUser: TaskUser;
  allowRootTasks: boolean;
  /** spark.flint.executor.readOnlyRootFilesystem */
  readonlyRootfs: boolean;
  /** spark.executor.logs.rolling.*, undefined when logs are not rolled */
  logRolling?: LogRolling;
}

/**
 * effectiveTaskUser: spark.flint.executor.user (root refused unless allowed). An agent that
 * is not root cannot give a task's directory to another user, so with the key at its
 * default such an agent runs tasks as its own (unprivileged) user: their directories are
 * then theirs, and the agent can still remove what they leave. A user set explicitly is
 * kept (the directory is then made writable for everyone: docs/security.md, "Users").
 */
export function effectiveTaskUser(config: FlintConfig, allowRootTasks: boolean, euid = process.geteuid?.() ?? 0, egid = process.getegid?.() ?? 0): TaskUser {
  const configured = resolveTaskUser(config.get<string>('spark.flint.executor.user'), allowRootTasks);
  if (euid === 0 || config.origin['spark.flint.executor.user'] !== 'default') return configured;
  return { uid: euid, gid: egid };
}

/** logRollingFromConfig: Spark's spark.executor.logs.rolling.* keys as the runtimes take them (undefined: no rolling). */
export function logRollingFromConfig(config: FlintConfig): LogRolling | undefined {
  const strategy = config.get<'' | 'size' | 'time'>('spark.executor.logs.rolling.strategy');
  const maxRetainedFiles = config.get<number>('spark.executor.logs.rolling.maxRetainedFiles');
  if (strategy === 'size') return { strategy, maxBytes: config.get<number>('spark.executor.logs.rolling.maxSize'), maxRetainedFiles };
  if (strategy === 'time') return { strategy, intervalMs: parseRollingInterval(config.get<string>('spark.executor.logs.rolling.time.interval')), maxRetainedFiles };
  return undefined;
}

function positiveInt(text: string, flag: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) throw new Error(`${flag} '${text}' must be a positive integer`);
  return Number(text);
}

/**
 * workerSettings resolves flags, configuration (--properties-file or
 * $FLINT_CONF_DIR/spark-defaults.conf, SPARK_WORKER_CORES/MEMORY/DIR/WEBUI_PORT,
 * FLINT_* env, --conf) and host defaults: flags win over configuration,
 * configuration over defaults (all processors; max(total memory − 1g, 512m); ./work).
 */
export function workerSettings(flags: WorkerFlags, env: Record<string, string | undefined> = process.env, cwd = process.cwd()): WorkerSettings {
  const overrides = parseConfFlags(flags.conf ?? []);
  if (flags.cluster) overrides['spark.flint.cluster'] = flags.cluster;
  if (flags.redis) overrides['spark.flint.redis.url'] = flags.redis;
  if (flags.runtime) overrides['spark.flint.worker.runtime'] = flags.runtime;
  if (flags.network) overrides['spark.flint.worker.network'] = flags.network;
  if (flags.port !== undefined) overrides['spark.worker.ui.port'] = flags.port;
  const config = loadConfig({ propertiesFile: flags.propertiesFile, env, overrides });
  const cores = flags.cores !== undefined ? positiveInt(flags.cores, '--cores') : (config.get<number | undefined>('spark.worker.cores') ?? defaultCores());
  const memoryMB = flags.memory !== undefined ? parseMemoryFlag(flags.memory) : (config.get<number | undefined>('spark.worker.memory') ?? defaultMemoryMb());
  const workDirFlag = flags.workDir ?? config.get<string | undefined>('spark.flint.worker.dir') ?? './work';
  const allowList = config.get<string | undefined>('spark.flint.worker.imageAllowList');
  const allowRootTasks = config.get<boolean>('spark.flint.worker.allowRootTasks');
  const taskUser = effectiveTaskUser(config, allowRootTasks);
  return {
    config,
    redisUrl: config.redisUrl ?? DEFAULT_REDIS_URL,
    cluster: config.cluster,
    cores,
    memoryMB,
    workDir: isAbsolute(workDirFlag) ? workDirFlag : resolve(cwd, workDirFlag),
    host: flags.host ?? '127.0.0.1',
    port: config.get<number>('spark.worker.ui.port'),
    resources: parseResourceFlags(flags.resource ?? []),
    labels: parseLabelFlags(flags.label ?? []),
    runtime: config.get<'auto' | 'docker' | 'process'>('spark.flint.worker.runtime'),
    network: config.get<'host' | 'none'>('spark.flint.worker.network'),
    killOnExit: flags.killOnExit === true,
    id: flags.id,
    tls: serverTlsFromConfig(config),
    imageAllowList: allowList
      ?.split(',')
      .map((prefix) => prefix.trim())
      .filter((prefix) => prefix.length > 0),
    taskUser,
    allowRootTasks,
    readonlyRootfs: config.get<boolean>('spark.flint.executor.readOnlyRootFilesystem'),
    logRolling: logRollingFromConfig(config),
  };
}

function parseMemoryFlag(text: string): number {
  try {
    return parseMemoryMb(text);
  } catch (error) {
    throw new Error(`--memory ${(error as Error).message}`, { cause: error });
  }
}

/**
 * testPauseAfterCreate: a test-only hook (NODE_ENV=test and FLINT_TEST_PAUSE_AFTER_CREATE_MS set): the
 * Docker runtime waits that long between a container's create and its start, so a test can SIGKILL
 * the agent in that window. Never active outside tests.
 */
function testPauseAfterCreate(env: NodeJS.ProcessEnv = process.env): ((name: string) => Promise<void>) | undefined {
  const ms = Number(env.FLINT_TEST_PAUSE_AFTER_CREATE_MS);
  if (env.NODE_ENV !== 'test' || !(ms > 0)) return undefined;
  // FLINT_TEST_PAUSE_SKIP_CREATES: let that many creates through first (e.g. to pause a relaunch)
  let skip = Number(env.FLINT_TEST_PAUSE_SKIP_CREATES ?? 0) || 0;
  return () => (skip-- > 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, ms)));
}

/**
 * createRuntime builds the runtime a worker runs its tasks with (runtime/select.ts):
 * Docker, local processes, or (auto) Docker when its socket answers and processes
 * otherwise. Both keep their records for each task in the work dir, outside every task's
 * directory (`.flint-docker-runtime/` and `.flint-process-runtime/`, per cluster and worker).
 */
export async function createRuntime(settings: WorkerSettings, worker: { workerId: string; cluster: string; workDir?: string }): Promise<Runtime> {
  const logger = createLogger('runtime', { workerId: worker.workerId, cluster: worker.cluster });
  const tasks = { user: settings.taskUser, allowRootTasks: settings.allowRootTasks, logRolling: settings.logRolling, logger };
  const selection = await selectRuntime(settings.runtime, {
    imageAllowList: settings.imageAllowList,
    docker: {
      ...tasks,
      stateDir: runtimeStateDir({ ...worker, workDir: worker.workDir ?? settings.workDir }, 'docker'),
      readonlyRootfs: settings.readonlyRootfs,
      logBufferBytes: settings.config.get<number>('spark.flint.worker.dockerLogBuffer'),
      relistIntervalMs: settings.config.get<number>('spark.flint.worker.relistInterval'),
      cluster: worker.cluster,
      workerId: worker.workerId,
      afterCreate: testPauseAfterCreate(),
    },
    process: {
      ...tasks,
      stateDir: runtimeStateDir({ ...worker, workDir: worker.workDir ?? settings.workDir }, 'process'),
      requireLimits: settings.config.get<boolean>('spark.flint.worker.process.requireLimits'),
    },
  });
  logger.info(selection.reason);
  // says once whether cgroups enforce the grants; fails start-up when they must and cannot
  if (selection.runtime instanceof ProcessRuntime) await selection.runtime.prepareLimits();
  return selection.runtime;
}

/** agentOptions: the settings as `startAgent` options. */
export function agentOptions(settings: WorkerSettings, extra: Partial<AgentOptions> = {}): AgentOptions {
  return {
    redisUrl: settings.redisUrl,
    config: settings.config,
    cluster: settings.cluster,
    runtime: (worker) => createRuntime(settings, worker),
    workDir: settings.workDir,
    cores: settings.cores,
    memoryMB: settings.memoryMB,
    host: settings.host,
    port: settings.port,
    resources: settings.resources,
    labels: settings.labels,
    id: settings.id,
    network: settings.network,
    killOnExit: settings.killOnExit,
    tls: settings.tls,
    ...extra,
  };
}

/** decommissionSignal: spark.worker.decommission.signal as a Node signal name, or a clear error. */
export function decommissionSignal(config: FlintConfig): NodeJS.Signals {
  const name = `SIG${config.get<string>('spark.worker.decommission.signal')}`;
  if (!(name in osConstants.signals)) throw new Error(`spark.worker.decommission.signal: ${name} is not a signal on this platform`);
  if (['SIGTERM', 'SIGINT', 'SIGKILL', 'SIGSTOP'].includes(name)) throw new Error(`spark.worker.decommission.signal: ${name} is reserved (it stops or kills the worker)`);
  return name as NodeJS.Signals;
}

/**
 * listenForDecommission: with spark.decommission.enabled, the decommission signal makes
 * the agent decommission itself (Spark's WorkerDecommissionSigReceived). Installed before
 * the agent starts and kept until the process ends, because the signal's default action
 * would kill the worker: a signal that comes while the agent registers is applied once
 * it has. Returns `attach` (call with the started agent) and `detach`.
 */
function listenForDecommission(signal: NodeJS.Signals | undefined): { attach(agent: AgentHandle): void; detach(): void } {
  if (signal === undefined) return { attach: () => undefined, detach: () => undefined };
  let agent: AgentHandle | undefined;
  let requested = false;
  const decommission = (target: AgentHandle) => {
    target.decommission().then(
      (acted) => {
        if (acted) process.stdout.write(`flint worker ${target.workerId}: decommissioned on ${signal}; no new executors, running tasks continue\n`);
      },
      (error: unknown) => process.stderr.write(`flint worker ${target.workerId}: decommission on ${signal} failed: ${(error as Error).message}\n`),
    );
  };
  const onSignal = () => {
    if (agent) decommission(agent);
    else requested = true;
  };
  process.on(signal, onSignal);
  return {
    attach(started) {
      agent = started;
      if (requested) decommission(started);
    },
    detach: () => process.off(signal, onSignal),
  };
}

/**
 * runWorker runs one agent until SIGTERM/SIGINT (then exits 0) or until it stops
 * on its own with a fatal error, which it throws as one line.
 */
export async function runWorker(flags: WorkerFlags): Promise<void> {
  let settings: WorkerSettings;
  try {
    settings = workerSettings(flags);
  } catch (error) {
    // configuration errors list one key per line: the command prints one line
    throw new Error((error as Error).message.replace(/:\s*\n\s*/, ': ').replace(/\s*\n\s*/g, '; '), { cause: error });
  }
  // the password is read from its file now and kept in memory only (never on a command line)
  settings = { ...settings, redisUrl: resolveRedisUrl(settings.redisUrl, credentialsFromConfig(settings.config)) };
  // checked before the agent registers: a bad signal name is a start-up error
  const decommissionSignalName = settings.config.get<boolean>('spark.decommission.enabled') ? decommissionSignal(settings.config) : undefined;
  const decommissioning = listenForDecommission(decommissionSignalName);
  try {
    // a fatal stop is reported through `stopped` below, as one line and exit code 1
    const agent = await startAgent(agentOptions(settings, { onFatal: () => undefined }));
    decommissioning.attach(agent);
    process.stdout.write(`flint worker ${agent.workerId} registered (epoch ${agent.epoch()}) with cluster '${agent.cluster}' on ${redactRedisUrl(settings.redisUrl)}; web UI ${agent.webUiUrl}\n`);
    releaseStartupMemory();
    const outcome = await Promise.race([waitForSignal().then(() => undefined), agent.stopped]);
    if (outcome === undefined) {
      await agent.stop();
      return;
    }
    if (outcome.fatal !== undefined) throw new Error(outcome.fatal);
  } finally {
    // only now: until the process ends, the signal must not fall back to its default (terminate)
    decommissioning.detach();
  }
}
