/**
 * Redis memory under launch churn (issue 11.5): what Redis holds after 100,000 executor
 * launches and exits on 100 simulated workers, at 50,000 and at 100,000, on a Redis of
 * its own (the embedded redis-server, same version and settings), so `used_memory` is
 * Flint's alone. Its baseline, measured in the same run, is that empty server and the
 * same server with the 100 workers registered.
 *
 * The workload keeps everything that grows with launches busy at once:
 *   - LONG_APPS applications live for the whole run; their executors exit normally and
 *     the master replaces them at once (Spark relaunches while an app wants cores), so
 *     each launches thousands of executors (per-application history);
 *   - short applications of LAUNCHES_PER_SHORT_APP launches each are unregistered and
 *     replaced as they finish, hundreds of them (retained completed applications);
 *   - each simulated worker reads its own inbox with the agents' consumer group (a
 *     blocking XREADGROUP per worker, as an agent does), acknowledges and deletes what it
 *     read (workers/inbox/acknowledge.ts), heartbeats, and reports RUNNING then EXITED(0)
 *     for every launch through the master queue, to a real master host process.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { startEmbeddedRedis, type EmbeddedRedis } from '../lib/embedded-redis.ts';
import { bullConnection, closeBull } from '../lib/redis.ts';
import { clusterKeys, type Keys } from '../protocol/keys.ts';
import { decodeInboxEntry, INBOX_GROUP, type RawStreamEntry } from '../protocol/streams.ts';
import { MASTER_JOB_OPTIONS, MasterClient } from '../client/master-client.ts';
import { recordHeartbeat } from '../lib/worker-heartbeat.ts';
import { acknowledgeInboxEntries } from '../workers/inbox/acknowledge.ts';
import { benchAppDescription, benchConfig, round, sleep, startMasterProcess, type MasterProcess } from './common.ts';

export interface MemoryCheckpoint {
  launches: number;
  elapsedMs: number;
  usedMemoryBytes: number;
  keys: number;
  /** Redis memory by key family (MEMORY USAGE summed over a SCAN), largest first */
  families: { family: string; keys: number; bytes: number }[];
}

export interface MemoryBenchResult {
  workers: number;
  coresPerWorker: number;
  launches: number;
  launchesPerSecond: number;
  applications: { long: number; short: number; completed: number };
  baseline: { emptyBytes: number; registeredWorkersBytes: number };
  checkpoints: MemoryCheckpoint[];
}

export interface MemoryBenchOptions {
  workers: number;
  coresPerWorker: number;
  launches: number;
  checkpoints: number[];
}

const LONG_APPS = 4;
const SHORT_APPS_AT_ONCE = 16;
const LAUNCHES_PER_SHORT_APP = 50;

/** family: a key's name with ids replaced, e.g. `app:*:executors`, `master:<job>`. */
function family(key: string, ns: string): string {
  const rest = key.slice(ns.length + 1);
  if (rest.startsWith('master:')) {
    const part = rest.slice('master:'.length);
    return /^[a-z-]+$/.test(part) ? `master:${part}` : /:logs$/.test(part) ? 'master:<job>:logs' : 'master:<job>';
  }
  return rest
    .replace(/^app:[^:]+/, 'app:*')
    .replace(/^worker:[^:]+/, 'worker:*')
    .replace(/^driver:[^:]+/, 'driver:*')
    .replace(/^secret:app:.+/, 'secret:app:*')
    .replace(/^request:.+/, 'request:*');
}

async function measure(redis: Redis, keys: Keys, launches: number, started: number): Promise<MemoryCheckpoint> {
  const usedMemoryBytes = Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))![1]);
  const byFamily = new Map<string, { keys: number; bytes: number }>();
  const ns = `flint{${keys.cluster}}`;
  let cursor = '0';
  let total = 0;
  do {
    const [next, found] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    const pipeline = redis.pipeline();
    for (const key of found) pipeline.memory('USAGE', key, 'SAMPLES', '0');
    const sizes = (await pipeline.exec()) ?? [];
    found.forEach((key, i) => {
      const name = family(key, ns);
      const entry = byFamily.get(name) ?? { keys: 0, bytes: 0 };
      entry.keys += 1;
      entry.bytes += Number(sizes[i]?.[1] ?? 0);
      byFamily.set(name, entry);
    });
    total += found.length;
  } while (cursor !== '0');
  const families = [...byFamily].map(([name, v]) => ({ family: name, ...v })).sort((a, b) => b.bytes - a.bytes);
  return { launches, elapsedMs: round(performance.now() - started, 0), usedMemoryBytes, keys: total, families };
}

