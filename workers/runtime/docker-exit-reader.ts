/**
 * ExitReader: how the Docker runtime learns how a container's run ended, from Docker's
 * inspect and never from the task's files: State.ExitCode and State.OOMKilled (137 alone is
 * not an OOM; Docker 20.10 on cgroup v1 may deliver a container's `oom` event after its
 * `die` and never set OOMKilled, so that event counts too and a non-zero exit waits a
 * bounded moment for it), the init's FATAL line for a program that could not be executed,
 * the agent's own markers (a requested stop, a refusal), after waiting (bounded) for the
 * log capture to flush.
 */
import { napUntilWoken, withDeadline } from '../../lib/deadline.ts';
import type { Logger } from '../../lib/log.ts';
import type { DockerApi } from './docker-api.ts';
import { containerPhase, demuxText, tiniExecFailure } from './docker-config.ts';
import type { Scope } from './docker-exit-watcher.ts';
import { isStartingHere } from './docker-start.ts';
import type { DockerLogCapture } from './log-capture.ts';
import type { TaskDirRef } from './safe-fs.ts';
import type { TaskRecords } from './task-records.ts';
import type { TaskExit } from './types.ts';

/** UNKNOWN_EXIT_CODE: reported when a container vanished before its exit code could be read. */
export const UNKNOWN_EXIT_CODE = -1;

/** TrackedContainer: one run the Docker runtime watches. */
export interface TrackedContainer {
  taskId: string;
  containerId: string;
  /** where the task's directory is, from its labels; undefined for a container without one */
  taskDir: TaskDirRef | undefined;
  /** the runtime's own records of the task (capture state, stop and refusal markers) */
  records: TaskRecords;
  scope: Scope;
  stopRequested: boolean;
  /** why the task was ended for tampering with a file the agent writes */
  refused: string | undefined;
  /** the log capture once opened; undefined when it could not start (or the task has no workDir label) */
  capture: Promise<DockerLogCapture | undefined>;
  probing: Promise<void> | undefined;
  /** Docker sent an `oom` event for this container */
  oomEvent: boolean;
  /** wakes a probe that waits for a late `oom` event */
  onOomEvent: (() => void) | undefined;
}

export interface ExitReaderOptions {
  /** how long an exit report waits for the log capture to flush, default 10 s */
  logDrainTimeoutMs?: number;
  /** how long an exit with code 137 waits for a late `oom` event, default 1000 ms (other non-zero exits: 150 ms) */
  oomEventWaitMs?: number;
  logger?: Logger;
}

export class ExitReader {
  constructor(
    private readonly api: DockerApi,
    private readonly options: ExitReaderOptions,
  ) {}

  /** read: how the container's run ended, or undefined while it runs (or is being started here). */
  async read(task: TrackedContainer): Promise<Omit<TaskExit, 'handle'> | undefined> {
    const info = await this.api.inspect(task.containerId);
    const stopped = task.stopRequested || (await task.records.stopRecorded());
    if (info === undefined) {
      await this.drainLogs(task);
      return withRefusal({ exitCode: UNKNOWN_EXIT_CODE, oomKilled: false, stopped, vanished: 'the container was removed outside Flint' }, await this.refusalOf(task));
    }
    const phase = containerPhase(info.State);
    if (phase === 'running' || (phase === 'never-started' && isStartingHere(info.Id))) return undefined;
    if (phase === 'never-started') return { exitCode: UNKNOWN_EXIT_CODE, oomKilled: false, stopped, launchError: 'the container was created but never started' };
    const exit: Omit<TaskExit, 'handle'> = { exitCode: info.State.ExitCode, oomKilled: info.State.OOMKilled || task.oomEvent, stopped };
    await this.drainLogs(task);
    const refused = await this.refusalOf(task);
    if (refused !== undefined) return withRefusal(exit, refused);
    if (exit.exitCode !== 0 && !exit.oomKilled && !stopped) {
      // Docker can deliver the `oom` event a moment after the exit under load (and 20.10 then
      // leaves State.OOMKilled false): wait for it before reporting an ordinary non-zero exit
      await this.waitForOomEvent(task, exit.exitCode === 137 ? (this.options.oomEventWaitMs ?? 1000) : 150);
      const again = task.oomEvent ? undefined : await this.api.inspect(task.containerId);
      exit.oomKilled = task.oomEvent || again?.State.OOMKilled === true;
    }
    if ((exit.exitCode === 126 || exit.exitCode === 127) && !exit.oomKilled) {
      const launchError = await this.initExecFailure(task.containerId);
      if (launchError !== undefined) exit.launchError = launchError;
    }
    return exit;
  }

  /** refusalOf: why the task was refused, from this process or the record of an earlier one. */
  private async refusalOf(task: TrackedContainer): Promise<string | undefined> {
    return task.refused ?? (await task.records.refusal());
  }

  /** initExecFailure asks Docker (never the task's files) for the init's FATAL line: the command could not be executed. */
  private async initExecFailure(containerId: string): Promise<string | undefined> {
    try {
      const body = (await this.api.call('logs', this.api.docker.getContainer(containerId).logs({ stdout: false, stderr: true, follow: false, tail: 5 }))) as unknown as Buffer;
      return tiniExecFailure(demuxText(Buffer.isBuffer(body) ? body : Buffer.from(String(body)), 2));
    } catch {
      return undefined;
    }
  }

  /** waitForOomEvent resolves when an `oom` event of the task's container arrives, or after `ms`. */
  private async waitForOomEvent(task: TrackedContainer, ms: number): Promise<void> {
    if (task.oomEvent) return;
    await napUntilWoken(ms, (wake) => (task.onOomEvent = wake));
  }

  /** drainLogs waits (bounded) for the capture to write the container's last output. */
  private async drainLogs(task: TrackedContainer): Promise<void> {
    await withDeadline(
      task.capture.then((capture) => capture?.done),
      this.options.logDrainTimeoutMs ?? 10_000,
      'log drain',
    ).catch(() => this.options.logger?.warn({ taskId: task.taskId }, 'log capture did not flush in time; reporting the exit anyway'));
  }

}

/** withRefusal: an exit of a refused task carries the reason (and is not a plain stop). */
function withRefusal(exit: Omit<TaskExit, 'handle'>, refused: string | undefined): Omit<TaskExit, 'handle'> {
  return refused === undefined ? exit : { ...exit, refused };
}
