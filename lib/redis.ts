/**
 * Redis connections for every Flint process. One URL names each deployment Flint
 * supports: a single Redis (`redis://` / `rediss://`), Sentinel
 * (`sentinel://host:port[,host:port]/masterName`) for failover, and Redis Cluster
 * (`redis-cluster://host:port[,host:port]`, `rediss-cluster://` with TLS) for
 * several Flint clusters spread over shards. Every key of one Flint cluster shares
 * one hash tag (protocol/keys.ts), so on Redis Cluster it lives in one hash slot:
 * commit scripts and BullMQ's scripts stay atomic there. Flint's processes
 * connect with connectRedisOrCluster and hand BullMQ bullConnection; BullMQ needs
 * `maxRetriesPerRequest: null` on blocking connections.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { AUTH_HINT, isAuthError } from './redis-credentials.ts';

export { DEFAULT_REDIS_URL } from '../protocol/config.ts';

/** RedisConnection: what connectRedisOrCluster returns; both speak the same commands. */
export type RedisConnection = Redis | Cluster;

export interface ConnectOptions {
  /** connection name shown by CLIENT LIST */
  name?: string;
  /** true for connections BullMQ workers or blocking reads use */
  blocking?: boolean;
}

export interface RedisNode {
  host: string;
  port: number;
}

/** RedisTarget: a parsed Flint Redis URL: one ioredis `Redis` (single or via Sentinel), or a `Cluster`. */
export type RedisTarget =
  | { kind: 'redis'; options: RedisOptions }
  | { kind: 'cluster'; nodes: RedisNode[]; options: ClusterOptions };

/** REDIS_URL_FORMS: what a Flint Redis URL may look like (error messages and help). */
export const REDIS_URL_FORMS = 'redis://, rediss://, sentinel://host:port[,host:port]/masterName or redis-cluster://host:port[,host:port] (rediss-cluster:// for TLS)';

/** CLUSTER_CONNECT_TIMEOUT_MS: how long connectRedisOrCluster waits for a Redis Cluster to report a usable state. */
export const CLUSTER_CONNECT_TIMEOUT_MS = 15_000;

/** redactRedisUrl: the URL with its password replaced, for messages and logs. */
export function redactRedisUrl(url: string): string {
  // greedy up to the last '@': a password may hold an unencoded '@' or '/' that the parsers accept
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*:).*@/i, '$1***@');
}

/**
 * redisTargetFromUrl parses a Flint Redis URL into ioredis options. Bad input
 * throws an Error that names the URL (password hidden) and what is wrong.
 */
export function redisTargetFromUrl(url: string, options: ConnectOptions = {}): RedisTarget {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  const node: RedisOptions = {
    connectionName: options.name,
    maxRetriesPerRequest: options.blocking ? null : 20,
    enableAutoPipelining: false,
    lazyConnect: false,
  };
  switch (scheme) {
    case 'redis':
    case 'rediss':
      return { kind: 'redis', options: { ...node, ...singleNodeOptions(url) } };
    case 'sentinel': {
      const parts = multiHostUrl(url, 26379);
      if (parts.query) throw badUrl(url, 'query parameters are not supported');
      return {
        kind: 'redis',
        options: { ...node, sentinels: parts.nodes, name: parts.path || 'mymaster', username: parts.username, password: parts.password },
      };
    }
    case 'redis-cluster':
    case 'rediss-cluster': {
      const parts = multiHostUrl(url, 6379);
      if (parts.path) throw badUrl(url, 'Redis Cluster has only database 0: remove the path');
      if (parts.query) throw badUrl(url, 'query parameters are not supported');
      return {
        kind: 'cluster',
        nodes: parts.nodes,
        options: {
          // the defaults spelled out: they are what Flint is tested with
          enableReadyCheck: true,
          maxRedirections: 16,
          retryDelayOnFailover: 100,
          retryDelayOnClusterDown: 100,
          retryDelayOnTryAgain: 100,
          // a replica may lag its primary; handlers read what they just wrote
          scaleReads: 'master',
          enableAutoPipelining: false,
          lazyConnect: false,
          redisOptions: {
            connectionName: options.name,
            maxRetriesPerRequest: node.maxRetriesPerRequest,
            username: parts.username,
            password: parts.password,
            tls: scheme === 'rediss-cluster' ? {} : undefined,
          },
        },
      };
    }
    default:
      throw badUrl(url, `unsupported scheme: use ${REDIS_URL_FORMS}`);
  }
}

