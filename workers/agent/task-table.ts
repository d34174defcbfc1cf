/**
 * TaskTable: the executors and drivers an agent holds, from the command (or re-adoption)
 * that brings one in to the final report that lets it go.
 *
 *   - Commands of one task run one at a time, in order (a per-task chain); commands of
 *     different tasks run in parallel.
 *   - A launch is held from the moment its command is taken in (before its chain runs), so
 *     WorkerLatestState never leaves out a launch the agent has accepted.
 *   - Exits reach runners from one source: the runtime's onExit (`routeExit`).
 *   - At start (`adoptAll`), every task of this worker found by label is taken back: a
 *     running or exited one gets its runner again (an exited one is reported with its true
 *     exit code, unless the state file says that was done); a never-started one (the agent
 *     died between create and start) is removed: if its launch is still wanted, its inbox
 *     entry is still pending and starts it afresh; if not, the master's reconciliation ends
 *     it. A supervised driver that was between two runs (a launch record, no task) is
 *     started again.
 *   - Every relist (`reconcile`), never-started tasks nobody is starting are removed at
 *     once, and labelled tasks no runner owns are removed once seen twice in a row.
 */
import type { ExecutorDescription, LaunchDriver, LaunchExecutor } from '../../protocol/messages.ts';
import type { FlintConfig } from '../../protocol/config.ts';
import type { Logger } from '../../lib/log.ts';
import type { Runtime, TaskExit, TaskStatus } from '../runtime/types.ts';
import { LABEL } from '../runtime/task-identity.ts';
import { ExecutorRunner, LABEL_CORES, LABEL_MEMORY, buildExecutorSpec, executorTaskId, executorWorkDir, type ExecutorReport, type WorkerContext } from '../executor-runner.ts';
import { DriverRunner, LABEL_SUPERVISE, buildDriverSpec, driverTaskId, type DriverReport } from '../driver-runner.ts';
import type { Reporter } from './reporter.ts';
import type { AgentStateStore } from './state-file.ts';

/** trimOldest: Spark's retained-list trimming: once over `limit`, drop max(size/10, 1) of the oldest. */
export function trimOldest<T>(list: T[], limit: number): void {
  if (list.length > limit) list.splice(0, Math.max(Math.floor(list.length / 10), 1));
}

export interface TaskTableDeps {
  runtime: Runtime;
  log: Logger;
  config: FlintConfig;
  state: AgentStateStore;
  reporter: Reporter;
  worker: WorkerContext;
  isStopping(): boolean;
  isDecommissioned(): boolean;
  /** the registration epoch current at delivery */
  epoch(): number;
  sleepSeconds(seconds: number, cancelled: () => boolean): Promise<void>;
}

export class TaskTable {
  readonly executors = new Map<string, ExecutorRunner>();
  readonly drivers = new Map<string, DriverRunner>();
  readonly finishedExecutors: ExecutorRunner[] = [];
  readonly finishedDrivers: DriverRunner[] = [];
  readonly finishedApps = new Set<string>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly pendingExecutors = new Map<string, ExecutorDescription>();
  private readonly pendingDrivers = new Set<string>();
  private orphanCandidates = new Set<string>();
  private missingCandidates = new Set<string>();

  constructor(private readonly deps: TaskTableDeps) {}

  // ------------------------------------------------------------------ what the agent holds

  /** heldExecutors: every executor held, a launch taken in but not started and one whose final report is on its way included. */
  heldExecutors(): ExecutorDescription[] {
    const running = [...this.executors.values()].map((r) => ({ appId: r.info.appId, execId: r.info.execId, cores: r.info.cores, memoryMB: r.info.memoryMB, state: r.state }));
    return [...running, ...this.pendingExecutors.values()];
  }

  heldDriverIds(): string[] {
    return [...[...this.drivers.values()].map((r) => r.driverId), ...this.pendingDrivers];
  }

  /** unfinished runners, for the view and killOnExit */
  activeExecutors(): ExecutorRunner[] {
    return [...this.executors.values()].filter((r) => !r.isFinished);
  }

