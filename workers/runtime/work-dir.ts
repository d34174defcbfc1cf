/**
 * A task's directory: the only host path a task can touch, and hostile ground.
 *
 * It lies below a trusted root (the worker's work dir) as plain names (`<appId>/<execId>`,
 * `<driverId>`): openTaskDir creates and opens it one component at a time without following
 * a link (safe-fs.ts), so a component that became a link is refused, never mounted or
 * written through, and the path handed to Docker is the one the kernel reports for the
 * opened directory. A path that resolves onto a system directory is refused too: a workDir
 * that is a symlink to /etc must never become a bind mount of /etc.
 *
 * The directory is given to the user the task runs as (task-user.ts), so a task that is not
 * root can write in it; everything above it stays the agent's.
 */
import { chmod, mkdir, realpath, stat } from 'node:fs/promises';
import { dirname, posix } from 'node:path';
import type { Logger } from '../../lib/log.ts';
import { DirHandle, relativeParts, type TaskDirRef } from './safe-fs.ts';
import type { TaskUser } from './task-user.ts';

/** SENSITIVE_TREES: a workDir may be neither these nor anything below them. */
const SENSITIVE_TREES = ['/bin', '/boot', '/dev', '/etc', '/lib', '/lib32', '/lib64', '/libx32', '/proc', '/run', '/sbin', '/sys', '/usr', '/var/run', '/var/lib/docker', '/var/lib/containerd'];

/** SENSITIVE_ROOTS: a workDir may be below these but not one of them (mounting all of /tmp or /home is too much). */
const SENSITIVE_ROOTS = ['/', '/home', '/mnt', '/media', '/opt', '/root', '/srv', '/tmp', '/var', '/var/lib', '/var/tmp'];

/** workDirProblem says why a resolved absolute path cannot be a task's workDir, or undefined when it can. */
export function workDirProblem(resolvedPath: string): string | undefined {
  if (!resolvedPath.startsWith('/')) return `workDir ${resolvedPath} is not absolute`;
  const normal = posix.normalize(resolvedPath).replace(/\/+$/, '') || '/';
  if (SENSITIVE_ROOTS.includes(normal)) return `workDir resolves to ${normal}, a system directory`;
  for (const tree of SENSITIVE_TREES) {
    if (normal === tree || normal.startsWith(`${tree}/`)) return `workDir resolves to ${normal}, inside the system directory ${tree}`;
  }
  return undefined;
}

/** OpenedTaskDir: a task's directory, open, with where it really is. */
export interface OpenedTaskDir {
  dir: DirHandle;
  /** the directory's real path (the bind mount's source) */
  hostPath: string;
  /** how to reach it again: the resolved root and the names below it */
  ref: TaskDirRef;
  /** with `fresh`: the name a directory already there was moved to */
  movedAside?: string;
}

/** taskDirRef: the root (default the workDir's parent) and the plain names from it to the workDir. */
export function taskDirRef(workDir: string, workRoot: string | undefined): TaskDirRef {
  const root = workRoot ?? dirname(workDir);
  return { root, parts: relativeParts(root, workDir) };
}

/**
 * plannedTaskDir: where openTaskDir will open a task's directory, without creating it: the
 * real path of its root and the plain names below it (a link among them is refused when
 * it is opened, so the real path of the opened directory is exactly this one).
 */
export async function plannedTaskDir(workDir: string, workRoot: string | undefined): Promise<{ root: string; parts: string[]; hostPath: string }> {
  const lexicalProblem = workDirProblem(workDir);
  if (lexicalProblem !== undefined) throw new Error(`refusing task workDir ${workDir}: ${lexicalProblem}`);
  const ref = taskDirRef(workDir, workRoot);
  await mkdir(ref.root, { recursive: true });
  const root = await realpath(ref.root);
  return { root, parts: [...ref.parts], hostPath: posix.join(root, ...ref.parts) };
}

