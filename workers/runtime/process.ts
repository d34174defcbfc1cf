/**
 * ProcessRuntime: the Runtime contract for hosts without Docker. Each task's argv runs
 * as a local process (never through a shell; the image only passes the allow-list) in
 * its workDir, under a detached supervisor (task-supervisor.ts) that writes its output
 * and records the pid and, later, the exit code. Tasks therefore outlive the agent: a
 * restarted agent finds them through the registry directory (`stateDir`, one JSON
 * entry per task, e.g. `<worker work-dir>/.flint-process-runtime/<cluster>/<worker>/`)
 * and reads their exit from `<stateDir>/<task name>/exit.json`: every record of the
 * runtime's lives there, in the agent's own directory for the task, never in the task's.
 *
 * User: when the agent is root, tasks run as `user` (default 65534:65534; root only with
 * allowRootTasks), their directory given to that user; otherwise as the agent's own user.
 * The task's directory is hostile ground: its files are written through a directory
 * handle (safe-fs.ts) and a link, FIFO or device in place of stdout or stderr ends the task
 * with `refused`.
 *
 * Limits: when the host lets the agent create cgroups (root, cgroup v1 or v2 mounted
 * read-write; see cgroups.ts), each task gets its own cgroup
 * `<controller>/flint/<cluster>/<worker>/<task name>` holding the grant's cores (CFS quota),
 * memory (no extra swap) and pidsLimit, as Docker does. The supervisor's `/bin/sh` wrapper
 * joins the cgroup before exec'ing the command, so nothing runs unconfined. A task the
 * kernel OOM-kills is reported with oomKilled: true. The cgroup is found again by name
 * after an agent restart, removed (after killing anything still in it) by remove(), and
 * list() removes empty cgroups of this worker that no registry entry names (leftovers of a
 * crash). Flint never touches a cgroup outside its `flint/` parent.
 * When cgroups are unavailable, prepareLimits() says so once and tasks run unconfined,
 * unless requireLimits (spark.flint.worker.process.requireLimits) makes that an error.
 * With `addressSpaceLimit: true` a task also runs under `prlimit --as=<memoryMB>`
 * (virtual address space, which JVMs overrun easily, so it is off by default); a task that
 * exceeds it fails its own allocation rather than being OOM-killed. Isolation (network,
 * capabilities, file system) is whatever the agent's user has.
 *
 * stop() signals the task's process group: SIGTERM, then SIGKILL after graceMs.
 * A pid found alive is trusted to be the task's (pid reuse is not detected).
 */
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../lib/log.ts';
import type { CgroupSupport } from './cgroups.ts';
import { launchSupervisor } from './process-launch.ts';
import { TaskLimits } from './process-limits.ts';
import type { LogRolling } from './log-rolling.ts';
import { UnsafeFileError } from './safe-fs.ts';
import { LABEL, PRIVATE_FILES, assertValidTaskSpec, checkImageAllowed, privateTaskDir, taskLabels, taskName } from './task-identity.ts';
import { DEFAULT_TASK_USER, isRoot, parseTaskUser, type TaskUser } from './task-user.ts';
import type { ProcessTaskRecord } from './task-supervisor.ts';
import { ExitTracker } from './exit-tracker.ts';
import { UNKNOWN_EXIT_CODE, awaitLaunch, entryPath as registryEntryPath, readEntries, readEntryPatiently, readJson, readTaskStatus, writeJsonAtomically, type RegistryEntry } from './process-registry.ts';
import { TaskStartError, type Runtime, type TaskExit, type TaskSpec, type TaskStatus } from './types.ts';
import { makeSearchable, openTaskDir, plannedTaskDir, type OpenedTaskDir } from './work-dir.ts';
import { TaskRecords } from './task-records.ts';

export { isProcessAlive, UNKNOWN_EXIT_CODE } from './process-registry.ts';

