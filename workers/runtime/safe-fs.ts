/**
 * File access in a task's directory, which the task controls: nothing here follows a path
 * a task can change.
 *
 * A task can put anything in its directory: a symbolic link named `stdout` pointing at
 * /etc/shadow, a FIFO that would block a writer forever, a hard link to another file. The
 * agent runs as root, so one `open(path)` that follows such a name writes where the task
 * chose. Every access therefore goes through a DirHandle: a directory opened with
 * O_NOFOLLOW | O_DIRECTORY, whose entries are reached as `/proc/self/fd/<fd>/<name>` (the
 * kernel jumps to the very directory the descriptor holds, whatever its path says now: an
 * `openat(fd, name)` for Node, which has none). A directory walk opens one component at a
 * time the same way, from a root the operator chose (the worker's work dir), so a link
 * anywhere below the root is refused, never followed.
 *
 * Files the agent writes (stdout, stderr and their rolled copies) must be regular files
 * with one link: a link, FIFO, socket, device or directory in their place, or a second
 * hard link, is refused with UnsafeFileError naming what was found. Types are checked with
 * lstat before anything is opened (opening a device can have effects of its own), and
 * again on the open descriptor (the name may change in between).
 */
import { constants, type BigIntStats, type Stats } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, readlink, rename, unlink, type FileHandle } from 'node:fs/promises';
import { isAbsolute, relative, sep } from 'node:path';

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK } = constants;

/** UnsafeFileError: a name in a task's directory is not what the agent may touch; the message says what was found. */
export class UnsafeFileError extends Error {
  override name = 'UnsafeFileError';
}

/** describeType: what kind of file a stat describes, in words. */
export function describeType(info: Stats | BigIntStats): string {
  if (info.isSymbolicLink()) return 'a symbolic link';
  if (info.isFIFO()) return 'a FIFO';
  if (info.isSocket()) return 'a socket';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isDirectory()) return 'a directory';
  if (info.isFile()) return 'a regular file';
  return 'an unknown kind of file';
}

/** checkName: one path component, never `.`, `..`, empty, or containing `/` or NUL. */
export function checkName(name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new UnsafeFileError(`${JSON.stringify(name)} is not a plain file name`);
  }
  return name;
}

/**
 * relativeParts: the components of `path` below `root`, each a plain name. Throws when the
 * path is not strictly inside the root (`..`, another tree, the root itself).
 */
export function relativeParts(root: string, path: string): string[] {
  if (!isAbsolute(root) || !isAbsolute(path)) throw new UnsafeFileError(`${path} and ${root} must be absolute paths`);
  const rel = relative(root, path);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new UnsafeFileError(`${path} is not inside ${root}`);
  return rel.split(sep).map(checkName);
}

/** TaskDirRef: where a task's directory is: a trusted root and the plain names below it. */
export interface TaskDirRef {
  root: string;
  parts: string[];
}

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * DirHandle: an open directory whose entries are reached without following links. Close
 * it when done (it holds one file descriptor).
 */
