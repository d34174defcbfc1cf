/**
 * Work-dir cleanup: Spark's WorkDirCleanup (spark.worker.cleanup.enabled /
 * .interval / .appDataTtl). Every top-level directory of the work dir belongs to an
 * application (executors live in `<appId>/<execId>`) or a driver (`<driverId>`).
 * A directory is deleted when its name is neither the app of a running executor nor
 * a running driver, and no file in it (at any depth) was modified within the TTL.
 * The selection is pure; the scan and deletion are the I/O part below.
 */
import { rmdir } from 'node:fs/promises';
import { DirHandle, UnsafeFileError } from './runtime/safe-fs.ts';

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

/**
 * The scan and the deletion walk the tree by directory handles (workers/runtime/safe-fs.ts):
 * every entry is reached relative to the descriptor of the directory that holds it, never
 * by a path, so a task that swaps a directory for a link while the walk runs sends it
 * nowhere (a recursive rm by path would follow the link and delete, as root, whatever it
 * points to). Nothing below the work dir is a mount of its own (a directory on another
 * device is left alone). One bad entry (too deep, vanished, refused) is skipped and counted,
 * never the end of the whole cleanup; a modification time in the future (a task can set
 * any) is not believed, so a task cannot keep its directory for ever.
 */

/** MAX_DEPTH: directories deeper than this are not walked (each level holds a descriptor). */
export const MAX_DEPTH = 256;

/** FUTURE_SLACK_MS: clock skew tolerated before a modification time counts as made up. */
const FUTURE_SLACK_MS = 60_000;

/** WalkTrouble: what a walk skipped, for the log. */
export interface WalkTrouble {
  skipped: number;
  firstError?: string;
}

function note(trouble: WalkTrouble, error: unknown): void {
  trouble.skipped++;
  trouble.firstError ??= (error as Error).message;
}

async function newestBelow(dir: DirHandle, dev: number, now: number, depth: number, trouble: WalkTrouble): Promise<number> {
  let newest = 0;
  for (const name of await dir.names()) {
    try {
      const info = await dir.lstat(name);
      if (info === undefined) continue;
      if (info.mtimeMs <= now + FUTURE_SLACK_MS) newest = Math.max(newest, info.mtimeMs);
      if (!info.isDirectory() || info.dev !== dev) continue;
      if (depth >= MAX_DEPTH) throw new Error(`${dir.path}/${name}: deeper than ${MAX_DEPTH} levels, not walked`);
      const child = await dir.openDir(name);
      try {
        newest = Math.max(newest, await newestBelow(child, dev, now, depth + 1, trouble));
      } finally {
        await child.close();
      }
    } catch (error) {
      note(trouble, error);
    }
  }
  return newest;
}

/** newestMtime: the newest believable modification time of `name` in `dir` and everything below it (links never followed). */
export async function newestMtime(dir: DirHandle, name: string, now: number, trouble: WalkTrouble = { skipped: 0 }): Promise<number> {
  const info = await dir.lstat(name);
  if (info === undefined) return 0;
  const own = info.mtimeMs <= now + FUTURE_SLACK_MS ? info.mtimeMs : 0;
  if (!info.isDirectory()) return own;
  const child = await dir.openDir(name);
  try {
    return Math.max(own, await newestBelow(child, info.dev, now, 1, trouble));
  } finally {
    await child.close();
  }
}

/** scanWorkDir lists the top-level directories of the work dir with their newest mtime. */
export async function scanWorkDir(workDir: string, now = Date.now(), trouble: WalkTrouble = { skipped: 0 }): Promise<WorkDirEntry[]> {
  let root: DirHandle;
  try {
    root = await DirHandle.openRoot(workDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  try {
    const entries: WorkDirEntry[] = [];
    for (const name of await root.names()) {
      try {
        const info = await root.lstat(name);
        if (info === undefined || !info.isDirectory()) continue;
        entries.push({ name, newestMtimeMs: await newestMtime(root, name, now, trouble) });
      } catch (error) {
        note(trouble, error);
      }
    }
    return entries;
  } finally {
    await root.close();
  }
}

/**
 * removeEntry deletes `name` in `dir` and, for a directory on the same device, everything
 * in it, depth first through handles. A link is removed itself, never followed.
 */
export async function removeEntry(dir: DirHandle, name: string, dev: number, trouble: WalkTrouble, depth = 0): Promise<void> {
  const info = await dir.lstat(name);
  if (info === undefined) return;
  if (!info.isDirectory()) return dir.unlink(name);
  if (info.dev !== dev) throw new Error(`${dir.path}/${name} is on another device: left alone`);
  if (depth >= MAX_DEPTH) throw new Error(`${dir.path}/${name}: deeper than ${MAX_DEPTH} levels, not removed`);
  let child: DirHandle;
  try {
    child = await dir.openDir(name);
  } catch (error) {
    // swapped for a link (or something else) since the lstat: remove that entry itself
    if (error instanceof UnsafeFileError) return dir.unlink(name);
    throw error;
  }
  try {
    for (const entry of await child.names()) {
      try {
        await removeEntry(child, entry, dev, trouble, depth + 1);
      } catch (error) {
        note(trouble, error);
      }
    }
  } finally {
    await child.close();
  }
  await rmdir(dir.at(name));
}

/** cleanWorkDir scans, selects and deletes; returns the names it deleted and what it had to skip. */
export async function cleanWorkDir(
  workDir: string,
  running: { appIds: ReadonlySet<string>; driverIds: ReadonlySet<string> },
  now: number,
  ttlMs: number,
): Promise<{ deleted: string[]; trouble: WalkTrouble }> {
  const trouble: WalkTrouble = { skipped: 0 };
  const entries = await scanWorkDir(workDir, now, trouble);
  const doomed = selectDirsToClean({ entries, runningAppIds: running.appIds, runningDriverIds: running.driverIds, now, ttlMs });
  const deleted: string[] = [];
  if (doomed.length === 0) return { deleted, trouble };
  const root = await DirHandle.openRoot(workDir);
  try {
    const dev = (await root.stat()).dev;
    for (const name of doomed) {
      try {
        await removeEntry(root, name, dev, trouble);
        deleted.push(name);
      } catch (error) {
        note(trouble, error);
      }
    }
  } finally {
    await root.close();
  }
  return { deleted, trouble };
}
