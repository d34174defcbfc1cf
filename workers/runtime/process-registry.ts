/**
 * The process runtime's records on disk: one registry entry per task in the worker's
 * registry directory (what makes start() idempotent and list() possible after an agent
 * restart), and the files the task supervisor writes in the agent's own directory for the
 * task (`task.json` once the command runs, `exit.json` when it ends), never in the task's.
 * readTaskStatus turns them, and whether the processes they name still live, into a
 * TaskStatus.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PRIVATE_FILES, taskName } from './task-identity.ts';
import type { ProcessExitRecord, ProcessTaskRecord } from './task-supervisor.ts';
import type { TaskStatus } from './types.ts';

/** RegistryEntry: one file per task in the registry directory. */
export interface RegistryEntry {
  taskId: string;
  kind: string;
  cluster: string;
  workerId: string;
  /** the task's directory (its real path) */
  workDir: string;
  /** the trusted directory workDir lies below */
  workRoot: string;
  /** the agent's own directory for the task (launch, task and exit records, markers) */
  privateDir: string;
  labels: Record<string, string>;
  createdAt: number;
  supervisorPid?: number;
}

/** entryPath: the registry entry of a task, `<stateDir>/<task name>.json` (its records are in `<stateDir>/<task name>/`). */
export function entryPath(stateDir: string, cluster: string, kind: string, taskId: string): string {
  return join(stateDir, `${taskName(cluster, kind, taskId)}.json`);
}

/** readEntries reads every registry entry of the directory (none when it does not exist). */
export async function readEntries(stateDir: string): Promise<RegistryEntry[]> {
  let names: string[];
  try {
    names = await readdir(stateDir);
  } catch {
    return [];
  }
  const entries = await Promise.all(names.filter((name) => name.endsWith('.json')).map((name) => readJson<RegistryEntry>(join(stateDir, name))));
  return entries.filter((entry): entry is RegistryEntry => entry !== undefined && typeof entry.taskId === 'string');
}

/** readEntryPatiently reads an entry another start may be writing this very moment (about a second at most). */
export async function readEntryPatiently(path: string): Promise<RegistryEntry | undefined> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const entry = await readJson<RegistryEntry>(path);
    if (entry !== undefined) return entry;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return undefined;
}

/**
 * awaitLaunch waits until the supervisor has reported the command running or ended, or is
 * gone; false when it is still starting after timeoutMs (a loaded host can take seconds to
 * start the supervisor's node process).
 */
export async function awaitLaunch(stateDir: string, timeoutMs: number, entry: RegistryEntry): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (existsSync(join(entry.privateDir, PRIVATE_FILES.processTask)) || existsSync(join(entry.privateDir, PRIVATE_FILES.processExit))) return true;
    const current = (await readJson<RegistryEntry>(entryPath(stateDir, entry.cluster, entry.kind, entry.taskId))) ?? entry;
    // a supervisor that never came up (or died before spawning) leaves nothing more to wait for
    if (current.supervisorPid !== undefined && !isProcessAlive(current.supervisorPid)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
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
  const record = await readJson<ProcessTaskRecord>(join(entry.privateDir, PRIVATE_FILES.processTask));
  const exit = await readJson<ProcessExitRecord>(join(entry.privateDir, PRIVATE_FILES.processExit));
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
    if (exit.refused !== undefined) status.refused = exit.refused;
    return status;
  }
  // the entry another start is still completing may not name its supervisor yet; the task record always does
  const supervisorPid = entry.supervisorPid ?? record?.supervisorPid;
  const supervisorAlive = supervisorPid !== undefined && isProcessAlive(supervisorPid);
  const taskAlive = record !== undefined && isProcessAlive(record.pid);
  if (supervisorAlive || taskAlive) {
    status.running = true;
    return status;
  }
  // both gone: the supervisor may have written the exit file just now
  const late = await readJson<ProcessExitRecord>(join(entry.privateDir, PRIVATE_FILES.processExit));
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
