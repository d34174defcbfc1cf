/**
 * Docker log capture: copies a container's stdout and stderr into `stdout` and `stderr` in
 * the task's directory (Spark's two files, rolled as log-rolling.ts says) and survives an
 * agent restart without duplicating or losing a line.
 *
 * The task's directory is hostile ground (safe-fs.ts): the files are reached through a
 * directory handle, never by following a name, and a name the task turned into a link,
 * FIFO or device is refused. A refusal stops the capture and is handed to `onRefused`
 * (the runtime then ends the task and reports why); nothing is ever written through it.
 *
 * How it resumes. The capture's state lives outside the task's directory, in the agent's
 * own directory for the task (`log-state.json`): the cursor (log-cursor.ts: a cut timestamp
 * and the fingerprints of entries written since) and, per file, the inode the active name
 * held and the bytes written to it at the last flush. On resume each file is cut back to
 * the recorded size (a batch written just before a crash but not recorded is removed:
 * Docker replays it), or, when the file rolled after the record, the recorded file (now a
 * rolled copy) is cut back and the new one starts empty. Data is always written before the
 * state that records it, so a crash can only cause a re-fetch, never a loss.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { FrameSplitter, INITIAL_CURSOR, LogCursor, splitTimestamp, type CursorState, type StreamId } from './log-cursor.ts';
import { RollingLogFile, type FilePosition, type LogRolling } from './log-rolling.ts';
import { DirHandle, UnsafeFileError, dirReplacedReason, type TaskDirRef } from './safe-fs.ts';
import { TASK_FILES } from './task-identity.ts';

/** LogState: what `log-state.json` in the agent's directory for a task holds. */
export interface LogState extends CursorState {
  version: 2;
  stdout: FilePosition;
  stderr: FilePosition;
}

/** IDLE_CHECK_MS: how often the files are checked while no output comes. */
const IDLE_CHECK_MS = 1000;

/** STATE_INTERVAL_MS: how often the capture records its state while output flows. */
const STATE_INTERVAL_MS = 250;

/** LOG_STATE_FILE: the capture's state, in the agent's own directory for the task. */
export const LOG_STATE_FILE = 'log-state.json';

/** readLogState reads a task's capture state, or undefined when there is none (or it is unreadable). */
export async function readLogState(privateDir: string): Promise<LogState | undefined> {
  try {
    const parsed = JSON.parse(await readFile(join(privateDir, LOG_STATE_FILE), 'utf8')) as LogState;
    if (parsed.version !== 2 || !Array.isArray(parsed.seen)) return undefined;
    return parsed;
  } catch {
    return undefined;
  }
}

/** writeLogState replaces the state file atomically (write then rename). */
export async function writeLogState(privateDir: string, state: LogState): Promise<void> {
  await mkdir(privateDir, { recursive: true, mode: 0o700 });
  const path = join(privateDir, LOG_STATE_FILE);
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, JSON.stringify(state), { mode: 0o600 });
  await rename(temporary, path);
}

/** LogCaptureOptions: where to write, how to roll, and whom to tell. */
export interface LogCaptureOptions {
  taskDir: TaskDirRef;
  /** the agent's own directory for the task (the capture's state) */
  privateDir: string;
  rolling?: LogRolling;
  flushIntervalMs?: number;
  /** a batch this large is flushed at once */
  flushBytes?: number;
  onError?: (error: unknown) => void;
  /** the task tampered with a file the capture writes: the capture has stopped; the reason is one line */
  onRefused?: (reason: string) => void;
}

/** captures running in this process, by container id: never two for one container */
const activeCaptures = new Map<string, DockerLogCapture>();

/**
 * DockerLogCapture follows one container's logs into its task directory until the
 * container exits (then `done` resolves, with everything flushed), stop() is called, or a
 * file is refused.
 */
