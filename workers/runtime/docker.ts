/**
 * DockerRuntime: runs each executor or driver as one hardened container (dockerode,
 * local socket) and reports how it ended.
 *
 * Identity. The container name derives from the cluster, kind and task id
 * (task-identity.ts), so a duplicate launch finds the first container instead of
 * starting a second one: start() inspects by name, and a create that fails with 409
 * (another start won the race) or with a transport error (Docker may have created it
 * anyway) adopts whatever now holds the name. An exited container is never restarted.
 *
 * Exits. Two sources feed one settle step: Docker's event stream (`die`, `oom`,
 * filtered by the cluster and worker labels) and a periodic relist by label, because
 * events can be missed (Docker keeps only the last 256). settle() always reads the
 * truth from inspect: State.ExitCode and State.OOMKilled (137 alone is not an OOM).
 * Docker 20.10 on cgroup v1 may deliver a container's `oom` event after its `die`, and
 * then never sets State.OOMKilled: the `oom` event of the container is evidence too, and
 * a non-zero exit waits a bounded moment for it (longer for 137, the OOM killer's
 * SIGKILL). An OOM in the first milliseconds of a container, before containerd watches
 * its cgroup, produces no `oom` at all: the engine never knows, and neither can Flint.
 * A task's exit is reported after its log capture has flushed, so a waiter that reads
 * the stderr file sees all of it.
 *
 * Restarts. Containers outlive the agent: list() finds them by label, recover() (or a
 * wait/stop/inspect on a task id this instance has not seen) re-attaches the waiter
 * and the log capture, which resumes exactly where the files stop (log-capture.ts).
 * A stop() request is also written to the workDir, so an exit after a restart is still
 * reported as stopped.
 *
 * Assumes one runtime instance per worker at a time (two agents of one worker would
 * both write the same log files).
 */
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import type { Logger } from '../../lib/log.ts';
import { DockerLogCapture, initialLogState, writeLogState } from './log-capture.ts';
import {
  LABEL,
  TASK_FILES,
  assertValidTaskSpec,
  checkImageAllowed,
  stderrHeader,
  taskLabels,
  taskName,
} from './task-identity.ts';
import { ImageNotFoundError, type Runtime, type TaskExit, type TaskSpec, type TaskStatus } from './types.ts';
import { resolveWorkDir } from './work-dir.ts';

/** DockerRuntimeOptions: how to reach Docker and how strict to be. */
export interface DockerRuntimeOptions {
  /** a ready client; otherwise one is made for socketPath */
  docker?: Docker;
  /** default /var/run/docker.sock */
  socketPath?: string;
  /** image name prefixes tasks may use; unset or empty allows any local image */
  imageAllowList?: string[];
  /** full relist period in ms (spark.flint.worker.relistInterval), default 2000 */
  relistIntervalMs?: number;
  /** where the workDir appears inside the container: the same path (default) or a fixed one such as /flint/work */
  containerWorkDir?: 'same-path' | string;
  /** mount the container's root filesystem read-only (the workDir stays writable) */
  readonlyRootfs?: boolean;
  /** narrow task-id lookups of tasks this instance has not seen yet to one cluster/worker */
  cluster?: string;
  workerId?: string;
  /** false: no event stream, exits come from the periodic relist alone (e.g. behind a socket proxy that blocks /events) */
  useEvents?: boolean;
  /** how long an exit report waits for the log capture to flush, default 10 s */
  logDrainTimeoutMs?: number;
  /** how long an exit with code 137 waits for a late `oom` event, default 1000 ms (other non-zero exits: 150 ms) */
  oomEventWaitMs?: number;
  logger?: Logger;
}

/** UNKNOWN_EXIT_CODE: reported when a container vanished before its exit code could be read. */
export const UNKNOWN_EXIT_CODE = -1;

