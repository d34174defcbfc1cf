/**
 * ContainerStarter: how the Docker runtime gets a task's container running, once.
 *
 * The container name derives from the task id (task-identity.ts), so a duplicate launch
 * finds the first container instead of starting a second one: start() inspects by name and
 * takes over what it finds (running or exited: an exited container is never restarted), and
 * a create that fails with 409 (another start won the race) or with a transport error
 * (Docker may have created it anyway) takes over whatever now holds the name.
 *
 * Nothing is left half-done: a container found `created` (a start that never came: an agent
 * died between create and start) is removed and the task created afresh; before a new
 * container starts, its program is checked (docker-program-check.ts); a failed check or a
 * failed start removes the container and throws one line (TaskStartError).
 */
import type Docker from 'dockerode';
import type { Logger } from '../../lib/log.ts';
import { DockerApi, statusCodeOf } from './docker-api.ts';
import { containerConfig, containerPhase, startFailureReason, type DockerTaskOptions } from './docker-config.ts';
import { ProgramCheck, effectiveProgram, envPath, statInContainer } from './docker-program-check.ts';
import { prepareLogFiles } from './log-capture.ts';
import type { LogRolling } from './log-rolling.ts';
import { UnsafeFileError } from './safe-fs.ts';
import { LABEL, privateTaskDir, stderrHeader, taskName } from './task-identity.ts';
import { TaskRecords } from './task-records.ts';
import { DEFAULT_TASK_USER, parseTaskUser } from './task-user.ts';
import { ImageNotFoundError, TaskStartError, type TaskSpec } from './types.ts';
import { openTaskDir, type OpenedTaskDir } from './work-dir.ts';

/** creations under way in this process, by container name (several runtime instances may share a process, e.g. in tests) */
const creatingInThisProcess = new Map<string, Promise<Docker.ContainerInspectInfo | undefined>>();
/** container ids whose start is under way in this process: `created` is not an ended task for them */
const startingContainers = new Set<string>();

/** isStartingHere: a start of this container is under way in this process. */
export function isStartingHere(containerId: string): boolean {
  return startingContainers.has(containerId);
}

export interface ContainerStarterOptions extends DockerTaskOptions {
  /** the agent's own directory tree for tasks (never inside a task's directory) */
  stateDir: string;
  /** Spark's rolling executor logs (log-rolling.ts) */
  logRolling?: LogRolling;
  /** test hook: runs between a container's create and its start (to crash an agent in that window) */
  afterCreate?: (containerName: string) => Promise<void>;
  logger?: Logger;
}

export class ContainerStarter {
  private readonly programCheck = new ProgramCheck();

  constructor(
    private readonly api: DockerApi,
    private readonly options: ContainerStarterOptions,
  ) {}

  /** start returns the container that runs (or ran) the task: taken over, or created and started now. */
  async start(spec: TaskSpec): Promise<Docker.ContainerInspectInfo> {
    const name = taskName(spec.cluster, spec.kind, spec.taskId);
    const existing = await this.api.inspect(name);
    if (existing !== undefined) {
      const pending = creatingInThisProcess.get(name);
      if (pending !== undefined || containerPhase(existing.State) !== 'never-started') return this.takeOver(existing, spec);
      // created by a start that never finished (an agent died in between): nothing ran; start afresh
      this.options.logger?.warn({ taskId: spec.taskId, container: existing.Id }, 'removing a container that was created but never started');
      await this.api.forceRemove(existing.Id);
    }

    const image = await this.imagePresent(spec.image);
    let taskDir: OpenedTaskDir;
    try {
      taskDir = await openTaskDir(spec.workDir, spec.workRoot, this.options.user ?? parseTaskUser(DEFAULT_TASK_USER), { fresh: spec.kind === 'executor' });
      if (taskDir.movedAside !== undefined) this.options.logger?.warn({ taskId: spec.taskId, movedAside: taskDir.movedAside }, `the executor directory ${spec.workDir} already existed (an earlier run of this id): moved aside to ${taskDir.movedAside}`);
    } catch (error) {
      if (error instanceof UnsafeFileError) throw new TaskStartError(`the task directory is refused: ${error.message}`, { cause: error });
      throw error;
    }
    try {
      return await this.createOrTakeOver(name, spec, taskDir, image);
    } finally {
      await taskDir.dir.close();
    }
  }

  private async createOrTakeOver(name: string, spec: TaskSpec, taskDir: OpenedTaskDir, image: Docker.ImageInspectInfo): Promise<Docker.ContainerInspectInfo> {
    const other = creatingInThisProcess.get(name);
    if (other !== undefined) {
      // another runtime instance in this process is creating it right now: take over its result
      await other.catch(() => undefined);
      const holder = await this.nameHolder(name, 0);
      if (holder !== undefined) return this.takeOver(holder, spec);
    }
    // checked and registered in one tick, so two instances here never both create
    const creation = this.createAndStart(name, spec, taskDir, image);
    creatingInThisProcess.set(name, creation);
    try {
      const info = await creation;
      if (info !== undefined) return info;
      // the name was taken by another start: take over what holds it
      const holder = await this.nameHolder(name, 5000);
      if (holder === undefined) throw new Error(`container name ${name} is taken but no container answers to it`);
      return this.takeOver(holder, spec);
    } finally {
      if (creatingInThisProcess.get(name) === creation) creatingInThisProcess.delete(name);
    }
  }