export class DockerLogCapture {
  /** done resolves when all of the container's output is in the files, or the capture stopped */
  readonly done: Promise<void>;
  /** refused: why the capture stopped on a tampered file, if it did */
  refused: string | undefined;
  private resolveDone!: () => void;
  private stopped = false;
  private stream: NodeJS.ReadableStream | undefined;
  private cursor!: LogCursor;
  private dir!: DirHandle;
  private stdoutFile!: RollingLogFile;
  private stderrFile!: RollingLogFile;
  private pendingStdout: Buffer[] = [];
  private pendingStderr: Buffer[] = [];
  private pendingBytes = 0;
  /** bytes handed to the flush chain and not written yet */
  private queuedBytes = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushChain: Promise<void> = Promise.resolve();
  private readonly flushIntervalMs: number;
  private readonly flushBytes: number;
  /** when the task's directory was last checked to be the one held */
  private dirCheckedAt = 0;
  /** when the state was last recorded */
  private stateWrittenAt = 0;
  /** checks the files while no output comes (a task that swaps a file and falls silent is still refused) */
  private idleCheck: NodeJS.Timeout | undefined;

  private constructor(
    private readonly docker: Docker,
    private readonly containerId: string,
    private readonly options: LogCaptureOptions,
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 100;
    this.flushBytes = options.flushBytes ?? 1024 * 1024;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  /**
   * start begins (or resumes) capture for a container; a capture already running in this
   * process is returned instead. A refused file rejects with UnsafeFileError.
   */
  static async start(docker: Docker, containerId: string, options: LogCaptureOptions): Promise<DockerLogCapture> {
    const existing = activeCaptures.get(containerId);
    if (existing !== undefined) return existing;
    const capture = new DockerLogCapture(docker, containerId, options);
    activeCaptures.set(containerId, capture);
    try {
      await capture.open();
    } catch (error) {
      activeCaptures.delete(containerId);
      throw error;
    }
    capture.idleCheck = setInterval(() => capture.checkWhileIdle(), IDLE_CHECK_MS);
    capture.idleCheck.unref();
    void capture.follow();
    return capture;
  }

  private async open(): Promise<void> {
    try {
      this.dir = await DirHandle.walk(this.options.taskDir.root, this.options.taskDir.parts);
    } catch (error) {
      if (error instanceof UnsafeFileError) throw new UnsafeFileError(`the task directory was replaced: ${error.message}`, { cause: error });
      throw error;
    }
    try {
      const state = await readLogState(this.options.privateDir);
      this.stdoutFile = await RollingLogFile.resume(this.dir, TASK_FILES.stdout, this.options.rolling, state?.stdout);
      try {
        this.stderrFile = await RollingLogFile.resume(this.dir, TASK_FILES.stderr, this.options.rolling, state?.stderr);
      } catch (error) {
        await this.stdoutFile.close();
        throw error;
      }
      this.cursor = new LogCursor(state ?? INITIAL_CURSOR);
      // what the files hold now is what the state says: recorded before the first byte from Docker
      await writeLogState(this.options.privateDir, this.currentState(this.cursor.snapshot()));
    } catch (error) {
      await this.dir.close();
      throw error;
    }
  }

  private currentState(cursor: CursorState): LogState {
    return { version: 2, stdout: this.stdoutFile.position(), stderr: this.stderrFile.position(), ...cursor };
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
      if (this.stopped) break;
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
    if (this.stopped) return;
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
      stream.on('data', (chunk: Buffer) => {
        frames.push(chunk);
        // back-pressure: a task that prints faster than the files take it waits in Docker's log, not in this process
        if (this.queuedBytes >= this.flushBytes * 4 && !stream.isPaused()) {
          stream.pause();
          void this.flushChain.then(() => stream.resume());
        }
      });
      stream.on('end', () => resolve());
      stream.on('close', () => resolve());
      stream.on('error', (error: Error) => reject(error));
    });
  }

  private onFrame(streamId: StreamId, frame: Buffer): void {
    if (this.stopped) return;
    const entry = splitTimestamp(frame);
    if (entry === undefined) return; // not a timestamped frame: nothing we can place safely
    if (!this.cursor.accept(streamId, entry.tsNs)) return;
    if (streamId === 1) this.pendingStdout.push(entry.payload);
    else this.pendingStderr.push(entry.payload);
    this.pendingBytes += entry.payload.length;
    if (this.pendingBytes >= this.flushBytes) void this.flush();
    else if (this.flushTimer === undefined) {
      this.flushTimer = setTimeout(() => void this.flush(), this.flushIntervalMs);
    }
  }

  /** flush writes the pending batch, checks the files are still the agent's, then records the new state (data before state). */
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
    const queued = stdoutChunk.length + stderrChunk.length;
    this.queuedBytes += queued;
    const cursor = this.cursor.snapshot();
    this.flushChain = this.flushChain.then(async () => {
      if (this.refused !== undefined) {
        this.queuedBytes -= queued;
        return;
      }
      try {
        if (stdoutChunk.length > 0) await this.stdoutFile.write(stdoutChunk);
        if (stderrChunk.length > 0) await this.stderrFile.write(stderrChunk);
        await this.checkFiles();
        // recorded at most every STATE_INTERVAL_MS: a crash then re-fetches a little more (the files are cut back to the record)
        if (Date.now() - this.stateWrittenAt >= STATE_INTERVAL_MS) await this.recordState(cursor);
      } catch (error) {
        if (error instanceof UnsafeFileError) this.refuse(error.message);
        else this.options.onError?.(error);
      } finally {
        this.queuedBytes -= queued;
      }
    });
    return this.flushChain;
  }

  private async recordState(cursor: CursorState): Promise<void> {
    await writeLogState(this.options.privateDir, this.currentState(cursor));
    this.stateWrittenAt = Date.now();
  }

  /**
   * checkFiles: both names still hold regular files, and (at most once a second) the task's
   * directory is still the one held; UnsafeFileError otherwise.
   */
  private async checkFiles(force = false): Promise<void> {
    await this.stdoutFile.checkTampered();
    await this.stderrFile.checkTampered();
    if (!force && Date.now() - this.dirCheckedAt < 1000) return;
    this.dirCheckedAt = Date.now();
    const replaced = await dirReplacedReason(this.options.taskDir, this.dir);
    if (replaced !== undefined) throw new UnsafeFileError(replaced);
  }

  /** checkWhileIdle checks the files when no flush has for a while (one chained step, as a flush). */
  private checkWhileIdle(): void {
    if (this.stopped || this.pendingBytes > 0 || Date.now() - this.dirCheckedAt < IDLE_CHECK_MS) return;
    this.flushChain = this.flushChain.then(async () => {
      if (this.refused !== undefined || this.stopped) return;
      try {
        await this.checkFiles(true);
      } catch (error) {
        if (error instanceof UnsafeFileError) this.refuse(error.message);
      }
    });
  }

  /** refuse stops the capture on a tampered file and says why, once. */
  private refuse(reason: string): void {
    if (this.refused !== undefined) return;
    this.refused = reason;
    this.stopped = true;
    (this.stream as unknown as { destroy?: () => void } | undefined)?.destroy?.();
    this.options.onRefused?.(reason);
  }

  private async finish(): Promise<void> {
    clearInterval(this.idleCheck);
    await this.flush();
    await this.flushChain;
    // everything received is written: the record says so
    if (this.refused === undefined) await this.recordState(this.cursor.snapshot()).catch((error: unknown) => this.options.onError?.(error));
    if (this.refused === undefined) {
      // one last look: a task that swapped a file for a link just before it exited is still reported
      try {
        await this.checkFiles(true);
      } catch (error) {
        if (error instanceof UnsafeFileError) this.refuse(error.message);
      }
    }
    await this.stdoutFile.close();
    await this.stderrFile.close();
    await this.dir.close();
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

/**
 * prepareLogFiles lays out a fresh task's files before its first byte of output: an empty
 * `stdout`, `stderr` holding Spark's header, and the capture state that records both. A
 * name the task (a previous run) turned into anything but a regular file is refused.
 */
export async function prepareLogFiles(taskDir: DirHandle, privateDir: string, rolling: LogRolling | undefined, header: Buffer): Promise<void> {
  const stdout = await RollingLogFile.create(taskDir, TASK_FILES.stdout, rolling);
  try {
    const stderr = await RollingLogFile.create(taskDir, TASK_FILES.stderr, rolling, header);
    try {
      await writeLogState(privateDir, { version: 2, stdout: stdout.position(), stderr: stderr.position(), ...INITIAL_CURSOR });
    } finally {
      await stderr.close();
    }
  } finally {
    await stdout.close();
  }
}
