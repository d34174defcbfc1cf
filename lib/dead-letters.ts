/**
 * recordDeadLetter: a message that was refused for good (undecodable, invalid) goes to the
 * cluster's dead-letter stream with its reason, and is counted (`stats.deadLetters`, which
 * /metrics reports as flint_dead_letters_total). The master's queue consumer and the worker
 * agents' inbox readers both use it, so a refusal is visible the same way wherever it happens.
 * Bounded (protocol/limits.ts): the first DEAD_LETTER_RAW_BYTES of the message and of the
 * reason, the last DEAD_LETTERS_RETAINED entries.
 */
import type { RedisConnection } from './redis.ts';
import type { Keys } from '../protocol/keys.ts';
import { DEAD_LETTER_RAW_BYTES, DEAD_LETTERS_RETAINED } from '../protocol/limits.ts';

/** DeadLetter: what was refused, why, and by whom (`source`, e.g. `queue master` or `worker w1 inbox`). */
export interface DeadLetter {
  type: string;
  reason: string;
  raw: unknown;
  source: string;
}

export async function recordDeadLetter(redis: RedisConnection, keys: Pick<Keys, 'deadLetters' | 'stats'>, entry: DeadLetter): Promise<void> {
  let raw: string;
  try {
    raw = typeof entry.raw === 'string' ? entry.raw : JSON.stringify(entry.raw);
  } catch {
    raw = String(entry.raw);
  }
  await redis
    .multi()
    .xadd(keys.deadLetters, 'MAXLEN', '~', String(DEAD_LETTERS_RETAINED), '*', 'type', entry.type, 'reason', entry.reason.slice(0, DEAD_LETTER_RAW_BYTES), 'raw', (raw ?? '').slice(0, DEAD_LETTER_RAW_BYTES), 'source', entry.source, 'at', String(Date.now()))
    .hincrby(keys.stats, 'deadLetters', 1)
    .exec();
}
