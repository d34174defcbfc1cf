/**
 * acknowledgeInboxEntries (workers/inbox/acknowledge.ts) on the real Redis: handled
 * entries are acknowledged and deleted in one round trip, unhandled ones stay pending
 * for redelivery, and acknowledging again (a retry after a lost reply) changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { acknowledgeInboxEntries } from '../../workers/inbox/acknowledge.ts';
import { clusterKeys } from '../../protocol/keys.ts';
import { INBOX_GROUP, type RawStreamEntry } from '../../protocol/streams.ts';
import { REDIS_URL } from '../helpers/env.ts';
import { cleanupCluster, uniqueCluster } from '../helpers/isolation.ts';

test('acknowledged inbox entries are deleted; the others stay pending; a repeat is harmless', async () => {
  const cluster = uniqueCluster('inbox-ack');
  const inbox = clusterKeys(cluster).workerInbox('w1');
  const redis = new Redis(REDIS_URL);
  try {
    await redis.xgroup('CREATE', inbox, INBOX_GROUP, '0', 'MKSTREAM');
    for (let i = 0; i < 5; i++) await redis.xadd(inbox, '*', 'type', 'LaunchExecutor', 'body', JSON.stringify({ n: i }));
    const read = (await redis.xreadgroup('GROUP', INBOX_GROUP, 'w1', 'COUNT', 10, 'STREAMS', inbox, '>')) as [string, RawStreamEntry[]][];
    const ids = read[0]![1].map(([id]) => id);
    assert.equal(ids.length, 5);

    assert.equal(await acknowledgeInboxEntries(redis, inbox, INBOX_GROUP, ids.slice(0, 3)), 3);
    assert.equal(await redis.xlen(inbox), 2, 'the three handled entries are gone from the stream');
    const pending = (await redis.xpending(inbox, INBOX_GROUP, '-', '+', 10)) as [string, string, number, number][];
    assert.deepEqual(pending.map(([id]) => id), ids.slice(3), 'the two others are still pending for redelivery');

    assert.equal(await acknowledgeInboxEntries(redis, inbox, INBOX_GROUP, ids.slice(0, 3)), 0, 'a repeat acknowledges nothing');
    assert.equal(await redis.xlen(inbox), 2);
    assert.equal(await acknowledgeInboxEntries(redis, inbox, INBOX_GROUP, []), 0);
    assert.equal(await acknowledgeInboxEntries(redis, inbox, INBOX_GROUP, ids.slice(3)), 2);
    assert.equal(await redis.xlen(inbox), 0);
    assert.equal(((await redis.xpending(inbox, INBOX_GROUP)) as [number])[0], 0);
  } finally {
    await cleanupCluster(redis, cluster);
    redis.disconnect();
  }
});
