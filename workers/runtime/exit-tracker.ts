/**
 * ExitTracker: the one exit pipeline both runtimes share. A runtime tells it which run of
 * a task it watches (`watch(taskId, handle)`) and, once it has read how that run ended,
 * reports the exit (`report`). The tracker delivers each run's exit exactly once: to the
 * run's waiters (`exitOf`) and to every `onExit` listener (the agent's single exit
 * source). How a runtime learns that a run may have ended (Docker's events and relist,
 * the process runtime's exit files) is its own business; what happens next is here.
 *
 * A run is identified by its handle (container id, `pid:<n>`): after a task is removed
 * and started again under the same task id (a supervised driver's relaunch), the old
 * run's exit can never be mistaken for the new one's.
 */
import type { TaskExit } from './types.ts';

/** ExitListener: called once per run that ends while it is watched. */
export type ExitListener = (taskId: string, exit: TaskExit) => void;

interface WatchedRun {
  handle: string;
  exit: TaskExit | undefined;
  promise: Promise<TaskExit>;
  resolve: (exit: TaskExit) => void;
  reject: (error: Error) => void;
}

/** ExitTracker: watched runs by task id, their exits, and the listeners. */
export class ExitTracker {
  private readonly runs = new Map<string, WatchedRun>();
  private readonly listeners = new Set<ExitListener>();

  constructor(private readonly onListenerError: (error: unknown, taskId: string) => void = () => undefined) {}

  /**
   * watch starts watching a run of `taskId`. Watching the same run again is a no-op; a new
   * handle replaces the previous run (whose waiters are told it was replaced).
   */
  watch(taskId: string, handle: string): void {
    const current = this.runs.get(taskId);
    if (current !== undefined && current.handle === handle) return;
    if (current !== undefined && current.exit === undefined) current.reject(new Error(`task ${taskId} was replaced by a new run before its exit was observed`));
    let resolve!: (exit: TaskExit) => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<TaskExit>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => undefined); // nobody may be waiting
    this.runs.set(taskId, { handle, exit: undefined, promise, resolve, reject });
  }

  /** isWatching: the task's current run, if any, has not exited yet. */
  isWatching(taskId: string): boolean {
    const run = this.runs.get(taskId);
    return run !== undefined && run.exit === undefined;
  }

  /** handleOf: the handle of the task's watched run. */
  handleOf(taskId: string): string | undefined {
    return this.runs.get(taskId)?.handle;
  }

  /** exitOf: the exit of the task's watched run (resolves at once when it has exited); undefined when not watched. */
  exitOf(taskId: string): Promise<TaskExit> | undefined {
    return this.runs.get(taskId)?.promise;
  }

  /** exitedWith: the exit already reported for the task's run, if any. */
  exitedWith(taskId: string): TaskExit | undefined {
    return this.runs.get(taskId)?.exit;
  }

  /** openTaskIds: watched runs that have not exited. */
  openTaskIds(): string[] {
    return [...this.runs].filter(([, run]) => run.exit === undefined).map(([taskId]) => taskId);
  }

  /**
   * report delivers the exit of run `handle` of `taskId`, once: false when that run is not
   * the one watched (removed, replaced) or its exit was already delivered.
   */
  report(taskId: string, handle: string, exit: Omit<TaskExit, 'handle'>): boolean {
    const run = this.runs.get(taskId);
    if (run === undefined || run.handle !== handle || run.exit !== undefined) return false;
    const full: TaskExit = { ...exit, handle };
    run.exit = full;
    run.resolve(full);
    for (const listener of this.listeners) {
      try {
        listener(taskId, full);
      } catch (error) {
        this.onListenerError(error, taskId);
      }
    }
    return true;
  }

  /** forget stops watching a task (it was removed): its waiters are told why; no exit is delivered any more. */
  forget(taskId: string, why: string): void {
    const run = this.runs.get(taskId);
    if (run === undefined) return;
    this.runs.delete(taskId);
    if (run.exit === undefined) run.reject(new Error(why));
  }

  onExit(listener: ExitListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** close forgets every run (waiters are told the runtime closed); listeners get nothing more. */
  close(why: string): void {
    for (const taskId of [...this.runs.keys()]) this.forget(taskId, why);
    this.listeners.clear();
  }
}