function badUrl(url: string, why: string): Error {
  return new Error(`invalid Redis URL '${redactRedisUrl(url)}': ${why}`);
}

function singleNodeOptions(url: string): RedisOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw badUrl(url, 'not a URL (expected redis://[user:password@]host[:port][/db])');
  }
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw badUrl(url, `database '${db}' is not a number`);
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port: parsed.port ? parsePort(url, parsed.port) : 6379,
    username: parsed.username ? decode(url, parsed.username) : undefined,
    password: parsed.password ? decode(url, parsed.password) : undefined,
    db: db ? Number(db) : 0,
    tls: parsed.protocol === 'rediss:' ? {} : undefined,
  };
}

/**
 * multiHostUrl splits `scheme://[user[:password]@]host[:port][,host[:port]...][/path][?query]`.
 * WHATWG URL parsing refuses a comma-separated host list, so this one is by hand.
 */
function multiHostUrl(url: string, defaultPort: number): { nodes: RedisNode[]; username?: string; password?: string; path: string; query: string } {
  const rest = url.slice(url.indexOf('://') + 3);
  const authorityEnd = rest.search(/[/?#]/);
  const authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
  const tail = authorityEnd < 0 ? '' : rest.slice(authorityEnd);
  if (tail.includes('#')) throw badUrl(url, 'a fragment (#...) is not allowed; percent-encode # in a password as %23');
  const queryStart = tail.indexOf('?');
  const path = (queryStart < 0 ? tail : tail.slice(0, queryStart)).replace(/^\//, '');
  const query = queryStart < 0 ? '' : tail.slice(queryStart + 1);
  const at = authority.lastIndexOf('@');
  const userInfo = at < 0 ? '' : authority.slice(0, at);
  const hostList = at < 0 ? authority : authority.slice(at + 1);
  const colon = userInfo.indexOf(':');
  const username = colon < 0 ? userInfo : userInfo.slice(0, colon);
  const password = colon < 0 ? '' : userInfo.slice(colon + 1);
  if (!hostList) throw badUrl(url, 'no host: list host:port[,host:port...]');
  const nodes = hostList.split(',').map((entry) => {
    if (!entry) throw badUrl(url, 'an empty entry in the host list');
    const match = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::([^:]*))?$/.exec(entry);
    if (!match) throw badUrl(url, `'${entry}' is not host[:port] (write IPv6 addresses as [::1]:port)`);
    return { host: (match[1] ?? match[2])!, port: match[3] === undefined ? defaultPort : parsePort(url, match[3]) };
  });
  return {
    nodes,
    username: username ? decode(url, username) : undefined,
    password: password ? decode(url, password) : undefined,
    path: decode(url, path),
    query,
  };
}

function parsePort(url: string, text: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) throw badUrl(url, `port '${text}' is not a number from 1 to 65535`);
  return port;
}

function decode(url: string, text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw badUrl(url, 'malformed percent-encoding');
  }
}

/**
 * connectRedis opens a connection to one Redis server (redis://, rediss://, or the
 * primary a sentinel:// URL names) and waits until it is ready, or fails with a
 * clear message. Tools that need one server (INFO, CONFIG, a SCAN of the whole
 * keyspace) use it; Flint's processes use connectRedisOrCluster.
 */
export async function connectRedis(url: string, options: ConnectOptions = {}): Promise<Redis> {
  const target = redisTargetFromUrl(url, options);
  if (target.kind === 'cluster') {
    throw new Error(`'${redactRedisUrl(url)}' names a Redis Cluster; this needs one Redis server (redis://, rediss:// or sentinel://)`);
  }
  const redis = new Redis({ ...target.options, lazyConnect: true });
  // a refused handshake (NOAUTH, WRONGPASS) arrives as an 'error' event; connect() only says the connection closed
  let handshakeError: Error | undefined;
  const onError = (error: Error) => (handshakeError ??= error);
  redis.on('error', onError);
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    const reason = handshakeError ?? (error as Error);
    throw new Error(`cannot connect to Redis at ${redactRedisUrl(url)}: ${reason.message.split('\n')[0]}${isAuthError(reason) ? ` (${AUTH_HINT})` : ''}`, { cause: error });
  } finally {
    redis.off('error', onError);
  }
  return redis;
}

/**
 * connectRedisOrCluster opens the connection a Flint process keeps its state
 * through: connectRedis's, or for a cluster URL an ioredis Cluster, ready once
 * it has the slot map and the cluster reports a usable state.
 */