/** ProcessRuntimeOptions: where the registry lives and how often to look. */
export interface ProcessRuntimeOptions {
  /** registry directory of this worker's tasks (created if missing) */
  stateDir: string;
  /** image name prefixes tasks may use; unset or empty allows any */
  imageAllowList?: string[];
  /** how often waiters read the exit files, default 200 ms */
  pollIntervalMs?: number;
  /** how long start() waits for the supervisor to report the command running before it fails the start, default 60 s */
  startTimeoutMs?: number;
  /** run tasks under `prlimit --as=<memoryMB MiB>` (needs util-linux prlimit) */
  addressSpaceLimit?: boolean;
  /** enforce cores, memory and pids with cgroups when the host allows it (default true) */
  cgroups?: boolean;
  /** fail (prepareLimits, and every start) when cgroups cannot be used, instead of running unconfined */
  requireLimits?: boolean;
  /** who tasks run as when the agent is root (default 65534:65534) */
  user?: TaskUser;
  /** the worker allows tasks to run as root (spark.flint.worker.allowRootTasks) */
  allowRootTasks?: boolean;
  /** Spark's rolling executor logs (spark.executor.logs.rolling.*) */
  logRolling?: LogRolling;
  logger?: Logger;
}

interface TrackedTask {
  entry: RegistryEntry;
  stopRequested: boolean;
}

/**
 * signalGroup signals the process group a task leads. The pid comes from a file a task could
 * forge, so only a real group leader other than this agent's group is signalled: never
 * kill(-1) (every process) or kill(0) (our own group).
 */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const group = Number(fields[2]);
    if (group !== pid) return; // not a group leader: not one of our detached tasks
  } catch {
    return; // gone already
  }
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone already
  }
}

/** ProcessRuntime: local processes under detached supervisors. */
export class ProcessRuntime implements Runtime {
  readonly name = 'process' as const;
  private readonly tasks = new Map<string, TrackedTask>();
  private readonly starting = new Map<string, Promise<TaskStatus>>();
  private readonly exits: ExitTracker;
  private pollTimer: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;
  private readonly limits: TaskLimits;

  constructor(private readonly options: ProcessRuntimeOptions) {
    if (typeof options?.stateDir !== 'string' || !options.stateDir.startsWith('/')) {
      throw new TypeError('ProcessRuntime needs an absolute stateDir');
    }
    this.exits = new ExitTracker((error, taskId) => options.logger?.error({ err: error, taskId }, 'exit listener threw'));
    this.limits = new TaskLimits(options);
    const user = options.user ?? parseTaskUser(DEFAULT_TASK_USER);
    if (isRoot(user) && options.allowRootTasks !== true) {
      throw new TypeError(`tasks may not run as root (user ${user.uid}:${user.gid}) unless the worker allows it (spark.flint.worker.allowRootTasks)`);
    }
    // only root can run a task as another user; otherwise tasks are the agent's own user
    this.taskUser = process.geteuid?.() === 0 ? user : undefined;
  }

  private readonly taskUser: TaskUser | undefined;
  /** work roots already made searchable for the task user */
  private readonly searchableRoots = new Set<string>();

  /**
   * prepareLimits detects cgroup support once and logs the outcome once; it throws when
   * requireLimits is set and limits cannot be enforced. start() calls it too.
   */
  prepareLimits(): Promise<CgroupSupport> {
    return this.limits.prepare();
  }

  async start(spec: TaskSpec): Promise<TaskStatus> {
    this.assertOpen();
    assertValidTaskSpec(spec);
    if (spec.command.length === 0) throw new TypeError('the process runtime needs a command: there is no image default to fall back on');
    checkImageAllowed(spec.image, this.options.imageAllowList);
    const inFlight = this.starting.get(spec.taskId);
    if (inFlight !== undefined) return inFlight;
    const attempt = this.startOnce(spec).finally(() => this.starting.delete(spec.taskId));
    this.starting.set(spec.taskId, attempt);
    return attempt;
  }

  private async startOnce(spec: TaskSpec): Promise<TaskStatus> {
    const entryPath = registryEntryPath(this.options.stateDir, spec.cluster, spec.kind, spec.taskId);
    const cgroups = await this.limits.cgroups();
    const known = await readJson<RegistryEntry>(entryPath);
    if (known !== undefined) {
      await awaitLaunch(this.options.stateDir, this.options.startTimeoutMs ?? 60_000, known);
      const status = await this.readStatus(known);
      if (!status.neverStarted) return this.adopt(known, status);
      // registered by a start that never finished (an agent crashed in between): nothing ran; start afresh
      this.options.logger?.warn({ taskId: spec.taskId }, 'removing a task that was registered but never started');
      await this.removeRecords(known);
    }

    return this.register(spec, entryPath, cgroups);
  }

