/**
 * What the REST commands (submit, status, kill, token) share: their I/O as an
 * object, so tests run a command in-process and read what it printed and the
 * exit code it chose, and the resolution of --master and --token. Library code
 * never calls process.exit: an action reports its exit code through `io`.
 */
import { loadConfig } from '../protocol/config.ts';

export interface CommandIo {
  out(line: string): void;
  err(line: string): void;
  env: Readonly<Record<string, string | undefined>>;
  setExitCode(code: number): void;
}

/** Exit codes of the REST commands. */
export const EXIT_OK = 0;
/** the server refused, the submission was not found, or the server could not be reached */
export const EXIT_FAILED = 1;
/** bad flags or arguments */
export const EXIT_USAGE = 2;

/** processIo: the real process (stdout, stderr, process.env, process.exitCode). */
export function processIo(): CommandIo {
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
    setExitCode: (code) => {
      process.exitCode = code;
    },
  };
}

/** UsageError: a flag or argument problem, reported on one line with exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** oneLine: a server message (possibly multi-line) as a single stderr line. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * resolveMaster: --master, else FLINT_MASTER, else the configured REST address
 * (spark.master.rest.host / spark.master.rest.port, default http://127.0.0.1:6066).
 */
export function resolveMaster(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  if (flag) return flag;
  if (env.FLINT_MASTER) return env.FLINT_MASTER;
  const config = loadConfig({ env });
  const host = config.get<string>('spark.master.rest.host');
  const port = config.get<number>('spark.master.rest.port');
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** resolveToken: --token, else FLINT_TOKEN. */
export function resolveToken(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): string | undefined {
  return flag || env.FLINT_TOKEN || undefined;
}

/** collectRepeatable: commander's accumulator for a flag given several times. */
export function collectRepeatable(value: string, previous: string[]): string[] {
  return [...previous, value];
}
