/**
 * Recovery times:
 *  - handler crash: a master host child process is SIGKILLed while messages are
 *    queued and in flight; a second host is started at once, and the time until
 *    every message is handled is measured (in-flight jobs of the dead host come
 *    back when their BullMQ lock lapses: the host's lockDuration, MASTER_JOB_LOCK_MS);
 *  - worker loss: with spark.worker.timeout = 2 s, a simulated worker holding an
 *    executor goes silent; the time from its last heartbeat until the replacement
 *    executor is RUNNING on another worker, compared with timeout + 1 s.
 */
import { MASTER_JOB_LOCK_MS, MASTER_STALLED_CHECK_MS } from '../functions/host.ts';
import { Queue } from 'bullmq';
import { MASTER_JOB_OPTIONS } from '../client/master-client.ts';
import { bullConnection, connectRedis } from '../lib/redis.ts';
import { clusterKeys } from '../protocol/keys.ts';
import { startMaster } from '../functions/host.ts';
import { SimulatedFleet } from './fleet.ts';
import { REDIS_URL, benchCluster, benchConfig, deleteClusterKeys, round, sleep, startMasterProcess, waitUntil, type MasterProcess } from './common.ts';

export interface HandlerCrashResult {
  messages: number;
  completedBeforeKill: number;
  activeAtKill: number;
  /** SIGKILL → the second host consumes (includes its process start) */
  secondHostReadyMs: number;
  /** SIGKILL → no message left waiting (host B took every queued one) */
  queuedHandledMs: number;
  /** SIGKILL → every message handled, the dead host's in-flight ones included */
  allHandledMs: number;
  lockDurationMs: number;
  stalledCheckMs: number;
}

/**
 * runHandlerCrash queues `messages` RegisterWorker messages (each a commit script
 * and a scheduling kick), lets host A work, SIGKILLs it with most still queued,
 * starts host B and waits until the queue is empty and every worker is registered.
 */
export async function runHandlerCrash(messages: number): Promise<HandlerCrashResult> {
  const cluster = benchCluster('crash');
  const keys = clusterKeys(cluster);
  const redis = await connectRedis(REDIS_URL, { name: 'bench-crash' });
  const queue = new Queue(keys.masterQueue, { connection: bullConnection(REDIS_URL, { name: 'bench-crash-queue' }), prefix: keys.bullPrefix });
  const hosts: MasterProcess[] = [];
  try {
    const a = await startMasterProcess({ cluster, concurrency: 32 });
    hosts.push(a);
    const jobs = Array.from({ length: messages }, (_, i) => ({
      name: 'RegisterWorker',
      data: { id: `crash-${i}`, host: '127.0.0.1', port: 10000 + i, cores: 4, memoryMB: 4096, webUiUrl: '', resources: {}, labels: {}, executors: [], driverIds: [] },
      opts: MASTER_JOB_OPTIONS,
    }));
    for (let i = 0; i < jobs.length; i += 1000) await queue.addBulk(jobs.slice(i, i + 1000));
    // let A take some work, then kill it in the middle
    await waitUntil(async () => (await redis.scard(keys.workersAll)) >= Math.min(200, messages / 10), 60_000, 'host A to handle some messages', 2);
    const counts = await queue.getJobCounts('active', 'completed');
    const killedAt = performance.now();
    a.kill('SIGKILL');
    await a.exited;
    const b = await startMasterProcess({ cluster, concurrency: 32 });
    hosts.push(b);
    const secondHostReadyMs = performance.now() - killedAt;
    await waitUntil(async () => (await queue.getWaitingCount()) === 0, 120_000, 'host B to take every waiting message', 10);
    const queuedHandledMs = performance.now() - killedAt;
    await waitUntil(async () => {
      const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      return Object.values(c).every((n) => n === 0) && (await redis.scard(keys.workersAll)) === messages;
    }, 120_000, 'every queued message handled by host B', 20);
    const allHandledMs = performance.now() - killedAt;
    return {
      messages,
      completedBeforeKill: counts.completed ?? 0,
      activeAtKill: counts.active ?? 0,
      secondHostReadyMs: round(secondHostReadyMs, 0),
      queuedHandledMs: round(queuedHandledMs, 0),
      allHandledMs: round(allHandledMs, 0),
      lockDurationMs: MASTER_JOB_LOCK_MS,
      stalledCheckMs: MASTER_STALLED_CHECK_MS,
    };
  } finally {
    await Promise.allSettled(hosts.map((h) => h.stop()));
    await queue.close().catch(() => undefined);
    await deleteClusterKeys(redis, cluster);
    redis.disconnect();
  }
}

export interface WorkerLossResult {
  workerTimeoutMs: number;
  reaperIntervalMs: number;
  /** last heartbeat of the lost worker → replacement executor RUNNING */
  replacementRunningMs: number;
  /** last heartbeat → the master declared the worker DEAD (executor LOST) */
  detectedMs: number;
  budgetMs: number;
}

export async function runWorkerLoss(): Promise<WorkerLossResult> {
  const cluster = benchCluster('loss');
  const config = benchConfig(cluster, { 'spark.worker.timeout': '2s', 'spark.flint.reaper.interval': '1s' });
  const keys = clusterKeys(cluster);
  const redis = await connectRedis(REDIS_URL, { name: 'bench-loss' });
  const fleet = new SimulatedFleet({ redisUrl: REDIS_URL, config, cores: 1, memoryMB: 1024 });
  const master = await startMaster({ redisUrl: REDIS_URL, config, concurrency: 8 });
  const queue = new Queue(keys.masterQueue, { connection: bullConnection(REDIS_URL, { name: 'bench-loss-queue' }), prefix: keys.bullPrefix });
  try {
    await fleet.open();
    const [first] = await fleet.register(1, 'loss-a', 11000);
    fleet.startHeartbeats(config.workerTimeoutMs / 4);
    fleet.startAcknowledging();
    await queue.add('RegisterApplication', {
      clientId: 'bench-loss-client',
      appDescription: { name: 'loss', image: 'flint-test-busybox:latest', command: ['sleep', '60'], maxCores: 1, coresPerExecutor: 1, memoryPerExecutorMB: 64 },
    }, MASTER_JOB_OPTIONS);
    await waitUntil(() => fleet.runningAt.size === 1, 30_000, 'the first executor RUNNING');
    await fleet.register(1, 'loss-b', 12000);
    await sleep(300);
    // the worker dies: no more heartbeats from it
    fleet.silence(first!.id);
    const lastBeat = Number(await redis.zscore(keys.heartbeats, first!.id));
    const silencedAt = performance.now() - (Date.now() - lastBeat);
    await waitUntil(() => fleet.runningAt.size === 2, 30_000, 'the replacement executor RUNNING', 5);
    const replacementRunningMs = [...fleet.runningAt.values()][1]! - silencedAt;
    const deadSince = Number(await redis.hget(keys.worker(first!.id), 'deadSince'));
    return {
      workerTimeoutMs: config.workerTimeoutMs,
      reaperIntervalMs: config.reaperIntervalMs,
      replacementRunningMs: round(replacementRunningMs, 0),
      detectedMs: round(deadSince - lastBeat, 0),
      budgetMs: config.workerTimeoutMs + 1000,
    };
  } finally {
    await master.stop().catch(() => undefined);
    await fleet.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
    await deleteClusterKeys(redis, cluster);
    redis.disconnect();
  }
}
