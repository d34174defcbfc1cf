/**
 * What the master keeps per application is bounded, however many executors it
 * launches (issue 11.5): an application whose executors exit and are replaced again
 * and again keeps its live executors plus the last spark.ui.retainedDeadExecutors
 * finished ones, and its event stream stays near 1,000 entries; once it ends, its
 * stream keeps only the last ~100 (its end among them). Real master handlers on the
 * real Redis; the worker is simulated at the protocol level and acknowledges (and
 * deletes) its inbox entries as the agent does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startMaster } from '../../functions/host.ts';
import { loadConfig } from '../../protocol/config.ts';
import { clusterKeys } from '../../protocol/keys.ts';
import { MasterClient } from '../../client/master-client.ts';
import { decodeInboxEntry, INBOX_GROUP, type RawStreamEntry } from '../../protocol/streams.ts';
import { acknowledgeInboxEntries } from '../../workers/inbox/acknowledge.ts';
import { REDIS_URL } from '../helpers/env.ts';
import { cleanupCluster, uniqueCluster, waitFor } from '../helpers/isolation.ts';
import { appDescription, readAppEvents, registerFakeWorker } from '../helpers/protocol.ts';

test('an application launching executors without end keeps bounded executor records and events', { timeout: 180_000 }, async () => {
  const cluster = uniqueCluster('retention');
  const keys = clusterKeys(cluster);
  const retained = 20;
  const config = loadConfig({ env: {}, overrides: { 'spark.flint.cluster': cluster, 'spark.ui.retainedDeadExecutors': String(retained), 'spark.flint.reaper.interval': '100ms' } });
  const redis = new Redis(REDIS_URL);
  const master = await startMaster({ redisUrl: REDIS_URL, config, concurrency: 8 });
  const client = new MasterClient(REDIS_URL, cluster, 'retention-test');
  try {
    const epoch = await registerFakeWorker(client, { id: 'w1', cores: 2, memoryMB: 4096 });
    await redis.xgroup('CREATE', keys.workerInbox('w1'), INBOX_GROUP, '0', 'MKSTREAM');
    const { appId } = await client.ask<{ appId: string }>('RegisterApplication', { clientId: 'retention', appDescription: appDescription({ maxCores: 2, coresPerExecutor: 1, memoryPerExecutorMB: 64 }) }, 30_000);

    // the simulated worker: every launch runs and exits normally, so the master launches another
    let launches = 0;
    const target = 400;
    while (launches < target) {
      const read = (await redis.xreadgroup('GROUP', INBOX_GROUP, 'w1', 'COUNT', 100, 'BLOCK', 5000, 'STREAMS', keys.workerInbox('w1'), '>')) as [string, RawStreamEntry[]][] | null;
      assert.ok(read, `a launch within 5 s (after ${launches})`);
      const entries = read[0]![1];
      for (const entry of entries) {
        const decoded = decodeInboxEntry(entry);
        if (decoded.type !== 'LaunchExecutor' || !decoded.parsed.ok) continue;
        const { execId } = decoded.parsed.value.body as { execId: number };
        launches += 1;
        await client.ask('ExecutorStateChanged', { appId, execId, state: 'RUNNING', workerId: 'w1', epoch });
        await client.ask('ExecutorStateChanged', { appId, execId, state: 'EXITED', exitStatus: 0, message: 'done', workerId: 'w1', epoch });
      }
      await acknowledgeInboxEntries(redis, keys.workerInbox('w1'), INBOX_GROUP, entries.map(([id]) => id));
    }

    const executors = await redis.hlen(keys.appExecutors(appId));
    const finished = await redis.llen(keys.appFinishedExecutors(appId));
    assert.ok(finished <= retained, `finished executors kept: ${finished} ≤ ${retained}`);
    assert.ok(finished >= retained - Math.max(retained / 10, 1), `the recent ones are kept (${finished})`);
    assert.ok(executors <= retained + 2, `executor records: ${executors} ≤ ${retained} finished + 2 live`);
    // the records kept are the newest
    const ids = (await redis.hkeys(keys.appExecutors(appId))).map(Number).sort((a, b) => a - b);
    assert.ok(ids[0]! >= launches - retained - 4, `oldest kept executor ${ids[0]} of ${launches}`);
    const events = await redis.xlen(keys.appEvents(appId));
    assert.ok(events <= 1100 && events >= 1000, `the app's events stay near 1,000 (${events}) after ${launches * 3} were written`);
    assert.ok((await redis.xlen(keys.workerInbox('w1'))) <= 2, 'the inbox holds only what is not handled yet');

    // the application ends: its stream keeps its end
    await client.ask('UnregisterApplication', { appId }, 30_000);
    await waitFor(async () => (await redis.hget(keys.app(appId), 'state')) === 'FINISHED', { message: 'the app finished' });
    const after = await readAppEvents(redis, keys, appId);
    assert.ok(after.length <= 200, `an ended app keeps ~100 events (${after.length})`);
    assert.ok((await redis.hlen(keys.appExecutors(appId))) <= retained, 'its executors are all finished and bounded');
  } finally {
    await client.close();
    await master.stop();
    await cleanupCluster(redis, cluster);
    redis.disconnect();
  }
});
