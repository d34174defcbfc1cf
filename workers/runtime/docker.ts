/**
 * DockerRuntime: runs each executor or driver as one hardened container (dockerode,
 * local socket) and reports how each run ended.
 *
 * Starts (docker-start.ts). One container per task id, under a deterministic name; a
 * failed start removes its container and throws one line (TaskStartError); a program
 * that cannot be executed is found before the start.
 *
 * Ends. A container is running, exited, or never started (docker-config.ts). One found
 * `created` (a crash between create and start) is an ended task in which nothing ran:
 * start() removes it and creates the task afresh, list() shows it `neverStarted`,
 * remove() removes it without waiting for any exit. A program that still cannot be
 * executed is reported by Docker's init (tini) as exit 127/126 with a FATAL line: that
 * exit carries `launchError`, so an agent reports it as a launch failure.
 *
 * Exits. The exit watcher (docker-exit-watcher.ts: events and relist) says when a run
 * may have ended; probe() reads the truth from Docker (docker-exit-reader.ts: exit code,
 * OOM kill, an init that could not exec the program, the agent's own stop and refusal
 * markers), after the log capture has flushed (bounded), and reports the exit once
 * through the shared exit tracker.
 *
 * Bounds. Every Docker call has a deadline (apiTimeoutMs); stop() and remove() never wait
 * without one and fall back to a forced removal.
 *
 * Restarts. Containers outlive the agent: list() finds them by label, recover() (or a
 * wait/stop/inspect on a task id this instance has not seen) re-attaches the run and the
 * log capture, which resumes exactly where the files stop (log-capture.ts). A stop()
 * request is also recorded, so an exit after a restart is still reported as stopped.
 * Assumes one runtime instance per worker at a time.
 *
 * The task's directory is hostile ground. The runtime's own records for a task (capture
 * state, stop and refusal markers) live in `<stateDir>/<task name>/`, outside it; the log
 * files in it are written through a directory handle (safe-fs.ts). When the task puts a
 * link, FIFO or device in place of stdout or stderr (or its directory is replaced by a
 * link), the capture refuses it: the container is killed at once and its exit carries
 * `refused`, also after an agent restart (the marker is kept).
 */
import type Docker from 'dockerode';
import { Docker as DockerClient } from '../../lib/docker.ts';
import type { Logger } from '../../lib/log.ts';
import { withDeadline } from '../../lib/deadline.ts';
import { DockerApi, statusCodeOf } from './docker-api.ts';
import { containerPhase, statusFromInspect, type DockerTaskOptions } from './docker-config.ts';
import { DockerExitWatcher } from './docker-exit-watcher.ts';
import { ContainerStarter, isStartingHere } from './docker-start.ts';
import { ExitTracker } from './exit-tracker.ts';
import { ExitReader, type TrackedContainer } from './docker-exit-reader.ts';
import { DockerLogCapture } from './log-capture.ts';
import type { LogRolling } from './log-rolling.ts';
import { UnsafeFileError, type TaskDirRef } from './safe-fs.ts';
import { LABEL, assertValidTaskSpec, checkImageAllowed, privateTaskDir } from './task-identity.ts';
import { TaskRecords } from './task-records.ts';
import { isRoot } from './task-user.ts';
import { taskDirRef } from './work-dir.ts';
import type { Runtime, TaskExit, TaskSpec, TaskStatus } from './types.ts';

export { containerConfig, statusFromInspect } from './docker-config.ts';

