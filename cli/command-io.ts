/**
 * What the REST commands (submit, status, kill, token) share: their I/O as an
 * object, so tests run a command in-process and read what it printed and the
 * exit code it chose, and the resolution of --master and --token. Library code
 * never calls process.exit: an action reports its exit code through `io`.
 */
import { readFileSync } from 'node:fs';
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
 * (spark.master.rest.host, else spark.master.host, and spark.master.rest.port;
 * https when spark.ssl[.standalone].enabled; default http://127.0.0.1:6066).
 */
export function resolveMaster(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  if (flag) return flag;
  if (env.FLINT_MASTER) return env.FLINT_MASTER;
  const config = loadConfig({ env });
  const host = config.get<string | undefined>('spark.master.rest.host') ?? config.get<string>('spark.master.host');
  const port = config.get<number>('spark.master.rest.port');
  const tls = config.get<boolean | undefined>('spark.ssl.standalone.enabled') ?? config.get<boolean>('spark.ssl.enabled');
  return `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * resolveCa: the PEM CA bundle to trust for https:// masters: --ca-file, else
 * spark.ssl.standalone.trustStore, else spark.ssl.trustStore; undefined when none.
 * An unreadable file is a UsageError naming it.
 */
export function resolveCa(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): Buffer | undefined {
  let path = flag;
  let from = '--ca-file';
  if (!path) {
    const config = loadConfig({ env });
    path = config.get<string | undefined>('spark.ssl.standalone.trustStore') ?? config.get<string | undefined>('spark.ssl.trustStore');
    from = config.get<string | undefined>('spark.ssl.standalone.trustStore') ? 'spark.ssl.standalone.trustStore' : 'spark.ssl.trustStore';
  }
  if (!path) return undefined;
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UsageError(`${from} ${path}: cannot read the CA file: ${(error as Error).message}`);
  }
}

/** resolveToken: --token, else FLINT_TOKEN. */
export function resolveToken(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): string | undefined {
  return flag || env.FLINT_TOKEN || undefined;
}

