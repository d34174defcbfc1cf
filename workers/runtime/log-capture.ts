/**
 * Docker log capture: copies a container's stdout and stderr into `<workDir>/stdout`
 * and `<workDir>/stderr` (Spark's two files) and survives an agent restart without
 * duplicating or losing a line.
 *
 * How it resumes. Docker's logs API has no offsets, only `since` (a timestamp, and
 * inclusive), and its timestamps are taken per stream before the entries are
 * serialised, so stdout and stderr entries can reach the log a few microseconds out
 * of timestamp order. The capture therefore keeps, in `.flint-log-state.json`:
 *   - the byte size of each file after the last flush,
 *   - a cut timestamp, and the fingerprints (stream + nanosecond timestamp) of every
 *     entry written whose timestamp is at or after the cut (a sliding window of a
 *     few seconds, capped in count).
 * On resume it truncates both files to the recorded sizes (removing a batch written
 * just before a crash but not yet recorded), asks Docker for entries `since` the cut,
 * and skips those whose fingerprint it has already written. Data is always written
 * before the state that records it, so a crash can only cause a re-fetch, never a loss.
 * Example: entries out(t=5.000001), err(t=5.000000) written, window 2 s → the state
 * keeps cut 3.000001 and both fingerprints; after a restart Docker replays both and
 * both are skipped, and out(t=5.2) that arrived during the restart is appended.
 */
import { open, readFile, rename, stat, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { TASK_FILES } from './task-identity.ts';

/** LogState: what `.flint-log-state.json` holds. */
export interface LogState {
  version: 1;
  stdoutBytes: number;
  stderrBytes: number;
  /** nanoseconds since the epoch, as a decimal string */
  cutNs: string;
  /** `<stream>:<ns>` of every written entry with timestamp >= cutNs (repeats allowed) */
  seen: string[];
}

/** StreamId: Docker's multiplexing ids for stdout and stderr. */
export type StreamId = 1 | 2;

/** parseTimestampNs turns Docker's RFC 3339 timestamp (nanoseconds, trailing zeros trimmed) into nanoseconds since the epoch. */
export function parseTimestampNs(text: string): bigint | undefined {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (match === null) return undefined;
  const seconds = Date.parse(`${match[1]}${match[3]}`);
  if (Number.isNaN(seconds)) return undefined;
  return BigInt(seconds) * 1_000_000n + BigInt((match[2] ?? '').padEnd(9, '0'));
}

/** formatSince renders nanoseconds as the `seconds.nanoseconds` text Docker's `since` parameter takes. */
export function formatSince(ns: bigint): string {
  return `${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`;
}

/** splitTimestamp separates one timestamped log frame into its timestamp and payload. */
export function splitTimestamp(frame: Buffer): { tsNs: bigint; payload: Buffer } | undefined {
  const space = frame.indexOf(0x20);
  if (space <= 0 || space > 40) return undefined;
  const tsNs = parseTimestampNs(frame.subarray(0, space).toString('latin1'));
  if (tsNs === undefined) return undefined;
  return { tsNs, payload: frame.subarray(space + 1) };
}

/**
 * FrameSplitter cuts Docker's multiplexed log body into frames: an 8-byte header
 * (stream id, three zero bytes, big-endian payload length) and the payload, which
 * may span chunks. Iterative, so a body of any size is fine.
 */
export class FrameSplitter {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (streamId: StreamId, frame: Buffer) => void) {}

  push(chunk: Buffer): void {
    let buffer = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let offset = 0;
    while (buffer.length - offset >= 8) {
      const length = buffer.readUInt32BE(offset + 4);
      if (buffer.length - offset - 8 < length) break;
      const streamId = buffer[offset];
      const frame = buffer.subarray(offset + 8, offset + 8 + length);
      offset += 8 + length;
      // 1 stdout, 2 stderr; 0 (stdin) never carries output
      if (streamId === 1 || streamId === 2) this.onFrame(streamId, frame);
    }
    buffer = buffer.subarray(offset);
    // keep a copy of a partial frame only: the chunk's memory is not ours to hold
    this.pending = buffer.length === 0 ? Buffer.alloc(0) : Buffer.from(buffer);
  }
}

