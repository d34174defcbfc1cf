/**
 * Shared pieces of the benchmark suite: fresh clusters that clean up after
 * themselves, master host child processes (`bench/master-entry.ts`, the same
 * startMaster a `flint master` runs), percentiles and throughput runners for the
 * ceilings. Every benchmark runs on its own unique cluster name, so it never
 * touches anyone else's keys on a shared Redis.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { clusterKeyPattern } from '../protocol/keys.ts';
import { loadConfig, type FlintConfig } from '../protocol/config.ts';
import { resolveRedisUrl } from '../lib/redis-credentials.ts';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = join(BENCH_DIR, '..');
/** REDIS_URL: the Redis the benchmarks use, with setup's password when it requires one (lib/redis-credentials.ts) */
export const REDIS_URL = resolveRedisUrl(process.env.FLINT_BENCH_REDIS_URL || process.env.FLINT_TEST_REDIS_URL || 'redis://127.0.0.1:6379');

/** benchCluster: a fresh cluster name for one benchmark. */
export function benchCluster(name: string): string {
  return `bench-${name}-${randomBytes(4).toString('hex')}`;
}

/** benchConfig: Flint's configuration for a bench cluster, with overrides. */
export function benchConfig(cluster: string, conf: Record<string, string> = {}): FlintConfig {
  return loadConfig({ env: {}, overrides: { 'spark.flint.cluster': cluster, ...conf } });
}

/** deleteClusterKeys removes every key of `cluster` with SCAN + UNLINK. */
export async function deleteClusterKeys(redis: Redis, cluster: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', clusterKeyPattern(cluster), 'COUNT', 2000);
    cursor = next;
    if (keys.length) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** deleteByPattern removes the keys of a raw ceiling run (SCAN + UNLINK). */
export async function deleteByPattern(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 2000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** percentile of sorted-or-not samples (nearest rank). */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** runConcurrently calls `operation` `total` times with `concurrency` callers in flight; returns ops/s. */
export async function runConcurrently(total: number, concurrency: number, operation: (index: number) => Promise<unknown>): Promise<{ perSecond: number; elapsedMs: number }> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const index = next++;
        if (index >= total) return;
        await operation(index);
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  return { perSecond: (total / elapsedMs) * 1000, elapsedMs };
}

/** waitUntil polls `predicate` every `intervalMs` until it holds or `timeoutMs` passes (then throws `what`). */
export async function waitUntil(predicate: () => Promise<boolean> | boolean, timeoutMs: number, what: string, intervalMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** MasterStats: what a bench master process reports when it stops gracefully. */
export interface MasterStats {
  passes: number;
  executorsPlaced: number;
  driversPlaced: number;
  rejected: number;
  messages: number;
  passMs: number[];
}

export interface MasterProcess {
  child: ChildProcess;
  /** the statistics line printed on a graceful stop (undefined after a kill) */
  stats(): MasterStats | undefined;
  /** resolves with the exit code or signal name once the process ended */
  exited: Promise<string>;
  /** SIGTERM and wait (graceful: in-flight jobs finish) */
  stop(): Promise<string>;
  kill(signal: NodeJS.Signals): void;
}

export interface MasterProcessOptions {
  cluster: string;
  /** the Redis (default REDIS_URL); it reaches the child through its environment, never its command line */
  redisUrl?: string;
  conf?: Record<string, string>;
  concurrency?: number;
  /** extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/x'] */
  nodeFlags?: string[];
}

/**
 * startMasterProcess runs one master host in a child process (`node --import tsx
 * bench/master-entry.ts`) and resolves once it consumes the queue.
 */
export async function startMasterProcess(options: MasterProcessOptions): Promise<MasterProcess> {
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), '--import', 'tsx', join(BENCH_DIR, 'master-entry.ts')], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      FLINT_LOG_LEVEL: 'error',
      BENCH_REDIS_URL: options.redisUrl ?? REDIS_URL,
      BENCH_CLUSTER: options.cluster,
      // the bench's applications have no client renewing their lease: give them an hour
      BENCH_CONF: JSON.stringify({ 'spark.flint.app.timeout': '3600s', ...options.conf }),
      BENCH_CONCURRENCY: String(options.concurrency ?? 32),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? String(code))));
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('ready')) resolve();
    });
    void exited.then((how) => reject(new Error(`bench master process exited (${how}) before it was ready`)));
  });
  return {
    child,
    exited,
    stats() {
      const line = output.split('\n').find((l) => l.startsWith('stats '));
      return line ? (JSON.parse(line.slice(6)) as MasterStats) : undefined;
    },
    kill: (signal) => child.kill(signal),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/**
 * benchAppDescription: an application of `executors` one-core, 64 MB executors
 * running `command` in the bench image (so placements = executors × apps).
 */
export function benchAppDescription(name: string, executors: number, command: string[] = ['sleep', '3600']) {
  return {
    name,
    image: process.env.FLINT_TEST_IMAGE || 'flint-test-busybox:latest',
    command,
    env: {},
    maxCores: executors,
    coresPerExecutor: 1,
    memoryPerExecutorMB: 64,
    resourcesPerExecutor: [],
    user: 'bench',
    appUiUrl: '',
    priority: 0,
    labels: {},
  };
}
