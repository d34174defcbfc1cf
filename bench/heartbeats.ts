/**
 * Heartbeat absorption: recordHeartbeat (the script agents call, one ZADD + HSET
 * after the epoch check) from many simulated workers with concurrent callers,
 * next to raw SET/s through the same harness in the same run.
 */
import { connectRedis } from '../lib/redis.ts';
import { recordHeartbeat } from '../functions/store/heartbeat.ts';
import { SimulatedFleet } from './fleet.ts';
import { rawSetPerSecond } from './ceilings.ts';
import { REDIS_URL, benchCluster, benchConfig, deleteClusterKeys, round, runConcurrently } from './common.ts';

export interface HeartbeatBenchResult {
  workers: number;
  beats: number;
  callers: number;
  connections: number;
  heartbeatsPerSecond: number;
  rawSetPerSecond: number;
  outcomes: Record<string, number>;
}

export async function runHeartbeatBench(options: { workers: number; beats: number; callers: number; connections: number }): Promise<HeartbeatBenchResult> {
  const cluster = benchCluster('heartbeats');
  const config = benchConfig(cluster);
  const admin = await connectRedis(REDIS_URL, { name: 'bench-heartbeats' });
  const fleet = new SimulatedFleet({ redisUrl: REDIS_URL, config, cores: 4, memoryMB: 4096 });
  const connections = await Promise.all(Array.from({ length: options.connections }, (_, i) => connectRedis(REDIS_URL, { name: `bench-heartbeat-${i}` })));
  try {
    await fleet.open();
    const workers = await fleet.register(options.workers);
    const outcomes: Record<string, number> = {};
    const { perSecond } = await runConcurrently(options.beats, options.callers, async (index) => {
      const worker = workers[index % workers.length]!;
      const outcome = await recordHeartbeat(connections[index % connections.length]!, cluster, worker.id, worker.epoch);
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    });
    if ((outcomes.ok ?? 0) !== options.beats) throw new Error(`every beat should be recorded, got ${JSON.stringify(outcomes)}`);
    const raw = await rawSetPerSecond(options.beats, options.callers, options.connections);
    return {
      workers: options.workers,
      beats: options.beats,
      callers: options.callers,
      connections: options.connections,
      heartbeatsPerSecond: round(perSecond, 0),
      rawSetPerSecond: raw,
      outcomes,
    };
  } finally {
    for (const c of connections) c.disconnect();
    await fleet.close().catch(() => undefined);
    await deleteClusterKeys(admin, cluster);
    admin.disconnect();
  }
}