export async function runMemoryBench(options: MemoryBenchOptions): Promise<MemoryBenchResult> {
  const embedded: EmbeddedRedis = await startEmbeddedRedis();
  const redisUrl = embedded.adminUrl;
  const cluster = 'bench-memory';
  const keys = clusterKeys(cluster);
  const config = benchConfig(cluster);
  const redis = new Redis(redisUrl);
  const blocking: Redis[] = [];
  let master: MasterProcess | undefined;
  let client: MasterClient | undefined;
  let queue: Queue | undefined;
  let stopped = false;
  const loops: Promise<void>[] = [];
  try {
    const emptyBytes = Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))![1]);
    master = await startMasterProcess({ cluster, redisUrl, concurrency: 32 });
    client = new MasterClient(redisUrl, cluster, 'bench-memory');
    queue = new Queue(keys.masterQueue, { connection: bullConnection(redisUrl, { name: 'bench-memory-reports' }), prefix: keys.bullPrefix });

    // the fleet: registered through the master, like agents
    const workers: { id: string; epoch: number }[] = [];
    for (let i = 0; i < options.workers; i++) {
      const id = `mem-${String(i).padStart(3, '0')}`;
      const reply = await client.ask<{ type: string; epoch: number; message?: string }>('RegisterWorker', {
        id, host: '127.0.0.1', port: 30000 + i, cores: options.coresPerWorker, memoryMB: options.coresPerWorker * 1024, webUiUrl: '', resources: {}, labels: {}, executors: [], driverIds: [],
      }, 30_000);
      if (reply.type !== 'RegisteredWorker') throw new Error(`worker ${id} was refused: ${reply.message}`);
      workers.push({ id, epoch: reply.epoch });
      await redis.xgroup('CREATE', keys.workerInbox(id), INBOX_GROUP, '0', 'MKSTREAM');
    }
    const beat = setInterval(() => {
      for (const w of workers) void recordHeartbeat(redis, cluster, w.id, w.epoch).catch(() => undefined);
    }, config.workerTimeoutMs / 4);
    beat.unref();
    await sleep(500);
    const registeredWorkersBytes = Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))![1]);

    let launches = 0;
    const launchesByApp = new Map<string, number>();
    const started = performance.now();
    // checkpoints are taken the moment the count crosses them, while everything keeps running
    const checkpoints: MemoryCheckpoint[] = [];
    const pending = [...options.checkpoints].sort((a, b) => a - b);
    const measuring: Promise<void>[] = [];
    let allMeasured!: () => void;
    const done = new Promise<void>((resolve) => (allMeasured = resolve));
    const counted = () => {
      launches += 1;
      if (pending.length > 0 && launches >= pending[0]!) {
        pending.shift();
        const last = pending.length === 0;
        measuring.push(
          measure(redis, keys, launches, started).then((checkpoint) => {
            checkpoints.push(checkpoint);
            process.stdout.write(`bench: memory after ${checkpoint.launches.toLocaleString('en-US')} launches: used_memory ${(checkpoint.usedMemoryBytes / 1048576).toFixed(1)} MB\n`);
            if (last) allMeasured();
          }),
        );
      }
    };
    for (const w of workers) {
      const reader = new Redis(redisUrl, { maxRetriesPerRequest: null });
      reader.on('error', () => undefined);
      blocking.push(reader);
      const inbox = keys.workerInbox(w.id);
      loops.push(
        (async () => {
          while (!stopped) {
            let read: [string, RawStreamEntry[]][] | null;
            try {
              read = (await reader.xreadgroup('GROUP', INBOX_GROUP, w.id, 'COUNT', 200, 'BLOCK', 500, 'STREAMS', inbox, '>')) as [string, RawStreamEntry[]][] | null;
            } catch (error) {
              if (stopped) return;
              throw error;
            }
            if (!read) continue;
            const entries = read[0]![1];
            const jobs: { name: string; data: unknown; opts: typeof MASTER_JOB_OPTIONS }[] = [];
            for (const entry of entries) {
              const decoded = decodeInboxEntry(entry);
              if (decoded.type !== 'LaunchExecutor' || !decoded.parsed.ok) continue;
              const launch = decoded.parsed.value.body as { appId: string; execId: number; epoch: number };
              if (launch.epoch !== w.epoch) continue;
              counted();
              launchesByApp.set(launch.appId, (launchesByApp.get(launch.appId) ?? 0) + 1);
              const report = { appId: launch.appId, execId: launch.execId, workerId: w.id, epoch: w.epoch };
              jobs.push({ name: 'ExecutorStateChanged', data: { ...report, state: 'RUNNING' }, opts: MASTER_JOB_OPTIONS });
              jobs.push({ name: 'ExecutorStateChanged', data: { ...report, state: 'EXITED', exitStatus: 0, message: 'Command exited with code 0' }, opts: MASTER_JOB_OPTIONS });
            }
            if (jobs.length) await queue!.addBulk(jobs);
            await acknowledgeInboxEntries(redis, inbox, INBOX_GROUP, entries.map(([id]) => id));
          }
        })(),
      );
    }

    // applications: a few for the whole run, and short ones replaced as they finish
    let shortRegistered = 0;
    const register = async (name: string, cores: number) => {
      const reply = await client!.ask<{ appId: string }>('RegisterApplication', { clientId: `${name}-${shortRegistered}-${Date.now()}`, appDescription: benchAppDescription(name, cores) }, 30_000);
      launchesByApp.set(reply.appId, launchesByApp.get(reply.appId) ?? 0);
      return reply.appId;
    };
    const capacity = options.workers * options.coresPerWorker;
    for (let i = 0; i < LONG_APPS; i++) await register(`long-${i}`, Math.floor(capacity / 2 / LONG_APPS));
    const shortCores = Math.max(1, Math.floor(capacity / 2 / SHORT_APPS_AT_ONCE));
    const shortApps = new Set<string>();
    for (let i = 0; i < SHORT_APPS_AT_ONCE; i++) shortApps.add(await register(`short-${shortRegistered++}`, shortCores));

    let lastProgress = launches;
    let lastProgressAt = Date.now();
    let finished = false;
    void done.then(() => (finished = true));
    while (!finished) {
      await Promise.race([sleep(50), done]);
      if (finished) break;
      if (launches !== lastProgress) {
        lastProgress = launches;
        lastProgressAt = Date.now();
      } else if (Date.now() - lastProgressAt > 60_000) {
        throw new Error(`memory bench: no launch for 60 s (at ${launches})`);
      }
      // finished short applications leave; new ones take their place (asked in parallel: asks wait behind the reports in the queue)
      const leaving = [...shortApps].filter((appId) => (launchesByApp.get(appId) ?? 0) >= LAUNCHES_PER_SHORT_APP);
      if (leaving.length === 0) continue;
      for (const appId of leaving) {
        shortApps.delete(appId);
        launchesByApp.delete(appId);
      }
      await Promise.all(leaving.map((appId) => client!.send('UnregisterApplication', { appId })));
      const joined = await Promise.all(leaving.map(() => register(`short-${shortRegistered++}`, shortCores)));
      for (const appId of joined) shortApps.add(appId);
    }
    await Promise.all(measuring);
    checkpoints.sort((a, b) => a.launches - b.launches);
    const elapsedS = (performance.now() - started) / 1000;
    clearInterval(beat);
    return {
      workers: options.workers,
      coresPerWorker: options.coresPerWorker,
      launches,
      launchesPerSecond: round(launches / elapsedS, 0),
      applications: { long: LONG_APPS, short: shortRegistered, completed: await redis.llen(keys.appsCompleted) },
      baseline: { emptyBytes, registeredWorkersBytes },
      checkpoints,
    };
  } finally {
    stopped = true;
    for (const reader of blocking) reader.disconnect();
    await Promise.allSettled(loops);
    if (queue) await closeBull(queue);
    await client?.close();
    await master?.stop();
    redis.disconnect();
    await embedded.stop();
  }
}
