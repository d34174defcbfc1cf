/**
 * Work-dir cleanup: Spark's WorkDirCleanup (spark.worker.cleanup.enabled /
 * .interval / .appDataTtl). Every top-level directory of the work dir belongs to an
 * application (executors live in `<appId>/<execId>`) or a driver (`<driverId>`).
 * A directory is deleted when its name is neither the app of a running executor nor
 * a running driver, and no file in it (at any depth) was modified within the TTL.
 * The selection is pure; the scan and deletion are the small I/O part below.
 */
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** WorkDirEntry: one top-level directory of the work dir and the newest modification time inside it. */
export interface WorkDirEntry {
  name: string;
  /** newest mtime (ms) of the directory itself and everything below it */
  newestMtimeMs: number;
}

/** CleanupInput: the running work and the clock, for one selection. */
export interface CleanupInput {
  entries: readonly WorkDirEntry[];
  /** app ids of running executors */
  runningAppIds: ReadonlySet<string>;
  /** ids of running drivers */
  runningDriverIds: ReadonlySet<string>;
  now: number;
  ttlMs: number;
}

/**
 * selectDirsToClean: the names to delete. Example: ttl 7 days, now = day 10; `app-1`
 * (newest file day 1, not running) is deleted; `app-2` (newest file day 5) is kept;
 * `app-3` (newest day 1 but an executor runs) is kept.
 */
export function selectDirsToClean(input: CleanupInput): string[] {
  const cutoff = input.now - input.ttlMs;
  return input.entries
    .filter((entry) => !entry.name.startsWith('.'))
    .filter((entry) => !input.runningAppIds.has(entry.name) && !input.runningDriverIds.has(entry.name))
    .filter((entry) => entry.newestMtimeMs <= cutoff)
    .map((entry) => entry.name)
    .sort();
}

/** newestMtime: the newest modification time of `path` and everything below it (symlinks are not followed). */
export async function newestMtime(path: string): Promise<number> {
  const info = await lstat(path);
  let newest = info.mtimeMs;
  if (!info.isDirectory()) return newest;
  const children = await readdir(path);
  for (const child of children) {
    try {
      newest = Math.max(newest, await newestMtime(join(path, child)));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error; // deleted meanwhile
    }
  }
  return newest;
}

/** scanWorkDir lists the top-level directories of the work dir with their newest mtime. */
export async function scanWorkDir(workDir: string): Promise<WorkDirEntry[]> {
  const entries: WorkDirEntry[] = [];
  let names: string[];
  try {
    names = await readdir(workDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  for (const name of names) {
    const path = join(workDir, name);
    try {
      const info = await lstat(path);
      if (!info.isDirectory()) continue;
      entries.push({ name, newestMtimeMs: await newestMtime(path) });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return entries;
}

/** cleanWorkDir scans, selects and deletes; returns the names it deleted. */
export async function cleanWorkDir(
  workDir: string,
  running: { appIds: ReadonlySet<string>; driverIds: ReadonlySet<string> },
  now: number,
  ttlMs: number,
): Promise<string[]> {
  const entries = await scanWorkDir(workDir);
  const doomed = selectDirsToClean({ entries, runningAppIds: running.appIds, runningDriverIds: running.driverIds, now, ttlMs });
  for (const name of doomed) await rm(join(workDir, name), { recursive: true, force: true });
  return doomed;
}
