/**
 * lockWorkDir: one live agent per work dir. Two agents on one work dir would adopt each
 * other's tasks, write the same log files and report the same tasks twice.
 *
 * The lock is the kernel's (flock(2) on `<work-dir>/.flint-worker.lock`), held by a small
 * child (`flock -n <file> sh -c 'echo locked; exec cat'`) whose standard input is a pipe
 * from the agent: when the agent exits, however it exits (SIGKILL included), the pipe
 * closes, the child ends and the kernel releases the lock. There is no stale lock to
 * detect and no pid to trust: a dead agent's lock is simply gone, and the next agent takes
 * it. The file also says who holds it (pid, host, since), for the refusal message.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

/** WORK_DIR_LOCK_FILE: the lock file's name in the work dir. */
export const WORK_DIR_LOCK_FILE = '.flint-worker.lock';

/** WorkDirLockedError: another live agent holds the work dir. */
export class WorkDirLockedError extends Error {
  override name = 'WorkDirLockedError';
}

export interface WorkDirLock {
  /** release ends the holder child (the kernel drops the lock); safe to call twice */
  release(): Promise<void>;
  /** onLost: called once if the holder child ends without a release (killed): the lock is gone */
  onLost(callback: () => void): void;
}

const CONFLICT_EXIT = 75;

function holderText(text: string | undefined): string {
  try {
    const holder = JSON.parse(text ?? '') as { pid?: number; host?: string; since?: string };
    return `pid ${holder.pid} on ${holder.host}, since ${holder.since}`;
  } catch {
    return 'another process';
  }
}

/** lockWorkDir takes the work dir's lock, or throws WorkDirLockedError naming the holder. */
export async function lockWorkDir(workDir: string): Promise<WorkDirLock> {
  const path = join(workDir, WORK_DIR_LOCK_FILE);
  let child: ChildProcess;
  try {
    child = spawn('flock', ['--nonblock', '--conflict-exit-code', String(CONFLICT_EXIT), path, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      // its own process group: a Ctrl-C meant for the agent must not drop the lock before the agent is done
      detached: true,
    });
  } catch (error) {
    throw new Error(`cannot lock the work dir ${workDir}: ${(error as Error).message}`, { cause: error });
  }
  const outcome = await new Promise<'locked' | { code: number | null; error?: Error }>((resolve) => {
    let stderr = '';
    child.stdout!.once('data', () => resolve('locked'));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', (error) => resolve({ code: null, error }));
    child.once('exit', (code) => resolve({ code, error: stderr ? new Error(stderr.trim()) : undefined }));
  });
  if (outcome !== 'locked') {
    if (outcome.code === CONFLICT_EXIT) {
      const holder = await readFile(path, 'utf8').catch(() => undefined);
      throw new WorkDirLockedError(`another flint worker is running on the work dir ${workDir} (${holderText(holder)}); stop it first, or use another --work-dir`);
    }
    const why = (outcome.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT' ? 'flock(1) from util-linux is not installed' : (outcome.error?.message ?? `flock exited with ${outcome.code}`);
    throw new Error(`cannot lock the work dir ${workDir}: ${why}`);
  }
  // the child must not keep the agent's process alive; its pipe ends when the agent ends
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.();
  await writeFile(path, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }));
  let released: Promise<void> | undefined;
  let lost: (() => void) | undefined;
  child.once('exit', () => {
    if (released === undefined) lost?.();
  });
  return {
    onLost(callback) {
      lost = callback;
    },
    release() {
      released ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, 5000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.stdin!.end();
      });
      return released;
    },
  };
}
