/**
 * The runtime contract: how an agent starts, watches, stops and re-adopts the
 * processes it runs for executors and drivers (Nomad's driver contract, reduced).
 * Two implementations: Docker (docker.ts, the default) and local processes
 * (process.ts, for hosts without Docker). The agent never talks to Docker directly.
 */

/** TaskKind: what a task runs for. */
export type TaskKind = 'executor' | 'driver';

/** TaskSpec: everything needed to start one executor or driver. */
export interface TaskSpec {
  kind: TaskKind;
  /** stable identity: `executor:<appId>/<execId>` or `driver:<driverId>`; the container name derives from it */
  taskId: string;
  workerId: string;
  /** cluster name (label), so agents of different clusters on one host never adopt each other's tasks */
  cluster: string;
  appId?: string;
  execId?: number;
  driverId?: string;
  image: string;
  /** argv; empty means the image's default command */
  command: string[];
  env: Record<string, string>;
  cores: number;
  memoryMB: number;
  /** directory owned by this task: stdout and stderr files are written here, and it is the only host mount */
  workDir: string;
  /**
   * the trusted directory workDir lies below (the worker's work dir); every component from
   * it to workDir is opened without following links. Default: workDir's parent.
   */
  workRoot?: string;
  network: 'host' | 'none';
  pidsLimit: number;
  /** extra labels to set on the container */
  labels?: Record<string, string>;
}

/** TaskStatus: what the runtime knows about one task. */
export interface TaskStatus {
  taskId: string;
  /** runtime handle: container id or `pid:<n>` */
  handle: string;
  running: boolean;
  /** exit code once exited */
  exitCode?: number;
  /** the kernel's OOM killer ended it (Docker: State.OOMKilled) */
  oomKilled?: boolean;
  /** runtime error text (e.g. image not found) */
  error?: string;
  /** the agent ended the task for tampering with a file it writes (TaskExit.refused) */
  refused?: string;
  /**
   * the task was created but never started (a crash between create and start, or a start
   * that failed): it is an ended task, never a running one, and nothing ran, so no exit is
   * reported for it; an agent removes it
   */
  neverStarted?: boolean;
  startedAt?: number;
  finishedAt?: number;
  labels: Record<string, string>;
}

/** TaskExit: how one run of a task ended. */
export interface TaskExit {
  exitCode: number;
  oomKilled: boolean;
  /** true when the exit followed a stop() request */
  stopped: boolean;
  /** the run that ended (TaskStatus.handle): a relaunched task's old run is never taken for the new one */
  handle: string;
  /**
   * set when the command never ran (its program is missing or not executable): one line,
   * e.g. `cannot run "/nonexistent-binary": No such file or directory`. Spark reports such
   * an executor FAILED, not EXITED.
   */
  launchError?: string;
  /** set when the exit code is unknown because the task vanished (removed outside Flint): why */
  vanished?: string;
  /**
   * set when the agent ended the task because it tampered with a file the agent writes (a
   * link, FIFO or device in place of stdout or stderr, or of its directory): one line, e.g.
   * `stdout was replaced by a symbolic link: refused`. The task's exit code is whatever the
   * kill left.
   */
  refused?: string;
}

/** TaskStartError: the task could not be started; whatever the runtime created for it is removed. One line. */
export class TaskStartError extends Error {
  override name = 'TaskStartError';
}

export class ImageNotFoundError extends Error {
  override name = 'ImageNotFoundError';
}

export class ImageNotAllowedError extends Error {
  override name = 'ImageNotAllowedError';
}

/** Runtime: the contract both runtimes implement. */
export interface Runtime {
  readonly name: 'docker' | 'process';
  /**
   * start creates and starts the task. Idempotent: if a task with the same taskId
   * exists (running or exited), it is adopted and its status returned; a second
   * one is never started; one that was created but never started is removed and
   * created afresh. Throws ImageNotFoundError when the image is missing and
   * TaskStartError (one line) when the start fails, after removing what it created.
   * Its exit is then reported through onExit.
   */
  start(spec: TaskSpec): Promise<TaskStatus>;
  /**
   * wait resolves when the task exits (immediately if it already has). It finds a task
   * this instance has not seen (after an agent restart) by label, throws for a task id
   * nothing carries, and rejects if the runtime is closed first. Docker: resolves after
   * the task's log capture has flushed, so the stdout/stderr files are complete.
   */
  wait(taskId: string): Promise<TaskExit>;
  /**
   * stop sends SIGTERM, waits up to graceMs, then SIGKILL. Resolves once it has exited;
   * rejects when it has not within graceMs plus a bounded time. No-op if unknown, exited
   * or never started.
   */
  stop(taskId: string, graceMs: number): Promise<void>;
  /** inspect returns the task's status, or undefined if the runtime has no such task. */
  inspect(taskId: string): Promise<TaskStatus | undefined>;
  /** list returns every task of this worker (running or exited, not yet removed), found by label. */
  list(workerId: string, cluster: string): Promise<TaskStatus[]>;
  /** watches: a run of this task is watched (its exit will be reported through onExit, or already was). */
  watches(taskId: string): boolean;
  /** recover re-attaches to a task found by list() after an agent restart, so wait() works for it. */
  recover(status: TaskStatus): Promise<void>;
  /**
   * remove deletes a task's container/record (logs in workDir stay). A running task is
   * killed first (its exit is still reported, stopped: true); an exited or never-started
   * one is removed at once, never waiting for an exit. Bounded: when the runtime does not
   * answer in time it rejects, and a later remove (or relist) tries again.
   */
  remove(taskId: string): Promise<void>;
  /**
   * onExit subscribes to exits; returns an unsubscribe function. This is the one exit
   * source: every run started by start() or taken over by recover() (or wait/stop/inspect
   * after a restart) is reported exactly once, including runs found already exited, unless
   * it is removed first or the runtime is closed. exitCode is -1 with `vanished` set when
   * the exit code was lost (container removed behind the runtime's back, supervisor killed).
   */
  onExit(listener: (taskId: string, exit: TaskExit) => void): () => void;
  /** close releases event streams and timers (tasks keep running). */
  close(): Promise<void>;
}
