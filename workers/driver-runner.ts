/**
 * DriverRunner: Spark's DriverRunner for one driver, on top of the runtime contract.
 *
 * A driver runs in `<work-dir>/<driverId>` as task `driver:<driverId>`. When its task
 * ends, the final state is decided as Spark's `runCommandWithRetry` decides it:
 *   - exit 0 → FINISHED (even if it was killed meanwhile);
 *   - killed → KILLED;
 *   - non-zero and supervised → relaunched on this worker after a back-off of
 *     1, 2, 4, ... seconds (doubling, no upper bound; reset to 1 before sleeping when
 *     the last run lasted more than 5 s), checking `killed` every second; each
 *     relaunch is a new task under the same id (the exited one is removed first so the
 *     deterministic name is free);
 *   - non-zero and not supervised → FAILED;
 *   - an exception while launching → ERROR with the exception text; a command that
 *     never ran (its program is missing) → ERROR with the reason, never relaunched;
 *   - a run the worker ended because it tampered with a file the worker writes (a link in
 *     place of stdout) → ERROR with the reason, never relaunched.
 * Spark's driver never reports RUNNING (the master sets it when it launches the
 * driver); only the final state is sent. The common part (one exit source, one final
 * report, bounded kills) is task-runner.ts.
 */
import type { DriverState } from '../protocol/states.ts';
import type { LaunchDriver } from '../protocol/messages.ts';
import type { TaskExit, TaskSpec, TaskStatus } from './runtime/types.ts';
import { LABEL_CORES, LABEL_MEMORY, launchFailureText, refusedMessage, substitutePlaceholders, type WorkerContext } from './executor-runner.ts';
import { TaskRunner, type RunnerDeps } from './task-runner.ts';

/** SUCCESSFUL_RUN_MS: a run longer than this resets the back-off (Spark's successfulRunDuration, 5 s). */
export const SUCCESSFUL_RUN_MS = 5000;

/** driverTaskId: the runtime identity of a driver, `driver:<driverId>`. */
export function driverTaskId(driverId: string): string {
  return `driver:${driverId}`;
}

/** driverWorkDir: `<work-dir>/<driverId>`. */
export function driverWorkDir(workDir: string, driverId: string): string {
  return `${workDir.replace(/\/+$/, '')}/${driverId}`;
}

/** driverLogUrl: Spark's SPARK_DRIVER_LOG_URL_STDOUT / _STDERR value. */
export function driverLogUrl(webUiUrl: string, driverId: string, logType: 'stdout' | 'stderr'): string {
  return `${webUiUrl.replace(/\/+$/, '')}/logPage/?driverId=${encodeURIComponent(driverId)}&logType=${logType}`;
}

/** LABEL_SUPERVISE: marks supervised drivers, so a restarted agent knows to relaunch one that failed meanwhile. */
export const LABEL_SUPERVISE = 'flint.supervise';

/** buildDriverSpec turns a LaunchDriver into the runtime's TaskSpec ({{WORKER_URL}} and {{USER_JAR}} substituted). */
export function buildDriverSpec(launch: LaunchDriver, worker: WorkerContext): TaskSpec {
  const { driverId, driverDesc } = launch;
  const workDir = driverWorkDir(worker.workDir, driverId);
  const env: Record<string, string> = {
    ...driverDesc.env,
    SPARK_DRIVER_LOG_URL_STDOUT: driverLogUrl(worker.webUiUrl, driverId, 'stdout'),
    SPARK_DRIVER_LOG_URL_STDERR: driverLogUrl(worker.webUiUrl, driverId, 'stderr'),
    FLINT_DRIVER_ID: driverId,
    FLINT_CORES: String(driverDesc.cores),
    FLINT_MEMORY_MB: String(driverDesc.memoryMB),
    FLINT_WORKER_ID: worker.workerId,
  };
  if (Object.keys(launch.resources).length > 0) env.FLINT_RESOURCES = JSON.stringify(launch.resources);
  return {
    kind: 'driver',
    taskId: driverTaskId(driverId),
    workerId: worker.workerId,
    cluster: worker.cluster,
    driverId,
    image: driverDesc.image,
    command: substitutePlaceholders(driverDesc.command, { WORKER_URL: worker.workerUrl, USER_JAR: driverDesc.appResource }),
    env,
    cores: driverDesc.cores,
    memoryMB: driverDesc.memoryMB,
    workDir,
    workRoot: worker.workDir,
    network: worker.network,
    pidsLimit: worker.pidsLimit,
    labels: {
      [LABEL_CORES]: String(driverDesc.cores),
      [LABEL_MEMORY]: String(driverDesc.memoryMB),
      [LABEL_SUPERVISE]: String(driverDesc.supervise),
    },
  };
}

