/**
 * recordHeartbeat: the Heartbeat handler's entry point for agents. One script
 * call per beat (ZADD + HSET), no queue job: heartbeats stay cheap at 10,000 workers.
 */
import type { Redis } from 'ioredis';
import { clusterKeys } from '../../protocol/keys.ts';
import { callScript, type MasterScriptConfig } from './scripts.ts';

export type HeartbeatOutcome = 'ok' | 'reconnect' | 'stale' | 'unknown';

const HEARTBEAT_CONFIG: Omit<MasterScriptConfig, 'masterUrl'> = {
  retainedApps: 200,
  retainedDrivers: 200,
  maxRetries: 10,
  maxDrivers: 2147483647,
  appIdPattern: 'app-%s-%04d',
  driverIdPattern: 'driver-%s-%04d',
  appNumberModulo: null,
};

/**
 * recordHeartbeat records a beat of `workerId` at registration `epoch`.
 * 'reconnect': the master declared the worker DEAD (ReconnectWorker is also in its inbox);
 * 'stale': a newer registration of this worker id exists; 'unknown': register again.
 */
export async function recordHeartbeat(
  redis: Redis,
  cluster: string,
  workerId: string,
  epoch: number,
  now: number,
  masterUrl = `flint://${cluster}`,
): Promise<HeartbeatOutcome> {
  return callScript<HeartbeatOutcome>(redis, clusterKeys(cluster), { ...HEARTBEAT_CONFIG, masterUrl }, 'record-heartbeat', now, [workerId, String(epoch)]);
}