interface TrackedTask {
  taskId: string;
  containerId: string;
  hostWorkDir: string | undefined;
  scope: Scope;
  stopRequested: boolean;
  exit: TaskExit | undefined;
  exitPromise: Promise<TaskExit>;
  resolveExit: (exit: TaskExit) => void;
  rejectExit: (error: Error) => void;
  /** the log capture once opened; undefined when it could not start (or the task has no workDir label) */
  capture: Promise<DockerLogCapture | undefined>;
  settling: Promise<void> | undefined;
  /** Docker sent an `oom` event for this container */
  oomEvent: boolean;
  /** wakes a settle that waits for a late `oom` event */
  onOomEvent: (() => void) | undefined;
}

interface Scope {
  cluster: string;
  workerId: string;
}

interface EventScope {
  scope: Scope;
  stream: NodeJS.ReadableStream | undefined;
  reconnectTimer: NodeJS.Timeout | undefined;
}

const NO_TIME = '0001-01-01T00:00:00Z';

/** creations under way in this process, by container name (several runtime instances may share a process, e.g. in tests) */
const creatingInThisProcess = new Map<string, Promise<Docker.ContainerInspectInfo | undefined>>();

function statusCodeOf(error: unknown): number | undefined {
  return typeof error === 'object' && error !== null && 'statusCode' in error ? Number((error as { statusCode: unknown }).statusCode) : undefined;
}

