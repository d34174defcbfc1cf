/**
 * The worker agent: Spark's Worker, in one process per host. It registers with
 * the master (through the master queue), heartbeats, reads its inbox stream and
 * runs executors and drivers through a runtime (Docker or local processes).
 *
 * Modes, in order:
 *   1. start: take the worker id kept in the work dir, re-adopt this worker's tasks
 *      found by label (running ones keep running; ones that exited while the agent
 *      was down are reported with their true exit code once registered, unless the
 *      state file says that was already done);
 *   2. registering: RegisterWorker asks on Spark's retry schedule (registration.ts);
 *      inbox commands and state reports wait; RegisterWorkerFailed or giving up is fatal;
 *   3. registered: heartbeat every timeout/4; WorkerLatestState once after each
 *      registration; commands carry the registration epoch, and a command of another
 *      epoch is refused (that is how commands for an older incarnation are dropped);
 *      a heartbeat answered 'reconnect'/'unknown'/'stale' or a ReconnectWorker goes
 *      back to 2 under the same worker id;
 *   4. stopping: heartbeats and inbox reads end, connections close; tasks keep
 *      running for the next agent to re-adopt unless `killOnExit` asks to kill them.
 *
 * Delivery. Inbox entries are acked after handling, so after a crash the pending
 * ones are handled again; handling is idempotent (a launch of a known task adopts
 * it, a launch of a task already reported finished is refused). State reports go
 * through `masterClient.send`, one task at a time in order, each retried with back-off
 * up to spark.worker.executorStateSync.maxAttempts; after that the agent exits, as
 * Spark's does, so that a restarted agent reports again from the runtime's truth.
 */
