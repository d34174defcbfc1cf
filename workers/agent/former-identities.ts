/**
 * Tasks of a work dir's former identities. A work dir belongs to one worker identity (a
 * cluster and a worker id) at a time, but the identity can change under it: an operator
 * starts the worker with another `--id` or cluster, or deletes `.flint-worker-id.json`.
 * The tasks the old identity left running are then nobody's: the new agent lists only its
 * own, and the master gives the old worker's executors up when it times out and places
 * them again, so they would run twice, holding the host's cores for ever.
 *
 * removeFormerIdentityTasks finds those identities in the runtimes' directories
 * (`.flint-<runtime>-runtime/<cluster>/<worker id>`, which exist for every identity that
 * started a task here), opens a runtime for each, removes every task it lists (stopping
 * what still runs) and deletes the identity's directories. It runs while the agent holds
 * the work dir's lock, so no live agent can own those tasks. The master is not told: the
 * old worker times out there (spark.worker.timeout) and its executors end LOST, as for
 * any worker that vanished. Containers whose records were deleted with the work dir
 * itself carry nothing that names this work dir's identities and are not found.
 */
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { withDeadline } from '../../lib/deadline.ts';
import type { Logger } from '../../lib/log.ts';
import type { Runtime } from '../runtime/types.ts';

export interface WorkerIdentity {
  cluster: string;
  workerId: string;
}

export type RuntimeFactory = (worker: WorkerIdentity & { workDir: string }) => Runtime | Promise<Runtime>;

const RUNTIME_DIRS = ['.flint-docker-runtime', '.flint-process-runtime'];

/** each call to a former identity's runtime is bounded: a hung engine delays start-up, never wedges it */
const CALL_MS = 60_000;

async function directories(path: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(path);
  } catch {
    return [];
  }
  const kept: string[] = [];
  for (const name of names) {
    const info = await lstat(join(path, name)).catch(() => undefined);
    if (info?.isDirectory()) kept.push(name);
  }
  return kept;
}

/** formerIdentities: the identities the work dir's runtime directories name, other than `current`. */
export async function formerIdentities(workDir: string, current: WorkerIdentity): Promise<WorkerIdentity[]> {
  const found = new Map<string, WorkerIdentity>();
  for (const runtimeDir of RUNTIME_DIRS) {
    for (const cluster of await directories(join(workDir, runtimeDir))) {
      for (const workerId of await directories(join(workDir, runtimeDir, cluster))) {
        if (cluster === current.cluster && workerId === current.workerId) continue;
        found.set(JSON.stringify([cluster, workerId]), { cluster, workerId });
      }
    }
  }
  return [...found.values()];
}

/**
 * removeFormerIdentityTasks removes the tasks and directories of every former identity of
 * the work dir. Returns how many tasks it removed. An identity whose tasks cannot all be
 * removed keeps its directories (the next start tries again) and is logged, never fatal.
 */
export async function removeFormerIdentityTasks(options: { workDir: string; current: WorkerIdentity; runtime: RuntimeFactory; log: Logger }): Promise<number> {
  const { workDir, current, log } = options;
  let removed = 0;
  for (const former of await formerIdentities(workDir, current)) {
    let runtime: Runtime | undefined;
    try {
      runtime = await withDeadline(Promise.resolve(options.runtime({ ...former, workDir })), CALL_MS, `opening the runtime of former worker ${former.workerId}`);
      const tasks = await withDeadline(runtime.list(former.workerId, former.cluster), CALL_MS, `listing the tasks of former worker ${former.workerId}`);
      for (const task of tasks) {
        await withDeadline(runtime.remove(task.taskId), CALL_MS, `removing task ${task.taskId} of former worker ${former.workerId}`);
        removed++;
        log.warn({ formerWorkerId: former.workerId, formerCluster: former.cluster, taskId: task.taskId, wasRunning: task.running }, `removed task ${task.taskId} left by this work dir's former worker ${former.workerId} (cluster '${former.cluster}')`);
      }
      await Promise.all(RUNTIME_DIRS.map((dir) => rm(join(workDir, dir, former.cluster, former.workerId), { recursive: true, force: true })));
    } catch (error) {
      log.error({ err: error, formerWorkerId: former.workerId, formerCluster: former.cluster }, `could not remove the tasks of this work dir's former worker ${former.workerId}; retried at the next start`);
    } finally {
      await runtime?.close().catch(() => undefined);
    }
  }
  return removed;
}
