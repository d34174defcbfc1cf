/**
 * The master's handlers against the real Redis: registration rules, the executor
 * lifecycle, Spark's retry rule, executor limits and kills, worker timeout with
 * LOST + replacement + ReconnectWorker + reconciliation, and dead letters.
 * Workers are simulated at the protocol level (see test/helpers/protocol.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { startMaster, type MasterHost } from '../../functions/host.ts';
import { loadConfig } from '../../protocol/config.ts';
import { clusterKeys, type Keys } from '../../protocol/keys.ts';
import { MasterClient } from '../../client/master-client.ts';
import { recordHeartbeat } from '../../lib/worker-heartbeat.ts';
import { REDIS_URL } from '../helpers/env.ts';
import { cleanupCluster, uniqueCluster, waitFor } from '../helpers/isolation.ts';
import { appDescription, readAppEvents, readInbox, registerFakeWorker } from '../helpers/protocol.ts';
import { bullConnection } from '../../lib/redis.ts';

interface Fixture {
  cluster: string;
  keys: Keys;
  master: MasterHost;
  client: MasterClient;
}

let redis: Redis;
const fixtures: Fixture[] = [];

before(async () => {
  redis = new Redis(REDIS_URL);
});

after(async () => {
  for (const f of fixtures) {
    await f.client.close();
    await f.master.stop();
    await cleanupCluster(redis, f.cluster);
  }
  redis.disconnect();
});

async function fixture(name: string, conf: Record<string, string> = {}): Promise<Fixture> {
  const cluster = uniqueCluster(name);
  const config = loadConfig({
    env: {},
    overrides: { 'spark.flint.cluster': cluster, 'spark.flint.reaper.interval': '100ms', ...conf },
  });
  const master = await startMaster({ redisUrl: REDIS_URL, config, concurrency: 8 });
  const client = new MasterClient(REDIS_URL, cluster);
  const f = { cluster, keys: clusterKeys(cluster), master, client };
  fixtures.push(f);
  return f;
}

test('RegisterWorker: new, duplicate id, and another worker at the same address', async () => {
  const f = await fixture('reg');
  const first = await f.client.ask<{ type: string; epoch: number; duplicate: boolean }>('RegisterWorker', {
    id: 'w1', host: '127.0.0.1', port: 7001, cores: 4, memoryMB: 4096, webUiUrl: '', resources: {}, labels: {}, executors: [], driverIds: [],
  });
  assert.equal(first.type, 'RegisteredWorker');
  assert.equal(first.duplicate, false);
  const again = await f.client.ask<{ type: string; epoch: number; duplicate: boolean }>('RegisterWorker', {
    id: 'w1', host: '127.0.0.1', port: 7001, cores: 4, memoryMB: 4096, webUiUrl: '', resources: {}, labels: {}, executors: [], driverIds: [],
  });
  assert.deepEqual([again.type, again.duplicate, again.epoch], ['RegisteredWorker', true, first.epoch]);
  const clash = await f.client.ask<{ type: string; message: string }>('RegisterWorker', {
    id: 'w2', host: '127.0.0.1', port: 7001, cores: 4, memoryMB: 4096, webUiUrl: '', resources: {}, labels: {}, executors: [], driverIds: [],
  });
  assert.equal(clash.type, 'RegisterWorkerFailed');
  assert.equal(clash.message, 'Attempted to re-register worker at same address: 127.0.0.1:7001');
  assert.equal(await recordHeartbeat(redis, f.cluster, 'w1', first.epoch), 'ok');
  assert.equal(await recordHeartbeat(redis, f.cluster, 'w1', first.epoch + 100), 'stale');
  assert.equal(await recordHeartbeat(redis, f.cluster, 'nobody', 1), 'unknown');
});

test('an application gets executors; RUNNING then EXITED(3) reaches the app and frees the worker', async () => {
  const f = await fixture('life');
  const epoch = await registerFakeWorker(f.client, { id: 'w1', cores: 4, memoryMB: 2048 });
  const { appId } = await f.client.ask<{ appId: string }>('RegisterApplication', {
    clientId: 'client-1',
    appDescription: appDescription({ maxCores: 2, coresPerExecutor: 1, memoryPerExecutorMB: 512 }),
  });
  assert.match(appId, /^app-\d{14}-0000$/);
  const launches = await waitFor(async () => {
    const inbox = await readInbox(redis, f.keys, 'w1');
    const l = inbox.filter((e) => e.type === 'LaunchExecutor');
    return l.length === 2 ? l : undefined;
  }, { message: 'two LaunchExecutor entries' });
  assert.deepEqual(launches.map((l) => [l.body.execId, l.body.cores, l.body.memoryMB, l.body.epoch]), [[0, 1, 512, epoch], [1, 1, 512, epoch]]);
  assert.equal(await redis.hget(f.keys.worker('w1'), 'coresUsed'), '2');

  await f.client.ask('ExecutorStateChanged', { appId, execId: 0, state: 'RUNNING', workerId: 'w1', epoch });
  await f.client.ask('ExecutorStateChanged', { appId, execId: 0, state: 'EXITED', exitStatus: 3, message: 'Command exited with code 3', workerId: 'w1', epoch });
  const events = await readAppEvents(redis, f.keys, appId);
  const updates = events.filter((e) => e.type === 'ExecutorUpdated').map((e) => [e.body.id, e.body.state, e.body.exitStatus]);
  assert.deepEqual(updates.slice(0, 2), [[0, 'RUNNING', undefined], [0, 'EXITED', 3]]);
  // the freed core is granted again to the app (a replacement executor 2)
  await waitFor(async () => (await readInbox(redis, f.keys, 'w1')).some((e) => e.type === 'LaunchExecutor' && e.body.execId === 2), {
    message: 'a replacement executor',
  });
  assert.equal(await redis.hget(f.keys.worker('w1'), 'coresUsed'), '2');
  // a duplicate report (at-least-once delivery) changes nothing
  await f.client.ask('ExecutorStateChanged', { appId, execId: 0, state: 'EXITED', exitStatus: 3, workerId: 'w1', epoch });
  assert.equal(await redis.hget(f.keys.worker('w1'), 'coresUsed'), '2');
  // a report from an older registration is ignored
  await f.client.ask('ExecutorStateChanged', { appId, execId: 1, state: 'RUNNING', workerId: 'w1', epoch: epoch + 7 });
  const exec1 = JSON.parse((await redis.hget(f.keys.appExecutors(appId), '1'))!);
  assert.equal(exec1.state, 'LAUNCHING');
});

test('Spark retry rule: maxExecutorRetries abnormal exits with no RUNNING executor remove the app as FAILED', async () => {
  const f = await fixture('retry', { 'spark.deploy.maxExecutorRetries': '3' });
  const epoch = await registerFakeWorker(f.client, { id: 'w1', cores: 1, memoryMB: 1024 });
  const { appId } = await f.client.ask<{ appId: string }>('RegisterApplication', {
    clientId: 'c', appDescription: appDescription({ maxCores: 1, memoryPerExecutorMB: 128 }),
  });
  for (let execId = 0; execId < 3; execId++) {
    await waitFor(async () => (await readInbox(redis, f.keys, 'w1')).some((e) => e.type === 'LaunchExecutor' && e.body.execId === execId), {
      message: `launch of executor ${execId}`,
    });
    // a clean exit does not count
    if (execId === 0) {
      await f.client.ask('ExecutorStateChanged', { appId, execId, state: 'EXITED', exitStatus: 0, workerId: 'w1', epoch });
      continue;
    }
    await f.client.ask('ExecutorStateChanged', { appId, execId, state: 'FAILED', message: 'boom', workerId: 'w1', epoch });
  }
  assert.equal(await redis.hget(f.keys.app(appId), 'state'), 'RUNNING');
  await waitFor(async () => (await readInbox(redis, f.keys, 'w1')).some((e) => e.type === 'LaunchExecutor' && e.body.execId === 3));
  await f.client.ask('ExecutorStateChanged', { appId, execId: 3, state: 'EXITED', exitStatus: 1, workerId: 'w1', epoch });
  assert.equal(await redis.hget(f.keys.app(appId), 'state'), 'FAILED');
  const removed = (await readAppEvents(redis, f.keys, appId)).filter((e) => e.type === 'ApplicationRemoved');
  assert.deepEqual(removed.map((e) => e.body.message), ['FAILED']);
  assert.deepEqual(await redis.lrange(f.keys.appsCompleted, 0, -1), [appId]);
});

test('RequestExecutors caps executors; KillExecutors kills and frees them', async () => {
  const f = await fixture('limit');
  await registerFakeWorker(f.client, { id: 'w1', cores: 8, memoryMB: 8192 });
  const { appId } = await f.client.ask<{ appId: string }>('RegisterApplication', {
    clientId: 'c', appDescription: appDescription({ coresPerExecutor: 1, memoryPerExecutorMB: 256, initialExecutorLimit: 2 }),
  });
  await waitFor(async () => Number(await redis.hget(f.keys.app(appId), 'liveExecutors')) === 2);
  assert.equal(await f.client.ask('RequestExecutors', { appId, requestedTotal: 5 }), true);
  await waitFor(async () => Number(await redis.hget(f.keys.app(appId), 'liveExecutors')) === 5, { message: '5 executors' });
  assert.equal(await f.client.ask('RequestExecutors', { appId, requestedTotal: 3 }), true);
  assert.equal(await f.client.ask('KillExecutors', { appId, executorIds: ['0', '1', 'x'] }), true);
  assert.equal(await redis.hget(f.keys.app(appId), 'liveExecutors'), '3');
  assert.equal(await redis.hget(f.keys.worker('w1'), 'coresUsed'), '3');
  const kills = (await readInbox(redis, f.keys, 'w1')).filter((e) => e.type === 'KillExecutor').map((e) => e.body.execId);
  assert.deepEqual(kills.sort(), [0, 1]);
  assert.equal(await f.client.ask('RequestExecutors', { appId: 'app-none', requestedTotal: 1 }), false);
  assert.equal(await f.client.ask('UnregisterApplication', { appId }), true);
  assert.equal(await redis.hget(f.keys.worker('w1'), 'coresUsed'), '0');
  assert.equal(await redis.hget(f.keys.app(appId), 'state'), 'FINISHED');
});

test('a silent worker is DEAD within timeout + check interval; LOST, replaced, told to reconnect, reconciled', async () => {
  const f = await fixture('timeout', { 'spark.worker.timeout': '1s' });
  const epochA = await registerFakeWorker(f.client, { id: 'wa', cores: 2, memoryMB: 1024 });
  const { appId } = await f.client.ask<{ appId: string }>('RegisterApplication', {
    clientId: 'c', appDescription: appDescription({ maxCores: 2, coresPerExecutor: 2, memoryPerExecutorMB: 256 }),
  });
  await waitFor(async () => (await readInbox(redis, f.keys, 'wa')).some((e) => e.type === 'LaunchExecutor'));
  // the second worker registers and keeps heartbeating; wa stays silent
  const epochB = await registerFakeWorker(f.client, { id: 'wb', cores: 2, memoryMB: 1024 });
  const silentSince = Number(await redis.hget(f.keys.worker('wa'), 'lastHeartbeat'));
  const beat = setInterval(() => void recordHeartbeat(redis, f.cluster, 'wb', epochB), 200);
  try {
    await waitFor(async () => (await redis.hget(f.keys.worker('wa'), 'state')) === 'DEAD', { timeoutMs: 5000, message: 'wa DEAD' });
    const deadSince = Number(await redis.hget(f.keys.worker('wa'), 'deadSince'));
    assert.ok(deadSince - silentSince <= 1000 + 100 + 250, `declared dead after ${deadSince - silentSince} ms`);
    const events = await readAppEvents(redis, f.keys, appId);
    const lost = events.find((e) => e.type === 'ExecutorUpdated' && e.body.state === 'LOST');
    assert.ok(lost, 'the app sees its executor LOST');
    assert.equal(lost.body.message, 'worker lost: Not receiving heartbeat for 1 seconds');
    assert.ok(events.some((e) => e.type === 'WorkerRemoved' && e.body.id === 'wa'));
    const replacement = await waitFor(async () =>
      (await readInbox(redis, f.keys, 'wb')).find((e) => e.type === 'LaunchExecutor'), { message: 'replacement on wb' });
    assert.equal(replacement.body.appId, appId);
    assert.equal(replacement.body.execId, 1);
    // the dead worker's next heartbeat yields ReconnectWorker
    assert.equal(await recordHeartbeat(redis, f.cluster, 'wa', epochA), 'reconnect');
    assert.ok((await readInbox(redis, f.keys, 'wa')).some((e) => e.type === 'ReconnectWorker'));
    // it re-registers (new epoch) reporting its old executor; the master kills it
    const reply = await f.client.ask<{ epoch: number; duplicate: boolean }>('RegisterWorker', {
      id: 'wa', host: '127.0.0.1', port: 29999, cores: 2, memoryMB: 1024, webUiUrl: '', resources: {}, labels: {},
      executors: [{ appId, execId: 0, cores: 2, memoryMB: 256, state: 'RUNNING' }], driverIds: [],
    });
    assert.ok(reply.epoch > epochA);
    assert.equal(reply.duplicate, false);
    await f.client.ask('WorkerLatestState', {
      id: 'wa', epoch: reply.epoch, executors: [{ appId, execId: 0, cores: 2, memoryMB: 256, state: 'RUNNING' }], driverIds: [],
    });
    const kill = (await readInbox(redis, f.keys, 'wa')).find((e) => e.type === 'KillExecutor');
    assert.deepEqual([kill?.body.appId, kill?.body.execId, kill?.body.epoch], [appId, 0, reply.epoch]);
  } finally {
    clearInterval(beat);
  }
});

test('malformed messages are dead-lettered with a reason and counted; the handlers keep running', async () => {
  const f = await fixture('dlq');
  const queue = new Queue(f.keys.masterQueue, { connection: bullConnection(REDIS_URL), prefix: f.keys.bullPrefix });
  try {
    await queue.add('RegisterWorker', { id: 'w1', host: '127.0.0.1' }, { attempts: 3 });
    await queue.add('ExecutorStateChanged', { appId: 'a', execId: 'zero', state: 'RUNNING', workerId: 'w', epoch: 1 }, { attempts: 3 });
    await queue.add('NoSuchMessage', { any: 1 }, { attempts: 3 });
    await queue.add('RegisterApplication', 'not json at all {', { attempts: 3 });
    await queue.add('DriverStateChanged', { driverId: 'd', state: 'RUNNING', workerId: 'w', epoch: 1 }, { attempts: 3 });
    const letters = await waitFor(async () => {
      const entries = await redis.xrange(f.keys.deadLetters, '-', '+');
      return entries.length === 5 ? entries : undefined;
    }, { message: 'five dead letters' });
    const reasons = letters.map(([, fields]) => fields[fields.indexOf('reason') + 1]);
    assert.ok(reasons.some((r) => /^RegisterWorker: .*port/.test(r!)), reasons.join(' | '));
    assert.ok(reasons.some((r) => /^ExecutorStateChanged: execId: /.test(r!)));
    assert.ok(reasons.includes("unknown message type 'NoSuchMessage'"));
    assert.ok(reasons.some((r) => /^RegisterApplication: body is not valid JSON/.test(r!)));
    assert.ok(reasons.includes('Received unexpected state update for driver d: RUNNING'));
    assert.equal(await redis.hget(f.keys.stats, 'deadLetters'), '5');
    // rejected without retries
    const failed = await queue.getFailed();
    assert.ok(failed.every((job) => job.attemptsMade === 1), 'dead letters are not retried');
    // and the handlers still work
    await registerFakeWorker(f.client, { id: 'w-ok', cores: 1, memoryMB: 128 });
    assert.equal(await redis.hget(f.keys.worker('w-ok'), 'state'), 'ALIVE');
  } finally {
    await queue.close();
  }
});

test('completed applications are retained and trimmed as Spark trims them', async () => {
  const f = await fixture('retain', { 'spark.deploy.retainedApplications': '10' });
  const ids: string[] = [];
  for (let i = 0; i < 11; i++) {
    const { appId } = await f.client.ask<{ appId: string }>('RegisterApplication', { clientId: `c${i}`, appDescription: appDescription({ maxCores: 1 }) });
    assert.equal(await f.client.ask('UnregisterApplication', { appId }), true);
    ids.push(appId);
  }
  // at 10 retained, the 11th completion drops max(10/10, 1) = 1 oldest first
  assert.deepEqual(await redis.lrange(f.keys.appsCompleted, 0, -1), ids.slice(1));
  assert.equal(await redis.exists(f.keys.app(ids[0]!)), 0, 'the trimmed app is forgotten');
  assert.equal(await redis.hget(f.keys.app(ids[1]!), 'state'), 'FINISHED');
  assert.equal(await f.client.ask('UnregisterApplication', { appId: ids[1]! }), false, 'unregistering twice is a no-op');
});

test('DEAD workers are forgotten after (spark.dead.worker.persistence + 1) × timeout', async () => {
  const f = await fixture('cull', { 'spark.worker.timeout': '500ms', 'spark.dead.worker.persistence': '1' });
  await registerFakeWorker(f.client, { id: 'w-gone', cores: 1, memoryMB: 128 });
  await waitFor(async () => (await redis.hget(f.keys.worker('w-gone'), 'state')) === 'DEAD', { timeoutMs: 3000 });
  assert.equal(await redis.sismember(f.keys.workersAll, 'w-gone'), 1, 'a DEAD worker stays visible for a while');
  await waitFor(async () => (await redis.sismember(f.keys.workersAll, 'w-gone')) === 0, { timeoutMs: 4000, message: 'the DEAD worker is culled' });
  assert.equal(await redis.exists(f.keys.worker('w-gone')), 0);
  assert.equal(await recordHeartbeat(redis, f.cluster, 'w-gone', 1), 'unknown');
});

test('application priority: a higher-priority app is scheduled before earlier ones; FIFO within a priority', async () => {
  const f = await fixture('prio');
  const register = (clientId: string, priority: number) =>
    f.client.ask<{ appId: string }>('RegisterApplication', { clientId, appDescription: appDescription({ maxCores: 2, coresPerExecutor: 2, memoryPerExecutorMB: 128, priority }) });
  // no worker yet: all three wait
  const low = await register('low', 0);
  const lowLater = await register('low-later', 0);
  const high = await register('high', 5);
  assert.deepEqual(await redis.zrange(f.keys.appsWaiting, '0', '-1'), [high.appId, low.appId, lowLater.appId]);
  // room for exactly two of them
  await registerFakeWorker(f.client, { id: 'w1', cores: 4, memoryMB: 4096 });
  await waitFor(async () => Number(await redis.hget(f.keys.worker('w1'), 'coresUsed')) === 4, { message: 'the worker filled' });
  assert.equal(await redis.hget(f.keys.app(high.appId), 'coresGranted'), '2');
  assert.equal(await redis.hget(f.keys.app(low.appId), 'coresGranted'), '2');
  assert.equal(await redis.hget(f.keys.app(lowLater.appId), 'coresGranted'), '0');
});

test('a decommissioned executor leaves its app once: its later exit neither frees the app\'s grant again nor reaches the app', async () => {
  const f = await fixture('decom');
  const epoch1 = await registerFakeWorker(f.client, { id: 'w1', cores: 4, memoryMB: 4096 });
  const { appId } = await f.client.ask<{ appId: string }>('RegisterApplication', {
    clientId: 'c', appDescription: appDescription({ maxCores: 4, coresPerExecutor: 4, memoryPerExecutorMB: 256 }),
  });
  await waitFor(async () => (await redis.hget(f.keys.app(appId), 'coresGranted')) === '4', { message: 'executor 0 granted' });
  assert.equal(await f.client.ask('WorkerDecommissioning', { id: 'w1' }), true);
  assert.deepEqual(await redis.hmget(f.keys.app(appId), 'coresGranted', 'liveExecutors'), ['0', '0']);
  assert.equal(await redis.hget(f.keys.worker('w1'), 'state'), 'DECOMMISSIONED');
  await registerFakeWorker(f.client, { id: 'w2', cores: 4, memoryMB: 4096 });
  await waitFor(async () => (await readInbox(redis, f.keys, 'w2')).some((e) => e.type === 'LaunchExecutor' && e.body.execId === 1), { message: 'replacement on w2' });
  // the decommissioned executor finishes on w1: the worker's capacity comes back, the app's grant stays
  await f.client.ask('ExecutorStateChanged', { appId, execId: 0, state: 'EXITED', exitStatus: 0, workerId: 'w1', epoch: epoch1 });
  assert.deepEqual(await redis.hmget(f.keys.app(appId), 'coresGranted', 'liveExecutors'), ['4', '1']);
  assert.equal(await redis.hget(f.keys.worker('w1'), 'coresUsed'), '0');
  const updates = (await readAppEvents(redis, f.keys, appId)).filter((e) => e.type === 'ExecutorUpdated' && e.body.id === 0).map((e) => e.body.state);
  assert.deepEqual(updates, ['DECOMMISSIONED']);
  // and the app does not get more than spark.cores.max when another worker arrives
  await registerFakeWorker(f.client, { id: 'w3', cores: 4, memoryMB: 4096 });
  await f.master.scheduler.runPassOnce();
  assert.equal((await readInbox(redis, f.keys, 'w3')).filter((e) => e.type === 'LaunchExecutor').length, 0);
  assert.equal(await redis.hget(f.keys.app(appId), 'coresGranted'), '4');
});

test('heartbeats are timed by Redis\'s clock, not the caller\'s', async () => {
  const f = await fixture('clock');
  const epoch = await registerFakeWorker(f.client, { id: 'w1', cores: 1, memoryMB: 128 });
  const [seconds, micros] = await redis.time();
  const redisNow = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  assert.equal(await recordHeartbeat(redis, f.cluster, 'w1', epoch), 'ok');
  const score = Number(await redis.zscore(f.keys.heartbeats, 'w1'));
  assert.ok(score >= redisNow && score - redisNow < 1000, `beat at ${score}, Redis time ${redisNow}`);
});