/** DockerRuntimeOptions: how to reach Docker and how strict to be. */
export interface DockerRuntimeOptions extends DockerTaskOptions {
  /**
   * the agent's own directory for its tasks' records (e.g. `<work-dir>/.flint-docker-runtime/<cluster>/<worker>`):
   * outside every task's directory, kept across agent restarts
   */
  stateDir: string;
  /** Spark's rolling executor logs (spark.executor.logs.rolling.*) */
  logRolling?: LogRolling;
  /** the worker allows tasks to run as root (spark.flint.worker.allowRootTasks) */
  allowRootTasks?: boolean;
  /** test hook: runs between a container's create and its start (to crash an agent in that window) */
  afterCreate?: (containerName: string) => Promise<void>;
  /** a ready client; otherwise one is made for socketPath */
  docker?: Docker;
  /** default /var/run/docker.sock */
  socketPath?: string;
  /** image name prefixes tasks may use; unset or empty allows any local image */
  imageAllowList?: string[];
  /** full relist period in ms (spark.flint.worker.relistInterval), default 2000 */
  relistIntervalMs?: number;
  /** narrow task-id lookups of tasks this instance has not seen yet to one cluster/worker */
  cluster?: string;
  workerId?: string;
  /** false: no event stream, exits come from the periodic relist alone (e.g. behind a socket proxy that blocks /events) */
  useEvents?: boolean;
  /** how long an exit report waits for the log capture to flush, default 10 s */
  logDrainTimeoutMs?: number;
  /** how long an exit with code 137 waits for a late `oom` event, default 1000 ms (other non-zero exits: 150 ms) */
  oomEventWaitMs?: number;
  /** deadline of one Docker API call, default 30 s */
  apiTimeoutMs?: number;
  logger?: Logger;
}

export { UNKNOWN_EXIT_CODE } from './docker-exit-reader.ts';

/** REFUSED_KILL_ATTEMPTS: how many times a refused task's container is killed before the relist is left to see it. */
const REFUSED_KILL_ATTEMPTS = 5;

/** DockerRuntime: the Runtime contract on a local Docker engine. */
export class DockerRuntime implements Runtime {
  readonly name = 'docker' as const;
  readonly docker: Docker;
  private readonly containers = new Map<string, TrackedContainer>();
  private readonly starting = new Map<string, Promise<TaskStatus>>();
  private readonly exits: ExitTracker;
  private readonly watcher: DockerExitWatcher;
  private readonly api: DockerApi;
  private readonly starter: ContainerStarter;
  private readonly exitReader: ExitReader;
  private closed = false;

  constructor(private readonly options: DockerRuntimeOptions) {
    if (typeof options?.stateDir !== 'string' || !options.stateDir.startsWith('/')) throw new TypeError('DockerRuntime needs an absolute stateDir');
    if (options.user !== undefined && isRoot(options.user) && options.allowRootTasks !== true) {
      throw new TypeError(`tasks may not run as root (user ${options.user.uid}:${options.user.gid}) unless the worker allows it (spark.flint.worker.allowRootTasks)`);
    }
    this.docker = options.docker ?? new DockerClient({ socketPath: options.socketPath ?? '/var/run/docker.sock' });
    this.api = new DockerApi(this.docker, options.apiTimeoutMs ?? 30_000);
    this.starter = new ContainerStarter(this.api, options);
    this.exitReader = new ExitReader(this.api, options);
    this.exits = new ExitTracker((error, taskId) => options.logger?.error({ err: error, taskId }, 'exit listener threw'));
    this.watcher = new DockerExitWatcher(
      this.docker,
      {
        open: () =>
          this.exits
            .openTaskIds()
            .map((taskId) => this.containers.get(taskId))
            .filter((task): task is TrackedContainer => task !== undefined),
        isStarting: isStartingHere,
        probe: (taskId, containerId) => {
          const task = this.containers.get(taskId);
          return task !== undefined && task.containerId === containerId ? this.probe(task) : Promise.resolve();
        },
        oom: (taskId, containerId) => {
          const task = this.containers.get(taskId);
          if (task === undefined || task.containerId !== containerId) return;
          task.oomEvent = true;
          task.onOomEvent?.();
        },
      },
      { useEvents: options.useEvents !== false, relistIntervalMs: options.relistIntervalMs ?? 2000, apiTimeoutMs: this.api.timeoutMs, logger: options.logger },
    );
  }

