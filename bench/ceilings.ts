/**
 * Ceilings measured in the same run as Flint's figures, so a comparison is made
 * on the same machine under the same load:
 *  - raw BullMQ: Queue.addBulk, then one Worker (concurrency 50) processing no-op jobs;
 *  - raw Lua check-and-deduct: a minimal plan applier (check a worker's free
 *    capacity, deduct, record the executor, append a launch entry), 4 placements
 *    per call, 16 callers, over 1,000 or 10,000 workers;
 *  - raw Redis SET/s with the same concurrency harness as the heartbeat benchmark.
 */
import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { bullConnection, connectRedis } from '../lib/redis.ts';
import { REDIS_URL, deleteByPattern, round, runConcurrently, waitUntil } from './common.ts';

export interface BullCeiling {
  jobs: number;
  addPerSecond: number;
  processPerSecond: number;
}

/** rawBullMq: addBulk `jobs` no-op jobs in batches of 1,000, then process them with one Worker at concurrency 50. */
export async function rawBullMq(jobs = 20_000): Promise<BullCeiling> {
  const prefix = `bench-raw-bull-${randomBytes(4).toString('hex')}`;
  const queue = new Queue('raw', { connection: bullConnection(REDIS_URL, { name: 'bench-raw-bull' }), prefix });
  const redis = await connectRedis(REDIS_URL, { name: 'bench-raw-bull-cleanup' });
  let worker: Worker | undefined;
  try {
    const addStarted = performance.now();
    for (let i = 0; i < jobs; i += 1000) {
      await queue.addBulk(Array.from({ length: Math.min(1000, jobs - i) }, (_, j) => ({ name: 'noop', data: { i: i + j }, opts: { removeOnComplete: true } })));
    }
    const addMs = performance.now() - addStarted;
    let processed = 0;
    const processStarted = performance.now();
    worker = new Worker('raw', async () => {
      processed++;
      return null;
    }, { connection: bullConnection(REDIS_URL, { name: 'bench-raw-bull-worker', blocking: true }), prefix, concurrency: 50 });
    await waitUntil(() => processed >= jobs, 300_000, `${jobs} raw BullMQ jobs processed`, 5);
    const processMs = performance.now() - processStarted;
    return { jobs, addPerSecond: round((jobs / addMs) * 1000, 0), processPerSecond: round((jobs / processMs) * 1000, 0) };
  } finally {
    await worker?.close().catch(() => undefined);
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close().catch(() => undefined);
    await deleteByPattern(redis, `${prefix}:*`);
    redis.disconnect();
  }
}

/**
 * RAW_COMMIT_LUA: the least a placement commit can do. KEYS are unused (the keys
 * share one hash tag, ARGV[1]); ARGV[2..]: worker index, cores, memory per placement.
 */
const RAW_COMMIT_LUA = `
local ns = ARGV[1]
local accepted = 0
for i = 2, #ARGV, 3 do
  local w = ns .. ':w:' .. ARGV[i]
  local cores, memory = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local free = redis.call('HMGET', w, 'coresFree', 'memoryFree')
  if tonumber(free[1]) >= cores and tonumber(free[2]) >= memory then
    redis.call('HINCRBY', w, 'coresFree', -cores)
    redis.call('HINCRBY', w, 'memoryFree', -memory)
    local execId = redis.call('INCR', ns .. ':seq')
    redis.call('HSET', ns .. ':executors', execId, ARGV[i])
    redis.call('XADD', w .. ':inbox', 'MAXLEN', '~', 1000, '*', 'type', 'LaunchExecutor', 'execId', execId)
    accepted = accepted + 1
  end
end
return accepted
`;

export interface LuaCeiling {
  workers: number;
  placementsPerSecond: number;
}

/** rawLuaCommit: placements/s of RAW_COMMIT_LUA, 4 placements per call, 16 callers. */
export async function rawLuaCommit(workers: number, placements = 40_000): Promise<LuaCeiling> {
  const ns = `bench-raw-lua-{${randomBytes(4).toString('hex')}}`;
  const connections = await Promise.all(Array.from({ length: 4 }, (_, i) => connectRedis(REDIS_URL, { name: `bench-raw-lua-${i}` })));
  const redis = connections[0]!;
  try {
    for (let i = 0; i < workers; i += 1000) {
      const p = redis.pipeline();
      for (let w = i; w < Math.min(workers, i + 1000); w++) p.hset(`${ns}:w:${w}`, 'coresFree', 1_000_000, 'memoryFree', 1_000_000_000);
      await p.exec();
    }
    const sha = (await redis.script('LOAD', RAW_COMMIT_LUA)) as string;
    const perCall = 4;
    const calls = Math.ceil(placements / perCall);
    const { perSecond } = await runConcurrently(calls, 16, async (index) => {
      const args: (string | number)[] = [ns];
      for (let k = 0; k < perCall; k++) args.push((index * perCall + k) % workers, 1, 64);
      await connections[index % connections.length]!.evalsha(sha, 0, ...args);
    });
    return { workers, placementsPerSecond: round(perSecond * perCall, 0) };
  } finally {
    await deleteByPattern(redis, `${ns}*`);
    for (const c of connections) c.disconnect();
  }
}

/** rawSetPerSecond: SET/s with `callers` concurrent callers spread over `connectionCount` connections. */
export async function rawSetPerSecond(total: number, callers: number, connectionCount: number): Promise<number> {
  const prefix = `bench-raw-set-${randomBytes(4).toString('hex')}`;
  const connections = await Promise.all(Array.from({ length: connectionCount }, (_, i) => connectRedis(REDIS_URL, { name: `bench-raw-set-${i}` })));
  try {
    const { perSecond } = await runConcurrently(total, callers, (index) => connections[index % connectionCount]!.set(`${prefix}:${index % 10_000}`, String(Date.now())));
    return round(perSecond, 0);
  } finally {
    await deleteByPattern(connections[0]!, `${prefix}:*`);
    for (const c of connections) c.disconnect();
  }
}

export type { Redis };