  activeDrivers(): DriverRunner[] {
    return [...this.drivers.values()].filter((r) => !r.isFinished);
  }

  /** routeExit hands a run's exit to its runner (an exit of a task no runner owns is the relist's business). */
  routeExit(taskId: string, exit: TaskExit): void {
    (this.executors.get(taskId) ?? this.drivers.get(taskId))?.exitArrived(exit);
  }

  /** onTask runs `work` after every earlier command of the same task. */
  onTask(taskId: string, work: () => Promise<void>): Promise<void> {
    const previous = this.chains.get(taskId) ?? Promise.resolve();
    const next = previous.then(work, work);
    const tail = next.catch(() => undefined);
    this.chains.set(taskId, tail);
    void tail.then(() => {
      if (this.chains.get(taskId) === tail) this.chains.delete(taskId);
    });
    return next;
  }

  // ------------------------------------------------------------------ executors

  launchExecutor(launch: LaunchExecutor): Promise<void> {
    const taskId = executorTaskId(launch.appId, launch.execId);
    const fields = { appId: launch.appId, execId: launch.execId };
    const { log, state } = this.deps;
    if (this.deps.isDecommissioned()) {
      log.warn(fields, 'Worker is decommissioned: ignoring LaunchExecutor');
      return Promise.resolve();
    }
    const known = this.executors.get(taskId);
    if (known !== undefined || this.pendingExecutors.has(taskId)) {
      log.info({ ...fields, state: known?.state ?? 'LAUNCHING' }, 'executor already known here: adopting, not starting a second one');
      return Promise.resolve();
    }
    if (state.reportedState(taskId) !== undefined) {
      log.warn({ ...fields, state: state.reportedState(taskId) }, 'executor already ran and finished here: refusing to launch it again');
      return Promise.resolve();
    }
    this.pendingExecutors.set(taskId, { ...fields, cores: launch.cores, memoryMB: launch.memoryMB, state: 'LAUNCHING' });
    return this.onTask(taskId, async () => {
      // from taken in to held by its runner in one step: WorkerLatestState always lists it
      this.pendingExecutors.delete(taskId);
      const spec = buildExecutorSpec(launch, this.deps.worker);
      const runner = new ExecutorRunner(
        { ...fields, cores: launch.cores, memoryMB: launch.memoryMB, workDir: spec.workDir, resources: launch.resources, appDesc: launch.appDesc },
        this.executorDeps(),
      );
      this.executors.set(taskId, runner);
      log.info({ ...fields, cores: launch.cores, memoryMB: launch.memoryMB, image: launch.appDesc.image }, `Asked to launch executor ${launch.appId}/${launch.execId} for ${launch.appDesc.name}`);
      await runner.launch(spec);
    });
  }

  killExecutor(appId: string, execId: number): Promise<void> {
    return this.onTask(executorTaskId(appId, execId), async () => {
      const runner = this.executors.get(executorTaskId(appId, execId));
      if (runner === undefined || runner.isFinished) {
        this.deps.log.info({ appId, execId }, `Asked to kill unknown or finished executor ${appId}/${execId}`);
        return;
      }
      this.deps.log.info({ appId, execId }, `Asked to kill executor ${appId}/${execId}`);
      await runner.kill();
    });
  }

  private executorDeps() {
    const { runtime, log, config, reporter, worker } = this.deps;
    return {
      runtime,
      log,
      stopGraceMs: config.get<number>('spark.flint.worker.stopGracePeriod'),
      now: () => Date.now(),
      report: (runner: ExecutorRunner, report: ExecutorReport) =>
        reporter.report(runner.taskId, 'ExecutorStateChanged', (epoch) => ({ ...report, workerId: worker.workerId, epoch })),
      finished: (runner: ExecutorRunner, report: ExecutorReport) => this.executorFinished(runner, report),
    };
  }