  async start(spec: TaskSpec): Promise<TaskStatus> {
    this.assertOpen();
    assertValidTaskSpec(spec);
    checkImageAllowed(spec.image, this.options.imageAllowList);
    // one start per task id at a time in this process; the name check covers other processes
    const inFlight = this.starting.get(spec.taskId);
    if (inFlight !== undefined) return inFlight;
    const attempt = this.starter
      .start(spec)
      .then((info) => {
        this.track(info);
        return statusFromInspect(info);
      })
      .finally(() => this.starting.delete(spec.taskId));
    this.starting.set(spec.taskId, attempt);
    return attempt;
  }

  /** findContainerId returns the container of a task id: tracked, or found by label (after an agent restart). */
  private async findContainerId(taskId: string): Promise<string | undefined> {
    const tracked = this.containers.get(taskId);
    if (tracked !== undefined) return tracked.containerId;
    const label = [`${LABEL.task}=${taskId}`];
    if (this.options.cluster !== undefined) label.push(`${LABEL.cluster}=${this.options.cluster}`);
    if (this.options.workerId !== undefined) label.push(`${LABEL.worker}=${this.options.workerId}`);
    const found = await this.api.list(label);
    if (found.length > 1) {
      throw new Error(`task id ${taskId} matches ${found.length} containers (of several clusters or workers): construct the runtime with cluster and workerId`);
    }
    return found[0]?.Id;
  }

  /** attach finds and tracks a task this instance has not seen, so waits and stops work after a restart. */
  private async attach(taskId: string): Promise<TrackedContainer | undefined> {
    const tracked = this.containers.get(taskId);
    if (tracked !== undefined) return tracked;
    const id = await this.findContainerId(taskId);
    if (id === undefined) return undefined;
    const info = await this.api.inspect(id);
    if (info === undefined || containerPhase(info.State) === 'never-started') return undefined;
    return this.track(info);
  }

  /** track starts watching a run: exit tracker, log capture, events; an exited one is probed at once. */
  private track(info: Docker.ContainerInspectInfo): TrackedContainer {
    const labels = info.Config.Labels ?? {};
    const taskId = labels[LABEL.task];
    if (taskId === undefined) throw new Error(`container ${info.Name} carries no ${LABEL.task} label`);
    const known = this.containers.get(taskId);
    if (known !== undefined && known.containerId === info.Id) return known;
    const task: TrackedContainer = {
      taskId,
      containerId: info.Id,
      taskDir: taskDirOf(labels),
      records: new TaskRecords(privateTaskDir(this.options.stateDir, labels[LABEL.cluster] ?? '', labels[LABEL.kind] ?? '', taskId)),
      scope: { cluster: labels[LABEL.cluster] ?? '', workerId: labels[LABEL.worker] ?? '' },
      stopRequested: false,
      refused: undefined,
      capture: Promise.resolve(undefined),
      probing: undefined,
      oomEvent: false,
      onOomEvent: undefined,
    };
    this.containers.set(taskId, task);
    this.exits.watch(taskId, info.Id);
    this.watcher.watch(task.scope);
    if (task.taskDir !== undefined) {
      task.capture = DockerLogCapture.start(this.docker, info.Id, {
        taskDir: task.taskDir,
        privateDir: task.records.dir,
        rolling: this.options.logRolling,
        onError: (error) => this.options.logger?.warn({ err: error, taskId }, 'log capture error'),
        onRefused: (reason) => void this.refuse(task, reason),
      }).then(
        (capture) => {
          if (!this.closed && this.containers.get(taskId) === task) return capture;
          void capture.stop();
          return undefined;
        },
        (error: unknown) => {
          if (error instanceof UnsafeFileError) void this.refuse(task, error.message);
          else this.options.logger?.warn({ err: error, taskId }, 'log capture could not start');
          return undefined;
        },
      );
    }
    if (containerPhase(info.State) === 'exited') void this.probe(task);
    return task;
  }

