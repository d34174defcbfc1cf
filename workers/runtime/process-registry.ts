/**
 * The process runtime's records on disk: one registry entry per task in the worker's
 * registry directory (what makes start() idempotent and list() possible after an agent
 * restart), and the files the task supervisor writes in the task's workDir
 * (`.flint-task.json` once the command runs, `.flint-exit.json` when it ends).
 * readTaskStatus turns them, and whether the processes they name still live, into a
 * TaskStatus.
 */
import { readFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TASK_FILES } from './task-identity.ts';
import type { ProcessExitRecord, ProcessTaskRecord } from './task-supervisor.ts';
import type { TaskStatus } from './types.ts';

/** RegistryEntry: one file per task in the registry directory. */
export interface RegistryEntry {
  taskId: string;
  kind: string;
  cluster: string;
  workerId: string;
  workDir: string;
  labels: Record<string, string>;
  createdAt: number;
  supervisorPid?: number;
}

/** UNKNOWN_EXIT_CODE: the supervisor and the task are both gone and no exit was recorded. */
export const UNKNOWN_EXIT_CODE = -1;

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

export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export async function writeJsonAtomically(path: string, value: unknown, mode = 0o644): Promise<void> {
  const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(temporary, JSON.stringify(value), { mode });
  await rename(temporary, path);
}

/**
 * readTaskStatus reads what the supervisor recorded and checks that the processes it
 * names still live. `oomKilled` answers for a run whose supervisor could not record it.
 * A task whose supervisor is gone without having run the command is `neverStarted`.
 */
export async function readTaskStatus(entry: RegistryEntry, oomKilled: () => Promise<boolean>): Promise<TaskStatus> {
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
    status.oomKilled = exit.oomKilled ?? (await oomKilled());
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
  if (late !== undefined) return readTaskStatus(entry, oomKilled);
  if (record === undefined) {
    status.neverStarted = true;
    status.error = 'the task never started (its supervisor did not report)';
    return status;
  }
  status.exitCode = UNKNOWN_EXIT_CODE;
  status.oomKilled = await oomKilled();
  status.error = 'the task and its supervisor are gone without an exit record';
  return status;
}