  private async executorFinished(runner: ExecutorRunner, report: ExecutorReport): Promise<void> {
    this.deps.log.info({ appId: runner.info.appId, execId: runner.info.execId, state: report.state, exitStatus: report.exitStatus, message: report.message }, `Executor ${runner.info.appId}/${runner.info.execId} finished with state ${report.state}`);
    await this.deps.state.rememberReported(runner.taskId, report.state, this.reportedLimit()).catch((error: unknown) => this.deps.log.warn({ err: error }, 'could not record a reported executor in the state file (a restarted agent may report it again)'));
    await this.removeTask(runner.taskId);
    if (this.executors.get(runner.taskId) === runner) this.executors.delete(runner.taskId);
    this.finishedExecutors.push(runner);
    trimOldest(this.finishedExecutors, this.deps.config.get<number>('spark.worker.ui.retainedExecutors'));
  }

  // ------------------------------------------------------------------ drivers

  launchDriver(launch: LaunchDriver): Promise<void> {
    const taskId = driverTaskId(launch.driverId);
    const { log, state } = this.deps;
    if (this.drivers.has(taskId) || this.pendingDrivers.has(launch.driverId)) {
      log.info({ driverId: launch.driverId }, 'driver already known here: adopting, not starting a second one');
      return Promise.resolve();
    }
    if (state.reportedState(taskId) !== undefined) {
      log.warn({ driverId: launch.driverId, state: state.reportedState(taskId) }, 'driver already ran and finished here: refusing to launch it again');
      return Promise.resolve();
    }
    this.pendingDrivers.add(launch.driverId);
    return this.onTask(taskId, async () => {
      this.pendingDrivers.delete(launch.driverId);
      const runner = this.newDriverRunner(launch);
      this.drivers.set(taskId, runner);
      log.info({ driverId: launch.driverId, image: launch.driverDesc.image }, `Asked to launch driver ${launch.driverId}`);
      try {
        await state.rememberDriver(launch);
      } catch (error) {
        // without its launch record a supervised driver could not be relaunched after a restart: refuse it now
        await runner.settle({ driverId: launch.driverId, state: 'ERROR', exception: `cannot record the driver's launch in the agent's state file: ${(error as Error).message}` });
        return;
      }
      await runner.launch();
    });
  }

  killDriver(driverId: string): Promise<void> {
    return this.onTask(driverTaskId(driverId), async () => {
      const runner = this.drivers.get(driverTaskId(driverId));
      if (runner === undefined || runner.isFinished) {
        this.deps.log.error({ driverId }, `Asked to kill unknown driver ${driverId}`);
        return;
      }
      this.deps.log.info({ driverId }, `Asked to kill driver ${driverId}`);
      await runner.kill();
    });
  }

  private newDriverRunner(launch: LaunchDriver): DriverRunner {
    const { runtime, log, config, reporter, worker } = this.deps;
    return new DriverRunner(launch, buildDriverSpec(launch, worker), {
      runtime,
      log,
      stopGraceMs: config.get<number>('spark.worker.driverTerminateTimeout'),
      now: () => Date.now(),
      report: (runner, report) => reporter.report(runner.taskId, 'DriverStateChanged', (epoch) => ({ ...report, workerId: worker.workerId, epoch })),
      finished: (runner, report) => this.driverFinished(runner, report),
      sleepSeconds: (seconds, cancelled) => this.deps.sleepSeconds(seconds, cancelled),
    });
  }

  private async driverFinished(runner: DriverRunner, report: DriverReport): Promise<void> {
    const level = report.state === 'ERROR' || report.state === 'FAILED' ? 'warn' : 'info';
    this.deps.log[level]({ driverId: runner.driverId, state: report.state, exitStatus: report.exitStatus, exception: report.exception }, `Driver ${runner.driverId} finished with state ${report.state}`);
    await this.deps.state.rememberReported(runner.taskId, report.state, this.reportedLimit(), runner.driverId).catch((error: unknown) => this.deps.log.warn({ err: error }, 'could not record a reported driver in the state file (a restarted agent may report it again)'));
    await this.removeTask(runner.taskId);
    if (this.drivers.get(runner.taskId) === runner) this.drivers.delete(runner.taskId);
    this.finishedDrivers.push(runner);
    trimOldest(this.finishedDrivers, this.deps.config.get<number>('spark.worker.ui.retainedDrivers'));
  }