  /** probe reads the container's state and, if its run has ended, reports the exit once (after its logs are flushed). */
  private probe(task: TrackedContainer): Promise<void> {
    if (!this.exits.isWatching(task.taskId) || this.closed) return Promise.resolve();
    task.probing ??= this.exitReader.read(task)
      .then((exit) => {
        if (exit !== undefined && this.containers.get(task.taskId) === task) this.exits.report(task.taskId, task.containerId, exit);
      })
      .catch((error: unknown) => this.options.logger?.warn({ err: error, taskId: task.taskId }, 'could not read a task exit; the next relist retries'))
      .finally(() => {
        task.probing = undefined;
      });
    return task.probing;
  }

  /**
   * refuse ends a task that tampered with a file the agent writes: the reason is recorded
   * (kept across agent restarts), the container killed at once (a hostile task gets no
   * grace), and the exit then reported with `refused`.
   */
  private async refuse(task: TrackedContainer, reason: string): Promise<void> {
    if (task.refused !== undefined) return;
    task.refused = reason;
    this.options.logger?.warn({ taskId: task.taskId, reason }, 'the task tampered with a file the agent writes: refused, ending the task');
    try {
      await task.records.recordRefusal(reason);
    } catch (error) {
      this.options.logger?.warn({ err: error, taskId: task.taskId }, 'could not record the refusal');
    }
    // a few tries a second apart: a Docker that does not answer now must not leave a refused task running
    for (let attempt = 1; attempt <= REFUSED_KILL_ATTEMPTS && !this.closed; attempt++) {
      try {
        await this.api.call('kill', this.docker.getContainer(task.containerId).kill({ signal: 'SIGKILL' }));
        break;
      } catch (error) {
        const code = statusCodeOf(error);
        if (code === 404 || code === 409) break; // gone, or not running any more
        this.options.logger?.warn({ err: error, taskId: task.taskId, attempt }, 'could not kill a refused task');
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
    await this.probe(task);
  }

  async wait(taskId: string): Promise<TaskExit> {
    this.assertOpen();
    const task = await this.attach(taskId);
    const exit = task === undefined ? undefined : this.exits.exitOf(taskId);
    if (exit === undefined) throw new Error(`unknown task ${taskId}: no started container carries its label`);
    return exit;
  }

  async stop(taskId: string, graceMs: number): Promise<void> {
    this.assertOpen();
    const task = await this.attach(taskId);
    if (task === undefined || !this.exits.isWatching(taskId)) return;
    const info = await this.api.inspect(task.containerId);
    if (info === undefined || containerPhase(info.State) !== 'running') {
      await this.probe(task);
      return;
    }
    task.stopRequested = true;
    await task.records.recordStop().catch((error: unknown) => this.options.logger?.warn({ err: error, taskId }, 'could not record the stop request'));
    const seconds = Math.max(0, Math.ceil(graceMs / 1000));
    try {
      // Docker sends the stop signal (SIGTERM, to the init, which passes it on), waits t seconds, then SIGKILL
      await this.api.call('stop', this.docker.getContainer(task.containerId).stop({ t: seconds }), seconds * 1000 + this.api.timeoutMs);
    } catch (error) {
      const code = statusCodeOf(error);
      if (code !== 304 && code !== 404) {
        this.options.logger?.warn({ err: error, taskId }, 'docker stop failed; killing the container');
        await this.api.call('kill', this.docker.getContainer(task.containerId).kill({ signal: 'SIGKILL' })).catch(() => undefined);
      }
    }
    await this.probe(task);
    const exit = this.exits.exitOf(taskId);
    if (exit !== undefined && this.exits.isWatching(taskId)) await withDeadline(exit, this.api.timeoutMs, `the exit of ${taskId} after stop`);
  }

  async inspect(taskId: string): Promise<TaskStatus | undefined> {
    this.assertOpen();
    const id = await this.findContainerId(taskId);
    if (id === undefined) return undefined;
    const info = await this.api.inspect(id);
    return info === undefined ? undefined : statusFromInspect(info);
  }

  async list(workerId: string, cluster: string): Promise<TaskStatus[]> {
    this.assertOpen();
    const containers = await this.api.list([`${LABEL.cluster}=${cluster}`, `${LABEL.worker}=${workerId}`, LABEL.task]);
    const infos = await Promise.all(containers.map((container) => this.api.inspect(container.Id)));
    return infos
      .filter((info): info is Docker.ContainerInspectInfo => info !== undefined)
      // a task whose start (or a driver's relaunch) is under way here is not listed yet: it would look never started
      .filter((info) => !isStartingHere(info.Id) && !this.starting.has(info.Config.Labels?.[LABEL.task] ?? ''))
      .map(statusFromInspect);
  }

  async recover(status: TaskStatus): Promise<void> {
    this.assertOpen();
    const info = await this.api.inspect(status.handle);
    if (info === undefined || containerPhase(info.State) === 'never-started') return; // removed meanwhile, or nothing ran: wait() says it is unknown
    if (info.Config.Labels?.[LABEL.task] !== status.taskId) {
      throw new Error(`container ${status.handle} does not belong to task ${status.taskId}`);
    }
    this.track(info);
  }

  async remove(taskId: string): Promise<void> {
    this.assertOpen();
    const id = this.containers.get(taskId)?.containerId ?? (await this.findContainerId(taskId));
    if (id === undefined) return;
    const info = await this.api.inspect(id);
    if (info !== undefined && containerPhase(info.State) === 'running') {
      // a running task is stopped first and watched meanwhile, so its exit is still reported (stopped)
      await this.attach(taskId);
      await this.stop(taskId, 0).catch((error: unknown) => this.options.logger?.warn({ err: error, taskId }, 'stop before removal failed; removing by force'));
    }
    const task = this.containers.get(taskId);
    await this.api.forceRemove(id);
    if (task !== undefined && task.containerId === id) {
      this.containers.delete(taskId);
      this.exits.forget(taskId, `task ${taskId} was removed before its exit was observed`);
      await withDeadline(
        task.capture.then((capture) => capture?.stop()),
        this.options.logDrainTimeoutMs ?? 10_000,
        'log capture stop',
      ).catch(() => undefined);
    }
    const labels = info?.Config.Labels;
    const records = task?.records ?? (labels === undefined ? undefined : new TaskRecords(privateTaskDir(this.options.stateDir, labels[LABEL.cluster] ?? '', labels[LABEL.kind] ?? '', taskId)));
    // the container is gone either way: records that cannot be deleted are only logged
    await records?.remove().catch((error: unknown) => this.options.logger?.warn({ err: error, taskId }, 'could not delete the records of a removed task'));
  }

  watches(taskId: string): boolean {
    return this.containers.has(taskId);
  }

  onExit(listener: (taskId: string, exit: TaskExit) => void): () => void {
    return this.exits.onExit(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watcher.close();
    const tasks = [...this.containers.values()];
    this.containers.clear();
    await Promise.all(tasks.map((task) => withDeadline(task.capture.then((capture) => capture?.stop()), 5000, 'log capture stop').catch(() => undefined)));
    this.exits.close('runtime closed before the task exited');
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('docker runtime is closed');
  }
}

/** taskDirOf: where a container's task directory is, from its labels (no workDir label: none). */
function taskDirOf(labels: Record<string, string>): TaskDirRef | undefined {
  const workDir = labels[LABEL.workDir];
  if (workDir === undefined) return undefined;
  try {
    return taskDirRef(workDir, labels[LABEL.workRoot]);
  } catch {
    return undefined;
  }
}

