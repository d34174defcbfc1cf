/**
 * Executor heartbeats absorbed by one app API process (issue 12, acceptance 7):
 * 1,000 RUNNING executors of one application with heartbeats on, each beat a real
 * HTTP POST with its executor's token and a small metrics payload, 256 in flight (a
 * thousand executors beat independently), sent by this process to the app API in a
 * child process
 * (bench/app-api-entry.ts). The physical baseline of the same run is a bare hono
 * endpoint on the same HTTP stack, driven by the same load generator: what is left
 * between the two is Flint's work per beat (token check, batching, the Redis script).
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { connectRedis } from '../lib/redis.ts';
import { executorToken } from '../lib/http/app-tokens.ts';
import { MasterStore } from '../functions/store/master-store.ts';
import { BENCH_DIR, REDIS_URL, REPO_ROOT, benchAppDescription, benchCluster, benchConfig, deleteClusterKeys, round } from './common.ts';

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
  const nodeFlags = mode === 'flint' && process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];
  const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', join(BENCH_DIR, 'app-api-entry.ts')], {
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

/**
 * drive sends `total` beats round-robin over the executors, `inFlight` at a time, as
 * HTTP/1.1 requests over `inFlight` raw keep-alive sockets (an executor's connection
 * each): the load generator does little more than write bytes and count responses, so
 * it leaves as much of the 2 CPUs as it can to the server being measured.
 * Returns beats/s and the statuses seen.
 */
async function drive(base: string, appId: string, tokens: string[], total: number, inFlight: number): Promise<{ perSecond: number; statuses: Record<string, number> }> {
  const target = new URL(base);
  // one socket per request in flight: Node's HTTP server answers a socket's pipelined requests one at a time
  const sockets = inFlight;
  const depth = 1;
  const statuses: Record<string, number> = {};
  const path = (execId: number) => `/v1/apps/${encodeURIComponent(appId)}/executors/${execId}/heartbeat`;
  let sent = 0;
  let received = 0;
  const requestText = (index: number) => {
    const execId = index % tokens.length;
    const body = `{"metrics":{"beat":${index},"heapMb":${execId % 97}}}`;
    return `POST ${path(execId)} HTTP/1.1\r\nHost: ${target.host}\r\nAuthorization: Bearer ${tokens[execId]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  };
  const started = performance.now();
  await Promise.all(
    Array.from({ length: sockets }, () =>
      new Promise<void>((resolve, reject) => {
        const socket = connect(Number(target.port), target.hostname);
        socket.setNoDelay(true);
        let buffer = '';
        let outstanding = 0;
        const send = () => {
          let batch = '';
          while (outstanding < depth && sent < total) {
            batch += requestText(sent++);
            outstanding += 1;
          }
          if (batch) socket.write(batch);
          if (outstanding === 0) {
            socket.end();
            resolve();
          }
        };
        socket.setEncoding('utf8');
        socket.on('connect', send);
        socket.on('error', reject);
        socket.on('data', (chunk: string) => {
          buffer += chunk;
          for (;;) {
            const headerEnd = buffer.indexOf('\r\n\r\n');
            if (headerEnd < 0) break;
            const length = Number(/\r\ncontent-length: (\d+)/i.exec(buffer.slice(0, headerEnd))?.[1] ?? '0');
            if (buffer.length < headerEnd + 4 + length) break;
            const status = buffer.slice(9, 12);
            statuses[status] = (statuses[status] ?? 0) + 1;
            buffer = buffer.slice(headerEnd + 4 + length);
            outstanding -= 1;
            received += 1;
          }
          send();
        });
      }),
    ),
  );
  const elapsedMs = performance.now() - started;
  if (received !== total) throw new Error(`sent ${total} beats, got ${received} answers`);
  return { perSecond: (total / elapsedMs) * 1000, statuses };
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
    const flint = await startEntry('flint', cluster);
    targets.push(flint);
    // warm-up (connections, JIT, the app's key cached), then the two runs interleaved, twice each,
    // and the better of each kept: on a shared machine the load drifts within a minute
    await drive(bare.url, appId, tokens, Math.min(5_000, options.beats), options.concurrency);
    await drive(flint.url, appId, tokens, Math.min(5_000, options.beats), options.concurrency);
    const half = Math.ceil(options.beats / 2);
    let bareBest = 0;
    let flintBest = 0;
    const statuses: Record<string, number> = {};
    let calls = 0;
    let usec = 0;
    for (let round = 0; round < 2; round++) {
      bareBest = Math.max(bareBest, (await drive(bare.url, appId, tokens, half, options.concurrency)).perSecond);
      const before = await evalshaStats(redis);
      const run = await drive(flint.url, appId, tokens, half, options.concurrency);
      const after = await evalshaStats(redis);
      flintBest = Math.max(flintBest, run.perSecond);
      for (const [status, count] of Object.entries(run.statuses)) statuses[status] = (statuses[status] ?? 0) + count;
      calls += after.calls - before.calls;
      usec += after.usec - before.usec;
    }
    if ((statuses['200'] ?? 0) !== 2 * half) throw new Error(`every beat should be absorbed, got ${JSON.stringify(statuses)}`);
    return {
      executors: options.executors,
      beats: 2 * half,
      concurrency: options.concurrency,
      flintPerSecond: round(flintBest, 0),
      bareHonoPerSecond: round(bareBest, 0),
      statuses,
      beatsPerScriptCall: round((2 * half) / Math.max(1, calls), 1),
      redisUsecPerBeat: round(usec / (2 * half), 2),
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
  runExecutorHeartbeatBench({ executors: 1000, beats: quick ? 20_000 : 60_000, concurrency: 256 }).then(
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