/** initialLogState is the state of a capture that has written nothing from Docker yet. */
export function initialLogState(stdoutBytes: number, stderrBytes: number): LogState {
  return { version: 1, stdoutBytes, stderrBytes, cutNs: '0', seen: [] };
}

/**
 * LogCursor decides, entry by entry, what is new and keeps the state that makes
 * resuming exact. Pure: the capture feeds it entries and asks for snapshots.
 */
export class LogCursor {
  private cutNs: bigint;
  private maxNs: bigint;
  private stdoutBytes: number;
  private stderrBytes: number;
  /** written entries with timestamp >= cutNs */
  private recent: Array<{ fingerprint: string; tsNs: bigint }>;
  /** entries recorded in the state we resumed from, still to be skipped when Docker replays them */
  private readonly toSkip = new Map<string, number>();

  constructor(
    state: LogState,
    private readonly windowNs: bigint = 2_000_000_000n,
    private readonly maxSeen = 4096,
  ) {
    this.cutNs = BigInt(state.cutNs);
    this.stdoutBytes = state.stdoutBytes;
    this.stderrBytes = state.stderrBytes;
    this.recent = state.seen.map((fingerprint) => ({ fingerprint, tsNs: BigInt(fingerprint.slice(2)) }));
    this.maxNs = this.recent.reduce((max, entry) => (entry.tsNs > max ? entry.tsNs : max), this.cutNs);
    for (const { fingerprint } of this.recent) this.toSkip.set(fingerprint, (this.toSkip.get(fingerprint) ?? 0) + 1);
  }

  /** since is the `since` parameter to resume from, or undefined to read the whole log. */
  since(): string | undefined {
    return this.cutNs === 0n ? undefined : formatSince(this.cutNs);
  }

  /** accept returns true when the entry is new (and records it as written), false when it was written before. */
  accept(stream: StreamId, tsNs: bigint, bytes: number): boolean {
    if (tsNs < this.cutNs) return false;
    const fingerprint = `${stream}:${tsNs}`;
    const skips = this.toSkip.get(fingerprint) ?? 0;
    if (skips > 0) {
      if (skips === 1) this.toSkip.delete(fingerprint);
      else this.toSkip.set(fingerprint, skips - 1);
      return false;
    }
    this.recent.push({ fingerprint, tsNs });
    if (tsNs > this.maxNs) this.maxNs = tsNs;
    if (stream === 1) this.stdoutBytes += bytes;
    else this.stderrBytes += bytes;
    return true;
  }

  /** snapshot prunes the window and returns the state to persist once everything accepted so far is written. */
  snapshot(): LogState {
    let cut = this.maxNs - this.windowNs;
    if (this.recent.length > this.maxSeen) {
      const newestFirst = this.recent.map((entry) => entry.tsNs).sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
      const capCut = newestFirst[this.maxSeen - 1];
      if (capCut > cut) cut = capCut;
    }
    if (cut > this.cutNs) {
      this.cutNs = cut;
      this.recent = this.recent.filter((entry) => entry.tsNs >= cut);
    }
    return {
      version: 1,
      stdoutBytes: this.stdoutBytes,
      stderrBytes: this.stderrBytes,
      cutNs: String(this.cutNs),
      seen: this.recent.map((entry) => entry.fingerprint),
    };
  }
}

/** readLogState reads a workDir's capture state, or undefined when there is none (or it is unreadable). */
export async function readLogState(workDir: string): Promise<LogState | undefined> {
  try {
    const parsed = JSON.parse(await readFile(join(workDir, TASK_FILES.logState), 'utf8')) as LogState;
    if (parsed.version !== 1 || !Array.isArray(parsed.seen)) return undefined;
    return parsed;
  } catch {
    return undefined;
  }
}

