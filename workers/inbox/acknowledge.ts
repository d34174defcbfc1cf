/**
 * acknowledgeInboxEntries: an agent is done with inbox entries: XACK them for its consumer
 * group and XDEL them from the stream, in one round trip, so a worker's inbox holds only
 * what is still to be handled (Redis memory does not grow with the launches handled).
 * Deleting is safe because an inbox has one reader: the agent of that worker.
 */
import type { RedisConnection } from '../../lib/redis.ts';

export async function acknowledgeInboxEntries(redis: RedisConnection, stream: string, group: string, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  const replies = await redis.multi().xack(stream, group, ...ids).xdel(stream, ...ids).exec();
  const failed = replies?.find(([error]) => error !== null)?.[0];
  if (failed) throw failed;
}
