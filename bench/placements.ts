/**
 * Placement throughput: how many executor placements per second real master
 * hosts commit for many applications on a simulated fleet (bench/fleet.ts), and
 * where a scheduling pass spends its time (snapshot, plan, commit), measured by
 * running the pass's own three steps with timers on the same kind of state.
 */
import { SchedulingLoop } from '../functions/scheduler.ts';
import { createLogger } from '../lib/log.ts';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { clusterKeys } from '../protocol/keys.ts';
import { MASTER_JOB_OPTIONS } from '../client/master-client.ts';
import { bullConnection, connectRedis } from '../lib/redis.ts';
import { MasterStore } from '../functions/store/master-store.ts';
import { SimulatedFleet } from './fleet.ts';
import { REDIS_URL, benchCluster, benchConfig, deleteClusterKeys, percentile, round, sleep, startMasterProcess, waitUntil, type MasterProcess, type MasterStats, benchAppDescription } from './common.ts';

export interface PlacementBenchOptions {
  workers: number;
  coresPerWorker: number;
  apps: number;
  executorsPerApp: number;
  masterProcesses: number;
  /** node flags for the master processes (e.g. --cpu-prof) */
  nodeFlags?: string[];
}

export interface PlacementBenchResult {
  workers: number;
  apps: number;
  placements: number;
  masterProcesses: number;
  registrationPerSecond: number;
  /** placements committed per second, from the first RegisterApplication queued to the last placement committed */
  placementsPerSecond: number;
  placementMs: number;
  /** from the first RegisterApplication queued until every executor was reported RUNNING and the master handled it */
  allRunningMs: number;
  passes: number;
  passMsP50: number;
  passMsMax: number;
  rejectedPlacements: number;
}


export async function runPlacementBench(options: PlacementBenchOptions): Promise<PlacementBenchResult> {
  const cluster = benchCluster(`place-${options.workers}-${options.masterProcesses}`);
  const config = benchConfig(cluster);
  const keys = clusterKeys(cluster);
  const redis = await connectRedis(REDIS_URL, { name: 'bench-placements' });
  const fleet = new SimulatedFleet({ redisUrl: REDIS_URL, config, cores: options.coresPerWorker, memoryMB: options.coresPerWorker * 1024 });
  const masters: MasterProcess[] = [];
  const queue = new Queue(keys.masterQueue, { connection: bullConnection(REDIS_URL, { name: 'bench-submit' }), prefix: keys.bullPrefix });
  try {
    await fleet.open();
    const regStarted = performance.now();
    await fleet.register(options.workers);
    const registrationPerSecond = options.workers / ((performance.now() - regStarted) / 1000);
    fleet.startHeartbeats(config.workerTimeoutMs / 4);
    fleet.startAcknowledging();
    for (let i = 0; i < options.masterProcesses; i++) masters.push(await startMasterProcess({ cluster, nodeFlags: options.nodeFlags }));
    // let the registrations' passes settle (no apps yet: nothing to place)
    await waitUntil(async () => {
      const [dirty, done] = await redis.mget(keys.scheduleDirty, keys.scheduleDone);
      return dirty === done;
    }, 30_000, 'the registration passes to settle');

    const placements = options.apps * options.executorsPerApp;
    const jobs = Array.from({ length: options.apps }, (_, i) => ({
      name: 'RegisterApplication',
      data: { clientId: `bench-client-${i}`, appDescription: benchAppDescription(`bench-app-${i}`, options.executorsPerApp) },
      opts: MASTER_JOB_OPTIONS,
    }));
    const started = performance.now();
    await queue.addBulk(jobs);
    await waitUntil(async () => Number((await redis.hget(keys.stats, 'placements')) ?? 0) >= placements, 120_000, `${placements} placements`, 5);
    const placementMs = performance.now() - started;
    await waitUntil(async () => fleet.acknowledged >= placements, 120_000, 'every launch acknowledged', 20);
    await waitUntil(async () => {
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      return Object.values(counts).every((n) => n === 0);
    }, 120_000, 'the RUNNING reports to be handled', 20);
    const allRunningMs = performance.now() - started;

    const committed = Number((await redis.hget(keys.stats, 'placements')) ?? 0);
    if (committed !== placements) throw new Error(`expected exactly ${placements} placements, the master committed ${committed}`);
    for (const master of masters) await master.stop();
    const stats = masters.map((m) => m.stats()).filter((s): s is MasterStats => s !== undefined);
    const passMs = stats.flatMap((s) => s.passMs);
    return {
      workers: options.workers,
      apps: options.apps,
      placements,
      masterProcesses: options.masterProcesses,
      registrationPerSecond: round(registrationPerSecond, 0),
      placementsPerSecond: round((placements / placementMs) * 1000, 0),
      placementMs: round(placementMs, 0),
      allRunningMs: round(allRunningMs, 0),
      passes: stats.reduce((n, s) => n + s.passes, 0),
      passMsP50: round(percentile(passMs, 50)),
      passMsMax: round(Math.max(0, ...passMs)),
      rejectedPlacements: stats.reduce((n, s) => n + s.rejected, 0),
    };
  } finally {
    await Promise.allSettled(masters.map((m) => m.stop()));
    await fleet.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
    await deleteClusterKeys(redis, cluster);
    redis.disconnect();
  }
}

export interface PassProfile {
  workers: number;
  apps: number;
  placements: number;
  snapshotMs: number;
  planMs: number;
  commitMs: number;
  /** commit time per placement in µs (the Lua plan applier) */
  commitUsPerPlacement: number;
}

/**
 * profilePass fills a fresh cluster with workers and waiting apps (through the
 * commit scripts) and runs one scheduling pass of the real SchedulingLoop, which
 * reports its three steps: snapshot, plan, commit (in batches of 256).
 */
export async function profilePass(options: { workers: number; coresPerWorker: number; apps: number; executorsPerApp: number }): Promise<PassProfile> {
  const cluster = benchCluster(`profile-${options.workers}`);
  const config = benchConfig(cluster);
  const redis: Redis = await connectRedis(REDIS_URL, { name: 'bench-profile' });
  const store = new MasterStore(redis, config);
  const fleet = new SimulatedFleet({ redisUrl: REDIS_URL, config, cores: options.coresPerWorker, memoryMB: options.coresPerWorker * 1024 });
  try {
    await fleet.open();
    await fleet.register(options.workers);
    for (let i = 0; i < options.apps; i++) {
      const desc = benchAppDescription(`profile-app-${i}`, options.executorsPerApp);
      const parsed = (await import('../protocol/messages.ts')).ApplicationDescription.parse(desc);
      await store.registerApplication(`profile-client-${i}`, parsed, { requestedCores: options.executorsPerApp, executorLimit: -1 }, Date.now());
    }
    const pass = await new SchedulingLoop({ store, config, log: createLogger('bench-profile') }).runPassOnce();
    return {
      workers: options.workers,
      apps: options.apps,
      placements: pass.executors,
      snapshotMs: round(pass.snapshotMs),
      planMs: round(pass.planMs),
      commitMs: round(pass.commitMs),
      commitUsPerPlacement: round((pass.commitMs * 1000) / Math.max(1, pass.executors)),
    };
  } finally {
    await fleet.close().catch(() => undefined);
    await sleep(10);
    await deleteClusterKeys(redis, cluster);
    redis.disconnect();
  }
}
