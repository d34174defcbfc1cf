/**
 * `flint` as a child process, started as a new user would run it (`node
 * bin/flint.js <args>`), with what it printed and how it exited.
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** REPO_ROOT: where `bin/flint.js` lives. */
export const REPO_ROOT = new URL('../../', import.meta.url).pathname;

/** FlintProcess: a `node bin/flint.js ...` child process and what it printed. */
export interface FlintProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exit: Promise<number | null>;
}

/** runFlint starts `node bin/flint.js <args>` as a new user would run it. */
export function runFlint(args: string[], env: Record<string, string> = {}): FlintProcess {
  const child = spawn(process.execPath, ['bin/flint.js', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, FLINT_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk) => (out += chunk));
  child.stderr!.on('data', (chunk) => (err += chunk));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** runFlintToEnd runs a short CLI command and returns its exit code and output. */
export async function runFlintToEnd(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = runFlint(args, env);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 30_000);
  try {
    const code = await proc.exit;
    return { code, stdout: proc.stdout(), stderr: proc.stderr() };
  } finally {
    clearTimeout(timer);
  }
}

