/**
 * TaskOutput: how the process runtime's supervisor writes a task's stdout and stderr: the
 * command's pipes relayed into the two files of its directory (log-rolling.ts: rolled as
 * configured, reached through a directory handle), with back-pressure (a task that prints
 * faster than the disk takes it waits on its pipe, and the supervisor's memory stays
 * bounded). Every second, and at each roll, the files are checked: a link, FIFO or device
 * the task put in place of one, or a link in place of the task's directory, is refused,
 * once, through `onRefused`, and nothing more is written.
 */
import { RollingLogFile, type LogRolling } from './log-rolling.ts';
import { DirHandle, UnsafeFileError, dirReplacedReason, type TaskDirRef } from './safe-fs.ts';
import { TASK_FILES } from './task-identity.ts';

/** TAMPER_CHECK_MS: how often the files are checked while the task runs. */
const TAMPER_CHECK_MS = 1000;
/** MAX_QUEUED_BYTES: output held in memory before the pipes are paused. */
const MAX_QUEUED_BYTES = 1024 * 1024;

type Stream = 'stdout' | 'stderr';

export class TaskOutput {
  /** why the output was refused, once it was */
  refused: string | undefined;
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;
  private readonly paused = new Set<NodeJS.ReadableStream>();
  private ended: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private onRefused: ((reason: string) => void) | undefined;
  private closed = false;

  private constructor(
    private readonly dir: DirHandle,
    private readonly ref: TaskDirRef,
    private readonly files: Record<Stream, RollingLogFile>,
  ) {}

  /** open continues both files where they end (the runtime laid them out); a refused name rejects with UnsafeFileError. */
  static async open(dir: DirHandle, ref: TaskDirRef, rolling: LogRolling | undefined): Promise<TaskOutput> {
    const stdout = await RollingLogFile.resume(dir, TASK_FILES.stdout, rolling, undefined);
    try {
      const stderr = await RollingLogFile.resume(dir, TASK_FILES.stderr, rolling, undefined);
      return new TaskOutput(dir, ref, { stdout, stderr });
    } catch (error) {
      await stdout.close();
      throw error;
    }
  }

  /** relay copies both pipes into the files until they end; `onRefused` hears of a tampered file once. */
  relay(stdout: NodeJS.ReadableStream, stderr: NodeJS.ReadableStream, onRefused: (reason: string) => void): void {
    this.onRefused = onRefused;
    this.ended = Promise.all([this.pipe(stdout, 'stdout'), this.pipe(stderr, 'stderr')]).then(() => undefined);
    this.timer = setInterval(() => this.enqueue(() => this.check()), TAMPER_CHECK_MS);
    this.timer.unref();
  }

  /** note writes a line of the supervisor's own (e.g. why the command could not run). */
  note(stream: Stream, text: string): Promise<void> {
    return this.enqueue(() => this.files[stream].write(Buffer.from(text)));
  }

  /**
   * drain waits for both pipes to end (at most `ms`: a child that keeps them open is not
   * waited for), writes what is queued, checks the files once more, and closes them.
   * Returns why the output was refused, if it was.
   */
  async drain(ms: number): Promise<string | undefined> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.ended, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
    await this.enqueue(() => this.check());
    await this.close();
    return this.refused;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.chain;
    await this.files.stdout.close();
    await this.files.stderr.close();
    await this.dir.close();
  }

  private pipe(stream: NodeJS.ReadableStream, name: Stream): Promise<void> {
    return new Promise((resolve) => {
      stream.on('data', (chunk: Buffer) => {
        if (this.refused !== undefined || this.closed) return; // read and dropped: the task is being killed
        this.queued += chunk.length;
        void this.enqueue(async () => {
          try {
            await this.files[name].write(chunk);
          } finally {
            this.queued -= chunk.length;
            if (this.queued < MAX_QUEUED_BYTES / 2) this.resumeAll();
          }
        });
        if (this.queued >= MAX_QUEUED_BYTES && !this.paused.has(stream)) {
          this.paused.add(stream);
          stream.pause();
        }
      });
      stream.on('end', () => resolve());
      stream.on('close', () => resolve());
      stream.on('error', () => resolve());
    });
  }

  private resumeAll(): void {
    for (const stream of this.paused) stream.resume();
    this.paused.clear();
  }

  /** check: both names still hold regular files and the task's directory is still the one held. */
  private async check(): Promise<void> {
    await this.files.stdout.checkTampered();
    await this.files.stderr.checkTampered();
    const replaced = await dirReplacedReason(this.ref, this.dir);
    if (replaced !== undefined) throw new UnsafeFileError(replaced);
  }

  /** enqueue runs file work one step at a time; a refusal stops all further writes. */
  private enqueue(step: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(async () => {
      if (this.refused !== undefined) return;
      try {
        await step();
      } catch (error) {
        if (error instanceof UnsafeFileError) this.refuse(error.message);
        // another write error (disk full): the output is lost, the task goes on, as with a full disk
      }
    });
    return this.chain;
  }

  private refuse(reason: string): void {
    if (this.refused !== undefined) return;
    this.refused = reason;
    this.resumeAll();
    this.onRefused?.(reason);
  }
}