/** DriverRunOutcome: how one run ended, as the retry decision sees it. */
export interface DriverRunOutcome {
  exitCode: number;
  supervise: boolean;
  killed: boolean;
  /** how long the run lasted */
  runDurationMs: number;
  /** the back-off the next relaunch would wait before this decision (starts at 1) */
  waitSeconds: number;
}

/** DriverRetryDecision: relaunch after `sleepSeconds` (then use `nextWaitSeconds`), or report `state`. */
export type DriverRetryDecision =
  | { relaunch: true; sleepSeconds: number; nextWaitSeconds: number }
  | { relaunch: false; state: Extract<DriverState, 'FINISHED' | 'KILLED' | 'FAILED'> };

/**
 * decideDriverRetry: one turn of Spark's runCommandWithRetry loop.
 * Example: supervised runs of 1 s, 1 s, 1 s, then 10 s, then 1 s wait 1, 2, 4, 1, 2 s.
 */
export function decideDriverRetry(outcome: DriverRunOutcome): DriverRetryDecision {
  if (outcome.supervise && outcome.exitCode !== 0 && !outcome.killed) {
    const base = outcome.runDurationMs > SUCCESSFUL_RUN_MS ? 1 : outcome.waitSeconds;
    return { relaunch: true, sleepSeconds: base, nextWaitSeconds: base * 2 };
  }
  return { relaunch: false, state: driverFinalState(outcome.exitCode, outcome.killed) };
}

/** driverFinalState: exit 0 → FINISHED (takes priority), killed → KILLED, else FAILED. */
export function driverFinalState(exitCode: number, killed: boolean): 'FINISHED' | 'KILLED' | 'FAILED' {
  if (exitCode === 0) return 'FINISHED';
  if (killed) return 'KILLED';
  return 'FAILED';
}

/** DriverReport: the part of DriverStateChanged a runner decides. */
export interface DriverReport {
  driverId: string;
  state: DriverState;
  exception?: string;
  exitStatus?: number;
}

/** DriverRunnerDeps: how a driver runner reports; resolves once delivered. */
export interface DriverRunnerDeps extends RunnerDeps {
  report(runner: DriverRunner, report: DriverReport): Promise<void>;
  finished(runner: DriverRunner, report: DriverReport): Promise<void>;
  /** sleep that resolves early when `cancelled()` turns true (checked every second, as Spark's sleeper does) */
  sleepSeconds?(seconds: number, cancelled: () => boolean): Promise<void>;
}

