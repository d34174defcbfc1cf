/**
 * Spark's rolling executor logs (`spark.executor.logs.rolling.*`, Spark's RollingFileAppender),
 * for executors and drivers of both runtimes, so a task that prints without end cannot fill
 * the worker's disk.
 *
 * Semantics, as Spark's:
 *   - strategy `size`: a file is rolled before it would pass maxBytes; strategy `time`: the
 *     first write after the interval's boundary (daily, hourly, minutely, or N seconds, on
 *     multiples of the interval since the epoch) rolls it. No strategy: one file, never rolled.
 *   - rolling renames `stdout` to `stdout--<time suffix>` and starts a new `stdout`; with
 *     maxRetainedFiles > 0 only that many rolled files are kept, the oldest deleted first.
 *     The active file is not counted: at most maxBytes × (maxRetainedFiles + 1) bytes.
 *   - readers see the rolled files, sorted by name, then the active file, as one log
 *     (Spark's getSortedRolledOverFiles): the suffixes sort in time order.
 * Better than Spark: a size-rolled file never passes maxBytes (Spark writes a whole buffer
 * past it); suffixes are UTC (Spark's local time can sort out of order across a DST change).
 * Not supported: spark.executor.logs.rolling.enableCompression (rolled files stay plain).
 *
 * Every file operation goes through the task directory's DirHandle (safe-fs.ts): the
 * directory is the task's, so a name may have become a link at any moment.
 */
import type { FileHandle } from 'node:fs/promises';
import { DirHandle, UnsafeFileError, tamperedReason } from './safe-fs.ts';

/** LogRolling: a parsed rolling configuration. */
export type LogRolling = { strategy: 'size'; maxBytes: number; maxRetainedFiles: number } | { strategy: 'time'; intervalMs: number; maxRetainedFiles: number };

/** SPARK_MIN_ROLLING_BYTES / SPARK_MIN_ROLLING_INTERVAL_MS: Spark's smallest size (10 × 8 KiB) and interval (60 s). */
export const SPARK_MIN_ROLLING_BYTES = 81_920;
export const SPARK_MIN_ROLLING_INTERVAL_MS = 60_000;

const NAMED_INTERVALS: Record<string, number> = { daily: 86_400_000, hourly: 3_600_000, minutely: 60_000 };

/** parseRollingInterval: Spark's `daily`, `hourly`, `minutely` or a whole number of seconds, in ms. */
export function parseRollingInterval(text: string): number {
  const trimmed = text.trim();
  const named = NAMED_INTERVALS[trimmed];
  if (named !== undefined) return named;
  if (/^\d{1,9}$/.test(trimmed)) return Number(trimmed) * 1000;
  throw new Error(`'${text}' is not a rolling interval (daily, hourly, minutely, or a number of seconds)`);
}

/**
 * rollingSuffix: Spark's suffix of a rolled file, in UTC. Size: `--yyyy-MM-dd--HH-mm-ss--SSSS`;
 * time: daily `--yyyy-MM-dd`, hourly `--yyyy-MM-dd--HH`, minutely `--yyyy-MM-dd--HH-mm`,
 * N seconds `--yyyy-MM-dd--HH-mm-ss`.
 */
export function rollingSuffix(rolling: LogRolling, now: number): string {
  const date = new Date(now);
  const two = (n: number) => String(n).padStart(2, '0');
  const day = `--${date.getUTCFullYear()}-${two(date.getUTCMonth() + 1)}-${two(date.getUTCDate())}`;
  const hh = two(date.getUTCHours());
  const mm = two(date.getUTCMinutes());
  const ss = two(date.getUTCSeconds());
  if (rolling.strategy === 'size') return `${day}--${hh}-${mm}-${ss}--${String(date.getUTCMilliseconds()).padStart(4, '0')}`;
  if (rolling.intervalMs === NAMED_INTERVALS.daily) return day;
  if (rolling.intervalMs === NAMED_INTERVALS.hourly) return `${day}--${hh}`;
  if (rolling.intervalMs === NAMED_INTERVALS.minutely) return `${day}--${hh}-${mm}`;
  return `${day}--${hh}-${mm}-${ss}`;
}