export class DirHandle {
  private constructor(
    /** the path the directory was reached by (for messages; never used to reach it again) */
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  /** openRoot opens a directory the operator chose (links in its own path are the operator's and are followed). */
  static async openRoot(path: string, options: { create?: boolean } = {}): Promise<DirHandle> {
    if (options.create === true) await mkdir(path, { recursive: true });
    const handle = await open(path, O_RDONLY | O_DIRECTORY);
    return new DirHandle(path, handle);
  }

  /**
   * walk opens `parts` one by one below the root, refusing a component that is a link or
   * not a directory; with `create`, missing components are made (mode `create.mode`).
   */
  static async walk(root: string, parts: readonly string[], create?: { mode: number }): Promise<DirHandle> {
    let current = await DirHandle.openRoot(root, { create: create !== undefined });
    try {
      for (const part of parts) {
        const next = await current.openDir(part, create);
        await current.close();
        current = next;
      }
      return current;
    } catch (error) {
      await current.close();
      throw error;
    }
  }

  /** fd: the descriptor (valid until close). */
  get fd(): number {
    return this.handle.fd;
  }

  /** at: the path that reaches entry `name` of exactly this directory. */
  at(name: string): string {
    return `/proc/self/fd/${this.handle.fd}/${checkName(name)}`;
  }

  /** realPath: where this directory is now (the kernel's answer for the open descriptor). */
  realPath(): Promise<string> {
    return readlink(`/proc/self/fd/${this.handle.fd}`);
  }

  /** openDir opens a subdirectory without following a link; with `create`, makes it first if missing. */
  async openDir(name: string, create?: { mode: number }): Promise<DirHandle> {
    const shown = `${this.path}/${checkName(name)}`;
    if (create !== undefined) {
      try {
        await mkdir(this.at(name), { mode: create.mode });
      } catch (error) {
        if (errno(error) !== 'EEXIST') throw error;
      }
    }
    let handle: FileHandle;
    try {
      handle = await open(this.at(name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK);
    } catch (error) {
      const code = errno(error);
      if (code === 'ELOOP' || code === 'ENOTDIR') {
        const info = await lstat(this.at(name)).catch(() => undefined);
        throw new UnsafeFileError(`${shown} is ${info === undefined ? 'not a directory' : describeType(info)}: refused`, { cause: error });
      }
      throw error;
    }
    return new DirHandle(shown, handle);
  }

  /** lstat: the entry itself (a link is described, never followed); undefined when there is none. */
  async lstat(name: string): Promise<Stats | undefined> {
    try {
      return await lstat(this.at(name));
    } catch (error) {
      if (errno(error) === 'ENOENT') return undefined;
      throw error;
    }
  }

  /**
   * openFile opens an existing regular file with one link for reading (`'r'`) or reading and
   * writing (`'r+'`); anything else under that name is refused. Undefined when there is none.
   */
  async openFile(name: string, mode: 'r' | 'r+'): Promise<FileHandle | undefined> {
    const before = await this.lstat(name);
    if (before === undefined) return undefined;
    this.assertPlain(name, before);
    let handle: FileHandle;
    try {
      handle = await open(this.at(name), (mode === 'r' ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_NONBLOCK);
    } catch (error) {
      if (errno(error) === 'ENOENT') return undefined;
      if (errno(error) === 'ELOOP') throw new UnsafeFileError(`${this.path}/${name} is a symbolic link: refused`, { cause: error });
      throw error;
    }
    try {
      const info = await handle.stat();
      this.assertPlain(name, info);
      if (info.ino !== before.ino || info.dev !== before.dev) throw new UnsafeFileError(`${this.path}/${name} changed while it was opened: refused`);
      return handle;
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  /**
   * createFile makes a new, empty regular file (never an existing name, never through a
   * link: O_CREAT | O_EXCL does not follow one) open for writing.
   */
  async createFile(name: string, fileMode = 0o644): Promise<FileHandle> {
    const handle = await open(this.at(name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, fileMode);
    // the umask may have narrowed it; the mode is what the caller asked for
    await handle.chmod(fileMode).catch(() => undefined);
    return handle;
  }

  /**
   * replaceFile makes `name` a new, empty regular file, removing a regular file of that name
   * first. Anything else there (a link, FIFO, device, directory, a file with a second hard
   * link) is refused and left alone.
   */
  async replaceFile(name: string, fileMode = 0o644): Promise<FileHandle> {
    const existing = await this.lstat(name);
    if (existing !== undefined) {
      this.assertPlain(name, existing);
      await this.unlink(name);
    }
    try {
      return await this.createFile(name, fileMode);
    } catch (error) {
      if (errno(error) === 'EEXIST') {
        const now = await this.lstat(name);
        throw new UnsafeFileError(`${this.path}/${name} was created by someone else (${now === undefined ? 'gone again' : describeType(now)}): refused`, { cause: error });
      }
      throw error;
    }
  }

  /** unlink removes an entry (a link itself, never its target); a missing one is fine. */
  async unlink(name: string): Promise<void> {
    try {
      await unlink(this.at(name));
    } catch (error) {
      if (errno(error) !== 'ENOENT') throw error;
    }
  }

  /** rename moves an entry within this directory (a link is moved, never followed). */
  rename(from: string, to: string): Promise<void> {
    return rename(this.at(from), this.at(to));
  }

  /** names lists the directory's entries. */
  names(): Promise<string[]> {
    return readdir(`/proc/self/fd/${this.handle.fd}`);
  }

  /** chown gives the directory itself to a user (through the descriptor: never a link). */
  async chown(uid: number, gid: number, mode: number): Promise<void> {
    await this.handle.chown(uid, gid);
    await chmod(`/proc/self/fd/${this.handle.fd}`, mode);
  }

  /** stat: the directory itself (through the descriptor). */
  stat(): Promise<Stats> {
    return this.handle.stat();
  }

  close(): Promise<void> {
    return this.handle.close().catch(() => undefined);
  }

  /** assertPlain: a regular file with exactly one link, else UnsafeFileError. */
  private assertPlain(name: string, info: Stats | BigIntStats): void {
    if (!info.isFile()) throw new UnsafeFileError(`${this.path}/${name} is ${describeType(info)}: refused`);
    if (Number(info.nlink) !== 1) throw new UnsafeFileError(`${this.path}/${name} has ${info.nlink} hard links: refused`);
  }
}

/**
 * tamperedReason: why the entry `name` is no longer a file the agent may write its copy
 * under (the task put a link, FIFO, device, socket or directory in its place), or
 * undefined. A removed entry, or a regular file the task made instead, is its own business:
 * the agent keeps writing to the file it holds.
 */
export async function tamperedReason(dir: DirHandle, name: string): Promise<string | undefined> {
  const entry = await dir.lstat(name);
  if (entry === undefined || entry.isFile()) return undefined;
  return `${name} was replaced by ${describeType(entry)}`;
}

/**
 * dirReplacedReason: why the task's directory, reached again from its root without
 * following links, is no longer the directory `held` (a link or another directory was put
 * in its place), or undefined. A directory that is gone is not a refusal: nothing can be
 * written through a name that does not exist, and the held directory is still the task's.
 */
export async function dirReplacedReason(ref: TaskDirRef, held: DirHandle): Promise<string | undefined> {
  let again: DirHandle;
  try {
    again = await DirHandle.walk(ref.root, ref.parts);
  } catch (error) {
    if (error instanceof UnsafeFileError) return `the task directory was replaced: ${error.message}`;
    return undefined;
  }
  try {
    const [now, before] = await Promise.all([again.stat(), held.stat()]);
    if (now.ino !== before.ino || now.dev !== before.dev) return `the task directory ${held.path} was replaced by another directory: refused`;
    return undefined;
  } finally {
    await again.close();
  }
}