/** writeLogState replaces the state file atomically (write then rename). */
export async function writeLogState(workDir: string, state: LogState): Promise<void> {
  const path = join(workDir, TASK_FILES.logState);
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, JSON.stringify(state));
  await rename(temporary, path);
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** LogCaptureOptions: tuning, mostly for tests. */
export interface LogCaptureOptions {
  flushIntervalMs?: number;
  /** a batch this large is flushed at once */
  flushBytes?: number;
  onError?: (error: unknown) => void;
}

/** captures running in this process, by container id: never two for one container */
const activeCaptures = new Map<string, DockerLogCapture>();

/**
 * DockerLogCapture follows one container's logs into its workDir until the container
 * exits (then `done` resolves, with everything flushed) or stop() is called.
 */
export class DockerLogCapture {
  /** done resolves when all of the container's output is in the files, or the capture was stopped */
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private stopped = false;
  private stream: NodeJS.ReadableStream | undefined;
  private cursor!: LogCursor;
  private stdoutFile!: FileHandle;
  private stderrFile!: FileHandle;
  private pendingStdout: Buffer[] = [];
  private pendingStderr: Buffer[] = [];
  private pendingBytes = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushChain: Promise<void> = Promise.resolve();
  private readonly flushIntervalMs: number;
  private readonly flushBytes: number;

