/**
 * Executor heartbeats absorbed by one app API process (issue 12, acceptance 7):
 * 1,000 RUNNING executors of one application with heartbeats on, each beat a real
 * HTTP POST with its executor's token and a small metrics payload, sent over
 * keep-alive connections by this process to the app API in a child process
 * (bench/app-api-entry.ts). The physical baseline of the same run is a bare hono
 * endpoint on the same HTTP stack, driven by the same load generator: what is left
 * between the two is Flint's work per beat (token check, batching, the Redis script).
 */
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { connectRedis } from '../lib/redis.ts';
import { executorToken } from '../lib/http/app-tokens.ts';
import { MasterStore } from '../functions/store/master-store.ts';
import { BENCH_DIR, REDIS_URL, REPO_ROOT, benchAppDescription, benchCluster, benchConfig, deleteClusterKeys, round, runConcurrently } from './common.ts';

export interface ExecutorHeartbeatBenchResult {
  executors: number;
  beats: number;
  concurrency: number;
  flintPerSecond: number;
  bareHonoPerSecond: number;
  /** HTTP status → count, of the measured Flint run */
  statuses: Record<string, number>;
  /** beats per Redis script call (the batching) */
  beatsPerScriptCall: number;
  /** Redis's own µs per absorbed beat (INFO commandstats, evalsha) */
  redisUsecPerBeat: number;
}

interface Target {
  url: string;
  stop(): Promise<void>;
}

async function startEntry(mode: 'flint' | 'bare', cluster: string): Promise<Target> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(BENCH_DIR, 'app-api-entry.ts')], {
    cwd: REPO_ROOT,
    env: { ...process.env, FLINT_LOG_LEVEL: 'error', BENCH_MODE: mode, BENCH_REDIS_URL: REDIS_URL, BENCH_CLUSTER: cluster },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /^ready (\S+)$/m.exec(out);
      if (match) resolve(match[1]!);
    });
    void exited.then(() => reject(new Error(`the ${mode} app API process exited before it was ready`)));
  });
  return {
    url,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** drive sends `total` beats round-robin over the executors with `concurrency` requests in flight; returns beats/s and statuses. */
async function drive(base: string, appId: string, tokens: string[], total: number, concurrency: number): Promise<{ perSecond: number; statuses: Record<string, number> }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const target = new URL(base);
  const statuses: Record<string, number> = {};
  let next = 0;
  const beat = (execId: number) =>
    new Promise<number>((resolve, reject) => {
      const body = `{"metrics":{"beat":${next},"heapMb":${execId % 97}}}`;
      const req = request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          method: 'POST',
          path: `/v1/apps/${encodeURIComponent(appId)}/executors/${execId}/heartbeat`,
          headers: { authorization: `Bearer ${tokens[execId]}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const run = await runConcurrently(total, concurrency, async (index) => {
    next = index;
    const status = await beat(index % tokens.length);
    statuses[status] = (statuses[status] ?? 0) + 1;
  });
  agent.destroy();
  return { perSecond: run.perSecond, statuses };
}

async function evalshaStats(redis: Redis): Promise<{ calls: number; usec: number }> {
  const line = /^cmdstat_evalsha:calls=(\d+),usec=(\d+)/m.exec(await redis.info('commandstats'));
  return { calls: Number(line?.[1] ?? 0), usec: Number(line?.[2] ?? 0) };
}

export async function runExecutorHeartbeatBench(options: { executors: number; beats: number; concurrency: number }): Promise<ExecutorHeartbeatBenchResult> {
  const cluster = benchCluster('exec-heartbeats');
  const config = benchConfig(cluster);
  const redis = await connectRedis(REDIS_URL, { name: 'bench-exec-heartbeats' });
  const store = new MasterStore(redis, config);
  const targets: Target[] = [];
  try {
    // one worker big enough for every executor, one app with heartbeats on, every executor RUNNING
    const now = Date.now();
    const worker = await store.registerWorker(
      { id: 'bench-worker', host: '127.0.0.1', port: 1, cores: options.executors, memoryMB: options.executors * 64, webUiUrl: '', resources: {}, labels: {}, executors: [], driverIds: [] },
      now,
    );
    if (worker.type !== 'RegisteredWorker') throw new Error(`bench worker refused: ${worker.message}`);
    const registered = await store.registerApplication('bench-client', benchAppDescription('beats', options.executors), {
      requestedCores: options.executors,
      executorLimit: -1,
      heartbeat: { launch: { url: 'http://127.0.0.1:1', intervalMs: 10_000, maxFailures: 60 }, timeoutMs: 3_600_000, checkIntervalMs: 3_600_000 },
    }, now);
    if ('error' in registered) throw new Error(registered.error);
    const appId = registered.appId;
    for (let placed = 0; placed < options.executors; placed += 256) {
      const batch = Array.from({ length: Math.min(256, options.executors - placed) }, () => ({ appId, workerId: 'bench-worker', epoch: worker.epoch, cores: 1, memoryMB: 64, resources: {} }));
      await store.commitPlacements([], batch, Date.now());
    }
    for (let execId = 0; execId < options.executors; execId++) {
      await store.executorStateChanged({ appId, execId, state: 'RUNNING', workerId: 'bench-worker', epoch: worker.epoch }, Date.now());
    }
    if ((await redis.zcard(store.keys.appExecutorBeats(appId))) !== options.executors) throw new Error('every executor should be registered with the receiver');
    const key = (await redis.hget(store.keys.appSecret(appId), 'key'))!;
    const tokens = Array.from({ length: options.executors }, (_, execId) => executorToken(key, appId, execId));

    const bare = await startEntry('bare', cluster);
    targets.push(bare);
    await drive(bare.url, appId, tokens, Math.min(5_000, options.beats), options.concurrency); // warm-up
    const bareRun = await drive(bare.url, appId, tokens, options.beats, options.concurrency);
    await bare.stop();

    const flint = await startEntry('flint', cluster);
    targets.push(flint);
    await drive(flint.url, appId, tokens, Math.min(5_000, options.beats), options.concurrency); // warm-up: connections, keys cached
    const before = await evalshaStats(redis);
    const flintRun = await drive(flint.url, appId, tokens, options.beats, options.concurrency);
    const after = await evalshaStats(redis);
    await flint.stop();
    if ((flintRun.statuses['200'] ?? 0) !== options.beats) throw new Error(`every beat should be absorbed, got ${JSON.stringify(flintRun.statuses)}`);
    const calls = Math.max(1, after.calls - before.calls);
    return {
      executors: options.executors,
      beats: options.beats,
      concurrency: options.concurrency,
      flintPerSecond: round(flintRun.perSecond, 0),
      bareHonoPerSecond: round(bareRun.perSecond, 0),
      statuses: flintRun.statuses,
      beatsPerScriptCall: round(options.beats / calls, 1),
      redisUsecPerBeat: round((after.usec - before.usec) / options.beats, 2),
    };
  } finally {
    for (const target of targets) await target.stop().catch(() => undefined);
    await deleteClusterKeys(redis, cluster);
    redis.disconnect();
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const quick = process.env.FLINT_BENCH_QUICK === '1';
  process.env.FLINT_LOG_LEVEL ??= 'error';
  runExecutorHeartbeatBench({ executors: 1000, beats: quick ? 20_000 : 60_000, concurrency: 64 }).then(
    (result) => {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      process.exit(0);
    },
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack}\n`);
      process.exit(1);
    },
  );
}
