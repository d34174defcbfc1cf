/**
 * acknowledgeInboxEntries: how a worker's inbox entries leave Redis once handled.
 * XACK alone would leave every acknowledged entry in the stream until MAXLEN trims it
 * (about 10,000 per worker, each LaunchExecutor holding a whole application
 * description); XACK + XDEL in one MULTI deletes them in the same round trip,
 * atomically, so the inbox holds only what is not yet handled. Deleting is safe because
 * an inbox has one reader, the agent of that worker. An entry that was never delivered
 * or is already gone counts for nothing: calling it twice is harmless.
 * The agent and the memory benchmark (bench/) share it.
 */
import type { RedisConnection } from '../../lib/redis.ts';

/**
 * acknowledgeInboxEntries acknowledges `ids` in `group` and deletes them from `stream`,
 * in one round trip. Returns how many were pending in the group (XACK's count).
 */
export async function acknowledgeInboxEntries(redis: RedisConnection, stream: string, group: string, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const results = await redis
    .multi()
    .xack(stream, group, ...ids)
    .xdel(stream, ...ids)
    .exec()
    .catch((error: Error & { previousErrors?: Error[] }) => {
      // EXECABORT says only that the transaction was discarded; the queued command's error says why (e.g. NOPERM)
      throw error.previousErrors?.[0] ?? error;
    });
  if (results === null) throw new Error(`acknowledging ${ids.length} entries of ${stream}: the transaction was aborted`);
  const [ack, del] = results;
  if (ack?.[0]) throw ack[0];
  if (del?.[0]) throw del[0];
  return Number(ack?.[1] ?? 0);
}
