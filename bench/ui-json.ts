/**
 * Benchmark of the master UI's read path: a cluster of 1,000 workers and 1,000
 * running applications (one executor each), created through the real commit
 * scripts (MasterStore: registerWorker, registerApplication, commitPlacements),
 * then `/json` and the master page fetched over HTTP from a real UI server.
 * Reports p50/p99 over N requests after a warm-up and prints it (--out FILE also
 * writes it). Targets: /json under 200 ms, the master page under 500 ms.
 *
 *   node --import tsx bench/ui-json.ts [--workers 1000] [--apps 1000] [--requests 20]
 * (`npm run bench` runs it too, through runUiJsonBench.)
 *
 * Not part of the test suite. It uses a unique cluster name and deletes its keys.
 */
import { writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { loadConfig } from '../protocol/config.ts';
import { clusterKeyPattern } from '../protocol/keys.ts';
import { connectRedis, DEFAULT_REDIS_URL } from '../lib/redis.ts';
import { MasterStore } from '../functions/store/master-store.ts';
import { startUiServer } from '../functions/http/ui-server.ts';
import type { ExecutorPlacement } from '../functions/core/types.ts';

export interface UiBenchOptions {
  redisUrl: string;
  workers: number;
  apps: number;
  requests: number;
}

export interface UiBenchResult {
  benchmark: string;
  date: string;
  cluster: { workers: number; applications: number; executors: number };
  requests: number;
  setupMs: number;
  jsonMs: { p50: number; p99: number; max: number; targetP99: number };
  jsonBytes: number;
  masterPageMs: { p50: number; p99: number; max: number; targetP99: number };
  masterPageBytes: number;
  appPageMs: { p50: number; p99: number; max: number };
  withinTargets: boolean;
}

function percentile(sorted: number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, index)]! * 10) / 10;
}

async function time(url: string, n: number): Promise<{ p50: number; p99: number; max: number; bytes: number }> {
  // warm-up: JIT, connection pool, Redis script cache
  for (let i = 0; i < 3; i++) await (await fetch(url)).arrayBuffer();
  const samples: number[] = [];
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const response = await fetch(url);
    const body = await response.arrayBuffer();
    samples.push(performance.now() - started);
    if (response.status !== 200) throw new Error(`${url} answered ${response.status}`);
    bytes = body.byteLength;
  }
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), max: Math.round(samples.at(-1)! * 10) / 10, bytes };
}

/** runUiJsonBench builds the cluster, times the pages and deletes the cluster's keys. */
export async function runUiJsonBench(options: UiBenchOptions): Promise<UiBenchResult> {
  const { redisUrl, workers: WORKERS, apps: APPS, requests: REQUESTS } = options;
  const cluster = `bench-ui-${randomBytes(4).toString('hex')}`;
  const config = loadConfig({ env: {}, overrides: { 'spark.flint.cluster': cluster } });
  const redis = await connectRedis(redisUrl, { name: 'bench-ui' });
  const store = new MasterStore(redis, config);
  const now = Date.now();
  try {
    const setupStarted = performance.now();
    const epochs: { id: string; epoch: number }[] = [];
    for (let i = 0; i < WORKERS; i++) {
      const id = `worker-bench-${String(i).padStart(5, '0')}`;
      const reply = await store.registerWorker(
        // loopback addresses only: nothing ever connects to them, but a page may link to them
        { id, host: '127.0.0.1', port: 20000 + i, cores: 16, memoryMB: 65536, webUiUrl: `http://127.0.0.1:${20000 + i}`, resources: {}, labels: {}, executors: [], driverIds: [] },
        now,
      );
      if (reply.type !== 'RegisteredWorker') throw new Error(`worker ${id}: ${reply.message}`);
      epochs.push({ id, epoch: reply.epoch });
    }
    const placements: ExecutorPlacement[] = [];
    for (let i = 0; i < APPS; i++) {
      const result = await store.registerApplication(
        `bench-client-${i}`,
        { name: `bench-app-${i}`, image: 'flint-test-busybox:latest', command: ['sleep', '60'], env: {}, maxCores: 2, coresPerExecutor: 2, memoryPerExecutorMB: 1024, resourcesPerExecutor: [], user: 'bench', appUiUrl: '', priority: 0, labels: {} },
        { requestedCores: 2, executorLimit: -1 },
        now,
      );
      if ('error' in result) throw new Error(result.error);
      const worker = epochs[i % epochs.length]!;
      placements.push({ appId: result.appId, workerId: worker.id, epoch: worker.epoch, cores: 2, memoryMB: 1024, resources: {} });
    }
    let placed = 0;
    for (let i = 0; i < placements.length; i += 100) {
      const commit = await store.commitPlacements([], placements.slice(i, i + 100), now);
      placed += commit.executors[0];
    }
    const setupMs = Math.round(performance.now() - setupStarted);

    const ui = await startUiServer({ redisUrl, config, port: 0, queueBoard: false });
    try {
      const json = await time(`${ui.url}/json`, REQUESTS);
      const page = await time(`${ui.url}/`, REQUESTS);
      const appPage = await time(`${ui.url}/app/?appId=${encodeURIComponent(placements[0]!.appId)}`, REQUESTS);
      return {
        benchmark: 'master UI read path',
        date: new Date().toISOString(),
        cluster: { workers: WORKERS, applications: APPS, executors: placed },
        requests: REQUESTS,
        setupMs,
        jsonMs: { p50: json.p50, p99: json.p99, max: json.max, targetP99: 200 },
        jsonBytes: json.bytes,
        masterPageMs: { p50: page.p50, p99: page.p99, max: page.max, targetP99: 500 },
        masterPageBytes: page.bytes,
        appPageMs: { p50: appPage.p50, p99: appPage.p99, max: appPage.max },
        withinTargets: json.p99 < 200 && page.p99 < 500,
      };
    } finally {
      await ui.close();
    }
  } finally {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', clusterKeyPattern(cluster), 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
    redis.disconnect();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      workers: { type: 'string', default: '1000' },
      apps: { type: 'string', default: '1000' },
      requests: { type: 'string', default: '20' },
      redis: { type: 'string', default: process.env.FLINT_REDIS_URL ?? DEFAULT_REDIS_URL },
      out: { type: 'string' },
    },
  });
  const report = await runUiJsonBench({ redisUrl: values.redis!, workers: Number(values.workers), apps: Number(values.apps), requests: Number(values.requests) });
  if (values.out) await writeFile(values.out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(JSON.stringify(report, null, 2));
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