  /**
   * register claims the task id in the registry, then opens the task's directory and
   * launches its supervisor (or adopts the task another start claimed). The claim comes
   * first: a concurrent start of the same task (another runtime on this state dir) adopts
   * it and never touches the directory this start opens (an executor's is made new).
   */
  private async register(spec: TaskSpec, entryPath: string, cgroups: Awaited<ReturnType<TaskLimits['cgroups']>>): Promise<TaskStatus> {
    await mkdir(this.options.stateDir, { recursive: true });
    const planned = await plannedTaskDir(spec.workDir, spec.workRoot);
    const entry: RegistryEntry = {
      taskId: spec.taskId,
      kind: spec.kind,
      cluster: spec.cluster,
      workerId: spec.workerId,
      workDir: planned.hostPath,
      workRoot: planned.root,
      privateDir: privateTaskDir(this.options.stateDir, spec.cluster, spec.kind, spec.taskId),
      labels: taskLabels(spec, planned.hostPath, planned.root),
      createdAt: Date.now(),
    };
    try {
      // the exclusive create is the claim on the task id: a second start finds it and adopts
      await writeFile(entryPath, JSON.stringify(entry), { flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = await readEntryPatiently(entryPath);
      if (holder === undefined) throw new Error(`registry entry ${entryPath} exists but cannot be read`, { cause: error });
      await awaitLaunch(this.options.stateDir, this.options.startTimeoutMs ?? 60_000, holder);
      return this.adopt(holder, await this.readStatus(holder));
    }

    let taskDir: OpenedTaskDir;
    try {
      taskDir = await openTaskDir(spec.workDir, spec.workRoot, this.taskUser, { fresh: spec.kind === 'executor' });
      if (taskDir.hostPath !== planned.hostPath) {
        await taskDir.dir.close();
        throw new TaskStartError(`the task directory ${spec.workDir} opened as ${taskDir.hostPath}, not ${planned.hostPath}: refused`);
      }
    } catch (error) {
      await rm(entryPath, { force: true });
      if (error instanceof UnsafeFileError) throw new TaskStartError(`the task directory is refused: ${error.message}`, { cause: error });
      throw error;
    }
    if (taskDir.movedAside !== undefined) this.options.logger?.warn({ taskId: spec.taskId, movedAside: taskDir.movedAside }, `the executor directory ${spec.workDir} already existed (an earlier run of this id): moved aside to ${taskDir.movedAside}`);
    try {
      if (this.taskUser !== undefined && !this.searchableRoots.has(taskDir.ref.root)) {
        this.searchableRoots.add(taskDir.ref.root);
        await makeSearchable(taskDir.ref.root, this.taskUser, this.options.logger);
      }
      try {
        entry.supervisorPid = await launchSupervisor(spec, entry, taskDir, {
          cgroups,
          cgroupPath: this.limits.cgroupPath(entry),
          requireLimits: this.options.requireLimits,
          addressSpaceLimit: this.options.addressSpaceLimit,
          user: this.taskUser,
          rolling: this.options.logRolling,
          logger: this.options.logger,
        });
      } catch (error) {
        await rm(entryPath, { force: true });
        throw error;
      }
    } finally {
      await taskDir.dir.close();
    }
    await writeJsonAtomically(entryPath, entry);
    if (!(await awaitLaunch(this.options.stateDir, this.options.startTimeoutMs ?? 60_000, entry))) {
      // start() never answers "running" for a command that is not: give up on this start, leaving nothing behind
      if (entry.supervisorPid !== undefined) signalGroup(entry.supervisorPid, 'SIGKILL');
      await this.removeRecords(entry);
      throw new TaskStartError(`the task's supervisor did not start ${JSON.stringify(spec.command[0])} within ${this.options.startTimeoutMs ?? 60_000} ms`);
    }
    const status = await this.readStatus(entry);
    this.track(entry, status.handle);
    return status;
  }

  /** adopt returns an existing task's status (never starting a second process) and watches it. */
  private adopt(entry: RegistryEntry, status: TaskStatus): TaskStatus {
    this.track(entry, status.handle);
    return status;
  }

  /** readStatus reads what the supervisor recorded (process-registry.ts). */
  private readStatus(entry: RegistryEntry): Promise<TaskStatus> {
    return readTaskStatus(entry, () => this.limits.sawOomKill(entry));
  }

  /** track watches a run of a registered task (its handle is fixed when it is first seen). */
  private track(entry: RegistryEntry, handle: string): TrackedTask {
    const known = this.tasks.get(entry.taskId);
    if (known !== undefined) return known;
    const task: TrackedTask = { entry, stopRequested: false };
    this.tasks.set(entry.taskId, task);
    this.exits.watch(entry.taskId, handle);
    this.ensurePolling();
    void this.settle(task);
    return task;
  }

  /** ensurePolling runs the poller while some tracked task has not exited (it keeps the process alive for its waiters). */
  private ensurePolling(): void {
    if (this.pollTimer !== undefined || this.closed) return;
    this.pollTimer = setInterval(() => void this.poll(), this.options.pollIntervalMs ?? 200);
  }

  private async poll(): Promise<void> {
    if (this.polling || this.closed) return;
    this.polling = true;
    try {
      const open = [...this.tasks.values()].filter((task) => this.exits.isWatching(task.entry.taskId));
      if (open.length === 0 && this.pollTimer !== undefined) {
        clearInterval(this.pollTimer);
        this.pollTimer = undefined;
      }
      await Promise.all(open.map((task) => this.settle(task)));
    } catch (error) {
      this.options.logger?.warn({ err: error }, 'process runtime poll failed');
    } finally {
      this.polling = false;
    }
  }

  /** settle reports the task's exit once it is known (through the exit tracker: once per run). */
  private async settle(task: TrackedTask): Promise<void> {
    const taskId = task.entry.taskId;
    if (!this.exits.isWatching(taskId) || this.closed) return;
    const status = await this.readStatus(task.entry);
    if (status.running || this.tasks.get(taskId) !== task || !this.exits.isWatching(taskId)) return;
    const stopped = task.stopRequested || (await new TaskRecords(task.entry.privateDir).stopRecorded());
    const handle = this.exits.handleOf(taskId) ?? status.handle;
    if (status.neverStarted) {
      this.exits.report(taskId, handle, { exitCode: UNKNOWN_EXIT_CODE, oomKilled: false, stopped, launchError: status.error ?? 'the task never started' });
      return;
    }
    if (status.exitCode === undefined) return;
    const exit: Omit<TaskExit, 'handle'> = { exitCode: status.exitCode, oomKilled: status.oomKilled === true, stopped };
    if (status.refused !== undefined) exit.refused = status.refused;
    // the supervisor records an error only when the command could not be run at all
    else if (status.error !== undefined && status.startedAt === undefined) exit.launchError = status.error;
    else if (status.error !== undefined) exit.vanished = status.error;
    this.exits.report(taskId, handle, exit);
  }

  /** attach finds a task by id: tracked, or in the registry (after an agent restart). */
  private async attach(taskId: string): Promise<TrackedTask | undefined> {
    const tracked = this.tasks.get(taskId);
    if (tracked !== undefined) return tracked;
    const entry = await this.findEntry(taskId);
    if (entry === undefined) return undefined;
    const status = await this.readStatus(entry);
    return status.neverStarted ? undefined : this.track(entry, status.handle);
  }

  private async findEntry(taskId: string): Promise<RegistryEntry | undefined> {
    const tracked = this.tasks.get(taskId);
    if (tracked !== undefined) return tracked.entry;
    const matches = (await readEntries(this.options.stateDir)).filter((entry) => entry.taskId === taskId);
    if (matches.length > 1) throw new Error(`task id ${taskId} appears ${matches.length} times in ${this.options.stateDir}: use one stateDir per worker`);
    return matches[0];
  }

  async wait(taskId: string): Promise<TaskExit> {
    this.assertOpen();
    const task = await this.attach(taskId);
    const exit = task === undefined ? undefined : this.exits.exitOf(taskId);
    if (exit === undefined) throw new Error(`unknown task ${taskId}: not in ${this.options.stateDir}`);
    return exit;
  }

  async stop(taskId: string, graceMs: number): Promise<void> {
    this.assertOpen();
    const task = await this.attach(taskId);
    if (task === undefined) return;
    await this.settle(task);
    if (!this.exits.isWatching(taskId)) return;
    task.stopRequested = true;
    await new TaskRecords(task.entry.privateDir).recordStop();
    const record = await readJson<ProcessTaskRecord>(join(task.entry.privateDir, PRIVATE_FILES.processTask));
    const signalTask = (signal: NodeJS.Signals): void => {
      if (record !== undefined) signalGroup(record.pid, signal);
      // a supervisor that has not spawned yet forwards nothing; killing it ends the launch
      else if (task.entry.supervisorPid !== undefined) signalGroup(task.entry.supervisorPid, signal);
    };
    signalTask('SIGTERM');
    const exited = await this.waitBounded(task, graceMs);
    if (!exited) {
      signalTask('SIGKILL');
      if (!(await this.waitBounded(task, 10_000))) {
        throw new Error(`task ${taskId} did not exit after SIGKILL`);
      }
    }
  }

  /** waitBounded polls for the exit more often than the background poller, for at most ms. */
  private async waitBounded(task: TrackedTask, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      await this.settle(task);
      if (!this.exits.isWatching(task.entry.taskId)) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(25, Math.max(1, deadline - Date.now()))));
    }
  }

  async inspect(taskId: string): Promise<TaskStatus | undefined> {
    this.assertOpen();
    const entry = await this.findEntry(taskId);
    return entry === undefined ? undefined : this.readStatus(entry);
  }

  async list(workerId: string, cluster: string): Promise<TaskStatus[]> {
    this.assertOpen();
    // a task whose start is under way here is not listed yet (it would look never started)
    const entries = (await readEntries(this.options.stateDir)).filter(
      (entry) => entry.labels[LABEL.cluster] === cluster && entry.labels[LABEL.worker] === workerId && !this.starting.has(entry.taskId),
    );
    await this.limits.removeLeftovers(workerId, cluster, (await readEntries(this.options.stateDir)).map((entry) => taskName(entry.cluster, entry.kind, entry.taskId)));
    return Promise.all(entries.map((entry) => this.readStatus(entry)));
  }

  async recover(status: TaskStatus): Promise<void> {
    this.assertOpen();
    if (status.neverStarted) return; // nothing ran: an agent removes it
    if (this.tasks.has(status.taskId)) return;
    const entry = await this.findEntry(status.taskId);
    // watched under the handle the caller saw, so the exit it waits for carries that handle
    if (entry !== undefined) this.track(entry, status.handle);
  }

  async remove(taskId: string): Promise<void> {
    this.assertOpen();
    const entry = this.tasks.get(taskId)?.entry ?? (await this.findEntry(taskId));
    if (entry === undefined) return;
    if (this.exits.isWatching(taskId) || (await this.readStatus(entry)).running) {
      await this.stop(taskId, 0).catch((error: unknown) => this.options.logger?.warn({ err: error, taskId }, 'stop before removal failed; removing anyway'));
    }
    this.tasks.delete(taskId);
    this.exits.forget(taskId, `task ${taskId} was removed before its exit was observed`);
    await this.removeRecords(entry);
  }

  /** removeRecords deletes a task's registry entry, its runtime files and its cgroup. */
  private async removeRecords(entry: RegistryEntry): Promise<void> {
    // the cgroup first (it kills whatever still runs in it), then the records
    await this.limits.remove(entry);
    await rm(registryEntryPath(this.options.stateDir, entry.cluster, entry.kind, entry.taskId), { force: true });
    if (typeof entry.privateDir === 'string' && entry.privateDir.startsWith(this.options.stateDir)) {
      await new TaskRecords(entry.privateDir).remove().catch((error: unknown) => this.options.logger?.warn({ err: error, taskId: entry.taskId }, 'could not delete the records of a removed task'));
    }
  }

  watches(taskId: string): boolean {
    return this.tasks.has(taskId);
  }

  onExit(listener: (taskId: string, exit: TaskExit) => void): () => void {
    return this.exits.onExit(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    this.exits.close('runtime closed before the task exited');
    this.tasks.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('process runtime is closed');
  }
}
