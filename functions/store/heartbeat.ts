/**
 * recordHeartbeat: the Heartbeat handler's entry point for agents. One small
 * standalone script call per beat (HMGET + ZADD + HSET), no queue job and no
 * prelude: heartbeats stay cheap at 10,000 workers.
 */
import type { RedisConnection } from '../../lib/redis.ts';
import { clusterKeys, type Keys } from '../../protocol/keys.ts';
import { callStandalone } from './scripts.ts';

export type HeartbeatOutcome = 'ok' | 'reconnect' | 'stale' | 'unknown';

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

/**
 * recordHeartbeat records a beat of `workerId` at registration `epoch`, timed by
 * Redis's own clock (never the agent's: a host whose clock drifts must not look
 * stale or fresh to the worker-timeout check).
 * 'reconnect': the master declared the worker DEAD (ReconnectWorker is also in its inbox);
 * 'stale': a newer registration of this worker id exists; 'unknown': register again.
 */
export async function recordHeartbeat(
  redis: RedisConnection,
  cluster: string,
  workerId: string,
  epoch: number,
  masterUrl = `flint://${cluster}`,
): Promise<HeartbeatOutcome> {
  const keys = keysOf(cluster);
  return callStandalone<HeartbeatOutcome>(
    redis,
    'record-heartbeat',
    [keys.worker(workerId), keys.heartbeats, keys.workerInbox(workerId)],
    [workerId, String(epoch), reconnectBody(masterUrl)],
  );
}
