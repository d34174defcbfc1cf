/**
 * The worker agent: Spark's Worker, in one process per host. This file composes its
 * parts; each part does one job:
 *
 *   work-dir-lock.ts  one live agent per work dir (the kernel's lock)
 *   state-file.ts     what the agent remembers across restarts
 *   registrar.ts      registration with the master, the gate, heartbeats
 *   inbox.ts          the inbox stream: consumer group, epoch admission, acknowledgement
 *   task-table.ts     the executors and drivers held: commands, adoption, orphans
 *   reporter.ts       ordered, retried state reports
 *   bounded-runtime.ts every runtime call with a deadline
 *   view.ts           what the worker UI shows
 *
 * Modes, in order:
 *   1. start: lock the work dir, take the worker id kept there, re-adopt this worker's
 *      tasks found by label (task-table.ts);
 *   2. registering: RegisterWorker on Spark's retry schedule; commands and reports wait;
 *   3. registered: heartbeats; the inbox is read; every relist interval the agent removes
 *      what nobody owns; after each registration and every reconcile interval it sends
 *      WorkerLatestState, which the master reconciles in both directions (what the worker
 *      runs and the master does not know is killed; what the master holds there and the
 *      worker does not run is ended);
 *   4. stopping: heartbeats and inbox reads end, connections close, the lock is released;
 *      tasks keep running for the next agent to re-adopt unless `killOnExit` asks to kill them.
 */
import { mkdir, realpath } from 'node:fs/promises';
import { clusterKeys, type Keys } from '../../protocol/keys.ts';
import { pathSafeIdProblem, type MasterInboundMessage, type MasterInboundType } from '../../protocol/messages.ts';
import type { FlintConfig } from '../../protocol/config.ts';
import { MasterClient } from '../../client/master-client.ts';
import { connectRedisOrCluster, type RedisConnection } from '../../lib/redis.ts';
import { createLogger, type Logger } from '../../lib/log.ts';
import { withDeadline } from '../../lib/deadline.ts';
import { SECRET_KEY } from '../../lib/http/auth.ts';
import type { Runtime } from '../runtime/types.ts';
import { workerUrlFor, type WorkerContext } from '../executor-runner.ts';
import { cleanWorkDir } from '../work-dir-cleanup.ts';
import { createWorkerUiApp } from '../worker-ui.ts';
import { formatWorkerId, loadOrCreateWorkerId } from '../host-defaults.ts';
import { boundRuntime } from './bounded-runtime.ts';
import { AgentStoppedError } from './errors.ts';
import { Inbox } from './inbox.ts';
import { Registrar } from './registrar.ts';
import { Reporter } from './reporter.ts';
import { removeFormerIdentityTasks } from './former-identities.ts';
import { AgentStateStore } from './state-file.ts';
import { TaskTable } from './task-table.ts';
import type { AgentHandle, AgentOptions, AgentView } from './types.ts';
import { buildView, workerUiSource } from './view.ts';
import { lockWorkDir, type WorkDirLock } from './work-dir-lock.ts';
import { AgentTimers } from './timers.ts';
import { agentCommands } from './commands.ts';
import { AgentWebUi } from './web-ui.ts';

export { uiBindProblem } from './web-ui.ts';