export async function connectRedisOrCluster(url: string, options: ConnectOptions = {}): Promise<RedisConnection> {
  const target = redisTargetFromUrl(url, options);
  if (target.kind === 'redis') return connectRedis(url, options);
  const cluster = new Cluster(target.nodes, { ...target.options, lazyConnect: true });
  // ioredis reports only "None of startup nodes is available"; the nodes' own answer says why
  let lastNodeError: Error | undefined;
  const onError = (error: Error & { lastNodeError?: Error }) => (lastNodeError = error.lastNodeError ?? error);
  cluster.on('error', onError);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      cluster.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not ready within ${CLUSTER_CONNECT_TIMEOUT_MS} ms (is cluster_state ok on every node?)`)), CLUSTER_CONNECT_TIMEOUT_MS);
      }),
    ]);
  } catch (error) {
    cluster.disconnect();
    const detail = lastNodeError && lastNodeError.message !== (error as Error).message ? ` (${lastNodeError.message})` : '';
    const hint = isAuthError(error) || isAuthError(lastNodeError) ? ` (${AUTH_HINT})` : '';
    throw new Error(`cannot connect to Redis Cluster at ${redactRedisUrl(url)}: ${(error as Error).message}${detail}${hint}`, { cause: error });
  } finally {
    clearTimeout(timer);
    cluster.off('error', onError);
  }
  return cluster;
}

/** scanTargets: the servers a SCAN of the whole keyspace must visit (every master of a cluster). */
export function scanTargets(redis: RedisConnection): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

/** everyNode: every server of a deployment (all nodes of a Redis Cluster): per-server settings such as ACL users go to each. */
export function everyNode(redis: RedisConnection): Redis[] {
  return redis instanceof Cluster ? redis.nodes('all') : [redis];
}

/**
 * checkRedisPolicy: the production settings Flint relies on; returns warnings
 * (empty when fine). On Redis Cluster every master node is checked, since each
 * holds some Flint clusters' state.
 */
export async function checkRedisPolicy(redis: RedisConnection): Promise<string[]> {
  if (!(redis instanceof Cluster)) return checkNodePolicy(redis, 'Redis');
  const masters = redis.nodes('master');
  const warnings = await Promise.all(masters.map((node) => checkNodePolicy(node, `Redis Cluster node ${node.options.host}:${node.options.port}`)));
  return warnings.flat();
}

async function checkNodePolicy(redis: Redis, what: string): Promise<string[]> {
  const warnings: string[] = [];
  try {
    const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as [string, string];
    if (policy !== 'noeviction') {
      warnings.push(`${what} maxmemory-policy is '${policy}': Flint and BullMQ need 'noeviction', or state and jobs may be evicted`);
    }
    const [, aof] = (await redis.config('GET', 'appendonly')) as [string, string];
    if (aof !== 'yes') {
      warnings.push(`${what} appendonly is '${aof}': without AOF a Redis restart loses cluster state (see infra/redis.conf)`);
    }
  } catch (error) {
    warnings.push(`cannot read ${what} configuration (CONFIG GET refused: ${(error as Error).message}); make sure maxmemory-policy is noeviction and AOF is on`);
  }
  return warnings;
}

/**
 * bullConnection: the `connection` of a BullMQ Queue, Worker or QueueEvents for a
 * Flint Redis URL. For redis:// and sentinel:// these are options: BullMQ opens
 * and closes its own clients. For a cluster URL it is a Cluster client that
 * connects on first use: BullMQ duplicates it for blocking reads but never closes
 * a client it was handed, so the BullMQ object is closed with closeBull.
 */
export function bullConnection(url: string, options: ConnectOptions = {}): import('bullmq').ConnectionOptions {
  const target = redisTargetFromUrl(url, options);
  if (target.kind === 'redis') return target.options as import('bullmq').ConnectionOptions;
  return new Cluster(target.nodes, { ...target.options, lazyConnect: true });
}

/** closeBull closes a BullMQ Queue, Worker or QueueEvents, and the Cluster client bullConnection made for it. */
export async function closeBull(bull: { close(): Promise<void>; opts: { connection: import('bullmq').ConnectionOptions } }): Promise<void> {
  try {
    await bull.close();
  } finally {
    if (bull.opts.connection instanceof Cluster) bull.opts.connection.disconnect();
  }
}