import { mkdir, readFile, realpath, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { clusterKeys, type Keys } from '../protocol/keys.ts';
import { decodeInboxEntry, INBOX_GROUP, type RawStreamEntry } from '../protocol/streams.ts';
import type { ExecutorDescription, LaunchDriver, LaunchExecutor, MasterInboundMessage, MasterInboundType } from '../protocol/messages.ts';
import type { FlintConfig } from '../protocol/config.ts';
import type { ExecutorState, DriverState } from '../protocol/states.ts';
import { AskRejectedError, AskTimeoutError, MasterClient } from '../client/master-client.ts';
import { connectRedisOrCluster, type RedisConnection } from '../lib/redis.ts';
import { createLogger, type Logger } from '../lib/log.ts';
import { recordHeartbeat, type HeartbeatOutcome } from '../lib/worker-heartbeat.ts';
import type { Runtime, TaskStatus } from './runtime/types.ts';
import { LABEL } from './runtime/task-identity.ts';
import { GIVE_UP_MESSAGE, nextRegistrationStep, registrationFuzz, type RegistrationPlan } from './registration.ts';
import {
  ExecutorRunner,
  LABEL_CORES,
  LABEL_MEMORY,
  buildExecutorSpec,
  executorTaskId,
  executorWorkDir,
  workerUrlFor,
  type ExecutorReport,
  type WorkerContext,
} from './executor-runner.ts';
import { DriverRunner, LABEL_SUPERVISE, buildDriverSpec, driverTaskId, type DriverReport } from './driver-runner.ts';
import { cleanWorkDir } from './work-dir-cleanup.ts';
import { createWorkerUiApp, type WorkerDriverView, type WorkerExecutorView, type WorkerUiSource } from './worker-ui.ts';
import { formatWorkerId, loadOrCreateWorkerId } from './host-defaults.ts';

/** AGENT_STATE_FILE: what the agent remembers across restarts, in the work dir. */
export const AGENT_STATE_FILE = '.flint-agent-state.json';

/** AgentOptions: everything `startAgent` needs; `flint worker` builds them from flags and config. */
export interface AgentOptions {
  redisUrl: string;
  config: FlintConfig;
  /** cluster name; default config.cluster */
  cluster?: string;
  /** the runtime, or a factory called once the worker id is known (runtimes narrow their lookups to one worker) */
  runtime: Runtime | ((worker: { workerId: string; cluster: string }) => Runtime | Promise<Runtime>);
  workDir: string;
  cores: number;
  memoryMB: number;
  /** host the worker registers with and its web UI binds to (default 127.0.0.1) */
  host?: string;
  /** web UI port; 0 = any free port (default spark.worker.ui.port) */
  port?: number;
  resources?: Record<string, string[]>;
  labels?: Record<string, string>;
  /** explicit worker id (--id); otherwise the one kept in the work dir, or a new one */
  id?: string;
  /** container network (default spark.flint.worker.network) */
  network?: 'host' | 'none';
  /** stop (and report KILLED) every task on a graceful stop */
  killOnExit?: boolean;
  logger?: Logger;
  /**
   * onFatal is called when the agent must exit (registration refused or given up,
   * a state report undeliverable). Default: log it and exit the process with code 1.
   * The agent has already stopped (abruptly) when it is called.
   */
  onFatal?: (message: string) => void;
  /** random source for the registration fuzz (tests) */
  random?: () => number;
  /** first back-off of state-report retries in ms (doubles per attempt; default 1000) */
  reportBackoffMs?: number;
  /** how long one state-report attempt may take before it counts as failed (default 3000 ms) */
  reportAttemptTimeoutMs?: number;
  /**
   * the worker web UI: given the agent, returns a fetch handler served on the web UI
   * port (called once the worker id is known). Default: the worker UI of
   * workers/worker-ui.ts (Spark's WorkerPage, `/json`, log pages). `false`: no server
   * (then `port` must be given and is only reported).
   */
  webUi?: false | ((agent: AgentHandle) => { fetch: (request: Request) => Response | Promise<Response> });
}

/** ExecutorView: one executor as the worker UI shows it. */
export interface ExecutorView {
  appId: string;
  execId: number;
  cores: number;
  memoryMB: number;
  state: ExecutorState;
  workDir: string;
  startedAt?: number;
  finishedAt?: number;
  exitStatus?: number;
  message?: string;
  resources?: Record<string, string[]>;
  appDesc?: LaunchExecutor['appDesc'];
}

/** DriverView: one driver as the worker UI shows it. */
export interface DriverView {
  driverId: string;
  cores: number;
  memoryMB: number;
  state: DriverState;
  supervise: boolean;
  relaunches: number;
  workDir: string;
  startedAt?: number;
  finishedAt?: number;
  exitStatus?: number;
  exception?: string;
  mainClass: string;
  resources: Record<string, string[]>;
}

/** AgentView: Spark's WorkerStateResponse, for the worker UI. */
export interface AgentView {
  workerId: string;
  cluster: string;
  epoch: number | undefined;
  registered: boolean;
  decommissioned: boolean;
  host: string;
  port: number;
  webUiUrl: string;
  workerUrl: string;
  runtime: string;
  workDir: string;
  masterUrl: string;
  masterWebUiUrl: string;
  cores: number;
  memoryMB: number;
  coresUsed: number;
  memoryUsed: number;
  resources: Record<string, string[]>;
  resourcesUsed: Record<string, string[]>;
  labels: Record<string, string>;
  executors: ExecutorView[];
  finishedExecutors: ExecutorView[];
  drivers: DriverView[];
  finishedDrivers: DriverView[];
}

/** AgentHandle: what `startAgent` returns. */
export interface AgentHandle {
  readonly workerId: string;
  readonly cluster: string;
  readonly webUiUrl: string;
  /** the current registration epoch (undefined while registering the first time) */
  epoch(): number | undefined;
  /** the executors and drivers the agent has, running and finished (trimmed as Spark trims) */
  view(): AgentView;
  /**
   * stop ends the agent. Graceful (default): stop heartbeating and reading the inbox,
   * kill tasks if killOnExit, close connections. `abrupt`: drop timers and connections
   * at once without touching any task or file, as a SIGKILL would.
   */
  stop(options?: { abrupt?: boolean }): Promise<void>;
  /**
   * decommission: Spark's decommissionSelf on the worker's decommission signal. With
   * spark.decommission.enabled the agent stops taking executors and tells the master
   * (WorkerDecommissioning); running tasks keep running. Returns whether it acted.
   */
  decommission(): Promise<boolean>;
  /** resolves when the agent has stopped, with the reason when it stopped because it had to (see onFatal) */
  readonly stopped: Promise<{ fatal?: string }>;
}

interface AgentStateFile {
  version: 1;
  /** taskId → final state already delivered to the master, oldest first */
  reported: Record<string, string>;
  /** LaunchDriver of every driver not yet finished, for relaunches after an agent restart */
  drivers: Record<string, LaunchDriver>;
  /** set once the worker decommissioned itself: a restarted agent stays decommissioned and tells the master again */
  decommissioned?: boolean;
}

class FatalAgentError extends Error {
  override name = 'FatalAgentError';
}

class AgentStoppedError extends Error {
  override name = 'AgentStoppedError';
}

/** withTimeout rejects with `message` when `promise` takes longer than `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AskTimeoutError(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** trimOldest: Spark's retained-list trimming: once over `limit`, drop max(size/10, 1) of the oldest. */
export function trimOldest<T>(list: T[], limit: number): void {
  if (list.length > limit) list.splice(0, Math.max(Math.floor(list.length / 10), 1));
}

/** startAgent starts a worker agent and resolves once it is registered with the master. */
export async function startAgent(options: AgentOptions): Promise<AgentHandle> {
  const agent = new Agent(options);
  try {
    await agent.start();
  } catch (error) {
    await agent.stop({ abrupt: true });
    throw error;
  }
  return agent;
}

class Agent implements AgentHandle {
  workerId = '';
  readonly cluster: string;
  webUiUrl = '';
  private readonly keys: Keys;
  private readonly config: FlintConfig;
  private runtime!: Runtime;
  private log: Logger;
  private host: string;
  private port: number;
  private workDir: string;
  private workerContext!: WorkerContext;
  private redis?: RedisConnection;
  private blocking?: RedisConnection;
  private masterClient?: MasterClient;
  private server?: ServerType;
  private uiApp?: { fetch: (request: Request) => Response | Promise<Response> };
  private masterUrl = '';
  private masterWebUiUrl = '';

  private currentEpoch: number | undefined;
  private registered = false;
  private registering: Promise<void> | undefined;
  private gate = deferred();
  private decommissioned = false;
  private stopping = false;
  private stopPromise: Promise<void> | undefined;
  private fatalMessage: string | undefined;
  private resolveStopped!: (outcome: { fatal?: string }) => void;
  readonly stopped = new Promise<{ fatal?: string }>((resolve) => (this.resolveStopped = resolve));

  private readonly executors = new Map<string, ExecutorRunner>();
  private readonly drivers = new Map<string, DriverRunner>();
  private readonly finishedExecutors: ExecutorRunner[] = [];
  private readonly finishedDrivers: DriverRunner[] = [];
  private readonly finishedApps = new Set<string>();
  /** per-task chains: commands and reports of one task run one at a time, in order */
  private readonly taskChains = new Map<string, Promise<void>>();
  private readonly reportChains = new Map<string, Promise<void>>();
  private state: AgentStateFile = { version: 1, reported: {}, drivers: {} };
  private stateWrite: Promise<void> = Promise.resolve();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly sleepers = new Set<() => void>();
  private unsubscribeExit: (() => void) | undefined;
  private inboxLoop: Promise<void> | undefined;
  private inflight = new Set<Promise<void>>();
  private orphanCandidates = new Set<string>();

  constructor(private readonly options: AgentOptions) {
    this.config = options.config;
    this.cluster = options.cluster ?? options.config.cluster;
    this.keys = clusterKeys(this.cluster);
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? options.config.get<number>('spark.worker.ui.port');
    this.workDir = options.workDir;
    this.log = options.logger ?? createLogger('worker', { cluster: this.cluster });
    if (!Number.isInteger(options.cores) || options.cores < 1) throw new Error(`worker cores must be a positive integer, got ${options.cores}`);
    if (!Number.isInteger(options.memoryMB) || options.memoryMB < 1) throw new Error(`worker memory must be a positive number of MB, got ${options.memoryMB}`);
  }

  epoch(): number | undefined {
    return this.currentEpoch;
  }

  // ------------------------------------------------------------------ start

  async start(): Promise<void> {
    await mkdir(this.workDir, { recursive: true });
    this.workDir = await realpath(this.workDir);
    await this.startWebUi();
    this.workerId = await loadOrCreateWorkerId(
      this.workDir,
      () => formatWorkerId(this.config.get<string>('spark.worker.idPattern'), Date.now(), this.host, this.port),
      this.options.id,
    );
    this.log = this.log.child({ workerId: this.workerId });
    this.workerContext = {
      workerId: this.workerId,
      cluster: this.cluster,
      host: this.host,
      webUiUrl: this.webUiUrl,
      workerUrl: workerUrlFor(this.cluster, this.workerId),
      workDir: this.workDir,
      network: this.options.network ?? this.config.get<'host' | 'none'>('spark.flint.worker.network'),
      pidsLimit: this.config.get<number>('spark.flint.worker.pidsLimit'),
    };
    const runtime = this.options.runtime;
    this.runtime = typeof runtime === 'function' ? await runtime({ workerId: this.workerId, cluster: this.cluster }) : runtime;
    this.attachWebUi();
    this.state = await this.loadState();
    if (this.state.decommissioned) this.decommissioned = true;
    this.redis = await connectRedisOrCluster(this.options.redisUrl, { name: `flint-worker-${this.workerId}` });
    this.blocking = await connectRedisOrCluster(this.options.redisUrl, { name: `flint-worker-${this.workerId}-inbox`, blocking: true });
    // errors surface on commands; without a listener ioredis would print every reconnect failure
    this.redis.on('error', () => undefined);
    this.blocking.on('error', () => undefined);
    this.masterClient = new MasterClient(this.options.redisUrl, this.cluster, `flint-worker-${this.workerId}`);
    this.unsubscribeExit = this.runtime.onExit((taskId, exit) => {
      const executor = this.executors.get(taskId);
      if (executor !== undefined) void executor.observeExit(exit).catch((error) => this.log.warn({ err: error, taskId }, 'exit handling failed'));
      const driver = this.drivers.get(taskId);
      if (driver !== undefined && driver.handle !== undefined) {
        // the event may belong to a previous run of a relaunched driver: check the current task first
        void this.checkDriverExit(driver).catch((error) => this.log.warn({ err: error, taskId }, 'exit handling failed'));
      }
    });
    await this.adoptTasks();
    this.log.info({ host: this.host, port: this.port, cores: this.options.cores, memoryMB: this.options.memoryMB, workDir: this.workDir, runtime: this.runtime.name }, `Starting Flint worker ${this.workerId}`);
    await this.registerWithMaster('start');
    this.scheduleHeartbeat();
    this.scheduleRelist();
    this.scheduleCleanup();
    this.inboxLoop = this.readInbox().catch((error) => {
      if (!this.stopping) this.fatal(`inbox reader failed: ${(error as Error).message}`);
    });
  }

  /** startWebUi listens first (the port is part of a new worker id); the app is attached once the id is known. */
  private async startWebUi(): Promise<void> {
    if (this.options.webUi === false) {
      if (!(this.port > 0)) throw new Error('a worker without a web UI needs an explicit port (--port > 0)');
      this.webUiUrl = `http://${this.host}:${this.port}`;
      return;
    }
    const server = serve({
      fetch: (request: Request) => (this.uiApp ? this.uiApp.fetch(request) : new Response('worker starting', { status: 503 })),
      port: this.port,
      hostname: this.host,
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', (error: Error) => reject(new Error(`cannot listen on ${this.host}:${this.port} for the worker web UI: ${error.message}`, { cause: error })));
    });
    this.port = (server.address() as AddressInfo).port;
    this.webUiUrl = `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  private attachWebUi(): void {
    if (this.options.webUi === false) return;
    this.uiApp = this.options.webUi ? this.options.webUi(this) : createWorkerUiApp(workerUiSource(this));
  }

  // ------------------------------------------------------------------ re-adoption

  /**
   * adoptTasks: Nomad's RecoverTask for every task of this worker found by label.
   * Running ones get a runner again; exited ones are settled once registered
   * (their report waits for the registration gate), or just removed if the state
   * file says their final state was already delivered.
   */
  private async adoptTasks(): Promise<void> {
    const tasks = await this.runtime.list(this.workerId, this.cluster);
    for (const status of tasks) {
      try {
        await this.adoptTask(status);
      } catch (error) {
        this.log.error({ err: error, taskId: status.taskId }, 'could not re-adopt task; leaving it for the relist');
      }
    }
  }

  private async adoptTask(status: TaskStatus): Promise<void> {
    const labels = status.labels;
    const kind = labels[LABEL.kind];
    const reported = this.state.reported[status.taskId];
    if (reported !== undefined && !status.running) {
      this.log.info({ taskId: status.taskId, state: reported }, 'removing a finished task whose state was already reported');
      await this.runtime.remove(status.taskId);
      return;
    }
    const cores = Number(labels[LABEL_CORES] ?? '1');
    const memoryMB = Number(labels[LABEL_MEMORY] ?? '0');
    await this.runtime.recover(status);
    if (kind === 'executor') {
      const appId = labels[LABEL.app];
      const execId = Number(labels[LABEL.executor]);
      if (appId === undefined || !Number.isInteger(execId)) throw new Error(`executor task ${status.taskId} lacks its app or executor label`);
      const runner = new ExecutorRunner({ appId, execId, cores, memoryMB, workDir: executorWorkDir(this.workDir, appId, execId) }, this.executorDeps());
      this.executors.set(runner.taskId, runner);
      runner.adopt(status);
      this.log.info({ appId, execId, running: status.running, exitCode: status.exitCode }, 're-adopted executor');
    } else if (kind === 'driver') {
      const driverId = labels[LABEL.driver];
      if (driverId === undefined) throw new Error(`driver task ${status.taskId} lacks its driver label`);
      let launch = this.state.drivers[driverId];
      if (launch === undefined) {
        this.log.warn({ driverId }, 'no launch record for a re-adopted driver (state file lost?): it will not be relaunched if it fails');
        launch = {
          driverId,
          epoch: 1,
          resources: {},
          driverDesc: {
            name: driverId, appResource: '', mainClass: '', image: 'unknown', command: [], env: {}, memoryMB: Math.max(memoryMB, 6), cores,
            supervise: false, resourceReqs: [], sparkProperties: {},
          },
        };
      }
      const runner = new DriverRunner(launch, buildDriverSpec(launch, this.workerContext), this.driverDeps());
      this.drivers.set(runner.taskId, runner);
      runner.adopt(status);
      this.log.info({ driverId, running: status.running, exitCode: status.exitCode, supervise: labels[LABEL_SUPERVISE] }, 're-adopted driver');
    } else {
      throw new Error(`task ${status.taskId} has an unknown kind '${kind}'`);
    }
  }

  // ------------------------------------------------------------------ registration

  private executorDescriptions(): ExecutorDescription[] {
    return [...this.executors.values()]
      .filter((runner) => !runner.isFinished)
      .map((runner) => ({ appId: runner.info.appId, execId: runner.info.execId, cores: runner.info.cores, memoryMB: runner.info.memoryMB, state: runner.state }));
  }

  private driverIds(): string[] {
    return [...this.drivers.values()].filter((runner) => !runner.isFinished).map((runner) => runner.driverId);
  }

  /**
   * registerWithMaster (Spark's registerWithMaster): a no-op while a registration is
   * under way; otherwise closes the gate (commands and reports wait) and registers.
   */
  private registerWithMaster(reason: string): Promise<void> {
    if (this.registering !== undefined) return this.registering;
    if (this.registered) this.log.warn({ reason }, 'registering with the master again');
    this.registered = false;
    if (this.gate.settled) this.gate = deferred();
    this.registering = this.registerWithRetries()
      .then((result) => this.afterRegistered(result))
      .finally(() => {
        this.registering = undefined;
      });
    return this.registering;
  }

  private async registerWithRetries(): Promise<{ epoch: number; duplicate: boolean; masterUrl?: string; masterWebUiUrl?: string }> {
    const plan: RegistrationPlan = {
      baseIntervalMs: this.config.get<number>('spark.flint.worker.registrationInterval'),
      initialRetries: this.config.get<number>('spark.worker.initialRegistrationRetries'),
      maxRetries: this.config.get<number>('spark.worker.maxRegistrationRetries'),
      fuzz: registrationFuzz(this.options.random),
    };
    for (let retriesDone = 0; ; retriesDone++) {
      if (this.stopping) throw new AgentStoppedError('agent stopped while registering');
      const step = nextRegistrationStep(retriesDone, plan);
      const started = Date.now();
      try {
        const reply = await withTimeout(
          this.masterClient!.ask<unknown, 'RegisterWorker'>('RegisterWorker', this.registerBody(), step.delayMs),
          step.delayMs + 1000,
          `no reply to RegisterWorker within ${step.delayMs} ms`,
        );
        const parsed = parseRegisterReply(reply);
        if (parsed.type === 'RegisteredWorker') return parsed;
        throw new FatalAgentError(`Worker registration failed: ${parsed.message}`);
      } catch (error) {
        if (error instanceof FatalAgentError) throw error;
        if (this.stopping) throw new AgentStoppedError('agent stopped while registering');
        this.log.warn({ attempt: retriesDone + 1, error: (error as Error).message }, 'no answer from the master; will retry');
        await this.sleep(step.delayMs - (Date.now() - started));
      }
      if (step.action === 'give-up') throw new FatalAgentError(GIVE_UP_MESSAGE);
      this.log.info({ retry: step.retry }, 'Retrying connection to master');
    }
  }

  private registerBody(): MasterInboundMessage<'RegisterWorker'> {
    return {
      id: this.workerId,
      host: this.host,
      port: this.port,
      cores: this.options.cores,
      memoryMB: this.options.memoryMB,
      webUiUrl: this.webUiUrl,
      resources: this.options.resources ?? {},
      labels: this.options.labels ?? {},
      executors: this.executorDescriptions(),
      driverIds: this.driverIds(),
    };
  }

  /** afterRegistered: open the gate (commands and reports flow again), then tell the master what runs here. */
  private afterRegistered(result: { epoch: number; duplicate: boolean; masterUrl?: string; masterWebUiUrl?: string }): void {
    if (this.stopping) throw new AgentStoppedError('agent stopped while registering');
    if (result.duplicate) this.log.warn({ epoch: result.epoch }, 'Duplicate registration at master: keeping epoch');
    if (this.currentEpoch !== undefined && this.currentEpoch !== result.epoch) {
      this.log.warn({ previous: this.currentEpoch, epoch: result.epoch }, 'registered under a new epoch: commands for the old one will be refused');
    }
    this.currentEpoch = result.epoch;
    this.masterUrl = result.masterUrl ?? this.masterUrl;
    this.masterWebUiUrl = result.masterWebUiUrl ?? this.masterWebUiUrl;
    this.registered = true;
    this.gate.resolve();
    this.log.info({ epoch: result.epoch, duplicate: result.duplicate }, 'Successfully registered with master');
    const executors = this.executorDescriptions();
    const driverIds = this.driverIds();
    void this.deliver('WorkerLatestState', (epoch) => ({ id: this.workerId, epoch, executors, driverIds })).catch((error) => {
      if (!(error instanceof AgentStoppedError)) this.log.warn({ err: error }, 'WorkerLatestState not delivered');
    });
    // a worker that decommissioned itself stays so across restarts and re-registrations
    if (this.state.decommissioned) void this.tellMasterDecommissioned();
  }

  // ------------------------------------------------------------------ heartbeat

  private scheduleHeartbeat(): void {
    const interval = Math.max(Math.floor(this.config.workerTimeoutMs / 4), 10);
    const beat = async () => {
      if (this.stopping) return;
      if (this.registered && this.currentEpoch !== undefined) {
        try {
          const outcome = await recordHeartbeat(this.redis!, this.cluster, this.workerId, this.currentEpoch);
          this.onHeartbeatOutcome(outcome);
        } catch (error) {
          if (!this.stopping) this.log.warn({ err: error }, 'heartbeat failed; retrying at the next beat');
        }
      }
      if (!this.stopping) this.timer(beat, interval);
    };
    this.timer(beat, interval);
  }

  private onHeartbeatOutcome(outcome: HeartbeatOutcome): void {
    if (outcome === 'ok' || !this.registered) return;
    if (outcome === 'stale') this.log.warn({ epoch: this.currentEpoch }, 'the master knows a newer registration of this worker id; registering again');
    else this.log.warn({ outcome }, 'the master asked this worker to reconnect');
    void this.reregister(`heartbeat answered ${outcome}`);
  }

  private async reregister(reason: string): Promise<void> {
    try {
      await this.registerWithMaster(reason);
    } catch (error) {
      if (error instanceof AgentStoppedError || this.stopping) return;
      this.fatal((error as Error).message);
    }
  }

  // ------------------------------------------------------------------ inbox

  private async ensureGroup(): Promise<void> {
    try {
      await this.redis!.xgroup('CREATE', this.keys.workerInbox(this.workerId), INBOX_GROUP, '0', 'MKSTREAM');
    } catch (error) {
      if (!/BUSYGROUP/.test((error as Error).message)) throw error;
    }
  }

  /** readInbox: pending entries of this consumer first (a previous run died before acking), then new ones. */
  private async readInbox(): Promise<void> {
    const stream = this.keys.workerInbox(this.workerId);
    await this.ensureGroup();
    let pendingCursor = '0';
    while (!this.stopping) {
      const entries = await this.readGroup(['COUNT', '64', 'STREAMS', stream, pendingCursor]);
      if (entries === undefined) continue;
      if (entries.length === 0) break;
      for (const entry of entries) {
        if (this.stopping) return;
        const { work } = await this.admit(entry);
        await this.ackAfter(entry[0], work);
        pendingCursor = entry[0];
      }
    }
    while (!this.stopping) {
      const entries = await this.readGroup(['COUNT', '64', 'BLOCK', '2000', 'STREAMS', stream, '>']);
      if (entries === undefined) continue;
      for (const entry of entries) {
        if (this.stopping) return;
        // bound the work in flight; the order of one task's commands is kept by its task chain
        while (this.inflight.size >= 64) await Promise.race(this.inflight);
        const { work } = await this.admit(entry);
        const acked = this.ackAfter(entry[0], work);
        this.inflight.add(acked);
        void acked.finally(() => this.inflight.delete(acked));
      }
    }
  }

  /** readGroup: one XREADGROUP; undefined after a transient error (logged, retried after a pause). */
  private async readGroup(tail: string[]): Promise<RawStreamEntry[] | undefined> {
    try {
      // the typed command, not `call`: ioredis normalises the reply shape only there
      const xreadgroup = this.blocking!.xreadgroup.bind(this.blocking) as unknown as (...args: string[]) => Promise<[string, RawStreamEntry[]][] | null>;
      const result = await xreadgroup('GROUP', INBOX_GROUP, this.workerId, ...tail);
      const entries = result?.[0]?.[1] ?? [];
      if (!Array.isArray(entries)) throw new Error(`unexpected XREADGROUP reply: ${JSON.stringify(result).slice(0, 200)}`);
      return entries;
    } catch (error) {
      if (this.stopping) return undefined;
      const message = (error as Error).message;
      if (/NOGROUP/.test(message)) {
        this.log.warn('inbox consumer group missing (stream deleted?); creating it again');
        await this.ensureGroup().catch(() => undefined);
      } else {
        this.log.warn({ error: message }, 'inbox read failed; retrying');
      }
      await this.sleep(500);
      return undefined;
    }
  }

  /**
   * admit decodes and checks one inbox entry, in stream order, and starts its work.
   * Nothing here throws: an invalid or refused entry is logged (and then acked).
   * Commands wait while the agent (re-)registers, so a command of the coming epoch
   * is not refused; a command of any other epoch is.
   */
  private async admit(entry: RawStreamEntry): Promise<{ work: Promise<void> }> {
    const [id] = entry;
    const decoded = decodeInboxEntry(entry);
    if (!decoded.parsed.ok) {
      this.log.error({ entryId: id, type: decoded.type, reason: decoded.parsed.reason }, 'invalid inbox entry dropped');
      return { work: Promise.resolve() };
    }
    try {
      await this.whenRegistered();
    } catch (error) {
      return { work: Promise.reject(error as Error) };
    }
    const { type, body } = decoded.parsed.value;
    const commandEpoch = (body as { epoch?: number }).epoch;
    if (commandEpoch !== undefined && commandEpoch !== this.currentEpoch) {
      this.log.warn({ entryId: id, type, commandEpoch, epoch: this.currentEpoch }, 'refusing a command for another registration epoch of this worker');
      return { work: Promise.resolve() };
    }
    return { work: this.dispatch(type, body) };
  }

  /** ackAfter acks the entry once its work is done (failed work is logged and acked too; a stop leaves it pending). */
  private async ackAfter(id: string, work: Promise<void>): Promise<void> {
    try {
      await work;
    } catch (error) {
      if (this.stopping || error instanceof AgentStoppedError) return; // not acked: the next agent handles it again
      this.log.error({ err: error, entryId: id }, 'inbox command failed');
    }
    if (this.stopping) return;
    try {
      await this.redis!.xack(this.keys.workerInbox(this.workerId), INBOX_GROUP, id);
    } catch (error) {
      this.log.warn({ err: error, entryId: id }, 'could not ack inbox entry (it will be handled again, idempotently)');
    }
  }

  private whenRegistered(): Promise<void> {
    if (this.stopping) return Promise.reject(new AgentStoppedError('agent stopped'));
    return this.gate.promise;
  }

  private dispatch(type: string, body: unknown): Promise<void> {
    switch (type) {
      case 'LaunchExecutor': {
        const launch = body as LaunchExecutor;
        return this.onTask(executorTaskId(launch.appId, launch.execId), () => this.launchExecutor(launch));
      }
      case 'KillExecutor': {
        const { appId, execId } = body as { appId: string; execId: number };
        return this.onTask(executorTaskId(appId, execId), () => this.killExecutor(appId, execId));
      }
      case 'LaunchDriver': {
        const launch = body as LaunchDriver;
        return this.onTask(driverTaskId(launch.driverId), () => this.launchDriver(launch));
      }
      case 'KillDriver': {
        const { driverId } = body as { driverId: string };
        return this.onTask(driverTaskId(driverId), () => this.killDriver(driverId));
      }
      case 'ApplicationFinished': {
        const { id } = body as { id: string };
        this.finishedApps.add(id);
        this.log.info({ appId: id }, 'application finished');
        return Promise.resolve();
      }
      case 'ReconnectWorker':
        void this.reregister('the master sent ReconnectWorker');
        return Promise.resolve();
      case 'DecommissionWorker':
        // remembered, so that a restarted agent registers and at once decommissions again
        if (this.decommissionSelf()) return this.updateState((file) => (file.decommissioned = true));
        return Promise.resolve();
      default:
        this.log.error({ type }, 'unhandled inbox command');
        return Promise.resolve();
    }
  }

  /** onTask runs `work` after every earlier command of the same task. */
  private onTask(taskId: string, work: () => Promise<void>): Promise<void> {
    const previous = this.taskChains.get(taskId) ?? Promise.resolve();
    const next = previous.then(work, work);
    const tail = next.catch(() => undefined);
    this.taskChains.set(taskId, tail);
    void tail.then(() => {
      if (this.taskChains.get(taskId) === tail) this.taskChains.delete(taskId);
    });
    return next;
  }

  // ------------------------------------------------------------------ executors

  private async launchExecutor(launch: LaunchExecutor): Promise<void> {
    const taskId = executorTaskId(launch.appId, launch.execId);
    const fields = { appId: launch.appId, execId: launch.execId };
    if (this.decommissioned) {
      this.log.warn(fields, 'Worker is decommissioned: ignoring LaunchExecutor');
      return;
    }
    const known = this.executors.get(taskId);
    if (known !== undefined) {
      this.log.info({ ...fields, state: known.state }, 'executor already known here: adopting, not starting a second one');
      return;
    }
    if (this.state.reported[taskId] !== undefined) {
      this.log.warn({ ...fields, state: this.state.reported[taskId] }, 'executor already ran and finished here: refusing to launch it again');
      return;
    }
    this.log.info({ ...fields, cores: launch.cores, memoryMB: launch.memoryMB, image: launch.appDesc.image }, `Asked to launch executor ${launch.appId}/${launch.execId} for ${launch.appDesc.name}`);
    const spec = buildExecutorSpec(launch, this.workerContext);
    const runner = new ExecutorRunner(
      { appId: launch.appId, execId: launch.execId, cores: launch.cores, memoryMB: launch.memoryMB, workDir: spec.workDir, resources: launch.resources, appDesc: launch.appDesc },
      this.executorDeps(),
    );
    this.executors.set(taskId, runner);
    await runner.launch(spec);
  }

  private async killExecutor(appId: string, execId: number): Promise<void> {
    const runner = this.executors.get(executorTaskId(appId, execId));
    if (runner === undefined || runner.isFinished) {
      this.log.info({ appId, execId }, `Asked to kill unknown or finished executor ${appId}/${execId}`);
      return;
    }
    this.log.info({ appId, execId }, `Asked to kill executor ${appId}/${execId}`);
    await runner.kill();
  }

  private executorDeps() {
    return {
      runtime: this.runtime,
      log: this.log,
      stopGraceMs: this.config.get<number>('spark.flint.worker.stopGracePeriod'),
      now: () => Date.now(),
      report: (runner: ExecutorRunner, report: ExecutorReport) => this.report(runner.taskId, 'ExecutorStateChanged', (epoch) => ({ ...report, workerId: this.workerId, epoch })),
      finished: (runner: ExecutorRunner, report: ExecutorReport) => this.executorFinished(runner, report),
    };
  }

  private async executorFinished(runner: ExecutorRunner, report: ExecutorReport): Promise<void> {
    this.log.info({ appId: runner.info.appId, execId: runner.info.execId, state: report.state, exitStatus: report.exitStatus }, `Executor ${runner.info.appId}/${runner.info.execId} finished with state ${report.state}`);
    await this.rememberReported(runner.taskId, report.state);
    await this.removeTask(runner.taskId);
    if (this.executors.get(runner.taskId) === runner) this.executors.delete(runner.taskId);
    this.finishedExecutors.push(runner);
    trimOldest(this.finishedExecutors, this.config.get<number>('spark.worker.ui.retainedExecutors'));
  }

  // ------------------------------------------------------------------ drivers

  private async launchDriver(launch: LaunchDriver): Promise<void> {
    const taskId = driverTaskId(launch.driverId);
    const known = this.drivers.get(taskId);
    if (known !== undefined) {
      this.log.info({ driverId: launch.driverId }, 'driver already known here: adopting, not starting a second one');
      return;
    }
    if (this.state.reported[taskId] !== undefined) {
      this.log.warn({ driverId: launch.driverId, state: this.state.reported[taskId] }, 'driver already ran and finished here: refusing to launch it again');
      return;
    }
    this.log.info({ driverId: launch.driverId, image: launch.driverDesc.image }, `Asked to launch driver ${launch.driverId}`);
    const runner = new DriverRunner(launch, buildDriverSpec(launch, this.workerContext), this.driverDeps());
    this.drivers.set(taskId, runner);
    await this.updateState((state) => {
      state.drivers[launch.driverId] = launch;
    });
    await runner.launch();
  }

  private async killDriver(driverId: string): Promise<void> {
    const runner = this.drivers.get(driverTaskId(driverId));
    if (runner === undefined || runner.isFinished) {
      this.log.error({ driverId }, `Asked to kill unknown driver ${driverId}`);
      return;
    }
    this.log.info({ driverId }, `Asked to kill driver ${driverId}`);
    await runner.kill();
  }

  private driverDeps() {
    return {
      runtime: this.runtime,
      log: this.log,
      stopGraceMs: this.config.get<number>('spark.worker.driverTerminateTimeout'),
      now: () => Date.now(),
      report: (runner: DriverRunner, report: DriverReport) => this.report(runner.taskId, 'DriverStateChanged', (epoch) => ({ ...report, workerId: this.workerId, epoch })),
      finished: (runner: DriverRunner, report: DriverReport) => this.driverFinished(runner, report),
      sleepSeconds: (seconds: number, cancelled: () => boolean) => this.sleepSeconds(seconds, cancelled),
    };
  }

  private async driverFinished(runner: DriverRunner, report: DriverReport): Promise<void> {
    const level = report.state === 'ERROR' || report.state === 'FAILED' ? 'warn' : 'info';
    this.log[level]({ driverId: runner.driverId, state: report.state, exitStatus: report.exitStatus, exception: report.exception }, `Driver ${runner.driverId} finished with state ${report.state}`);
    await this.rememberReported(runner.taskId, report.state, runner.driverId);
    await this.removeTask(runner.taskId);
    if (this.drivers.get(runner.taskId) === runner) this.drivers.delete(runner.taskId);
    this.finishedDrivers.push(runner);
    trimOldest(this.finishedDrivers, this.config.get<number>('spark.worker.ui.retainedDrivers'));
  }

  /** checkDriverExit: an exit event for a driver's task id settles it only if the current task has exited. */
  private async checkDriverExit(runner: DriverRunner): Promise<void> {
    const handle = runner.handle;
    const status = await this.runtime.inspect(runner.taskId);
    if (status === undefined || status.running || status.exitCode === undefined || status.handle !== handle || runner.handle !== handle) return;
    await runner.observeExit({ exitCode: status.exitCode, oomKilled: status.oomKilled ?? false, stopped: runner.killed });
  }

  private async removeTask(taskId: string): Promise<void> {
    if (this.stopping) return;
    try {
      await this.runtime.remove(taskId);
    } catch (error) {
      this.log.warn({ err: error, taskId }, 'could not remove a finished task (the relist retries)');
    }
  }

  // ------------------------------------------------------------------ state reports

  /**
   * report delivers one state report of a task, after every earlier report of the
   * same task, with the registration epoch current at delivery. Retried with
   * back-off (1, 2, 4, ... s); after spark.worker.executorStateSync.maxAttempts the
   * agent exits.
   */
  private report<T extends 'ExecutorStateChanged' | 'DriverStateChanged'>(
    taskId: string,
    type: T,
    build: (epoch: number) => MasterInboundMessage<T>,
  ): Promise<void> {
    const previous = this.reportChains.get(taskId) ?? Promise.resolve();
    const next = previous.then(() => this.deliver(type, build));
    const tail = next.catch(() => undefined);
    this.reportChains.set(taskId, tail);
    void tail.then(() => {
      if (this.reportChains.get(taskId) === tail) this.reportChains.delete(taskId);
    });
    return next;
  }

  /** deliver sends a report until the master applies it; after the last attempt the agent exits (fatal) unless `fatalOnGiveUp` is false, then it throws. */
  private async deliver<T extends MasterInboundType>(type: T, build: (epoch: number) => MasterInboundMessage<T>, { fatalOnGiveUp = true } = {}): Promise<void> {
    const maxAttempts = this.config.get<number>('spark.worker.executorStateSync.maxAttempts');
    const backoff = this.options.reportBackoffMs ?? 1000;
    const attemptTimeout = this.options.reportAttemptTimeoutMs ?? 10_000;
    let lastError: unknown;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      await this.whenRegistered();
      const body = build(this.currentEpoch!);
      try {
        // an ask, as Spark's Worker does since SPARK-34245: the next report of this task is
        // only sent once the master has applied this one, so RUNNING can never overtake LAUNCHING's
        // successor on a master that handles messages concurrently
        await this.masterClient!.ask(type, body, attemptTimeout);
        return;
      } catch (error) {
        if (this.stopping) throw new AgentStoppedError('agent stopped');
        if (error instanceof AskRejectedError) {
          // the master refused this report for good (it is dead-lettered with the reason): retrying cannot help
          this.log.error({ type, error: error.message }, 'state report refused by the master');
          return;
        }
        lastError = error;
        this.log.warn({ type, attempt, maxAttempts, error: (error as Error).message }, 'state report not delivered; retrying');
        if (attempt < maxAttempts) await this.sleep(backoff * 2 ** (attempt - 1));
      }
    }
    const message = `cannot deliver ${type} to the master after ${maxAttempts} attempts (last error: ${(lastError as Error)?.message})`;
    if (!fatalOnGiveUp) throw new Error(message);
    this.fatal(`${message}; exiting so that a restarted agent reports it again`);
    throw new AgentStoppedError(message);
  }

  // ------------------------------------------------------------------ state file

  private statePath(): string {
    return join(this.workDir, AGENT_STATE_FILE);
  }

  private async loadState(): Promise<AgentStateFile> {
    try {
      const parsed = JSON.parse(await readFile(this.statePath(), 'utf8')) as Partial<AgentStateFile>;
      return {
        version: 1,
        reported: parsed.reported && typeof parsed.reported === 'object' ? parsed.reported : {},
        drivers: parsed.drivers && typeof parsed.drivers === 'object' ? parsed.drivers : {},
        ...(parsed.decommissioned === true ? { decommissioned: true } : {}),
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.log.warn({ err: error, file: this.statePath() }, 'agent state file unreadable; starting without it (finished tasks may be reported twice)');
      }
      return { version: 1, reported: {}, drivers: {} };
    }
  }

  private updateState(change: (state: AgentStateFile) => void): Promise<void> {
    change(this.state);
    const write = async () => {
      const tmp = `${this.statePath()}.tmp`;
      await writeFile(tmp, JSON.stringify(this.state));
      await rename(tmp, this.statePath());
    };
    this.stateWrite = this.stateWrite.then(write, write);
    return this.stateWrite;
  }

  private rememberReported(taskId: string, state: string, driverId?: string): Promise<void> {
    const limit = Math.max(this.config.get<number>('spark.worker.ui.retainedExecutors') + this.config.get<number>('spark.worker.ui.retainedDrivers'), 1000);
    return this.updateState((file) => {
      delete file.reported[taskId];
      file.reported[taskId] = state;
      const keys = Object.keys(file.reported);
      for (const old of keys.slice(0, Math.max(0, keys.length - limit))) delete file.reported[old];
      if (driverId !== undefined) delete file.drivers[driverId];
    });
  }

  // ------------------------------------------------------------------ relist and cleanup

  /**
   * scheduleRelist: events can be missed, so every relist interval the agent asks
   * the runtime about each task it runs, and removes labelled tasks nobody owns
   * (seen twice in a row, so a launch in progress is never mistaken for one).
   */
  private scheduleRelist(): void {
    const interval = this.config.get<number>('spark.flint.worker.relistInterval');
    const relist = async () => {
      if (this.stopping) return;
      try {
        await this.relistOnce();
      } catch (error) {
        if (!this.stopping) this.log.warn({ err: error }, 'relist failed; retrying next interval');
      }
      if (!this.stopping) this.timer(relist, interval);
    };
    this.timer(relist, interval);
  }

  private async relistOnce(): Promise<void> {
    for (const runner of [...this.executors.values()]) {
      if (runner.isFinished || runner.handle === undefined || this.taskChains.has(runner.taskId)) continue;
      const status = await this.runtime.inspect(runner.taskId);
      if (this.stopping || runner.isFinished) return;
      if (status === undefined) {
        await this.onTask(runner.taskId, () =>
          runner.settle({ appId: runner.info.appId, execId: runner.info.execId, state: 'FAILED', message: 'the executor task disappeared from the runtime (removed outside Flint)' }),
        );
      } else if (!status.running && status.exitCode !== undefined && status.handle === runner.handle) {
        const exit = await withTimeout(this.runtime.wait(runner.taskId), 5000, 'wait').catch(() => ({ exitCode: status.exitCode!, oomKilled: status.oomKilled ?? false, stopped: runner.killed }));
        await runner.observeExit(exit);
      }
    }
    for (const runner of [...this.drivers.values()]) {
      if (runner.isFinished || runner.handle === undefined || this.taskChains.has(runner.taskId)) continue;
      const status = await this.runtime.inspect(runner.taskId);
      if (this.stopping || runner.isFinished) return;
      if (status === undefined) {
        if (runner.handle !== undefined) await runner.observeExit({ exitCode: -1, oomKilled: false, stopped: runner.killed });
      } else if (!status.running && status.exitCode !== undefined) {
        await this.checkDriverExit(runner);
      }
    }
    const listed = await this.runtime.list(this.workerId, this.cluster);
    const orphans = new Set<string>();
    for (const status of listed) {
      const known = this.executors.has(status.taskId) || this.drivers.has(status.taskId) || this.taskChains.has(status.taskId);
      if (known) continue;
      orphans.add(status.taskId);
      if (!this.orphanCandidates.has(status.taskId)) continue;
      this.log.warn({ taskId: status.taskId, running: status.running }, 'removing a task of this worker that no runner owns');
      await this.runtime.remove(status.taskId).catch((error) => this.log.warn({ err: error, taskId: status.taskId }, 'could not remove orphan task'));
      orphans.delete(status.taskId);
    }
    this.orphanCandidates = orphans;
  }

  private scheduleCleanup(): void {
    if (!this.config.get<boolean>('spark.worker.cleanup.enabled')) return;
    const interval = this.config.get<number>('spark.worker.cleanup.interval');
    const ttl = this.config.get<number>('spark.worker.cleanup.appDataTtl');
    const cleanup = async () => {
      if (this.stopping) return;
      try {
        const appIds = new Set([...this.executors.values()].filter((r) => !r.isFinished).map((r) => r.info.appId));
        const driverIds = new Set(this.driverIds());
        const deleted = await cleanWorkDir(this.workDir, { appIds, driverIds }, Date.now(), ttl);
        if (deleted.length > 0) this.log.info({ deleted }, 'work-dir cleanup removed old application directories');
        for (const name of deleted) this.finishedApps.delete(name);
      } catch (error) {
        this.log.warn({ err: error }, 'work-dir cleanup failed');
      }
      if (!this.stopping) this.timer(cleanup, interval);
    };
    this.timer(cleanup, interval);
  }

  // ------------------------------------------------------------------ view

  view(): AgentView {
    const executorView = (runner: ExecutorRunner): ExecutorView => ({
      appId: runner.info.appId,
      execId: runner.info.execId,
      cores: runner.info.cores,
      memoryMB: runner.info.memoryMB,
      state: runner.state,
      workDir: runner.info.workDir,
      startedAt: runner.startedAt,
      finishedAt: runner.finishedAt,
      exitStatus: runner.finalReport?.exitStatus,
      message: runner.finalReport?.message,
      resources: runner.info.resources,
      appDesc: runner.info.appDesc,
    });
    const driverView = (runner: DriverRunner): DriverView => ({
      driverId: runner.driverId,
      cores: runner.launchMessage.driverDesc.cores,
      memoryMB: runner.launchMessage.driverDesc.memoryMB,
      state: runner.state,
      supervise: runner.supervise,
      relaunches: runner.relaunches,
      workDir: runner.spec.workDir,
      startedAt: runner.startedAt,
      finishedAt: runner.finishedAt,
      exitStatus: runner.finalReport?.exitStatus,
      exception: runner.finalReport?.exception,
      mainClass: runner.launchMessage.driverDesc.mainClass,
      resources: runner.launchMessage.resources,
    });
    const executors = [...this.executors.values()].filter((r) => !r.isFinished);
    const drivers = [...this.drivers.values()].filter((r) => !r.isFinished);
    return {
      workerId: this.workerId,
      cluster: this.cluster,
      epoch: this.currentEpoch,
      registered: this.registered,
      decommissioned: this.decommissioned,
      host: this.host,
      port: this.port,
      webUiUrl: this.webUiUrl,
      workerUrl: this.workerContext?.workerUrl ?? '',
      runtime: this.runtime?.name ?? 'none',
      workDir: this.workDir,
      masterUrl: this.masterUrl,
      masterWebUiUrl: this.masterWebUiUrl,
      cores: this.options.cores,
      memoryMB: this.options.memoryMB,
      coresUsed: executors.reduce((n, r) => n + r.info.cores, 0) + drivers.reduce((n, r) => n + r.launchMessage.driverDesc.cores, 0),
      memoryUsed: executors.reduce((n, r) => n + r.info.memoryMB, 0) + drivers.reduce((n, r) => n + r.launchMessage.driverDesc.memoryMB, 0),
      resources: this.options.resources ?? {},
      resourcesUsed: mergeResources([...executors.map((r) => r.info.resources ?? {}), ...drivers.map((r) => r.launchMessage.resources)]),
      labels: this.options.labels ?? {},
      executors: executors.map(executorView),
      finishedExecutors: [...this.finishedExecutors].map(executorView),
      drivers: drivers.map(driverView),
      finishedDrivers: [...this.finishedDrivers].map(driverView),
    };
  }

  // ------------------------------------------------------------------ decommissioning

  /** decommissionSelf: Spark's Worker.decommissionSelf; true when the feature is enabled. */
  private decommissionSelf(): boolean {
    if (!this.config.get<boolean>('spark.decommission.enabled')) {
      this.log.warn('Receive decommission request, but decommission feature is disabled.');
      return false;
    }
    if (this.decommissioned) this.log.warn('Worker already decommissioned');
    this.decommissioned = true;
    this.log.info('Decommission worker: no new executors will be launched here');
    return true;
  }

  /** decommission: the decommission signal's handler (Spark's WorkerDecommissionSigReceived). */
  async decommission(): Promise<boolean> {
    if (this.stopping || !this.decommissionSelf()) return false;
    // recorded first: if the master cannot be told now, the next registration tells it
    await this.updateState((file) => (file.decommissioned = true));
    await this.tellMasterDecommissioned();
    return true;
  }

  /**
   * tellMasterDecommissioned sends WorkerDecommissioning: the master marks the worker
   * DECOMMISSIONED and moves its executors' apps elsewhere. Retried like a state report,
   * but never fatal: an agent that cannot reach the master stays up, refuses launches,
   * and tells the master after it registers again.
   */
  private async tellMasterDecommissioned(): Promise<void> {
    try {
      await this.deliver('WorkerDecommissioning', () => ({ id: this.workerId }), { fatalOnGiveUp: false });
    } catch (error) {
      if (!(error instanceof AgentStoppedError)) this.log.error({ err: error }, 'WorkerDecommissioning not delivered; it is sent again after the next registration');
    }
  }

  // ------------------------------------------------------------------ timers and stop

  private timer(fn: () => void | Promise<void>, ms: number): void {
    const handle = setTimeout(() => {
      this.timers.delete(handle);
      void fn();
    }, ms);
    this.timers.add(handle);
  }

  /** sleep resolves after `ms`, or at once when the agent stops. */
  private sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(handle);
        this.sleepers.delete(done);
        resolve();
      };
      const handle = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }

  private async sleepSeconds(seconds: number, cancelled: () => boolean): Promise<void> {
    for (let i = 0; i < seconds && !cancelled() && !this.stopping; i++) await this.sleep(1000);
    if (this.stopping) throw new AgentStoppedError('agent stopped during a driver back-off');
  }

  private fatal(message: string): void {
    if (this.stopping || this.stopPromise !== undefined) return;
    this.log.fatal(message);
    this.fatalMessage = message;
    void this.stop({ abrupt: true }).then(() => {
      const onFatal = this.options.onFatal ?? ((text: string) => {
        console.error(`flint worker: ${text}`);
        process.exit(1);
      });
      onFatal(message);
    });
  }

  stop(options: { abrupt?: boolean } = {}): Promise<void> {
    this.stopPromise ??= this.doStop(options.abrupt === true).finally(() => this.resolveStopped({ fatal: this.fatalMessage }));
    return this.stopPromise;
  }

  private async doStop(abrupt: boolean): Promise<void> {
    if (!abrupt && this.options.killOnExit && this.currentEpoch !== undefined) {
      // kill first, while reports can still be delivered
      const runners = [...this.executors.values(), ...this.drivers.values()].filter((r) => !r.isFinished);
      this.log.info({ tasks: runners.length }, 'killing every task before exiting (--kill-on-exit)');
      await Promise.allSettled(runners.map((runner) => this.onTask(runner.taskId, () => runner.kill())));
      await Promise.allSettled([...this.reportChains.values()]);
    }
    this.stopping = true;
    for (const handle of this.timers) clearTimeout(handle);
    this.timers.clear();
    for (const wake of [...this.sleepers]) wake();
    this.unsubscribeExit?.();
    if (!this.gate.settled) this.gate.reject(new AgentStoppedError('agent stopped'));
    if (abrupt) {
      this.blocking?.disconnect();
      this.redis?.disconnect();
      this.server?.close();
      await Promise.allSettled([this.masterClient?.close(), this.runtime?.close()]);
      return;
    }
    this.blocking?.disconnect();
    await Promise.allSettled([this.inboxLoop, ...this.inflight]);
    await this.stateWrite.catch(() => undefined);
    await Promise.allSettled([this.masterClient?.close(), this.runtime?.close()]);
    await this.redis?.quit().catch(() => this.redis?.disconnect());
    if (this.server) await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.log.info('worker stopped');
  }
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(error: Error): void;
  settled: boolean;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const d: Deferred = {
    promise: new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    }),
    resolve: () => {
      d.settled = true;
      resolve();
    },
    reject: (error) => {
      d.settled = true;
      reject(error);
    },
    settled: false,
  };
  d.promise.catch(() => undefined);
  return d;
}

/** parseRegisterReply reads the master's reply to RegisterWorker (an object or its JSON text). */
export function parseRegisterReply(
  reply: unknown,
): { type: 'RegisteredWorker'; epoch: number; duplicate: boolean; masterUrl?: string; masterWebUiUrl?: string } | { type: 'RegisterWorkerFailed'; message: string } {
  let value: unknown = reply;
  if (typeof reply === 'string') {
    try {
      value = JSON.parse(reply);
    } catch {
      throw new Error(`unreadable reply to RegisterWorker: ${reply.slice(0, 200)}`);
    }
  }
  const object = value as { type?: unknown; epoch?: unknown; duplicate?: unknown; message?: unknown; masterUrl?: unknown; masterWebUiUrl?: unknown } | null;
  if (object?.type === 'RegisteredWorker' && typeof object.epoch === 'number' && Number.isInteger(object.epoch) && object.epoch > 0) {
    const registered: { type: 'RegisteredWorker'; epoch: number; duplicate: boolean; masterUrl?: string; masterWebUiUrl?: string } = {
      type: 'RegisteredWorker',
      epoch: object.epoch,
      duplicate: object.duplicate === true,
    };
    if (typeof object.masterUrl === 'string') registered.masterUrl = object.masterUrl;
    if (typeof object.masterWebUiUrl === 'string') registered.masterWebUiUrl = object.masterWebUiUrl;
    return registered;
  }
  if (object?.type === 'RegisterWorkerFailed') return { type: 'RegisterWorkerFailed', message: String(object.message ?? 'no reason given') };
  throw new Error(`unexpected reply to RegisterWorker: ${JSON.stringify(reply)?.slice(0, 200)}`);
}

/** mergeResources: the union of resource assignments (name → addresses). */
function mergeResources(assignments: Record<string, string[]>[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const assignment of assignments) {
    for (const [name, addresses] of Object.entries(assignment)) out[name] = [...(out[name] ?? []), ...addresses];
  }
  return out;
}

/** workerUiSource: the agent's view in the shape the worker UI (workers/worker-ui.ts) reads. */
export function workerUiSource(agent: AgentHandle): WorkerUiSource {
  const view = () => agent.view();
  const executor = (e: ExecutorView): WorkerExecutorView => ({
    appId: e.appId,
    execId: e.execId,
    state: e.state,
    cores: e.cores,
    memoryMB: e.memoryMB,
    exitCode: e.exitStatus,
    workDir: e.workDir,
    resources: e.resources,
    appDesc: e.appDesc,
  });
  const driver = (d: DriverView): WorkerDriverView => ({
    driverId: d.driverId,
    state: d.state,
    cores: d.cores,
    memoryMB: d.memoryMB,
    workDir: d.workDir,
    mainClass: d.mainClass,
    exitCode: d.exitStatus,
    resources: d.resources,
  });
  return {
    get workerId() {
      return agent.workerId;
    },
    get masterUrl() {
      return view().masterUrl;
    },
    get masterWebUiUrl() {
      return view().masterWebUiUrl;
    },
    get workDir() {
      return view().workDir;
    },
    get cores() {
      return view().cores;
    },
    get memoryMB() {
      return view().memoryMB;
    },
    coresUsed: () => view().coresUsed,
    memoryUsed: () => view().memoryUsed,
    resources: () => view().resources,
    resourcesUsed: () => view().resourcesUsed,
    executors: () => view().executors.map(executor),
    finishedExecutors: () => view().finishedExecutors.map(executor),
    drivers: () => view().drivers.map(driver),
    finishedDrivers: () => view().finishedDrivers.map(driver),
  };
}