/** isRolledName: `name` is a rolled copy of `base` (the suffix shape only; the task cannot pass a random name off as one). */
export function isRolledName(base: string, name: string): boolean {
  return name.startsWith(`${base}--`) && /^--\d{4}-\d{2}-\d{2}[-0-9]*$/.test(name.slice(base.length));
}

/** sortedRolledNames: the rolled copies of `base` among `names`, oldest first. */
export function sortedRolledNames(base: string, names: readonly string[]): string[] {
  return names.filter((name) => isRolledName(base, name)).sort();
}

/** namesToDelete: the oldest rolled copies beyond maxRetainedFiles (none when it is 0 or less). */
export function namesToDelete(base: string, names: readonly string[], maxRetainedFiles: number): string[] {
  if (maxRetainedFiles <= 0) return [];
  const rolled = sortedRolledNames(base, names);
  return rolled.slice(0, Math.max(0, rolled.length - maxRetainedFiles));
}

/**
 * RollingPolicy: when the active file rolls (pure; the clock is passed in).
 * Example, size 100: 60 bytes written, a 70-byte chunk → room() is 40: 40 bytes are
 * written, the file rolls, the other 30 go to the new file.
 */
export class RollingPolicy {
  private written = 0;
  private nextRollAt: number;

  constructor(
    readonly rolling: LogRolling,
    now: number,
    alreadyWritten = 0,
  ) {
    this.written = alreadyWritten;
    this.nextRollAt = this.boundaryAfter(now);
  }

  /** room: how many bytes fit before a size roll (Infinity for the time strategy). */
  room(): number {
    return this.rolling.strategy === 'size' ? Math.max(0, this.rolling.maxBytes - this.written) : Infinity;
  }

  /** shouldRoll: a write of `bytes` at `now` must go to a new file (the active one is not empty). */
  shouldRoll(bytes: number, now: number): boolean {
    if (this.written === 0) return false;
    if (this.rolling.strategy === 'size') return this.written + Math.min(bytes, 1) > this.rolling.maxBytes;
    return now > this.nextRollAt;
  }

  wrote(bytes: number): void {
    this.written += bytes;
  }

  rolled(now: number): void {
    this.written = 0;
    this.nextRollAt = this.boundaryAfter(now);
  }

  private boundaryAfter(now: number): number {
    if (this.rolling.strategy !== 'time') return Infinity;
    return Math.ceil(now / this.rolling.intervalMs) * this.rolling.intervalMs;
  }
}

/** FilePosition: which file the active name held (inode) and how far it was written. */
export interface FilePosition {
  inode: string;
  bytes: number;
}

async function writeFully(handle: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
}

async function inodeOf(handle: FileHandle): Promise<string> {
  return String((await handle.stat({ bigint: true })).ino);
}

/**
 * RollingLogFile: one of a task's log files (`stdout` or `stderr`) as the agent writes it:
 * positioned writes to a file it holds open, rolled by the policy, with old rolled copies
 * deleted. A name the task turned into a link, FIFO or device is refused (UnsafeFileError)
 * when the writer meets it (opening, rolling, or checkTampered()), never followed.
 */
export class RollingLogFile {
  private policy: RollingPolicy | undefined;

  private constructor(
    private readonly dir: DirHandle,
    readonly name: string,
    private handle: FileHandle,
    private inode: string,
    private offset: number,
    private readonly rolling: LogRolling | undefined,
    private readonly now: () => number,
  ) {
    this.policy = rolling === undefined ? undefined : new RollingPolicy(rolling, now(), offset);
  }