function parseDockerTime(text: string | undefined): number | undefined {
  if (text === undefined || text === '' || text.startsWith('0001-01-01')) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** hasExited: the container ran and stopped (created-but-never-started is not an exit). */
function hasExited(info: Docker.ContainerInspectInfo): boolean {
  return !info.State.Running && !info.State.Restarting && ['exited', 'dead', 'removing'].includes(info.State.Status);
}

/** statusFromInspect converts Docker's view of a container into the runtime's TaskStatus. */
export function statusFromInspect(info: Docker.ContainerInspectInfo): TaskStatus {
  const labels = info.Config.Labels ?? {};
  const exited = hasExited(info);
  const status: TaskStatus = {
    taskId: labels[LABEL.task] ?? info.Name.replace(/^\//, ''),
    handle: info.Id,
    running: info.State.Running,
    labels,
  };
  if (exited) {
    status.exitCode = info.State.ExitCode;
    status.oomKilled = info.State.OOMKilled;
  }
  if (info.State.Error) status.error = info.State.Error;
  const startedAt = parseDockerTime(info.State.StartedAt);
  if (startedAt !== undefined) status.startedAt = startedAt;
  const finishedAt = info.State.FinishedAt === NO_TIME || !exited ? undefined : parseDockerTime(info.State.FinishedAt);
  if (finishedAt !== undefined) status.finishedAt = finishedAt;
  return status;
}

/** containerConfig is the create request for a task: limits and hardening live here. */
export function containerConfig(
  spec: TaskSpec,
  hostWorkDir: string,
  options: Pick<DockerRuntimeOptions, 'containerWorkDir' | 'readonlyRootfs'>,
): Docker.ContainerCreateOptions {
  const target = options.containerWorkDir === undefined || options.containerWorkDir === 'same-path' ? hostWorkDir : options.containerWorkDir;
  const memoryBytes = spec.memoryMB * 1024 * 1024;
  return {
    name: taskName(spec.cluster, spec.kind, spec.taskId),
    Image: spec.image,
    ...(spec.command.length > 0 ? { Cmd: spec.command } : {}),
    Env: Object.entries(spec.env).map(([key, value]) => `${key}=${value}`),
    WorkingDir: target,
    Labels: taskLabels(spec, hostWorkDir),
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    HostConfig: {
      NanoCpus: Math.round(spec.cores * 1e9),
      Memory: memoryBytes,
      // equal to Memory: no swap, so the memory limit is the real limit
      MemorySwap: memoryBytes,
      PidsLimit: spec.pidsLimit,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Privileged: false,
      ReadonlyRootfs: options.readonlyRootfs === true,
      NetworkMode: spec.network,
      Mounts: [{ Type: 'bind', Source: hostWorkDir, Target: target, ReadOnly: false }],
      // the agent reads the exit code after the container stops, so Docker must keep it
      AutoRemove: false,
      RestartPolicy: { Name: 'no' },
    },
  };
}

/** DockerRuntime: the Runtime contract on a local Docker engine. */
export class DockerRuntime implements Runtime {
  readonly name = 'docker' as const;
  readonly docker: Docker;
  private readonly tasks = new Map<string, TrackedTask>();
  private readonly starting = new Map<string, Promise<TaskStatus>>();
  private readonly eventScopes = new Map<string, EventScope>();
  private readonly listeners = new Set<(taskId: string, exit: TaskExit) => void>();
  private relistTimer: NodeJS.Timeout | undefined;
  private relisting = false;
  private closed = false;

  constructor(private readonly options: DockerRuntimeOptions = {}) {
    this.docker = options.docker ?? new Docker({ socketPath: options.socketPath ?? '/var/run/docker.sock' });
  }

  async start(spec: TaskSpec): Promise<TaskStatus> {
    this.assertOpen();
    assertValidTaskSpec(spec);
    checkImageAllowed(spec.image, this.options.imageAllowList);
    // one start per task id at a time in this process; the name check covers other processes
    const inFlight = this.starting.get(spec.taskId);
    if (inFlight !== undefined) return inFlight;
    const attempt = this.startOnce(spec).finally(() => this.starting.delete(spec.taskId));
    this.starting.set(spec.taskId, attempt);
    return attempt;
  }

  private async startOnce(spec: TaskSpec): Promise<TaskStatus> {
    const name = taskName(spec.cluster, spec.kind, spec.taskId);
    const existing = await this.inspectContainer(name);
    if (existing !== undefined) return this.adopt(existing, spec);

    await this.checkImagePresent(spec.image);
    const hostWorkDir = await resolveWorkDir(spec.workDir);
    const other = creatingInThisProcess.get(name);
    if (other !== undefined) {
      // another runtime instance in this process is creating it right now: adopt its result
      await other.catch(() => undefined);
      const holder = await this.findNameHolder(name, 0);
      if (holder !== undefined) return this.adopt(holder, spec);
    }
    // checked and registered in one tick, so two instances here never both create
    const creation = this.createAndStart(name, spec, hostWorkDir);
    creatingInThisProcess.set(name, creation);
    try {
      const info = await creation;
      if (info === undefined) {
        // the name was taken by another start: adopt what holds it
        const holder = await this.findNameHolder(name, 5000);
        if (holder === undefined) throw new Error(`container name ${name} is taken but no container answers to it`);
        return this.adopt(holder, spec);
      }
      this.track(info);
      return statusFromInspect(info);
    } finally {
      if (creatingInThisProcess.get(name) === creation) creatingInThisProcess.delete(name);
    }
  }

  /** createAndStart creates, lays out the files, starts; undefined when another start holds the name. */
  private async createAndStart(name: string, spec: TaskSpec, hostWorkDir: string): Promise<Docker.ContainerInspectInfo | undefined> {
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer(containerConfig(spec, hostWorkDir, this.options));
    } catch (error) {
      const code = statusCodeOf(error);
      if (code === 404) throw this.imageNotFound(spec.image);
      if (code === 409) return undefined;
      // Docker may have created it before the call failed (e.g. a dropped connection)
      if ((await this.inspectContainer(name)) !== undefined) return undefined;
      throw error;
    }
    // nothing has run yet, so the files can be laid out before the first byte of output
    await this.prepareFiles(hostWorkDir, spec);
    await this.startContainer(container.id);
    return container.inspect();
  }

  /** adopt takes over a container that already holds the task's name; it is started only if it never ran. */
  private async adopt(found: Docker.ContainerInspectInfo, spec: TaskSpec): Promise<TaskStatus> {
    let info = found;
    const labels = info.Config.Labels ?? {};
    if (labels[LABEL.task] !== spec.taskId || labels[LABEL.cluster] !== spec.cluster) {
      throw new Error(`container ${info.Name} holds the name of task ${spec.taskId} but belongs to task ${labels[LABEL.task]} of cluster ${labels[LABEL.cluster]}`);
    }
    // another runtime in this process may be between create and start: let it finish its layout first
    const name = taskName(spec.cluster, spec.kind, spec.taskId);
    const pending = creatingInThisProcess.get(name);
    if (pending !== undefined) {
      await pending.catch(() => undefined);
      info = (await this.inspectContainer(info.Id)) ?? info;
    }
    let current = info;
    if (info.State.Status === 'created') {
      const hostWorkDir = labels[LABEL.workDir];
      if (hostWorkDir !== undefined && (await readFile(join(hostWorkDir, TASK_FILES.logState)).catch(() => undefined)) === undefined) {
        await this.prepareFiles(hostWorkDir, spec);
      }
      await this.startContainer(info.Id);
      current = await this.docker.getContainer(info.Id).inspect();
    }
    this.track(current);
    return statusFromInspect(current);
  }

  /** prepareFiles writes fresh stdout, stderr (with Spark's header) and capture state for a new container. */
  private async prepareFiles(hostWorkDir: string, spec: TaskSpec): Promise<void> {
    const header = Buffer.from(stderrHeader(spec));
    await writeFile(join(hostWorkDir, TASK_FILES.stdout), '');
    await writeFile(join(hostWorkDir, TASK_FILES.stderr), header);
    await rm(join(hostWorkDir, TASK_FILES.stopRequested), { force: true });
    await writeLogState(hostWorkDir, initialLogState(0, header.length));
  }

  private async startContainer(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).start();
    } catch (error) {
      if (statusCodeOf(error) !== 304) throw error; // 304: already started
    }
  }

  private async checkImagePresent(image: string): Promise<void> {
    try {
      await this.docker.getImage(image).inspect();
    } catch (error) {
      if (statusCodeOf(error) === 404) throw this.imageNotFound(image);
      throw error;
    }
  }

  private imageNotFound(image: string): ImageNotFoundError {
    return new ImageNotFoundError(`image ${image} not found locally (Flint never pulls: build or load it on this host first)`);
  }

  private async inspectContainer(idOrName: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.docker.getContainer(idOrName).inspect();
    } catch (error) {
      if (statusCodeOf(error) === 404) return undefined;
      throw error;
    }
  }

  /**
   * findNameHolder inspects the container holding a name. Docker reserves a name
   * before the container can be inspected, so after a 409 the holder may answer 404
   * for a few milliseconds: keep asking for up to patienceMs.
   */
  private async findNameHolder(name: string, patienceMs: number): Promise<Docker.ContainerInspectInfo | undefined> {
    const deadline = Date.now() + patienceMs;
    for (;;) {
      const holder = await this.inspectContainer(name);
      if (holder !== undefined || Date.now() >= deadline) return holder;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** findContainerId returns the container of a task id: tracked, or found by label (after an agent restart). */
  private async findContainerId(taskId: string): Promise<string | undefined> {
    const tracked = this.tasks.get(taskId);
    if (tracked !== undefined) return tracked.containerId;
    const label = [`${LABEL.task}=${taskId}`];
    if (this.options.cluster !== undefined) label.push(`${LABEL.cluster}=${this.options.cluster}`);
    if (this.options.workerId !== undefined) label.push(`${LABEL.worker}=${this.options.workerId}`);
    const found = await this.docker.listContainers({ all: true, filters: { label } });
    if (found.length > 1) {
      throw new Error(`task id ${taskId} matches ${found.length} containers (of several clusters or workers): construct the runtime with cluster and workerId`);
    }
    return found[0]?.Id;
  }

  /** attach finds and tracks a task this instance has not seen, so waits and stops work after a restart. */
  private async attach(taskId: string): Promise<TrackedTask | undefined> {
    const tracked = this.tasks.get(taskId);
    if (tracked !== undefined) return tracked;
    const id = await this.findContainerId(taskId);
    if (id === undefined) return undefined;
    const info = await this.inspectContainer(id);
    return info === undefined ? undefined : this.track(info);
  }

  /** track starts watching a container: waiter, log capture, event stream; an exited one is settled at once. */
  private track(info: Docker.ContainerInspectInfo): TrackedTask {
    const labels = info.Config.Labels ?? {};
    const taskId = labels[LABEL.task];
    if (taskId === undefined) throw new Error(`container ${info.Name} carries no ${LABEL.task} label`);
    const known = this.tasks.get(taskId);
    if (known !== undefined && known.containerId === info.Id) return known;
    let resolveExit!: (exit: TaskExit) => void;
    let rejectExit!: (error: Error) => void;
    const exitPromise = new Promise<TaskExit>((resolve, reject) => {
      resolveExit = resolve;
      rejectExit = reject;
    });
    exitPromise.catch(() => undefined); // a close() with nobody waiting is not an unhandled rejection
    const task: TrackedTask = {
      taskId,
      containerId: info.Id,
      hostWorkDir: labels[LABEL.workDir],
      scope: { cluster: labels[LABEL.cluster] ?? '', workerId: labels[LABEL.worker] ?? '' },
      stopRequested: false,
      exit: undefined,
      exitPromise,
      resolveExit,
      rejectExit,
      capture: Promise.resolve(undefined),
      settling: undefined,
      oomEvent: false,
      onOomEvent: undefined,
    };
    this.tasks.set(taskId, task);
    this.ensureEvents(task.scope);
    this.ensureRelist();
    if (task.hostWorkDir !== undefined) {
      task.capture = DockerLogCapture.start(this.docker, info.Id, task.hostWorkDir, {
        onError: (error) => this.options.logger?.warn({ err: error, taskId }, 'log capture error'),
      }).then(
        (capture) => {
          if (!this.closed && this.tasks.get(taskId) === task) return capture;
          void capture.stop();
          return undefined;
        },
        (error: unknown) => {
          this.options.logger?.warn({ err: error, taskId }, 'log capture could not start');
          return undefined;
        },
      );
    }
    if (hasExited(info)) void this.settle(task);
    return task;
  }

  /** settle reads the container's state and, if it has exited, reports the exit once (after its logs are flushed). */
  private settle(task: TrackedTask): Promise<void> {
    if (task.exit !== undefined || this.closed) return Promise.resolve();
    if (task.settling !== undefined) return task.settling;
    task.settling = (async () => {
      try {
        const info = await this.inspectContainer(task.containerId);
        if (info !== undefined && !hasExited(info)) return;
        const stopped = task.stopRequested || (task.hostWorkDir !== undefined && (await exists(join(task.hostWorkDir, TASK_FILES.stopRequested))));
        const exit: TaskExit =
          info === undefined
            ? { exitCode: UNKNOWN_EXIT_CODE, oomKilled: false, stopped }
            : { exitCode: info.State.ExitCode, oomKilled: info.State.OOMKilled || task.oomEvent, stopped };
        await this.drainLogs(task);
        if (info !== undefined && exit.exitCode !== 0 && !exit.oomKilled && !stopped) {
          // Docker can deliver the `oom` event a moment after the exit under load (and 20.10 then
          // leaves State.OOMKilled false): wait for it before reporting an ordinary non-zero exit
          await this.waitForOomEvent(task, exit.exitCode === 137 ? (this.options.oomEventWaitMs ?? 1000) : 150);
          const again = task.oomEvent ? undefined : await this.inspectContainer(task.containerId);
          exit.oomKilled = task.oomEvent || again?.State.OOMKilled === true;
        }
        if (task.exit !== undefined || this.tasks.get(task.taskId) !== task) return;
        task.exit = exit;
        task.resolveExit(exit);
        for (const listener of this.listeners) {
          try {
            listener(task.taskId, exit);
          } catch (error) {
            this.options.logger?.error({ err: error, taskId: task.taskId }, 'exit listener threw');
          }
        }
      } catch (error) {
        this.options.logger?.warn({ err: error, taskId: task.taskId }, 'could not settle task; the next relist retries');
      } finally {
        task.settling = undefined;
      }
    })();
    return task.settling;
  }

  /** waitForOomEvent resolves when an `oom` event of the task's container arrives, or after `ms`. */
  private async waitForOomEvent(task: TrackedTask, ms: number): Promise<void> {
    if (task.oomEvent) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      task.onOomEvent = resolve;
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    task.onOomEvent = undefined;
  }

  /** drainLogs waits (bounded) for the capture to write the container's last output. */
  private async drainLogs(task: TrackedTask): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.logDrainTimeoutMs ?? 10_000)));
    await Promise.race([task.capture.then((capture) => capture?.done), timeout]);
    clearTimeout(timer);
  }

  /** ensureEvents keeps one Docker event stream per cluster/worker scope, reconnecting if it drops. */
  private ensureEvents(scope: Scope): void {
    const key = `${scope.cluster}\0${scope.workerId}`;
    if (this.eventScopes.has(key) || this.closed || this.options.useEvents === false) return;
    const entry: EventScope = { scope, stream: undefined, reconnectTimer: undefined };
    this.eventScopes.set(key, entry);
    void this.connectEvents(entry);
  }

  private async connectEvents(entry: EventScope): Promise<void> {
    if (this.closed) return;
    const reconnect = (): void => {
      entry.stream = undefined;
      if (this.closed || entry.reconnectTimer !== undefined) return;
      entry.reconnectTimer = setTimeout(() => {
        entry.reconnectTimer = undefined;
        void this.connectEvents(entry);
      }, 1000);
      entry.reconnectTimer.unref();
    };
    try {
      const stream = await this.docker.getEvents({
        filters: {
          type: ['container'],
          event: ['die', 'oom'],
          label: [`${LABEL.cluster}=${entry.scope.cluster}`, `${LABEL.worker}=${entry.scope.workerId}`],
        },
      });
      if (this.closed) {
        (stream as unknown as { destroy: () => void }).destroy();
        return;
      }
      entry.stream = stream;
      let buffered = '';
      stream.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        let newline = buffered.indexOf('\n');
        while (newline >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line.length > 0) this.onEvent(line);
          newline = buffered.indexOf('\n');
        }
      });
      stream.on('error', reconnect);
      stream.on('end', reconnect);
      // events may have been missed while not connected
      void this.relist();
    } catch (error) {
      this.options.logger?.warn({ err: error }, 'docker event stream failed; retrying');
      reconnect();
    }
  }

  private onEvent(line: string): void {
    let event: { Action?: string; status?: string; Actor?: { ID?: string; Attributes?: Record<string, string> }; id?: string };
    try {
      event = JSON.parse(line);
    } catch {
      return;
    }
    const taskId = event.Actor?.Attributes?.[LABEL.task];
    const task = taskId === undefined ? undefined : this.tasks.get(taskId);
    const containerId = event.Actor?.ID ?? event.id;
    if (task === undefined || task.containerId !== containerId) return;
    if ((event.Action ?? event.status) === 'oom') {
      task.oomEvent = true;
      task.onOomEvent?.();
    }
    void this.settle(task);
  }

  /** ensureRelist runs the periodic relist while some tracked task has not exited (it also keeps the process alive for waiters). */
  private ensureRelist(): void {
    if (this.relistTimer !== undefined || this.closed) return;
    this.relistTimer = setInterval(() => void this.relist(), this.options.relistIntervalMs ?? 2000);
  }

  /** relist lists each scope's containers by label and settles every tracked task that is no longer running. */
  private async relist(): Promise<void> {
    if (this.relisting || this.closed) return;
    this.relisting = true;
    try {
      const open = [...this.tasks.values()].filter((task) => task.exit === undefined);
      if (open.length === 0 && this.relistTimer !== undefined) {
        clearInterval(this.relistTimer);
        this.relistTimer = undefined;
      }
      const scopes = new Map<string, Scope>();
      for (const task of open) scopes.set(`${task.scope.cluster}\0${task.scope.workerId}`, task.scope);
      const running = new Set<string>();
      for (const scope of scopes.values()) {
        const containers = await this.docker.listContainers({
          all: true,
          filters: { label: [`${LABEL.cluster}=${scope.cluster}`, `${LABEL.worker}=${scope.workerId}`] },
        });
        for (const container of containers) if (container.State === 'running' || container.State === 'restarting' || container.State === 'created') running.add(container.Id);
      }
      await Promise.all(open.filter((task) => !running.has(task.containerId)).map((task) => this.settle(task)));
    } catch (error) {
      this.options.logger?.warn({ err: error }, 'relist failed');
    } finally {
      this.relisting = false;
    }
  }

  async wait(taskId: string): Promise<TaskExit> {
    this.assertOpen();
    const task = await this.attach(taskId);
    if (task === undefined) throw new Error(`unknown task ${taskId}: no container carries its label`);
    return task.exitPromise;
  }

  async stop(taskId: string, graceMs: number): Promise<void> {
    this.assertOpen();
    const task = await this.attach(taskId);
    if (task === undefined || task.exit !== undefined) return;
    const info = await this.inspectContainer(task.containerId);
    if (info === undefined || hasExited(info)) {
      await this.settle(task);
      return;
    }
    task.stopRequested = true;
    if (task.hostWorkDir !== undefined) await writeFile(join(task.hostWorkDir, TASK_FILES.stopRequested), String(Date.now())).catch(() => undefined);
    try {
      // Docker sends the image's stop signal (SIGTERM), waits t seconds, then SIGKILL
      await this.docker.getContainer(task.containerId).stop({ t: Math.max(0, Math.ceil(graceMs / 1000)) });
    } catch (error) {
      const code = statusCodeOf(error);
      if (code !== 304 && code !== 404) throw error;
    }
    await this.settle(task);
    await task.exitPromise;
  }

  async inspect(taskId: string): Promise<TaskStatus | undefined> {
    this.assertOpen();
    const id = await this.findContainerId(taskId);
    if (id === undefined) return undefined;
    const info = await this.inspectContainer(id);
    return info === undefined ? undefined : statusFromInspect(info);
  }

  async list(workerId: string, cluster: string): Promise<TaskStatus[]> {
    this.assertOpen();
    const containers = await this.docker.listContainers({
      all: true,
      filters: { label: [`${LABEL.cluster}=${cluster}`, `${LABEL.worker}=${workerId}`, LABEL.task] },
    });
    const infos = await Promise.all(containers.map((container) => this.inspectContainer(container.Id)));
    return infos.filter((info): info is Docker.ContainerInspectInfo => info !== undefined).map(statusFromInspect);
  }

  async recover(status: TaskStatus): Promise<void> {
    this.assertOpen();
    const info = await this.inspectContainer(status.handle);
    if (info === undefined) return; // removed meanwhile: wait() will say it is unknown
    if (info.Config.Labels?.[LABEL.task] !== status.taskId) {
      throw new Error(`container ${status.handle} does not belong to task ${status.taskId}`);
    }
    this.track(info);
  }

  async remove(taskId: string): Promise<void> {
    this.assertOpen();
    const task = await this.attach(taskId);
    const id = task?.containerId ?? (await this.findContainerId(taskId));
    if (id === undefined) return;
    const info = await this.inspectContainer(id);
    if (task !== undefined && info !== undefined && !hasExited(info)) {
      // the exit of a removed task is still reported, with its true code
      await this.stop(taskId, 0);
    }
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (error) {
      if (statusCodeOf(error) !== 404) throw error;
    }
    if (task !== undefined) {
      this.tasks.delete(taskId);
      await (await task.capture)?.stop();
      task.rejectExit(new Error(`task ${taskId} was removed before its exit was observed`));
    }
    const workDir = task?.hostWorkDir ?? info?.Config.Labels?.[LABEL.workDir];
    if (workDir !== undefined) {
      await rm(join(workDir, TASK_FILES.logState), { force: true });
      await rm(join(workDir, TASK_FILES.stopRequested), { force: true });
    }
  }

  onExit(listener: (taskId: string, exit: TaskExit) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.relistTimer !== undefined) clearInterval(this.relistTimer);
    for (const entry of this.eventScopes.values()) {
      if (entry.reconnectTimer !== undefined) clearTimeout(entry.reconnectTimer);
      (entry.stream as unknown as { destroy?: () => void } | undefined)?.destroy?.();
    }
    this.eventScopes.clear();
    const tasks = [...this.tasks.values()];
    this.tasks.clear();
    await Promise.all(tasks.map(async (task) => (await task.capture)?.stop()));
    for (const task of tasks) if (task.exit === undefined) task.rejectExit(new Error('runtime closed before the task exited'));
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
