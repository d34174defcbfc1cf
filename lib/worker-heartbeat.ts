/**
 * recordHeartbeat: Spark's Heartbeat, shared by the worker agent (which sends it) and
 * the master (whose decision it is). A beat is one small standalone script call
 * (HMGET + ZADD), never a queue job, so heartbeats stay cheap at 10,000 workers. The
 * script lives here rather than among the master's commit scripts so that an agent
 * loads only this one script onto its connection, and imports nothing of the master.
 */
import type { RedisConnection } from './redis.ts';
import { clusterKeys, type Keys } from '../protocol/keys.ts';

export type HeartbeatOutcome = 'ok' | 'reconnect' | 'stale' | 'unknown';

/**
 * RECORD_HEARTBEAT_LUA: the master's Heartbeat handler, run in Redis.
 *   KEYS[1] the worker's hash (read only)  KEYS[2] the heartbeats zset  KEYS[3] the worker's inbox
 *   ARGV[1] workerId  ARGV[2] epoch  ARGV[3] ReconnectWorker body (JSON)
 * The beat is timed with Redis's clock (TIME), like everything the worker-timeout check
 * compares with, so no host's clock drift matters.
 * Returns 'ok' (recorded), 'reconnect' (the worker is DEAD: ReconnectWorker was written to
 * its inbox, as Spark sends it), 'stale' (a newer registration of this worker exists: the
 * caller is an old incarnation), 'unknown' (never registered or already forgotten).
 */
export const RECORD_HEARTBEAT_LUA = `
local w = redis.call('HMGET', KEYS[1], 'state', 'epoch')
if not w[1] then return 'unknown' end
if w[1] == 'DEAD' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, '*', 'type', 'ReconnectWorker', 'body', ARGV[3])
  return 'reconnect'
end
if w[2] ~= ARGV[2] then return 'stale' end
-- the zset is the only place a beat is written (readers take a live worker's last beat from it)
local t = redis.call('TIME')
redis.call('ZADD', KEYS[2], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[1])
return 'ok'
`;

const COMMAND = 'flint_record_heartbeat';
const LOADED = Symbol('flintHeartbeatScript');
const keysByCluster = new Map<string, Keys>();
const reconnectBodies = new Map<string, string>();

/** reconnectBody: the ReconnectWorker body, built once per master URL (a beat stays allocation-light). */
function reconnectBody(masterUrl: string): string {
  let body = reconnectBodies.get(masterUrl);
  if (body === undefined) {
    body = JSON.stringify({ masterUrl });
    reconnectBodies.set(masterUrl, body);
  }
  return body;
}

function keysOf(cluster: string): Keys {
  let keys = keysByCluster.get(cluster);
  if (!keys) {
    keys = clusterKeys(cluster);
    keysByCluster.set(cluster, keys);
  }
  return keys;
}

type HeartbeatCommand = (worker: string, beats: string, inbox: string, workerId: string, epoch: string, body: string) => Promise<HeartbeatOutcome>;

function heartbeatCommand(redis: RedisConnection): HeartbeatCommand {
  const marked = redis as RedisConnection & { [LOADED]?: boolean };
  if (!marked[LOADED]) {
    redis.defineCommand(COMMAND, { numberOfKeys: 3, lua: RECORD_HEARTBEAT_LUA });
    marked[LOADED] = true;
  }
  const command = (redis as unknown as Record<string, HeartbeatCommand>)[COMMAND]!;
  return command.bind(redis);
}

/**
 * recordHeartbeat records a beat of `workerId` at registration `epoch`, timed by
 * Redis's own clock. 'reconnect': the master declared the worker DEAD (ReconnectWorker
 * is also in its inbox); 'stale': a newer registration of this worker id exists;
 * 'unknown': register again.
 */
export function recordHeartbeat(
  redis: RedisConnection,
  cluster: string,
  workerId: string,
  epoch: number,
  masterUrl = `flint://${cluster}`,
): Promise<HeartbeatOutcome> {
  const keys = keysOf(cluster);
  return heartbeatCommand(redis)(keys.worker(workerId), keys.heartbeats, keys.workerInbox(workerId), workerId, String(epoch), reconnectBody(masterUrl));
}
