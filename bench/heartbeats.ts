/**
 * Heartbeat absorption: recordHeartbeat (the script agents call, one ZADD + HSET
 * after the epoch check) from many simulated workers with concurrent callers,
 * next to raw SET/s through the same harness in the same run.
 */
import type { Redis } from 'ioredis';
import { connectRedis } from '../lib/redis.ts';
import { recordHeartbeat } from '../lib/worker-heartbeat.ts';
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
  /** Redis's own time per heartbeat script call, per HMGET and ZADD inside it, and per raw SET (INFO commandstats), in µs */
  redisUsecPerBeat: number;
  redisUsecPerDataCommand: { hmget: number; zadd: number };
  redisUsecPerSet: number;
}

/** commandUsec: total calls and µs Redis has spent on `command` since its stats were last reset. */
async function commandUsec(redis: Redis, command: string): Promise<{ calls: number; usec: number }> {
  const line = new RegExp(`^cmdstat_${command}:calls=(\\d+),usec=(\\d+)`, 'm').exec(await redis.info('commandstats'));
  return { calls: Number(line?.[1] ?? 0), usec: Number(line?.[2] ?? 0) };
}

/** usecPerCall: Redis's µs per call of each of `commands` while `work` ran (other clients' calls in that window count too). */
async function usecPerCall<T>(redis: Redis, commands: string[], work: () => Promise<T>): Promise<{ result: T; usecPerCall: Record<string, number> }> {
  const before = await Promise.all(commands.map((command) => commandUsec(redis, command)));
  const result = await work();
  const after = await Promise.all(commands.map((command) => commandUsec(redis, command)));
  const usec: Record<string, number> = {};
  commands.forEach((command, i) => {
    const calls = after[i]!.calls - before[i]!.calls;
    usec[command] = calls > 0 ? round((after[i]!.usec - before[i]!.usec) / calls, 2) : 0;
  });
  return { result, usecPerCall: usec };
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
    const beats = await usecPerCall(admin, ['evalsha', 'hmget', 'zadd'], () =>
      runConcurrently(options.beats, options.callers, async (index) => {
        const worker = workers[index % workers.length]!;
        const outcome = await recordHeartbeat(connections[index % connections.length]!, cluster, worker.id, worker.epoch);
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      }),
    );
    const perSecond = beats.result.perSecond;
    if ((outcomes.ok ?? 0) !== options.beats) throw new Error(`every beat should be recorded, got ${JSON.stringify(outcomes)}`);
    const raw = await usecPerCall(admin, ['set'], () => rawSetPerSecond(options.beats, options.callers, options.connections));
    return {
      workers: options.workers,
      beats: options.beats,
      callers: options.callers,
      connections: options.connections,
      heartbeatsPerSecond: round(perSecond, 0),
      rawSetPerSecond: raw.result,
      outcomes,
      redisUsecPerBeat: beats.usecPerCall.evalsha!,
      redisUsecPerDataCommand: { hmget: beats.usecPerCall.hmget!, zadd: beats.usecPerCall.zadd! },
      redisUsecPerSet: raw.usecPerCall.set!,
    };
  } finally {
    for (const c of connections) c.disconnect();
    await fleet.close().catch(() => undefined);
    await deleteClusterKeys(admin, cluster);
    admin.disconnect();
  }
}
