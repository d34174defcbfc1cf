/**
 * TaskRunner: what the executor and driver runners share. A runner owns one task from
 * its launch (or re-adoption after an agent restart) to its one final report:
 *   - the run it watches (`handle`, from the runtime), so an exit of an older run (a
 *     relaunched driver's) is never taken for the current one;
 *   - exits, which reach it from one source only: the runtime's onExit, routed here by
 *     the agent (`exitArrived`). An exit that arrives before the launch has returned the
 *     run's handle waits until it has;
 *   - the final report, decided and delivered once (`settle`), however many signals come;
 *   - a kill that never waits without a bound: stop, then the exit, then (if the runtime
 *     does not answer) the task is removed by force and reported with no exit code.
 */
import type { Logger } from '../lib/log.ts';
import { napUntilWoken } from '../lib/deadline.ts';
import type { Runtime, TaskExit, TaskStatus } from './runtime/types.ts';

/** RunnerDeps: what runners get from the agent. */
export interface RunnerDeps {
  /** the runtime, every call bounded by the agent */
  runtime: Runtime;
  log: Logger;
  /** stop grace period in ms */
  stopGraceMs: number;
  now(): number;
}

/** EXIT_AFTER_STOP_MS: how long a kill waits for the exit once the runtime's stop has returned. */
export const EXIT_AFTER_STOP_MS = 15_000;

export abstract class TaskRunner<Report> {
  /** runtime handle of the current run, once started */
  handle: string | undefined;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  /** set by kill(): the exit is then reported as killed */
  killed = false;
  /** the final report once decided */
  finalReport: Report | undefined;
  private settling: Promise<void> | undefined;
  private readonly earlyExits: TaskExit[] = [];
  private wakeOnSettle: (() => void) | undefined;

  protected constructor(
    readonly taskId: string,
    protected readonly deps: RunnerDeps,
  ) {}

  get isFinished(): boolean {
    return this.finalReport !== undefined;
  }

  /** exitArrived: the runtime reported the end of a run of this task. */
  exitArrived(exit: TaskExit): void {
    if (this.isFinished) return;
    if (this.handle === undefined) {
      this.earlyExits.push(exit);
      return;
    }
    if (exit.handle !== this.handle) return; // an older run
    this.onExit(exit).catch((error: unknown) => this.deps.log.warn({ err: error, taskId: this.taskId }, 'exit handling failed'));
  }

  /** runStarted records the run the runtime started or adopted, then hands over an exit that came early. */
  protected runStarted(status: TaskStatus): void {
    this.handle = status.handle;
    const early = this.earlyExits.splice(0).find((exit) => exit.handle === status.handle);
    if (early !== undefined) queueMicrotask(() => this.exitArrived(early));
  }

  /** forgetRun: the current run is gone (removed to relaunch); exits of it are ignored from now on. */
  protected forgetRun(): void {
    this.handle = undefined;
    this.earlyExits.length = 0;
  }

  /** onExit handles an exit of the current run (decides the final report, or a relaunch). */
  protected abstract onExit(exit: TaskExit): Promise<void>;

  /** the final report of a task that was killed while its exit could not be read */
  protected abstract killedWithoutExit(): Report;

  /**
   * stopAndSettle stops the current run and waits for its exit to settle the runner, all
   * bounded; a runtime that does not answer gets the task removed by force, reported killed.
   */
  protected async stopAndSettle(): Promise<void> {
    try {
      await this.deps.runtime.stop(this.taskId, this.deps.stopGraceMs);
    } catch (error) {
      this.deps.log.warn({ err: error, taskId: this.taskId }, 'stop failed; waiting for the exit, then removing the task by force');
    }
    if (await this.settledWithin(EXIT_AFTER_STOP_MS)) return;
    const status = await this.deps.runtime.inspect(this.taskId).catch(() => undefined);
    if (status !== undefined && !status.running && status.exitCode !== undefined && status.handle === this.handle) {
      await this.onExit({ exitCode: status.exitCode, oomKilled: status.oomKilled ?? false, stopped: true, handle: status.handle });
      return;
    }
    this.deps.log.error({ taskId: this.taskId }, 'no exit after stop: removing the task by force');
    await this.deps.runtime.remove(this.taskId).catch((error: unknown) => this.deps.log.error({ err: error, taskId: this.taskId }, 'forced removal failed; the relist retries'));
    await this.settle(this.killedWithoutExit());
  }

  /** settledWithin: true once the final report is decided, false after `ms`. */
  private async settledWithin(ms: number): Promise<boolean> {
    if (this.isFinished) return true;
    await napUntilWoken(ms, (wake) => (this.wakeOnSettle = wake));
    return this.isFinished;
  }

  /** settle decides the final report once and delivers it through `deliver`; later signals wait for the first. */
  protected settleWith(report: Report, deliver: () => Promise<void>): Promise<void> {
    if (this.settling !== undefined) return this.settling;
    this.finalReport = report;
    this.finishedAt = this.deps.now();
    this.wakeOnSettle?.();
    this.settling = deliver();
    return this.settling;
  }

  /** settled: the delivery of the final report, once decided. */
  protected get settled(): Promise<void> | undefined {
    return this.settling;
  }

  abstract settle(report: Report): Promise<void>;
}