/**
 * openTaskDir creates (if needed) and opens a task's directory below its root, refusing a
 * link on the way and a system path, and gives it to `owner` (mode 0750) when the agent
 * may. Without the right to change owners (an agent that is not root) and a task user other
 * than the agent's, the directory is made writable for everyone instead (0777), so the task
 * can still write in it.
 */
export async function openTaskDir(workDir: string, workRoot: string | undefined, owner: TaskUser | undefined, options: { fresh?: boolean } = {}): Promise<OpenedTaskDir> {
  // check the path as written first, so a refused path is never created
  const lexicalProblem = workDirProblem(workDir);
  if (lexicalProblem !== undefined) throw new Error(`refusing task workDir ${workDir}: ${lexicalProblem}`);
  const ref = taskDirRef(workDir, workRoot);
  await mkdir(ref.root, { recursive: true });
  const root = await realpath(ref.root);
  const movedAside = options.fresh === true ? await moveAsideExisting(root, ref.parts) : undefined;
  const dir = await DirHandle.walk(root, ref.parts, { mode: 0o755 });
  try {
    const hostPath = await dir.realPath();
    const problem = workDirProblem(hostPath);
    if (problem !== undefined) throw new Error(`refusing task workDir ${workDir}: ${problem}`);
    if (owner !== undefined) await giveTo(dir, owner);
    return { dir, hostPath, ref: { root, parts: ref.parts }, ...(movedAside === undefined ? {} : { movedAside }) };
  } catch (error) {
    await dir.close();
    throw error;
  }
}

/**
 * moveAsideExisting: an executor's directory must be new, as Spark's ExecutorRunner requires
 * (it fails a launch whose directory exists). One that exists was left by an earlier task of
 * the same id: an application id used again (names as ids, a wrapped app number) or a start
 * retried after a crash. Its content is another run's, maybe another tenant's, so it is
 * renamed (`<execId>.replaced-<ms>`, within the parent only the agent writes in) and kept
 * for the work-dir cleanup; the task gets an empty directory. Returns the new name.
 */
async function moveAsideExisting(root: string, parts: readonly string[]): Promise<string | undefined> {
  if (parts.length === 0) return undefined;
  const last = parts.at(-1)!;
  const parent = await DirHandle.walk(root, parts.slice(0, -1), { mode: 0o755 });
  try {
    // anything but a directory (a link, a file) is left for the walk below to refuse
    if ((await parent.lstat(last))?.isDirectory() !== true) return undefined;
    const aside = `${last}.replaced-${Date.now()}`;
    await parent.rename(last, aside);
    return aside;
  } finally {
    await parent.close();
  }
}

/**
 * giveTo: the directory is the task user's and closed to others (0750): a task can set the
 * setuid bit on files it owns, which must not become a way in for other users of the host.
 */
async function giveTo(dir: DirHandle, owner: TaskUser): Promise<void> {
  const euid = process.geteuid?.() ?? 0;
  if (euid === 0) await dir.chown(owner.uid, owner.gid, 0o750);
  else if (owner.uid === euid) await dir.chown(-1, -1, 0o750);
  else await dir.chown(-1, -1, 0o777);
}

/**
 * makeSearchable: a task that runs as another user must reach its directory by its
 * absolute path (SPARK_EXECUTOR_DIRS, its own scripts), so the work root gets the others'
 * search bit (never read: the names in it stay unlisted). An ancestor without it is the
 * operator's to fix, and is named in the log.
 */
export async function makeSearchable(root: string, user: TaskUser, logger: Logger | undefined): Promise<void> {
  const info = await stat(root);
  if ((info.mode & 0o001) === 0) await chmod(root, (info.mode & 0o7777) | 0o001);
  for (let dir = dirname(root); ; dir = dirname(dir)) {
    const mode = (await stat(dir).catch(() => undefined))?.mode;
    if (mode !== undefined && (mode & 0o001) === 0) {
      logger?.warn({ dir, root }, `tasks run as ${user.uid}:${user.gid} cannot reach the work dir: ${dir} is not searchable by others (chmod o+x)`);
    }
    if (dir === '/') break;
  }
}
