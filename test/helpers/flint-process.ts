/**
 * `flint` as a child process, started as a new user would run it (`node
 * bin/flint.js <args>`), with what it printed and how it exited.
 *
 * FLINT_TEST_BIN=<path of an installed `flint`> runs these tests against an
 * installed package instead of this checkout (.ci/packed-install does, for
 * test/unit/cli-startup.test.ts).
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { join } from 'node:path';

/** REPO_ROOT: the checkout, where `bin/flint.js` lives. */
export const REPO_ROOT = new URL('../../', import.meta.url).pathname;

/**
 * runModuleScript runs an ES module body in a fresh Node process at the checkout's root,
 * TypeScript through tsx: its module cache starts empty, as a master's or an agent's
 * does, and V8 flags set there stay there. `nodeFlags` go before tsx's loader.
 */
export function runModuleScript(script: string, nodeFlags: readonly string[] = []): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [...nodeFlags, '--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
}

/** FLINT_BIN: the `flint` the tests run: this checkout's bin/flint.js, or FLINT_TEST_BIN. */
export const FLINT_BIN = process.env.FLINT_TEST_BIN || join(REPO_ROOT, 'bin', 'flint.js');

/** FlintProcess: a `node bin/flint.js ...` child process and what it printed. */
export interface FlintProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exit: Promise<number | null>;
}

/** runFlint starts `node bin/flint.js <args>` as a new user would run it. */
export function runFlint(args: string[], env: Record<string, string> = {}): FlintProcess {
  const child = spawn(process.execPath, [FLINT_BIN, ...args], {
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