  private reportedLimit(): number {
    const { config } = this.deps;
    return Math.max(config.get<number>('spark.worker.ui.retainedExecutors') + config.get<number>('spark.worker.ui.retainedDrivers'), 1000);
  }

  private async removeTask(taskId: string): Promise<void> {
    if (this.deps.isStopping()) return;
    try {
      await this.deps.runtime.remove(taskId);
    } catch (error) {
      this.deps.log.warn({ err: error, taskId }, 'could not remove a finished task (the relist retries)');
    }
  }

  // ------------------------------------------------------------------ re-adoption

  /** adoptAll: Nomad's RecoverTask for every task of this worker found by label (see the header). */
  async adoptAll(): Promise<void> {
    const { runtime, worker, log, state } = this.deps;
    for (const status of await runtime.list(worker.workerId, worker.cluster)) {
      try {
        await this.adopt(status);
      } catch (error) {
        log.error({ err: error, taskId: status.taskId }, 'could not re-adopt task; leaving it for the relist');
      }
    }
    for (const launch of state.driverLaunches()) {
      const taskId = driverTaskId(launch.driverId);
      if (this.drivers.has(taskId) || state.reportedState(taskId) !== undefined) continue;
      if (!launch.driverDesc.supervise) {
        // its LaunchDriver, if still wanted, is pending in the inbox; otherwise the master ends it
        await state.update((file) => delete file.drivers[launch.driverId]);
        continue;
      }
      log.warn({ driverId: launch.driverId }, 'supervised driver was between two runs when the agent stopped: starting it again');
      const runner = this.newDriverRunner(launch);
      this.drivers.set(taskId, runner);
      void this.onTask(taskId, () => runner.launch());
    }
  }

  private async adopt(status: TaskStatus): Promise<void> {
    const { runtime, log, state, worker } = this.deps;
    const labels = status.labels;
    if (status.neverStarted) {
      log.warn({ taskId: status.taskId }, 'removing a task that was created but never started (the agent stopped in between)');
      await runtime.remove(status.taskId);
      return;
    }
    if (state.reportedState(status.taskId) !== undefined && !status.running) {
      log.info({ taskId: status.taskId, state: state.reportedState(status.taskId) }, 'removing a finished task whose state was already reported');
      await runtime.remove(status.taskId);
      return;
    }
    const cores = Number(labels[LABEL_CORES] ?? '1');
    const memoryMB = Number(labels[LABEL_MEMORY] ?? '0');
    const kind = labels[LABEL.kind];
    if (kind === 'executor') {
      const appId = labels[LABEL.app];
      const execId = Number(labels[LABEL.executor]);
      if (appId === undefined || !Number.isInteger(execId)) throw new Error(`executor task ${status.taskId} lacks its app or executor label`);
      const runner = new ExecutorRunner({ appId, execId, cores, memoryMB, workDir: executorWorkDir(worker.workDir, appId, execId) }, this.executorDeps());
      this.executors.set(runner.taskId, runner);
      void runner.adopt(status).catch((error: unknown) => log.warn({ err: error, taskId: runner.taskId }, 'RUNNING of a re-adopted executor not delivered'));
      log.info({ appId, execId, running: status.running, exitCode: status.exitCode }, 're-adopted executor');
    } else if (kind === 'driver') {
      const driverId = labels[LABEL.driver];
      if (driverId === undefined) throw new Error(`driver task ${status.taskId} lacks its driver label`);
      const launch = state.driverLaunch(driverId) ?? this.syntheticLaunch(driverId, cores, memoryMB);
      const runner = this.newDriverRunner(launch);
      this.drivers.set(runner.taskId, runner);
      runner.adopt(status);
      log.info({ driverId, running: status.running, exitCode: status.exitCode, supervise: labels[LABEL_SUPERVISE] }, 're-adopted driver');
    } else {
      throw new Error(`task ${status.taskId} has an unknown kind '${kind}'`);
    }
    // the runner exists before the runtime re-attaches, so an exit found at once reaches it
    await runtime.recover(status);
  }