  /** createAndStart creates, checks, lays out the files, starts; undefined when another start holds the name. */
  private async createAndStart(name: string, spec: TaskSpec, taskDir: OpenedTaskDir, image: Docker.ImageInspectInfo): Promise<Docker.ContainerInspectInfo | undefined> {
    const config = containerConfig(spec, taskDir.hostPath, this.options, taskDir.ref.root);
    let container: Docker.Container;
    try {
      container = await this.api.call('create', this.api.docker.createContainer(config));
    } catch (error) {
      const code = statusCodeOf(error);
      if (code === 404) throw imageNotFound(spec.image);
      if (code === 409) return undefined;
      // Docker may have created it before the call failed (e.g. a dropped connection)
      if ((await this.api.inspect(name).catch(() => undefined)) !== undefined) return undefined;
      throw error;
    }
    startingContainers.add(container.id);
    try {
      await this.options.afterCreate?.(name);
      // nothing has run yet, so the files can be laid out before the first byte of output
      const [problem, filesProblem] = await Promise.all([
        this.programProblem(container, spec, config, image),
        this.prepareFiles(taskDir, spec).catch((error: unknown) => {
          throw new TaskStartError(`cannot prepare the task's files: ${(error as Error).message}`, { cause: error });
        }),
      ]);
      const reason = filesProblem ?? problem;
      if (reason !== undefined) throw new TaskStartError(reason);
      try {
        await this.api.call('start', container.start());
      } catch (error) {
        if (statusCodeOf(error) !== 304) throw new TaskStartError(startFailureReason((error as Error).message), { cause: error });
      }
      return await this.api.call('inspect', container.inspect());
    } catch (error) {
      // whatever went wrong before it ran, no container is left behind
      await this.api.forceRemove(container.id).catch((removeError: unknown) => this.options.logger?.warn({ err: removeError, taskId: spec.taskId }, 'could not remove a container that never started'));
      throw error;
    } finally {
      startingContainers.delete(container.id);
    }
  }

  /** takeOver adopts a container that already holds the task's name (running or exited); it is never restarted. */
  private async takeOver(found: Docker.ContainerInspectInfo, spec: TaskSpec): Promise<Docker.ContainerInspectInfo> {
    const labels = found.Config.Labels ?? {};
    if (labels[LABEL.task] !== spec.taskId || labels[LABEL.cluster] !== spec.cluster) {
      throw new Error(`container ${found.Name} holds the name of task ${spec.taskId} but belongs to task ${labels[LABEL.task]} of cluster ${labels[LABEL.cluster]}`);
    }
    // another runtime in this process may be between create and start: let it finish first
    const pending = creatingInThisProcess.get(taskName(spec.cluster, spec.kind, spec.taskId));
    let info = found;
    if (pending !== undefined) {
      await pending.catch(() => undefined);
      const current = await this.api.inspect(found.Id);
      if (current === undefined) throw new TaskStartError(`the start of task ${spec.taskId} by another caller failed`);
      info = current;
    }
    if (containerPhase(info.State) === 'never-started') {
      // its start failed or never came (a create that went through although the call failed): nothing ran
      await this.api.forceRemove(info.Id);
      throw new TaskStartError(`container ${info.Name} was created but never started; removed`);
    }
    return info;
  }

  /**
   * prepareFiles writes fresh stdout, stderr (with Spark's header) and capture state for a
   * new container, and clears the agent's markers of an earlier run; a file the task
   * tampered with (a previous run's link in place of stdout, say) is refused: the reason.
   */
  private async prepareFiles(taskDir: OpenedTaskDir, spec: TaskSpec): Promise<string | undefined> {
    const privateDir = privateTaskDir(this.options.stateDir, spec.cluster, spec.kind, spec.taskId);
    await new TaskRecords(privateDir).clearMarkers();
    try {
      await prepareLogFiles(taskDir.dir, privateDir, this.options.logRolling, Buffer.from(stderrHeader(spec)));
      return undefined;
    } catch (error) {
      if (error instanceof UnsafeFileError) return `a file in the task directory is refused: ${error.message}`;
      throw error;
    }
  }

  /** programProblem: why the container's program cannot be executed (docker-program-check.ts), or undefined. */
  private async programProblem(container: Docker.Container, spec: TaskSpec, config: Docker.ContainerCreateOptions, image: Docker.ImageInspectInfo): Promise<string | undefined> {
    const program = effectiveProgram(spec.command, image.Config ?? {});
    if (program === undefined) return undefined; // Docker itself refuses a container with no command
    const workingDir = config.WorkingDir ?? '/';
    return this.programCheck.problem({
      imageId: image.Id,
      program,
      path: envPath(spec.env, image.Config?.Env),
      workingDir,
      mountTarget: workingDir,
      stat: (path) => this.api.call('archive stat', statInContainer(container)(path)),
    });
  }

  private async imagePresent(image: string): Promise<Docker.ImageInspectInfo> {
    try {
      return await this.api.call('image inspect', this.api.docker.getImage(image).inspect());
    } catch (error) {
      if (statusCodeOf(error) === 404) throw imageNotFound(image);
      throw error;
    }
  }

  /**
   * nameHolder inspects the container holding a name. Docker reserves a name before the
   * container can be inspected, so after a 409 the holder may answer 404 for a few
   * milliseconds: keep asking for up to patienceMs.
   */
  private async nameHolder(name: string, patienceMs: number): Promise<Docker.ContainerInspectInfo | undefined> {
    const deadline = Date.now() + patienceMs;
    for (;;) {
      const holder = await this.api.inspect(name);
      if (holder !== undefined || Date.now() >= deadline) return holder;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

function imageNotFound(image: string): ImageNotFoundError {
  return new ImageNotFoundError(`image ${image} not found locally (Flint never pulls: build or load it on this host first)`);
}