  private constructor(
    private readonly docker: Docker,
    private readonly containerId: string,
    private readonly workDir: string,
    private readonly options: LogCaptureOptions,
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 100;
    this.flushBytes = options.flushBytes ?? 256 * 1024;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  /** start begins (or resumes) capture for a container; a capture already running in this process is returned instead. */
  static async start(docker: Docker, containerId: string, workDir: string, options: LogCaptureOptions = {}): Promise<DockerLogCapture> {
    const existing = activeCaptures.get(containerId);
    if (existing !== undefined) return existing;
    const capture = new DockerLogCapture(docker, containerId, workDir, options);
    activeCaptures.set(containerId, capture);
    try {
      await capture.open();
    } catch (error) {
      activeCaptures.delete(containerId);
      throw error;
    }
    void capture.follow();
    return capture;
  }

  private async open(): Promise<void> {
    const stdoutPath = join(this.workDir, TASK_FILES.stdout);
    const stderrPath = join(this.workDir, TASK_FILES.stderr);
    let state = await readLogState(this.workDir);
    if (state === undefined) {
      state = initialLogState(await fileSize(stdoutPath), await fileSize(stderrPath));
      await writeLogState(this.workDir, state);
    }
    // make sure both files exist, then cut off anything written after the last recorded flush
    await (await open(stdoutPath, 'a')).close();
    await (await open(stderrPath, 'a')).close();
    if ((await fileSize(stdoutPath)) > state.stdoutBytes) await truncate(stdoutPath, state.stdoutBytes);
    if ((await fileSize(stderrPath)) > state.stderrBytes) await truncate(stderrPath, state.stderrBytes);
    this.stdoutFile = await open(stdoutPath, 'r+');
    this.stderrFile = await open(stderrPath, 'r+');
    this.cursor = new LogCursor(state);
  }

  /** follow reads the log stream; when it ends it checks whether the container still runs (the daemon may have dropped the stream) and reattaches if so. */
  private async follow(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.followOnce();
      } catch (error) {
        if (!this.stopped) this.options.onError?.(error);
      }
      if (this.stopped) break;
      await this.flush();
      const running = await this.docker
        .getContainer(this.containerId)
        .inspect()
        .then((info) => info.State.Running || info.State.Restarting)
        .catch(() => false);
      if (!running) {
        await this.catchUp();
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    await this.finish();
  }

  /**
   * catchUp reads the exited container's log once more: Docker's follower can end
   * with the container before it has delivered the last entries.
   * It resumes from the flushed state exactly as after a restart, so an entry already
   * written is skipped and nothing is written twice.
   */
  private async catchUp(): Promise<void> {
    await this.flush();
    await this.flushChain;
    this.cursor = new LogCursor(this.cursor.snapshot());
    try {
      // follow on an exited container reads to the end and closes, streamed (a whole
      // body in one Buffer could be larger than memory or a string allows)
      await this.followOnce();
    } catch (error) {
      if (!this.stopped) this.options.onError?.(error);
    }
  }

  private async followOnce(): Promise<void> {
    const since = this.cursor.since();
    const stream = (await this.docker.getContainer(this.containerId).logs({
      follow: true,
      stdout: true,
      stderr: true,
      timestamps: true,
      ...(since === undefined ? {} : { since }),
    } as Docker.ContainerLogsOptions & { follow: true })) as NodeJS.ReadableStream;
    this.stream = stream;
    if (this.stopped) {
      (stream as unknown as { destroy?: () => void }).destroy?.();
      return;
    }
    await new Promise<void>((resolve, reject) => {
      // our own demultiplexer: docker-modem's recurses once per frame, so a large chunk
      // could overflow the stack
      const frames = new FrameSplitter((streamId, frame) => this.onFrame(streamId, frame));
      stream.on('data', (chunk: Buffer) => frames.push(chunk));
      stream.on('end', () => resolve());
      stream.on('close', () => resolve());
      stream.on('error', (error: Error) => reject(error));
    });
  }

  private onFrame(streamId: StreamId, frame: Buffer): boolean {
    if (this.stopped) return true;
    const entry = splitTimestamp(frame);
    if (entry === undefined) return true; // not a timestamped frame: nothing we can place safely
    if (!this.cursor.accept(streamId, entry.tsNs, entry.payload.length)) return true;
    const copy = entry.payload;
    if (streamId === 1) this.pendingStdout.push(copy);
    else this.pendingStderr.push(copy);
    this.pendingBytes += copy.length;
    if (this.pendingBytes >= this.flushBytes) void this.flush();
    else if (this.flushTimer === undefined) {
      this.flushTimer = setTimeout(() => void this.flush(), this.flushIntervalMs);
    }
    return true;
  }

  /** flush writes the pending batch at the recorded offsets, then records the new state (data before state). */
  private flush(): Promise<void> {
    if (this.flushTimer !== undefined) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    if (this.pendingBytes === 0) return this.flushChain;
    const stdoutChunk = Buffer.concat(this.pendingStdout);
    const stderrChunk = Buffer.concat(this.pendingStderr);
    this.pendingStdout = [];
    this.pendingStderr = [];
    this.pendingBytes = 0;
    const state = this.cursor.snapshot();
    const stdoutAt = state.stdoutBytes - stdoutChunk.length;
    const stderrAt = state.stderrBytes - stderrChunk.length;
    this.flushChain = this.flushChain.then(async () => {
      try {
        if (stdoutChunk.length > 0) await this.stdoutFile.write(stdoutChunk, 0, stdoutChunk.length, stdoutAt);
        if (stderrChunk.length > 0) await this.stderrFile.write(stderrChunk, 0, stderrChunk.length, stderrAt);
        await writeLogState(this.workDir, state);
      } catch (error) {
        this.options.onError?.(error);
      }
    });
    return this.flushChain;
  }

  private async finish(): Promise<void> {
    await this.flush();
    await this.flushChain;
    await this.stdoutFile.close().catch(() => undefined);
    await this.stderrFile.close().catch(() => undefined);
    if (activeCaptures.get(this.containerId) === this) activeCaptures.delete(this.containerId);
    this.resolveDone();
  }

  /** stop detaches from the container (it keeps running), after writing what was already received. */
  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      (this.stream as unknown as { destroy?: () => void } | undefined)?.destroy?.();
    }
    await this.done;
  }
}