  private syntheticLaunch(driverId: string, cores: number, memoryMB: number): LaunchDriver {
    this.deps.log.warn({ driverId }, 'no launch record for a re-adopted driver (state file lost?): it will not be relaunched if it fails');
    return {
      driverId,
      epoch: 1,
      resources: {},
      driverDesc: {
        name: driverId, appResource: '', mainClass: '', image: 'unknown', command: [], env: {}, memoryMB: Math.max(memoryMB, 6), cores,
        supervise: false, resourceReqs: [], sparkProperties: {},
      },
    };
  }

  // ------------------------------------------------------------------ relist

  /**
   * reconcile: never-started tasks nobody starts are removed at once; tasks no runner owns
   * once seen twice in a row. And the other way round: a runner's task the runtime does not
   * watch (a re-adoption whose recover failed) is recovered, so its exit can come; a runner's
   * task the runtime no longer lists at all, twice in a row, has vanished and ends so.
   */
  async reconcile(): Promise<void> {
    const { runtime, worker, log } = this.deps;
    const listed = await runtime.list(worker.workerId, worker.cluster);
    const byId = new Map(listed.map((status) => [status.taskId, status]));
    const missing = new Set<string>();
    for (const runner of [...this.executors.values(), ...this.drivers.values()]) {
      if (runner.isFinished || runner.handle === undefined || this.chains.has(runner.taskId)) continue;
      const status = byId.get(runner.taskId);
      if (status === undefined) {
        missing.add(runner.taskId);
        if (this.missingCandidates.has(runner.taskId)) {
          log.warn({ taskId: runner.taskId }, 'a task this agent runs is gone from the runtime');
          runner.exitArrived({ exitCode: -1, oomKilled: false, stopped: runner.killed, handle: runner.handle, vanished: 'the task is gone from the runtime' });
        }
      } else if (status.handle === runner.handle && !status.neverStarted && !runtime.watches(runner.taskId)) {
        await runtime.recover(status).catch((error: unknown) => log.warn({ err: error, taskId: runner.taskId }, 'could not watch a task again; the next relist retries'));
      }
    }
    this.missingCandidates = missing;
    const orphans = new Set<string>();
    for (const status of listed) {
      if (this.deps.isStopping()) return;
      const busy = this.chains.has(status.taskId);
      const owned = this.executors.has(status.taskId) || this.drivers.has(status.taskId);
      if (status.neverStarted && !busy) {
        log.warn({ taskId: status.taskId }, 'removing a task that was created but never started');
        await runtime.remove(status.taskId).catch((error: unknown) => log.warn({ err: error, taskId: status.taskId }, 'could not remove a never-started task'));
        continue;
      }
      if (owned || busy) continue;
      orphans.add(status.taskId);
      if (!this.orphanCandidates.has(status.taskId)) continue;
      log.warn({ taskId: status.taskId, running: status.running }, 'removing a task of this worker that no runner owns');
      await runtime.remove(status.taskId).catch((error: unknown) => log.warn({ err: error, taskId: status.taskId }, 'could not remove orphan task'));
      orphans.delete(status.taskId);
    }
    this.orphanCandidates = orphans;
  }

  /** killAll stops every task (killOnExit); each is reported KILLED. */
  async killAll(): Promise<void> {
    const runners = [...this.activeExecutors(), ...this.activeDrivers()];
    this.deps.log.info({ tasks: runners.length }, 'killing every task before exiting (--kill-on-exit)');
    await Promise.allSettled(runners.map((runner) => this.onTask(runner.taskId, () => runner.kill())));
  }
}