  /** create starts a fresh file (a regular file of that name is replaced; anything else is refused), starting with `header`. */
  static async create(dir: DirHandle, name: string, rolling: LogRolling | undefined, header: Buffer = Buffer.alloc(0), now: () => number = Date.now): Promise<RollingLogFile> {
    const handle = await dir.replaceFile(name);
    try {
      if (header.length > 0) await writeFully(handle, header, 0);
      return new RollingLogFile(dir, name, handle, await inodeOf(handle), header.length, rolling, now);
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  /**
   * resume reopens the file after a restart, cutting off what was written after `recorded`
   * (the writer's position when its owner last recorded one; see log-capture.ts). When the
   * active name holds another file than the recorded one, the file rolled after the record:
   * the recorded file (now a rolled copy) is cut back to the recorded size, copies rolled
   * after it are deleted, and the active file starts empty. Without a record, writing
   * continues at the end of the file.
   */
  static async resume(dir: DirHandle, name: string, rolling: LogRolling | undefined, recorded: FilePosition | undefined, now: () => number = Date.now): Promise<RollingLogFile> {
    let handle = await dir.openFile(name, 'r+');
    if (handle === undefined) handle = await dir.createFile(name);
    try {
      const info = await handle.stat({ bigint: true });
      const inode = String(info.ino);
      let offset = Number(info.size);
      if (recorded !== undefined && recorded.inode === inode) {
        offset = Math.min(offset, recorded.bytes);
      } else if (recorded !== undefined) {
        await RollingLogFile.cutRolledAfter(dir, name, recorded);
        offset = 0;
      }
      if (Number(info.size) > offset) await handle.truncate(offset);
      return new RollingLogFile(dir, name, handle, inode, offset, rolling, now);
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  /** cutRolledAfter: the recorded file is cut back to its recorded size; rolled copies newer than it are deleted. */
  private static async cutRolledAfter(dir: DirHandle, name: string, recorded: FilePosition): Promise<void> {
    const rolled = sortedRolledNames(name, await dir.names());
    let found = -1;
    for (let index = rolled.length - 1; index >= 0; index--) {
      const info = await dir.lstat(rolled[index]!);
      if (info !== undefined && String(info.ino) === recorded.inode) {
        found = index;
        break;
      }
    }
    if (found < 0) return; // deleted by retention meanwhile: nothing left to cut
    const handle = await dir.openFile(rolled[found]!, 'r+');
    if (handle !== undefined) {
      try {
        if ((await handle.stat()).size > recorded.bytes) await handle.truncate(recorded.bytes);
      } finally {
        await handle.close();
      }
    }
    for (const newer of rolled.slice(found + 1)) await dir.unlink(newer);
  }

  /** position: the file the active name holds and how much of it is written. */
  position(): FilePosition {
    return { inode: this.inode, bytes: this.offset };
  }

  /** write appends a chunk, rolling first (or in between, for the size strategy) when the policy says so. */
  async write(chunk: Buffer): Promise<void> {
    let rest = chunk;
    while (rest.length > 0) {
      const policy = this.policy;
      if (policy !== undefined && policy.shouldRoll(rest.length, this.now())) await this.roll();
      const room = this.policy?.room() ?? Infinity;
      const part = rest.length <= room ? rest : rest.subarray(0, Math.max(1, room));
      await writeFully(this.handle, part, this.offset);
      this.offset += part.length;
      this.policy?.wrote(part.length);
      rest = rest.subarray(part.length);
    }
  }

  /** checkTampered throws UnsafeFileError when the task put something other than a regular file under the active name. */
  async checkTampered(): Promise<void> {
    const reason = await tamperedReason(this.dir, this.name);
    if (reason !== undefined) throw new UnsafeFileError(`${reason}: refused`);
  }

  /** roll renames the active file to its rolled name, starts a new one, and deletes copies beyond retention. */
  private async roll(): Promise<void> {
    await this.checkTampered();
    const now = this.now();
    const base = `${this.name}${rollingSuffix(this.rolling!, now)}`;
    let target = base;
    for (let attempt = 0; (await this.dir.lstat(target)) !== undefined; attempt++) {
      // two rolls in one millisecond are rare; a run of taken names is the task squatting them
      if (attempt >= 100) throw new UnsafeFileError(`${this.dir.path}/${this.name}: the next 100 rolled names are taken by files the task made: refused`);
      target = `${base}--${String(attempt).padStart(4, '0')}`;
    }
    await this.handle.close();
    if ((await this.dir.lstat(this.name)) !== undefined) await this.dir.rename(this.name, target);
    this.handle = await this.dir.replaceFile(this.name);
    this.inode = await inodeOf(this.handle);
    this.offset = 0;
    this.policy!.rolled(now);
    for (const old of namesToDelete(this.name, await this.dir.names(), this.rolling!.maxRetainedFiles)) {
      // unlink removes an entry itself (a link the task made is removed, never followed); a directory is left alone
      const info = await this.dir.lstat(old);
      if (info !== undefined && !info.isDirectory()) await this.dir.unlink(old);
    }
  }

  close(): Promise<void> {
    return this.handle.close().catch(() => undefined);
  }
}
