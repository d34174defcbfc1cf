/**
 * ProcessRuntime: the Runtime contract for hosts without Docker. Each task's argv runs
 * as a local process (never through a shell; the image only passes the allow-list) in
 * its workDir, under a detached supervisor (task-supervisor.ts) that records the pid
 * and, later, the exit code in the workDir. Tasks therefore outlive the agent: a
 * restarted agent finds them through the registry directory (`stateDir`, one JSON
 * entry per task, e.g. `<worker work-dir>/.flint-process-runtime/<cluster>/<worker>/`)
 * and reads their exit from `.flint-exit.json`.
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
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Logger } from '../../lib/log.ts';
import { type CgroupSupport, type TaskCgroups, detectCgroups, limitsFor, workerCgroupPath } from './cgroups.ts';
import {
  LABEL,
  TASK_FILES,
  assertValidTaskSpec,
  checkImageAllowed,
  stderrHeader,
  taskLabels,
  taskName,
} from './task-identity.ts';
import type { ProcessExitRecord, ProcessTaskRecord, SupervisorLaunch } from './task-supervisor.ts';
import type { Runtime, TaskExit, TaskSpec, TaskStatus } from './types.ts';
import { resolveWorkDir } from './work-dir.ts';

/** ProcessRuntimeOptions: where the registry lives and how often to look. */
export interface ProcessRuntimeOptions {
  /** registry directory of this worker's tasks (created if missing) */
  stateDir: string;
  /** image name prefixes tasks may use; unset or empty allows any */
  imageAllowList?: string[];
  /** how often waiters read the exit files, default 200 ms */
  pollIntervalMs?: number;
  /** how long start() waits for the supervisor to report the command running, default 15 s */
  startTimeoutMs?: number;
  /** run tasks under `prlimit --as=<memoryMB MiB>` (needs util-linux prlimit) */
  addressSpaceLimit?: boolean;
  /** enforce cores, memory and pids with cgroups when the host allows it (default true) */
  cgroups?: boolean;
  /** fail (prepareLimits, and every start) when cgroups cannot be used, instead of running unconfined */
  requireLimits?: boolean;
  logger?: Logger;
}

/** RegistryEntry: one file per task in stateDir; it is what makes start() idempotent and list() possible. */
interface RegistryEntry {
  taskId: string;
  kind: string;
  cluster: string;
  workerId: string;
  workDir: string;
  labels: Record<string, string>;
  createdAt: number;
  supervisorPid?: number;
}

interface TrackedTask {
  entry: RegistryEntry;
  stopRequested: boolean;
  exit: TaskExit | undefined;
  exitPromise: Promise<TaskExit>;
  resolveExit: (exit: TaskExit) => void;
  rejectExit: (error: Error) => void;
}

/** UNKNOWN_EXIT_CODE: the supervisor and the task are both gone and no exit was recorded. */
export const UNKNOWN_EXIT_CODE = -1;

/** ENV_PASSED_THROUGH: the agent's variables a local process gets (plus the spec's env); nothing else leaks in. */
const ENV_PASSED_THROUGH = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'JAVA_HOME', 'SPARK_HOME', 'USER', 'LOGNAME'];

const SUPERVISOR_PATH = fileURLToPath(new URL('./task-supervisor.ts', import.meta.url));
const TSX_LOADER_URL = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** isProcessAlive: kill(pid, 0) succeeds and the process is not a zombie. */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

