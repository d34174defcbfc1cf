/**
 * Redis connections for every Flint process. One URL form covers the three
 * deployments Flint supports: a single Redis (`redis://` / `rediss://`), Sentinel
 * (`sentinel://host:port[,host:port]/masterName`) for failover, and nothing else
 * home-made. BullMQ needs `maxRetriesPerRequest: null` on blocking connections.
 */
import { Redis, type RedisOptions } from 'ioredis';

export { DEFAULT_REDIS_URL } from '../protocol/config.ts';

export interface ConnectOptions {
  /** connection name shown by CLIENT LIST */
  name?: string;
  /** true for connections BullMQ workers or blocking reads use */
  blocking?: boolean;
}

/** redisOptionsFromUrl: ioredis options for a redis://, rediss:// or sentinel:// URL. */
export function redisOptionsFromUrl(url: string, options: ConnectOptions = {}): RedisOptions {
  const base: RedisOptions = {
    connectionName: options.name,
    maxRetriesPerRequest: options.blocking ? null : 20,
    enableAutoPipelining: false,
    lazyConnect: false,
  };
  const parsed = new URL(url);
  if (parsed.protocol === 'sentinel:') {
    const masterName = parsed.pathname.replace(/^\//, '') || 'mymaster';
    const sentinels = parsed.host.split(',').map((hostPort) => {
      const [host, port] = hostPort.split(':');
      return { host: host!, port: Number(port ?? 26379) };
    });
    return {
      ...base,
      sentinels,
      name: masterName,
      password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
      username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    };
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new Error(`unsupported Redis URL '${url}': use redis://, rediss:// or sentinel://`);
  }
  const db = parsed.pathname.replace(/^\//, '');
  return {
    ...base,
    host: parsed.hostname || '127.0.0.1',
    port: Number(parsed.port || 6379),
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: db ? Number(db) : 0,
    tls: parsed.protocol === 'rediss:' ? {} : undefined,
  };
}

/** connectRedis opens a connection and waits until it is ready (or fails with a clear message). */
export async function connectRedis(url: string, options: ConnectOptions = {}): Promise<Redis> {
  const redis = new Redis({ ...redisOptionsFromUrl(url, options), lazyConnect: true });
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new Error(`cannot connect to Redis at ${url}: ${(error as Error).message}`, { cause: error });
  }
  return redis;
}

/** checkRedisPolicy: the production settings Flint relies on; returns warnings (empty when fine). */
export async function checkRedisPolicy(redis: Redis): Promise<string[]> {
  const warnings: string[] = [];
  try {
    const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as [string, string];
    if (policy !== 'noeviction') {
      warnings.push(`Redis maxmemory-policy is '${policy}': Flint and BullMQ need 'noeviction', or state and jobs may be evicted`);
    }
    const [, aof] = (await redis.config('GET', 'appendonly')) as [string, string];
    if (aof !== 'yes') {
      warnings.push(`Redis appendonly is '${aof}': without AOF a Redis restart loses cluster state (see infra/redis.conf)`);
    }
  } catch (error) {
    warnings.push(`cannot read Redis configuration (CONFIG GET refused: ${(error as Error).message}); make sure maxmemory-policy is noeviction and AOF is on`);
  }
  return warnings;
}

/** bullConnection: BullMQ connection options for a Flint Redis URL (BullMQ opens its own clients). */
export function bullConnection(url: string, options: ConnectOptions = {}): import('bullmq').ConnectionOptions {
  return redisOptionsFromUrl(url, options) as import('bullmq').ConnectionOptions;
}
