/**
 * TaskRecords: the markers a runtime keeps for one task in the agent's own directory for
 * it (`<stateDir>/<task name>/`, privateTaskDir), never in the task's: that a stop was
 * requested (so an exit seen after an agent restart is still reported as stopped), and why
 * the agent refused the task (so the refusal is reported whoever sees the exit). A task can
 * neither forge nor redirect them.
 */
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PRIVATE_FILES } from './task-identity.ts';

export class TaskRecords {
  constructor(
    /** the agent's own directory for the task */
    readonly dir: string,
  ) {}

  /** recordStop notes that a stop was requested, before the signal is sent. */
  async recordStop(): Promise<void> {
    await this.write(PRIVATE_FILES.stopRequested, String(Date.now()));
  }

  /** stopRecorded: a stop was requested, by this process or an earlier one. */
  async stopRecorded(): Promise<boolean> {
    return stat(join(this.dir, PRIVATE_FILES.stopRequested)).then(
      () => true,
      () => false,
    );
  }

  /** recordRefusal keeps why the task was refused (one line). */
  async recordRefusal(reason: string): Promise<void> {
    await this.write(PRIVATE_FILES.refused, reason);
  }

  /** refusal: why the task was refused, if it was (at most 500 characters). */
  async refusal(): Promise<string | undefined> {
    const text = await readFile(join(this.dir, PRIVATE_FILES.refused), 'utf8').catch(() => undefined);
    return text === undefined || text === '' ? undefined : text.slice(0, 500);
  }

  /** clearMarkers forgets an earlier run's stop and refusal (a task id started afresh). */
  async clearMarkers(): Promise<void> {
    await rm(join(this.dir, PRIVATE_FILES.stopRequested), { force: true });
    await rm(join(this.dir, PRIVATE_FILES.refused), { force: true });
  }

  /** remove deletes every record of the task. */
  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  private async write(name: string, text: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFile(join(this.dir, name), text, { mode: 0o600 });
  }
}