async function writeJsonAtomically(path: string, value: unknown, mode = 0o644): Promise<void> {
  const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(temporary, JSON.stringify(value), { mode });
  await rename(temporary, path);
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
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
  private readonly listeners = new Set<(taskId: string, exit: TaskExit) => void>();
  private pollTimer: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;
  private limits: Promise<{ support: CgroupSupport; cgroups?: TaskCgroups }> | undefined;

  constructor(private readonly options: ProcessRuntimeOptions) {
    if (typeof options?.stateDir !== 'string' || !options.stateDir.startsWith('/')) {
      throw new TypeError('ProcessRuntime needs an absolute stateDir');
    }
  }

  /**
   * prepareLimits detects cgroup support once and logs the outcome once; it throws when
   * requireLimits is set and limits cannot be enforced. start() calls it too.
   */
  async prepareLimits(): Promise<CgroupSupport> {
    this.limits ??= (async () => {
      if (this.options.cgroups === false) return { support: { enforced: false, why: 'cgroups are turned off for this runtime' } as CgroupSupport };
      const detected = await detectCgroups();
      if (detected.support.enforced) this.options.logger?.info(`process runtime: enforcing task cores, memory and pids with ${detected.support.describe}`);
      else if (this.options.requireLimits !== true) this.options.logger?.warn(`process runtime: tasks run WITHOUT cores, memory or pids limits: cgroups are unavailable (${detected.support.why})`);
      return detected;
    })();
    const { support } = await this.limits;
    if (!support.enforced && this.options.requireLimits === true) {
      throw new Error(`spark.flint.worker.process.requireLimits is true but cgroups cannot be used: ${support.why} (run the worker as root with cgroups mounted read-write, or set it to false)`);
    }
    return support;
  }

  private async taskCgroups(): Promise<TaskCgroups | undefined> {
    await this.prepareLimits();
    return (await this.limits)?.cgroups;
  }

  /** cgroupPath is where a task's cgroup lives under each controller: derived from its identity, so an adopted task's is found again. */
  private cgroupPath(entry: Pick<RegistryEntry, 'cluster' | 'workerId' | 'kind' | 'taskId'>): string {
    return join(workerCgroupPath(entry.cluster, entry.workerId), taskName(entry.cluster, entry.kind, entry.taskId));
  }

  private entryPath(cluster: string, kind: string, taskId: string): string {
    return join(this.options.stateDir, `${taskName(cluster, kind, taskId)}.json`);
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
    const entryPath = this.entryPath(spec.cluster, spec.kind, spec.taskId);
    const cgroups = await this.taskCgroups();
    const known = await readJson<RegistryEntry>(entryPath);
    if (known !== undefined) return this.adopt(known);

    const workDir = await resolveWorkDir(spec.workDir);
    await mkdir(this.options.stateDir, { recursive: true });
    const entry: RegistryEntry = {
      taskId: spec.taskId,
      kind: spec.kind,
      cluster: spec.cluster,
      workerId: spec.workerId,
      workDir,
      labels: taskLabels(spec, workDir),
      createdAt: Date.now(),
    };
    try {
      // the exclusive create is the claim on the task id: a second start finds it and adopts
      await writeFile(entryPath, JSON.stringify(entry), { flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = await this.readEntryPatiently(entryPath);
      if (holder === undefined) throw new Error(`registry entry ${entryPath} exists but cannot be read`, { cause: error });
      return this.adopt(holder);
    }

    for (const file of [TASK_FILES.processTask, TASK_FILES.processExit, TASK_FILES.stopRequested]) {
      await rm(join(workDir, file), { force: true });
    }
    await writeFile(join(workDir, TASK_FILES.stdout), '');
    await writeFile(join(workDir, TASK_FILES.stderr), stderrHeader(spec));
    const launchPath = join(workDir, '.flint-launch.json');
    const launch: SupervisorLaunch = {
      taskId: spec.taskId,
      command: this.wrapCommand(spec),
      env: this.taskEnv(spec),
      workDir,
      labels: entry.labels,
    };
    if (cgroups !== undefined) {
      try {
        const cgroup = await cgroups.create(this.cgroupPath(entry), limitsFor(spec.cores, spec.memoryMB, spec.pidsLimit));
        launch.cgroup = { procsFiles: cgroup.procsFiles, oomFile: cgroup.oomFile };
      } catch (error) {
        if (this.options.requireLimits === true) {
          await cgroups.remove(this.cgroupPath(entry)).catch(() => undefined);
          await rm(entryPath, { force: true });
          throw new Error(`cannot create the cgroup of task ${spec.taskId}: ${(error as Error).message}`, { cause: error });
        }
        this.options.logger?.warn({ err: error, taskId: spec.taskId }, 'cannot create the task cgroup: the task runs without cores, memory or pids limits');
      }
    }
    await writeJsonAtomically(launchPath, launch, 0o600);
    const supervisor = spawn(process.execPath, ['--import', TSX_LOADER_URL, SUPERVISOR_PATH, launchPath], {
      cwd: workDir,
      detached: true,
      stdio: 'ignore',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    supervisor.unref();
    entry.supervisorPid = supervisor.pid;
    await writeJsonAtomically(entryPath, entry);
    await this.awaitLaunch(entry);
    this.track(entry);
    return this.readStatus(entry);
  }

  /** readEntryPatiently reads an entry another start may be writing this very moment. */
  private async readEntryPatiently(entryPath: string): Promise<RegistryEntry | undefined> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const entry = await readJson<RegistryEntry>(entryPath);
      if (entry !== undefined) return entry;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return undefined;
  }

  /** adopt returns an existing task's status (never starting a second process) and watches it. */
  private async adopt(entry: RegistryEntry): Promise<TaskStatus> {
    await this.awaitLaunch(entry);
    this.track(entry);
    return this.readStatus(entry);
  }

  /** awaitLaunch waits until the supervisor has reported the command running or ended (bounded). */
  private async awaitLaunch(entry: RegistryEntry): Promise<void> {
    const deadline = Date.now() + (this.options.startTimeoutMs ?? 15_000);
    for (;;) {
      if (existsSync(join(entry.workDir, TASK_FILES.processTask)) || existsSync(join(entry.workDir, TASK_FILES.processExit))) return;
      const current = (await readJson<RegistryEntry>(this.entryPath(entry.cluster, entry.kind, entry.taskId))) ?? entry;
      // a supervisor that never came up (or died before spawning) leaves nothing more to wait for
      if (current.supervisorPid !== undefined && !isProcessAlive(current.supervisorPid)) return;
      if (Date.now() > deadline) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  private wrapCommand(spec: TaskSpec): string[] {
    if (this.options.addressSpaceLimit !== true) return spec.command;
    return ['prlimit', `--as=${spec.memoryMB * 1024 * 1024}`, '--', ...spec.command];
  }

  private taskEnv(spec: TaskSpec): Record<string, string> {
    const env: Record<string, string> = {};
    for (const name of ENV_PASSED_THROUGH) {
      const value = process.env[name];
      if (value !== undefined) env[name] = value;
    }
    return { ...env, ...spec.env };
  }

  /** readStatus reads what the supervisor recorded and checks that the processes it names still live. */
  private async readStatus(entry: RegistryEntry): Promise<TaskStatus> {
    const record = await readJson<ProcessTaskRecord>(join(entry.workDir, TASK_FILES.processTask));
    const exit = await readJson<ProcessExitRecord>(join(entry.workDir, TASK_FILES.processExit));
    const status: TaskStatus = {
      taskId: entry.taskId,
      handle: `pid:${record?.pid ?? entry.supervisorPid ?? 0}`,
      running: false,
      labels: entry.labels,
    };
    if (record !== undefined) status.startedAt = record.startedAt;
    if (exit !== undefined) {
      status.exitCode = exit.exitCode;
      status.oomKilled = exit.oomKilled ?? (await this.cgroupSawOomKill(entry));
      status.finishedAt = exit.finishedAt;
      if (exit.error !== undefined) status.error = exit.error;
      return status;
    }
    const supervisorAlive = entry.supervisorPid !== undefined && isProcessAlive(entry.supervisorPid);
    const taskAlive = record !== undefined && isProcessAlive(record.pid);
    if (supervisorAlive || taskAlive) {
      status.running = true;
      return status;
    }
    // both gone: the supervisor may have written the exit file just now
    const late = await readJson<ProcessExitRecord>(join(entry.workDir, TASK_FILES.processExit));
    if (late !== undefined) return this.readStatus(entry);
    status.exitCode = UNKNOWN_EXIT_CODE;
    status.oomKilled = await this.cgroupSawOomKill(entry);
    status.error = record === undefined ? 'the task never started (its supervisor did not report)' : 'the task and its supervisor are gone without an exit record';
    return status;
  }

  /** cgroupSawOomKill asks the task's cgroup (when the supervisor could not record it). */
  private async cgroupSawOomKill(entry: RegistryEntry): Promise<boolean> {
    const cgroups = (await this.limits)?.cgroups;
    if (cgroups === undefined) return false;
    return ((await cgroups.oomKills(this.cgroupPath(entry))) ?? 0) > 0;
  }

  private track(entry: RegistryEntry): TrackedTask {
    const known = this.tasks.get(entry.taskId);
    if (known !== undefined) return known;
    let resolveExit!: (exit: TaskExit) => void;
    let rejectExit!: (error: Error) => void;
    const exitPromise = new Promise<TaskExit>((resolve, reject) => {
      resolveExit = resolve;
      rejectExit = reject;
    });
    exitPromise.catch(() => undefined);
    const task: TrackedTask = { entry, stopRequested: false, exit: undefined, exitPromise, resolveExit, rejectExit };
    this.tasks.set(entry.taskId, task);
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
      const open = [...this.tasks.values()].filter((task) => task.exit === undefined);
      if (open.length === 0 && this.pollTimer !== undefined) {
        clearInterval(this.pollTimer);
        this.pollTimer = undefined;
      }
      await Promise.all(open.map((task) => this.settle(task)));
    } finally {
      this.polling = false;
    }
  }

  /** settle reports the task's exit once it is known. */
  private async settle(task: TrackedTask): Promise<void> {
    if (task.exit !== undefined || this.closed) return;
    const status = await this.readStatus(task.entry);
    if (status.running || status.exitCode === undefined || task.exit !== undefined) return;
    if (this.tasks.get(task.entry.taskId) !== task) return;
    const stopped = task.stopRequested || existsSync(join(task.entry.workDir, TASK_FILES.stopRequested));
    const exit: TaskExit = { exitCode: status.exitCode, oomKilled: status.oomKilled === true, stopped };
    task.exit = exit;
    task.resolveExit(exit);
    for (const listener of this.listeners) {
      try {
        listener(task.entry.taskId, exit);
      } catch (error) {
        this.options.logger?.error({ err: error, taskId: task.entry.taskId }, 'exit listener threw');
      }
    }
  }

  private async readEntries(): Promise<RegistryEntry[]> {
    let names: string[];
    try {
      names = await readdir(this.options.stateDir);
    } catch {
      return [];
    }
    const entries = await Promise.all(names.filter((name) => name.endsWith('.json')).map((name) => readJson<RegistryEntry>(join(this.options.stateDir, name))));
    return entries.filter((entry): entry is RegistryEntry => entry !== undefined && typeof entry.taskId === 'string');
  }

  /** attach finds a task by id: tracked, or in the registry (after an agent restart). */
  private async attach(taskId: string): Promise<TrackedTask | undefined> {
    const tracked = this.tasks.get(taskId);
    if (tracked !== undefined) return tracked;
    const entry = await this.findEntry(taskId);
    return entry === undefined ? undefined : this.track(entry);
  }

  private async findEntry(taskId: string): Promise<RegistryEntry | undefined> {
    const tracked = this.tasks.get(taskId);
    if (tracked !== undefined) return tracked.entry;
    const matches = (await this.readEntries()).filter((entry) => entry.taskId === taskId);
    if (matches.length > 1) throw new Error(`task id ${taskId} appears ${matches.length} times in ${this.options.stateDir}: use one stateDir per worker`);
    return matches[0];
  }

  async wait(taskId: string): Promise<TaskExit> {
    this.assertOpen();
    const task = await this.attach(taskId);
    if (task === undefined) throw new Error(`unknown task ${taskId}: not in ${this.options.stateDir}`);
    return task.exitPromise;
  }

  async stop(taskId: string, graceMs: number): Promise<void> {
    this.assertOpen();
    const task = await this.attach(taskId);
    if (task === undefined) return;
    await this.settle(task);
    if (task.exit !== undefined) return;
    task.stopRequested = true;
    await writeFile(join(task.entry.workDir, TASK_FILES.stopRequested), String(Date.now()));
    const record = await readJson<ProcessTaskRecord>(join(task.entry.workDir, TASK_FILES.processTask));
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
      if (task.exit !== undefined) return true;
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
    const entries = (await this.readEntries()).filter((entry) => entry.labels[LABEL.cluster] === cluster && entry.labels[LABEL.worker] === workerId);
    await this.removeLeftoverCgroups(workerId, cluster);
    return Promise.all(entries.map((entry) => this.readStatus(entry)));
  }

  /**
   * removeLeftoverCgroups removes this worker's task cgroups that no registry entry names
   * (a task removed while the agent crashed). Registered tasks keep theirs until remove(),
   * so a late OOM check still works; the kernel refuses to remove a cgroup that has processes.
   */
  private async removeLeftoverCgroups(workerId: string, cluster: string): Promise<void> {
    const cgroups = (await this.limits)?.cgroups ?? (this.options.cgroups === false ? undefined : await this.taskCgroups().catch(() => undefined));
    if (cgroups === undefined) return;
    const registered = new Set((await this.readEntries()).map((entry) => taskName(entry.cluster, entry.kind, entry.taskId)));
    const parent = workerCgroupPath(cluster, workerId);
    for (const name of await cgroups.children(parent)) {
      if (registered.has(name)) continue;
      await cgroups.remove(join(parent, name)).catch((error: unknown) => this.options.logger?.warn({ err: error, cgroup: join(parent, name) }, 'cannot remove a leftover task cgroup'));
    }
  }

  async recover(status: TaskStatus): Promise<void> {
    this.assertOpen();
    await this.attach(status.taskId);
  }

  async remove(taskId: string): Promise<void> {
    this.assertOpen();
    const task = await this.attach(taskId);
    if (task === undefined) return;
    if (task.exit === undefined) await this.stop(taskId, 0);
    this.tasks.delete(taskId);
    await rm(this.entryPath(task.entry.cluster, task.entry.kind, task.entry.taskId), { force: true });
    for (const file of [TASK_FILES.processTask, TASK_FILES.processExit, TASK_FILES.stopRequested, '.flint-launch.json']) {
      await rm(join(task.entry.workDir, file), { force: true });
    }
    await this.removeCgroup(task.entry);
  }

  /** removeCgroup kills whatever still lives in the task's cgroup (children that left its process group) and removes it. */
  private async removeCgroup(entry: RegistryEntry): Promise<void> {
    const cgroups = (await this.limits)?.cgroups;
    if (cgroups === undefined) return;
    const path = this.cgroupPath(entry);
    for (let attempt = 0; ; attempt++) {
      for (const procs of cgroups.locate(path).procsFiles) {
        const pids = (await readFile(procs, 'utf8').catch(() => '')).split('\n').filter((line) => /^\d+$/.test(line));
        for (const pid of pids) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // gone already
          }
        }
      }
      try {
        await cgroups.remove(path);
        return;
      } catch (error) {
        if (attempt >= 40) {
          this.options.logger?.warn({ err: error, taskId: entry.taskId, cgroup: path }, 'cannot remove the task cgroup; the next list() tries again');
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
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
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    for (const task of this.tasks.values()) if (task.exit === undefined) task.rejectExit(new Error('runtime closed before the task exited'));
    this.tasks.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('process runtime is closed');
  }
}