/** GRACEFUL_DRAIN_MS: how long a graceful stop waits for commands in flight. */
const GRACEFUL_DRAIN_MS = 30_000;

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
  private log: Logger;
  private readonly host: string;
  private port: number;
  private workDir: string;
  private lock: WorkDirLock | undefined;
  private webUi: AgentWebUi | undefined;
  private runtime: Runtime | undefined;
  private redis: RedisConnection | undefined;
  private blocking: RedisConnection | undefined;
  private masterClient: MasterClient | undefined;
  private state: AgentStateStore | undefined;
  private reporter!: Reporter;
  private registrar: Registrar | undefined;
  private table: TaskTable | undefined;
  private inbox: Inbox | undefined;
  private inboxLoop: Promise<void> | undefined;
  private latestState: Promise<void> | undefined;
  private latestStateAgain = false;
  private decommissioned = false;
  private stopping = false;
  private stopPromise: Promise<void> | undefined;
  private fatalMessage: string | undefined;
  private resolveStopped!: (outcome: { fatal?: string }) => void;
  readonly stopped = new Promise<{ fatal?: string }>((resolve) => (this.resolveStopped = resolve));
  private readonly timers: AgentTimers;
  private unsubscribeExit: (() => void) | undefined;

  constructor(private readonly options: AgentOptions) {
    this.config = options.config;
    this.cluster = options.cluster ?? options.config.cluster;
    this.keys = clusterKeys(this.cluster);
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? options.config.get<number>('spark.worker.ui.port');
    this.workDir = options.workDir;
    this.log = options.logger ?? createLogger('worker', { cluster: this.cluster });
    this.timers = new AgentTimers(this.log);
    if (!Number.isInteger(options.cores) || options.cores < 1) throw new Error(`worker cores must be a positive integer, got ${options.cores}`);
    if (!Number.isInteger(options.memoryMB) || options.memoryMB < 1) throw new Error(`worker memory must be a positive number of MB, got ${options.memoryMB}`);
  }

  epoch(): number | undefined {
    return this.registrar?.epoch;
  }

  // ------------------------------------------------------------------ start

  async start(): Promise<void> {
    await mkdir(this.workDir, { recursive: true });
    this.workDir = await realpath(this.workDir);
    this.lock = await lockWorkDir(this.workDir);
    this.lock.onLost(() => this.fatal(`the lock on the work dir ${this.workDir} was lost (its holder process ended): exiting, so that no second agent runs here unnoticed`));
    this.webUi = await AgentWebUi.listen({
      enabled: this.options.webUi !== false,
      host: this.host,
      port: this.port,
      secret: this.config.get<string | undefined>(SECRET_KEY),
      tls: this.options.tls,
    });
    this.port = this.webUi.port;
    this.webUiUrl = this.webUi.url;
    this.workerId = await loadOrCreateWorkerId(
      this.workDir,
      () => formatWorkerId(this.config.get<string>('spark.worker.idPattern'), Date.now(), this.host, this.port),
      this.options.id,
    );
    // the id names the runtimes' directories (`.flint-*-runtime/<cluster>/<worker id>`)
    const idProblem = pathSafeIdProblem(this.workerId);
    if (idProblem !== undefined) throw new Error(`worker id ${JSON.stringify(this.workerId)} ${idProblem}`);
    this.log = this.log.child({ workerId: this.workerId });
    const state = await AgentStateStore.load(this.workDir, this.log);
    this.state = state;
    this.decommissioned = state.decommissioned;
    const runtime = typeof this.options.runtime === 'function' ? await this.options.runtime({ workerId: this.workerId, cluster: this.cluster, workDir: this.workDir }) : this.options.runtime;
    this.runtime = runtime;
    // tasks an earlier identity of this work dir left (another id or cluster): nobody else's to end
    if (typeof this.options.runtime === 'function') {
      await removeFormerIdentityTasks({ workDir: this.workDir, current: { cluster: this.cluster, workerId: this.workerId }, runtime: this.options.runtime, log: this.log });
    }
    const bounded = boundRuntime(runtime, {
      launchMs: this.config.get<number>('spark.flint.worker.launchTimeout'),
      stopMs: 60_000,
      callMs: 30_000,
    });
    this.redis = await connectRedisOrCluster(this.options.redisUrl, { name: `flint-worker-${this.workerId}` });
    this.blocking = await connectRedisOrCluster(this.options.redisUrl, { name: `flint-worker-${this.workerId}-inbox`, blocking: true });
    // errors surface on commands; without a listener ioredis would print every reconnect failure
    this.redis.on('error', () => undefined);
    this.blocking.on('error', () => undefined);
    const masterClient = new MasterClient(this.options.redisUrl, this.cluster, `flint-worker-${this.workerId}`);
    this.masterClient = masterClient;
    const ask = (type: MasterInboundType, body: unknown, timeoutMs: number) => masterClient.ask(type, body as never, timeoutMs);

    const registrar = new Registrar({
      config: this.config,
      redis: this.redis,
      cluster: this.cluster,
      workerId: this.workerId,
      log: this.log,
      ask,
      body: () => this.registerBody(),
      onRegistered: () => this.afterRegistered(),
      fatal: (message) => this.fatal(message),
      isStopping: () => this.stopping,
      sleep: (ms) => this.timers.sleep(ms),
      random: this.options.random,
    });
    this.registrar = registrar;
    this.reporter = new Reporter({
      ask,
      whenRegistered: () => registrar.whenRegistered(),
      epoch: () => registrar.epoch,
      isStopping: () => this.stopping,
      sleep: (ms) => this.timers.sleep(ms),
      fatal: (message) => this.fatal(message),
      log: this.log,
      maxAttempts: this.config.get<number>('spark.worker.executorStateSync.maxAttempts'),
      backoffMs: this.options.reportBackoffMs ?? 1000,
      attemptTimeoutMs: this.options.reportAttemptTimeoutMs ?? 10_000,
    });
    const table = new TaskTable({
      runtime: bounded,
      log: this.log,
      config: this.config,
      state,
      reporter: this.reporter,
      worker: this.workerContext(),
      isStopping: () => this.stopping,
      isDecommissioned: () => this.decommissioned,
      epoch: () => registrar.epoch ?? 0,
      sleepSeconds: (seconds, cancelled) => this.timers.sleepSeconds(seconds, cancelled),
    });
    this.table = table;
    this.inbox = new Inbox({
      blocking: this.blocking,
      redis: this.redis,
      keys: this.keys,
      workerId: this.workerId,
      log: this.log,
      whenRegistered: () => registrar.whenRegistered(),
      epoch: () => registrar.epoch,
      isStopping: () => this.stopping,
      sleep: (ms) => this.timers.sleep(ms),
      maxInFlight: this.options.maxInFlightCommands,
      handlers: agentCommands({ table, registrar, state, log: this.log, decommissionSelf: () => this.decommissionSelf() }),
    });
    this.unsubscribeExit = runtime.onExit((taskId, exit) => table.routeExit(taskId, exit));
    this.attachWebUi();
    await table.adoptAll();
    this.log.info({ host: this.host, port: this.port, cores: this.options.cores, memoryMB: this.options.memoryMB, workDir: this.workDir, runtime: runtime.name }, `Starting Flint worker ${this.workerId}`);
    await registrar.register('start');
    this.timers.every(Math.max(Math.floor(this.config.workerTimeoutMs / 4), 10), () => registrar.beat());
    this.timers.every(this.config.get<number>('spark.flint.worker.relistInterval'), () => table.reconcile());
    const reconcileMs = this.config.get<number>('spark.flint.worker.reconcileInterval');
    if (reconcileMs > 0) this.timers.every(reconcileMs, async () => this.sendLatestState());
    if (this.config.get<boolean>('spark.worker.cleanup.enabled')) this.timers.every(this.config.get<number>('spark.worker.cleanup.interval'), () => this.cleanup());
    this.inboxLoop = this.inbox.run().catch((error: unknown) => {
      if (!this.stopping) this.fatal(`inbox reader failed: ${(error as Error).message}`);
    });
  }

  private workerContext(): WorkerContext {
    return {
      workerId: this.workerId,
      cluster: this.cluster,
      host: this.host,
      webUiUrl: this.webUiUrl,
      workerUrl: workerUrlFor(this.cluster, this.workerId),
      workDir: this.workDir,
      network: this.options.network ?? this.config.get<'host' | 'none'>('spark.flint.worker.network'),
      pidsLimit: this.config.get<number>('spark.flint.worker.pidsLimit'),
    };
  }

  private attachWebUi(): void {
    if (this.options.webUi === false) return;
    this.webUi?.attach(this.options.webUi ? this.options.webUi(this) : createWorkerUiApp(workerUiSource(this), { secret: this.config.get<string | undefined>(SECRET_KEY) }));
  }

  // ------------------------------------------------------------------ registration

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
      executors: this.table?.heldExecutors() ?? [],
      driverIds: this.table?.heldDriverIds() ?? [],
      instance: this.state?.instance,
    };
  }

  /** afterRegistered: tell the master what runs here (both directions reconcile) and that a decommission stands. */
  private afterRegistered(): void {
    this.sendLatestState();
    // a worker that decommissioned itself stays so across restarts and re-registrations
    if (this.state?.decommissioned) void this.tellMasterDecommissioned();
  }

  /**
   * sendLatestState sends WorkerLatestState (one at a time): what the agent holds and how
   * far it has read its inbox, read when each attempt is built.
   */
  private sendLatestState(): void {
    if (this.stopping || this.table === undefined || !this.registrar?.registered) return;
    if (this.latestState !== undefined) {
      // one at a time, but a report wanted meanwhile is sent right after (with what is held then)
      this.latestStateAgain = true;
      return;
    }
    const table = this.table;
    this.latestState = this.reporter
      .deliver(
        'WorkerLatestState',
        (epoch) => ({ id: this.workerId, epoch, executors: table.heldExecutors(), driverIds: table.heldDriverIds(), inboxSeenThrough: this.inbox?.seenThrough }),
        { fatalOnGiveUp: false },
      )
      .catch((error: unknown) => {
        if (!(error instanceof AgentStoppedError)) this.log.warn({ err: error }, 'WorkerLatestState not delivered; sent again at the next relist');
      })
      .finally(() => {
        this.latestState = undefined;
        if (this.latestStateAgain) {
          this.latestStateAgain = false;
          this.sendLatestState();
        }
      });
  }

  // ------------------------------------------------------------------ periodic work

  private async cleanup(): Promise<void> {
    const table = this.table!;
    const ttl = this.config.get<number>('spark.worker.cleanup.appDataTtl');
    const appIds = new Set(table.activeExecutors().map((r) => r.info.appId));
    const driverIds = new Set(table.heldDriverIds());
    const { deleted, trouble } = await cleanWorkDir(this.workDir, { appIds, driverIds }, Date.now(), ttl);
    if (deleted.length > 0) this.log.info({ deleted }, 'work-dir cleanup removed old application directories');
    if (trouble.skipped > 0) this.log.warn({ skipped: trouble.skipped, firstError: trouble.firstError }, 'work-dir cleanup skipped entries it could not walk or remove');
    for (const name of deleted) table.finishedApps.delete(name);
  }

  // ------------------------------------------------------------------ view

  view(): AgentView {
    const facts = {
      workerId: this.workerId,
      cluster: this.cluster,
      epoch: this.registrar?.epoch,
      registered: this.registrar?.registered ?? false,
      decommissioned: this.decommissioned,
      host: this.host,
      port: this.port,
      webUiUrl: this.webUiUrl,
      workerUrl: workerUrlFor(this.cluster, this.workerId),
      runtime: this.runtime?.name ?? 'none',
      workDir: this.workDir,
      masterUrl: this.registrar?.masterUrl ?? '',
      masterWebUiUrl: this.registrar?.masterWebUiUrl ?? '',
      cores: this.options.cores,
      memoryMB: this.options.memoryMB,
      resources: this.options.resources ?? {},
      labels: this.options.labels ?? {},
    };
    const inbox = this.inbox?.view() ?? { handled: 0, refusedEpoch: 0, deadLettered: 0, trimmed: 0, inFlight: 0 };
    if (this.table === undefined) {
      return { ...facts, coresUsed: 0, memoryUsed: 0, resourcesUsed: {}, executors: [], finishedExecutors: [], drivers: [], finishedDrivers: [], inbox };
    }
    return buildView(facts, this.table, inbox);
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
    await this.state?.markDecommissioned();
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
      await this.reporter.deliver('WorkerDecommissioning', () => ({ id: this.workerId }), { fatalOnGiveUp: false });
    } catch (error) {
      if (!(error instanceof AgentStoppedError)) this.log.error({ err: error }, 'WorkerDecommissioning not delivered; it is sent again after the next registration');
    }
  }

  // ------------------------------------------------------------------ timers and stop

  private fatal(message: string): void {
    if (this.stopping || this.stopPromise !== undefined) return;
    this.log.fatal(message);
    this.fatalMessage = message;
    void this.stop({ abrupt: true }).then(() => {
      const onFatal =
        this.options.onFatal ??
        ((text: string) => {
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
    if (abrupt) {
      this.stopping = true;
      this.timers.stop();
      this.unsubscribeExit?.();
      this.registrar?.close();
      this.blocking?.disconnect();
      this.redis?.disconnect();
      await Promise.allSettled([this.webUi?.close(), this.masterClient?.close(), this.runtime?.close()]);
      await this.lock?.release();
      return;
    }
    // take no new command; let those taken in finish (bounded), while exits still arrive and reports still go
    this.inbox?.close();
    this.blocking?.disconnect();
    await withDeadline(Promise.allSettled([this.inboxLoop, this.inbox?.drained()]), GRACEFUL_DRAIN_MS, 'commands in flight').catch((error: unknown) =>
      this.log.warn({ err: error }, 'stopping with commands still in flight (their inbox entries stay pending for the next agent)'),
    );
    if (this.options.killOnExit && this.registrar?.epoch !== undefined && this.table !== undefined) {
      // nothing new can come in now: kill every task, while reports can still be delivered
      await this.table.killAll();
      await Promise.allSettled(this.reporter.pending());
    }
    this.stopping = true;
    this.timers.stop();
    this.unsubscribeExit?.();
    this.registrar?.close();
    await this.state?.flushed();
    await Promise.allSettled([this.masterClient?.close(), this.runtime?.close()]);
    await this.redis?.quit().catch(() => this.redis?.disconnect());
    await this.webUi?.close();
    await this.lock?.release();
    this.log.info('worker stopped');
  }

}

export type { AgentHandle, AgentOptions, AgentView, DriverView, ExecutorView, InboxStats } from './types.ts';
export { workerUiSource } from './view.ts';
