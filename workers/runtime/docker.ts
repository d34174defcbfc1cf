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
 * may have ended; probe() reads the truth from inspect, State.ExitCode and
 * State.OOMKilled (137 alone is not an OOM; Docker 20.10 on cgroup v1 may deliver a
 * container's `oom` event after its `die` and never set OOMKilled, so that event counts
 * too and a non-zero exit waits a bounded moment for it), waits (bounded) for the log
 * capture to flush, and reports the exit once through the shared exit tracker.
 *
 * Bounds. Every Docker call has a deadline (apiTimeoutMs); stop() and remove() never wait
 * without one and fall back to a forced removal.
 *
 * Restarts. Containers outlive the agent: list() finds them by label, recover() (or a
 * wait/stop/inspect on a task id this instance has not seen) re-attaches the run and the
 * log capture, which resumes exactly where the files stop (log-capture.ts). A stop()
 * request is also written to the workDir, so an exit after a restart is still reported
 * as stopped. Assumes one runtime instance per worker at a time.
 */
import { rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { Docker as DockerClient } from '../../lib/docker.ts';
import type { Logger } from '../../lib/log.ts';
import { napUntilWoken, withDeadline } from '../../lib/deadline.ts';
import { DockerApi, statusCodeOf } from './docker-api.ts';
import { containerPhase, demuxText, statusFromInspect, tiniExecFailure, type DockerTaskOptions } from './docker-config.ts';
import { DockerExitWatcher, type Scope } from './docker-exit-watcher.ts';
import { ContainerStarter, isStartingHere } from './docker-start.ts';
import { ExitTracker } from './exit-tracker.ts';
import { DockerLogCapture } from './log-capture.ts';
import { LABEL, TASK_FILES, assertValidTaskSpec, checkImageAllowed } from './task-identity.ts';
import type { Runtime, TaskExit, TaskSpec, TaskStatus } from './types.ts';

export { containerConfig, statusFromInspect } from './docker-config.ts';

/** DockerRuntimeOptions: how to reach Docker and how strict to be. */
export interface DockerRuntimeOptions extends DockerTaskOptions {
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

/** UNKNOWN_EXIT_CODE: reported when a container vanished before its exit code could be read. */
export const UNKNOWN_EXIT_CODE = -1;

interface TrackedContainer {
  taskId: string;
  containerId: string;
  hostWorkDir: string | undefined;
  scope: Scope;
  stopRequested: boolean;
  /** the log capture once opened; undefined when it could not start (or the task has no workDir label) */
  capture: Promise<DockerLogCapture | undefined>;
  probing: Promise<void> | undefined;
  /** Docker sent an `oom` event for this container */
  oomEvent: boolean;
  /** wakes a probe that waits for a late `oom` event */
  onOomEvent: (() => void) | undefined;
}

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
  private closed = false;

  constructor(private readonly options: DockerRuntimeOptions = {}) {
    this.docker = options.docker ?? new DockerClient({ socketPath: options.socketPath ?? '/var/run/docker.sock' });
    this.api = new DockerApi(this.docker, options.apiTimeoutMs ?? 30_000);
    this.starter = new ContainerStarter(this.api, options);
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
      hostWorkDir: labels[LABEL.workDir],
      scope: { cluster: labels[LABEL.cluster] ?? '', workerId: labels[LABEL.worker] ?? '' },
      stopRequested: false,
      capture: Promise.resolve(undefined),
      probing: undefined,
      oomEvent: false,
      onOomEvent: undefined,
    };
    this.containers.set(taskId, task);
    this.exits.watch(taskId, info.Id);
    this.watcher.watch(task.scope);
    if (task.hostWorkDir !== undefined) {
      task.capture = DockerLogCapture.start(this.docker, info.Id, task.hostWorkDir, {
        onError: (error) => this.options.logger?.warn({ err: error, taskId }, 'log capture error'),
      }).then(
        (capture) => {
          if (!this.closed && this.containers.get(taskId) === task) return capture;
          void capture.stop();
          return undefined;
        },
        (error: unknown) => {
          this.options.logger?.warn({ err: error, taskId }, 'log capture could not start');
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
    task.probing ??= this.readExit(task)
      .then((exit) => {
        if (exit !== undefined && this.containers.get(task.taskId) === task) this.exits.report(task.taskId, task.containerId, exit);
      })
      .catch((error: unknown) => this.options.logger?.warn({ err: error, taskId: task.taskId }, 'could not read a task exit; the next relist retries'))
      .finally(() => {
        task.probing = undefined;
      });
    return task.probing;
  }

  /** readExit: how the container's run ended, or undefined while it runs (or is being started here). */
  private async readExit(task: TrackedContainer): Promise<Omit<TaskExit, 'handle'> | undefined> {
    const info = await this.api.inspect(task.containerId);
    const stopped = task.stopRequested || (task.hostWorkDir !== undefined && (await exists(join(task.hostWorkDir, TASK_FILES.stopRequested))));
    if (info === undefined) {
      await this.drainLogs(task);
      return { exitCode: UNKNOWN_EXIT_CODE, oomKilled: false, stopped, vanished: 'the container was removed outside Flint' };
    }
    const phase = containerPhase(info.State);
    if (phase === 'running' || (phase === 'never-started' && isStartingHere(info.Id))) return undefined;
    if (phase === 'never-started') return { exitCode: UNKNOWN_EXIT_CODE, oomKilled: false, stopped, launchError: 'the container was created but never started' };
    const exit: Omit<TaskExit, 'handle'> = { exitCode: info.State.ExitCode, oomKilled: info.State.OOMKilled || task.oomEvent, stopped };
    await this.drainLogs(task);
    if (exit.exitCode !== 0 && !exit.oomKilled && !stopped) {
      // Docker can deliver the `oom` event a moment after the exit under load (and 20.10 then
      // leaves State.OOMKilled false): wait for it before reporting an ordinary non-zero exit
      await this.waitForOomEvent(task, exit.exitCode === 137 ? (this.options.oomEventWaitMs ?? 1000) : 150);
      const again = task.oomEvent ? undefined : await this.api.inspect(task.containerId);
      exit.oomKilled = task.oomEvent || again?.State.OOMKilled === true;
    }
    if ((exit.exitCode === 126 || exit.exitCode === 127) && !exit.oomKilled) {
      const launchError = await this.initExecFailure(task.containerId);
      if (launchError !== undefined) exit.launchError = launchError;
    }
    return exit;
  }

  /** initExecFailure asks Docker (never the task's files) for the init's FATAL line: the command could not be executed. */
  private async initExecFailure(containerId: string): Promise<string | undefined> {
    try {
      const body = (await this.api.call('logs', this.docker.getContainer(containerId).logs({ stdout: false, stderr: true, follow: false, tail: 5 }))) as unknown as Buffer;
      return tiniExecFailure(demuxText(Buffer.isBuffer(body) ? body : Buffer.from(String(body)), 2));
    } catch {
      return undefined;
    }
  }

  /** waitForOomEvent resolves when an `oom` event of the task's container arrives, or after `ms`. */
  private async waitForOomEvent(task: TrackedContainer, ms: number): Promise<void> {
    if (task.oomEvent) return;
    await napUntilWoken(ms, (wake) => (task.onOomEvent = wake));
  }

  /** drainLogs waits (bounded) for the capture to write the container's last output. */
  private async drainLogs(task: TrackedContainer): Promise<void> {
    await withDeadline(
      task.capture.then((capture) => capture?.done),
      this.options.logDrainTimeoutMs ?? 10_000,
      'log drain',
    ).catch(() => this.options.logger?.warn({ taskId: task.taskId }, 'log capture did not flush in time; reporting the exit anyway'));
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
    if (task.hostWorkDir !== undefined) await writeFile(join(task.hostWorkDir, TASK_FILES.stopRequested), String(Date.now())).catch(() => undefined);
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
    const workDir = task?.hostWorkDir ?? info?.Config.Labels?.[LABEL.workDir];
    if (workDir !== undefined) {
      // files the task could have made hard to delete: the container is gone either way
      for (const file of [TASK_FILES.logState, TASK_FILES.stopRequested]) {
        await rm(join(workDir, file), { force: true }).catch((error: unknown) => this.options.logger?.warn({ err: error, taskId, file }, 'could not delete a runtime file of a removed task'));
      }
    }
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

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