/** sleepCheckingEverySecond: Spark's sleeper: `seconds` one-second naps, stopping early once cancelled. */
export async function sleepCheckingEverySecond(seconds: number, cancelled: () => boolean): Promise<void> {
  for (let i = 0; i < seconds && !cancelled(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** DriverRunner: one driver's task, with Spark's supervise loop. */
export class DriverRunner extends TaskRunner<DriverReport> {
  readonly driverId: string;
  /** 'RUNNING' while a task runs or waits to be relaunched, then the final state */
  state: DriverState = 'RUNNING';
  /** how many times the driver was relaunched on this worker */
  relaunches = 0;
  private waitSeconds = 1;
  private runStartedAt = 0;
  private handlingExit = false;
  /** an exit of the new run that came while the previous run's turn was still being handled */
  private deferredExit: TaskExit | undefined;
  private lastExitCode: number | undefined;

  constructor(
    readonly launchMessage: LaunchDriver,
    readonly spec: TaskSpec,
    private readonly driverDeps: DriverRunnerDeps,
  ) {
    super(driverTaskId(launchMessage.driverId), driverDeps);
    this.driverId = launchMessage.driverId;
  }

  get supervise(): boolean {
    return this.launchMessage.driverDesc.supervise;
  }

  /** launch starts (or adopts) the task; a launch error ends the driver as ERROR. */
  async launch(): Promise<void> {
    let status: TaskStatus;
    try {
      status = await this.deps.runtime.start(this.spec);
    } catch (error) {
      this.deps.log.warn({ driverId: this.driverId, reason: launchFailureText(error) }, 'driver launch failed');
      await this.settle({ driverId: this.driverId, state: 'ERROR', exception: launchFailureText(error) });
      return;
    }
    this.adopt(status);
  }

  /** adopt watches a started or re-adopted run. */
  adopt(status: TaskStatus): void {
    this.runStartedAt = status.startedAt ?? this.deps.now();
    this.startedAt ??= this.runStartedAt;
    this.runStarted(status);
  }

  /**
   * onExit runs one turn of the supervise loop for an exit of the current run. An exit that
   * comes while a turn is handled belongs to the run that turn just started (a relaunch
   * that ended at once): it is handled right after, never dropped (it is the only signal).
   */
  protected override async onExit(exit: TaskExit, finishedAt: number = this.deps.now()): Promise<void> {
    if (this.isFinished) return;
    if (this.handlingExit) {
      this.deferredExit = exit;
      return;
    }
    this.handlingExit = true;
    try {
      this.lastExitCode = exit.exitCode;
      if (exit.refused !== undefined && !this.killed) {
        // a driver that tampers with the worker's files is not run again
        await this.settle({ driverId: this.driverId, state: 'ERROR', exception: refusedMessage('driver', exit.refused), exitStatus: exit.exitCode });
        return;
      }
      if (exit.launchError !== undefined && !this.killed && !exit.stopped) {
        // a command that cannot run would fail the same way on every relaunch
        await this.settle({ driverId: this.driverId, state: 'ERROR', exception: exit.launchError, exitStatus: exit.exitCode });
        return;
      }
      const killed = this.killed || exit.stopped;
      const decision = decideDriverRetry({
        exitCode: exit.exitCode,
        supervise: this.supervise,
        killed,
        runDurationMs: finishedAt - this.runStartedAt,
        waitSeconds: this.waitSeconds,
      });
      if (!decision.relaunch) {
        await this.settle({ driverId: this.driverId, state: decision.state, exitStatus: exit.exitCode });
        return;
      }
      this.deps.log.info({ driverId: this.driverId, exitCode: exit.exitCode, waitSeconds: decision.sleepSeconds }, `Command exited with status ${exit.exitCode}, re-launching after ${decision.sleepSeconds} s.`);
      this.waitSeconds = decision.nextWaitSeconds;
      const sleep = this.driverDeps.sleepSeconds ?? sleepCheckingEverySecond;
      await sleep(decision.sleepSeconds, () => this.killed);
      if (this.killed) {
        await this.settle({ driverId: this.driverId, state: driverFinalState(exit.exitCode, true), exitStatus: exit.exitCode });
        return;
      }
      await this.relaunch();
    } finally {
      this.handlingExit = false;
    }
    const deferred = this.deferredExit;
    this.deferredExit = undefined;
    if (deferred !== undefined && deferred.handle === this.handle && !this.isFinished) {
      await this.onExit(deferred);
      return;
    }
    // a kill that arrived while a relaunch was starting: stop the new run now
    if (this.killed && !this.isFinished) await this.kill();
  }

  /** relaunch: remove the exited run (its deterministic name must be free; its logs stay) and start a new one. */
  private async relaunch(): Promise<void> {
    // the old run must be gone before the new one can take its name; if it cannot be removed
    // (twice), the driver ends ERROR rather than waiting for ever on a run nobody watches
    let removeError: unknown;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await this.deps.runtime.remove(this.taskId);
        removeError = undefined;
        break;
      } catch (error) {
        removeError = error;
      }
    }
    if (removeError !== undefined) {
      await this.settle({ driverId: this.driverId, state: 'ERROR', exception: `cannot relaunch: the previous run could not be removed (${launchFailureText(removeError)})`, exitStatus: this.lastExitCode });
      return;
    }
    this.forgetRun();
    this.relaunches += 1;
    let status: TaskStatus;
    try {
      status = await this.deps.runtime.start(this.spec);
    } catch (error) {
      await this.settle({ driverId: this.driverId, state: 'ERROR', exception: launchFailureText(error) });
      return;
    }
    this.runStartedAt = status.startedAt ?? this.deps.now();
    this.runStarted(status);
  }

  protected override killedWithoutExit(): DriverReport {
    return { driverId: this.driverId, state: driverFinalState(this.lastExitCode ?? -1, true), exitStatus: this.lastExitCode };
  }

  /** kill stops the run; its exit settles as KILLED (FINISHED if it exited 0). A pending relaunch is cancelled. */
  async kill(): Promise<void> {
    if (this.isFinished) return this.settled;
    this.killed = true;
    if (this.handlingExit) {
      // the supervise loop sees `killed` within a second and settles (or stops a relaunch it just started)
      while (this.handlingExit && !this.isFinished) await new Promise((resolve) => setTimeout(resolve, 50));
      if (this.isFinished) return this.settled;
    }
    if (this.handle === undefined) {
      await this.settle(this.killedWithoutExit());
      return;
    }
    await this.stopAndSettle();
    await this.settled;
  }

  /** settle delivers the final report once. */
  settle(report: DriverReport): Promise<void> {
    return this.settleWith(report, async () => {
      this.state = report.state;
      await this.driverDeps.report(this, report);
      await this.driverDeps.finished(this, report);
    });
  }
}
