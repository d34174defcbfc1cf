/**
 * What a worker offers when the operator does not say (Spark's WorkerArguments
 * defaults), how its repeatable flags are read, and its stable identity: the
 * worker id is made once per work directory and kept in `<work-dir>/.flint-worker.json`,
 * so an agent restarted on the same host finds its containers again under the same id.
 */
import { availableParallelism, totalmem } from 'node:os';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatSparkId, sparkTimestamp } from '../protocol/config.ts';

/** WORKER_ID_FILE: where the worker id of a work directory is kept. */
export const WORKER_ID_FILE = '.flint-worker.json';

/** defaultCores: every processor of the host (Spark's `inferDefaultCores`). */
export function defaultCores(): number {
  return Math.max(1, availableParallelism());
}

/** defaultMemoryMb: Spark's `max(totalRAM − 1024 MB, 512 MB)`. */
export function defaultMemoryMb(totalBytes: number = totalmem()): number {
  const totalMb = Math.floor(totalBytes / (1024 * 1024));
  return Math.max(totalMb - 1024, 512);
}

/** parseKeyValueFlag reads one `k=v` flag; `what` names the flag in the error. */
export function parseKeyValueFlag(flag: string, what: string): [string, string] {
  const eq = flag.indexOf('=');
  if (eq <= 0) throw new Error(`${what} '${flag}' must be key=value`);
  return [flag.slice(0, eq).trim(), flag.slice(eq + 1).trim()];
}

/** parseLabelFlags: repeated `--label k=v` into a map; a key given twice is an error. */
export function parseLabelFlags(flags: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const flag of flags) {
    const [key, value] = parseKeyValueFlag(flag, '--label');
    if (!/^[A-Za-z0-9._/-]{1,128}$/.test(key)) throw new Error(`--label '${flag}': the key may contain only letters, digits and . _ / -`);
    if (key in labels) throw new Error(`--label ${key} is given twice`);
    labels[key] = value;
  }
  return labels;
}

/**
 * parseResourceFlags: repeated `--resource name=addr1,addr2` into Spark's
 * resources map (name → addresses). Addresses of one name must be distinct.
 */
export function parseResourceFlags(flags: readonly string[]): Record<string, string[]> {
  const resources: Record<string, string[]> = {};
  for (const flag of flags) {
    const [name, list] = parseKeyValueFlag(flag, '--resource');
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new Error(`--resource '${flag}': the name may contain only letters, digits and . _ -`);
    const addresses = list.split(',').map((a) => a.trim()).filter((a) => a.length > 0);
    if (addresses.length === 0) throw new Error(`--resource '${flag}' lists no addresses (expected name=addr1,addr2)`);
    const seen = new Set(resources[name] ?? []);
    for (const address of addresses) {
      if (seen.has(address)) throw new Error(`--resource ${name}: address ${address} is given twice`);
      seen.add(address);
    }
    resources[name] = [...seen];
  }
  return resources;
}

/** formatWorkerId: spark.worker.idPattern applied to (yyyyMMddHHmmss of now, host, port). */
export function formatWorkerId(pattern: string, now: number, host: string, port: number): string {
  return formatSparkId(pattern, [sparkTimestamp(now), host, port]);
}

/** WORKER_ID_PATTERN: the characters protocol/messages.ts accepts in an id. */
const WORKER_ID_CHARS = /^[A-Za-z0-9._:@/-]{1,256}$/;

/**
 * loadOrCreateWorkerId returns the id kept in `<workDir>/.flint-worker.json`, or
 * writes `fresh()` there on first start. `override` (the --id flag) wins and is
 * written too, so later restarts without the flag keep it.
 */
export async function loadOrCreateWorkerId(workDir: string, fresh: () => string, override?: string): Promise<string> {
  const file = join(workDir, WORKER_ID_FILE);
  let stored: string | undefined;
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as { id?: unknown };
    if (typeof parsed.id === 'string' && WORKER_ID_CHARS.test(parsed.id)) stored = parsed.id;
    else throw new Error(`${file} has no valid "id"; delete it to let the worker choose a new id`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (error instanceof SyntaxError) throw new Error(`${file} is not valid JSON (${error.message}); delete it to let the worker choose a new id`, { cause: error });
      throw error;
    }
  }
  const id = override ?? stored ?? fresh();
  if (!WORKER_ID_CHARS.test(id)) throw new Error(`worker id '${id}' is invalid: use 1-256 letters, digits and . _ : @ / -`);
  if (id !== stored) {
    await mkdir(workDir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ id }, null, 2) + '\n');
    await rename(tmp, file);
  }
  return id;
}
