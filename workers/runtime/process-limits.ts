/**
 * TaskLimits: the process runtime's use of cgroups (cgroups.ts). Detected once; each task
 * gets `<controller>/flint/<cluster>/<worker>/<task name>`, found again by name after an
 * agent restart, asked for OOM kills when the supervisor could not record them, and
 * removed (after killing whatever still lives in it) with its task. When cgroups cannot be
 * used it says so once, and tasks run unconfined unless requireLimits makes that an error.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../lib/log.ts';
import { type CgroupSupport, type TaskCgroups, detectCgroups, workerCgroupPath } from './cgroups.ts';
import type { RegistryEntry } from './process-registry.ts';
import { taskName } from './task-identity.ts';

export interface TaskLimitsOptions {
  /** enforce cores, memory and pids with cgroups when the host allows it (default true) */
  cgroups?: boolean;
  /** fail (prepare, and every start) when cgroups cannot be used, instead of running unconfined */
  requireLimits?: boolean;
  logger?: Logger;
}

type TaskIdentity = Pick<RegistryEntry, 'cluster' | 'workerId' | 'kind' | 'taskId'>;

export class TaskLimits {
  private detected: Promise<{ support: CgroupSupport; cgroups?: TaskCgroups }> | undefined;

  constructor(private readonly options: TaskLimitsOptions) {}

  /** prepare detects cgroup support once and logs the outcome once; it throws when limits are required and cannot be enforced. */
  async prepare(): Promise<CgroupSupport> {
    this.detected ??= (async () => {
      if (this.options.cgroups === false) return { support: { enforced: false, why: 'cgroups are turned off for this runtime' } as CgroupSupport };
      const detected = await detectCgroups();
      if (detected.support.enforced) this.options.logger?.info(`process runtime: enforcing task cores, memory and pids with ${detected.support.describe}`);
      else if (this.options.requireLimits !== true) this.options.logger?.warn(`process runtime: tasks run WITHOUT cores, memory or pids limits: cgroups are unavailable (${detected.support.why})`);
      return detected;
    })();
    const { support } = await this.detected;
    if (!support.enforced && this.options.requireLimits === true) {
      throw new Error(`spark.flint.worker.process.requireLimits is true but cgroups cannot be used: ${support.why} (run the worker as root with cgroups mounted read-write, or set it to false)`);
    }
    return support;
  }

  /** cgroups: the cgroup operations when limits are enforced (detecting them first). */
  async cgroups(): Promise<TaskCgroups | undefined> {
    await this.prepare();
    return (await this.detected)?.cgroups;
  }

  /** known: the cgroup operations if detection already ran, without running it. */
  private async known(): Promise<TaskCgroups | undefined> {
    return (await this.detected)?.cgroups;
  }

  /** cgroupPath is where a task's cgroup lives under each controller: derived from its identity, so an adopted task's is found again. */
  cgroupPath(entry: TaskIdentity): string {
    return join(workerCgroupPath(entry.cluster, entry.workerId), taskName(entry.cluster, entry.kind, entry.taskId));
  }

  /** sawOomKill asks the task's cgroup (when the supervisor could not record it). */
  async sawOomKill(entry: TaskIdentity): Promise<boolean> {
    const cgroups = await this.known();
    if (cgroups === undefined) return false;
    return ((await cgroups.oomKills(this.cgroupPath(entry))) ?? 0) > 0;
  }

  /**
   * removeLeftovers removes this worker's task cgroups that no registered task names (a
   * task removed while the agent crashed). Registered tasks keep theirs until remove(), so
   * a late OOM check still works; the kernel refuses to remove a cgroup that has processes.
   */
  async removeLeftovers(workerId: string, cluster: string, registeredNames: string[]): Promise<void> {
    const cgroups = (await this.known()) ?? (this.options.cgroups === false ? undefined : await this.cgroups().catch(() => undefined));
    if (cgroups === undefined) return;
    const registered = new Set(registeredNames);
    const parent = workerCgroupPath(cluster, workerId);
    for (const name of await cgroups.children(parent)) {
      if (registered.has(name)) continue;
      await cgroups.remove(join(parent, name)).catch((error: unknown) => this.options.logger?.warn({ err: error, cgroup: join(parent, name) }, 'cannot remove a leftover task cgroup'));
    }
  }

  /**
   * remove kills whatever still lives in the task's cgroup (children that left its process group) and removes it (bounded).
   * It detects cgroups first if this runtime never did: one that only adopted the task (after a restart) must remove its cgroup too.
   */
  async remove(entry: TaskIdentity): Promise<void> {
    const cgroups = (await this.known()) ?? (this.options.cgroups === false ? undefined : await this.cgroups().catch(() => undefined));
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
}
