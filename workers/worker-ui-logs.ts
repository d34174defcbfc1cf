/**
 * The worker UI's log reading (workers/worker-ui.ts serves it): a request checked into a
 * target (ids without path characters, a known log type, integer paging), and one range
 * of a log read as Spark's LogPage reads it. Logs live where the runtimes write them:
 *   executor  <workDir>/<appId>/<execId>/<stdout|stderr>
 *   driver    <workDir>/<driverId>/<stdout|stderr>
 * with rolled copies beside them (`stdout--<time>`, spark.executor.logs.rolling.*), read
 * with the active file as one log, oldest first. Those directories are the tasks', so
 * nothing here follows a link: every directory and file is opened without following one
 * (workers/runtime/safe-fs.ts), and a link, FIFO or device in place of a log or a task's
 * directory is refused (400).
 */
import { join } from 'node:path';
import type { FileHandle } from 'node:fs/promises';
import { sortedRolledNames } from './runtime/log-rolling.ts';
import { DirHandle, UnsafeFileError } from './runtime/safe-fs.ts';

/** DEFAULT_LOG_BYTES: Spark's log page shows the last 100 KiB by default. */
export const DEFAULT_LOG_BYTES = 100 * 1024;
/** MAX_LOG_BYTES: the most one request may read, so a huge byteLength cannot exhaust memory. */
export const MAX_LOG_BYTES = 10 * 1024 * 1024;

const LOG_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$/;
const LOG_TYPES = new Set(['stdout', 'stderr']);

export class LogRequestError extends Error {
  override name = 'LogRequestError';
  constructor(
    message: string,
    readonly status: 400 | 404,
  ) {
    super(message);
  }
}

export interface LogQuery {
  appId?: string;
  executorId?: string;
  driverId?: string;
  logType?: string;
  offset?: string;
  byteLength?: string;
}

/** LogTarget: a checked log file request (the task's directory as names below the work dir, and the log's name). */
export interface LogTarget {
  /** for messages and Spark's /log header: `<dir>/<logType>` */
  relativePath: string;
  dirParts: string[];
  logType: 'stdout' | 'stderr';
  offset?: number;
  byteLength: number;
}

function parseIntParam(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^-?\d+$/.test(value)) throw new LogRequestError(`${name} must be an integer, got '${value}'`, 400);
  return Number(value);
}

/** parseLogQuery checks a log request: ids without path characters, a known log type, integer paging. */
export function parseLogQuery(query: LogQuery): LogTarget {
  const logType = query.logType ?? 'stdout';
  if (!LOG_TYPES.has(logType)) throw new LogRequestError(`logType must be stdout or stderr, got '${logType}'`, 400);
  let dirParts: string[];
  if (query.driverId !== undefined && query.driverId !== '') {
    if (!LOG_ID.test(query.driverId) || query.driverId.includes('..')) throw new LogRequestError('invalid driverId', 400);
    dirParts = [query.driverId];
  } else if (query.appId !== undefined && query.appId !== '' && query.executorId !== undefined && query.executorId !== '') {
    if (!LOG_ID.test(query.appId) || query.appId.includes('..')) throw new LogRequestError('invalid appId', 400);
    if (!/^\d{1,10}$/.test(query.executorId)) throw new LogRequestError('executorId must be a non-negative integer', 400);
    dirParts = [query.appId, query.executorId];
  } else {
    throw new LogRequestError('give appId and executorId, or driverId', 400);
  }
  const offset = parseIntParam('offset', query.offset);
  const requested = parseIntParam('byteLength', query.byteLength);
  if (requested !== undefined && requested <= 0) throw new LogRequestError('byteLength must be positive', 400);
  const byteLength = Math.min(requested ?? DEFAULT_LOG_BYTES, MAX_LOG_BYTES);
  return { relativePath: join(...dirParts, logType), dirParts, logType: logType as 'stdout' | 'stderr', offset, byteLength };
}

/** logRange: Spark's LogPage.getLog bounds: default the last byteLength bytes; offset clamped to [0, total]. */
export function logRange(total: number, offset: number | undefined, byteLength: number): { start: number; end: number } {
  const start = offset === undefined ? Math.max(total - byteLength, 0) : Math.min(Math.max(offset, 0), total);
  return { start, end: Math.min(start + byteLength, total) };
}

export interface LogChunk {
  text: string;
  start: number;
  end: number;
  total: number;
}

/** LogPiece: one file of a log (a rolled copy or the active file) and where it sits in the whole. */
interface LogPiece {
  name: string;
  start: number;
  size: number;
}

/**
 * logPieces: a log's files, rolled copies oldest first then the active one, with their
 * sizes (lstat: nothing is followed); anything but a regular file is left out, and the
 * active file being one is refused.
 */
async function logPieces(dir: DirHandle, logType: string, shown: string): Promise<LogPiece[]> {
  const pieces: LogPiece[] = [];
  let start = 0;
  const names = [...sortedRolledNames(logType, await dir.names()), logType];
  for (const name of names) {
    const info = await dir.lstat(name);
    if (info === undefined) continue;
    if (!info.isFile()) {
      if (name === logType) throw new LogRequestError(`${shown} is not a regular file: refused`, 400);
      continue;
    }
    pieces.push({ name, start, size: info.size });
    start += info.size;
  }
  if (pieces.length === 0) throw new LogRequestError(`no log ${shown}`, 404);
  return pieces;
}

/** readPiece reads [from, to) of one file into `buffer` at `at`; returns the bytes read. */
async function readPiece(dir: DirHandle, piece: LogPiece, from: number, to: number, buffer: Buffer, at: number): Promise<number> {
  let handle: FileHandle | undefined;
  try {
    handle = await dir.openFile(piece.name, 'r');
  } catch (error) {
    if (error instanceof UnsafeFileError) throw new LogRequestError(`${piece.name} is not a regular file: refused`, 400);
    throw error;
  }
  if (handle === undefined) return 0; // rolled away or deleted meanwhile
  try {
    let read = 0;
    while (read < to - from) {
      const { bytesRead } = await handle.read(buffer, at + read, to - from - read, from + read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    return read;
  } finally {
    await handle.close();
  }
}

/**
 * readLog reads one range of a log under `workDir`: its rolled copies and active file as one
 * log (offsets count from the oldest copy still kept, as Spark's do). Nothing is followed:
 * a link in place of a directory or a log is refused (400).
 */
export async function readLog(workDir: string, target: LogTarget): Promise<LogChunk> {
  let dir: DirHandle;
  try {
    dir = await DirHandle.walk(workDir, target.dirParts);
  } catch (error) {
    if (error instanceof UnsafeFileError) throw new LogRequestError('the log directory is not a plain directory: refused', 400);
    throw new LogRequestError(`no log ${target.relativePath}`, 404);
  }
  try {
    const pieces = await logPieces(dir, target.logType, target.relativePath);
    const total = pieces.reduce((sum, piece) => sum + piece.size, 0);
    const { start, end } = logRange(total, target.offset, target.byteLength);
    const buffer = Buffer.alloc(end - start);
    let filled = 0;
    for (const piece of pieces) {
      const from = Math.max(start, piece.start);
      const to = Math.min(end, piece.start + piece.size);
      if (from >= to) continue;
      const got = await readPiece(dir, piece, from - piece.start, to - piece.start, buffer, from - start);
      filled = from - start + got;
      if (got < to - from) break; // rolled away or deleted meanwhile: the range ends here
    }
    return { text: buffer.subarray(0, filled).toString('utf8'), start, end: start + filled, total };
  } finally {
    await dir.close();
  }
}

