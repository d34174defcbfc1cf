/**
 * AppClient against the real Redis and a real master (startMaster in-process,
 * one unique cluster per test). Workers are simulated at the protocol level:
 * RegisterWorker through the master queue, LaunchExecutor read from the real
 * inbox, ExecutorStateChanged reported as an agent reports it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { startMaster, type MasterHost } from '../../functions/host.ts';
import { loadConfig } from '../../protocol/config.ts';
import { clusterKeys, type Keys } from '../../protocol/keys.ts';
import { MasterClient } from '../../client/master-client.ts';
import {
  AppClient,
  compareStreamIds,
  GIVE_UP_REASON,
  STOPPED_REASON,
  type AppClientListener,
  type AppClientOptions,
  type AppEventRecord,
} from '../../client/app-client.ts';
import { REDIS_URL } from '../helpers/env.ts';
import { cleanupCluster, uniqueCluster, waitFor } from '../helpers/isolation.ts';
import { appDescription, readInbox, registerFakeWorker } from '../helpers/protocol.ts';

interface Fixture {
  cluster: string;
  keys: Keys;
  master?: MasterHost;
  masterClient: MasterClient;
  clients: AppClient[];
}

let redis: Redis;
const fixtures: Fixture[] = [];

before(async () => {
  redis = new Redis(REDIS_URL);
});

after(async () => {
  for (const f of fixtures) {
    await Promise.allSettled(f.clients.map((c) => c.stop()));
    await f.masterClient.close();
    await f.master?.stop();
    await cleanupCluster(redis, f.cluster);
  }
  redis.disconnect();
});

async function fixture(name: string, options: { master?: boolean; conf?: Record<string, string> } = {}): Promise<Fixture> {
  const cluster = uniqueCluster(name);
  const f: Fixture = { cluster, keys: clusterKeys(cluster), masterClient: new MasterClient(REDIS_URL, cluster), clients: [] };
  fixtures.push(f);
  if (options.master !== false) {
    const config = loadConfig({ env: {}, overrides: { 'spark.flint.cluster': cluster, 'spark.flint.reaper.interval': '100ms', ...options.conf } });
    f.master = await startMaster({ redisUrl: REDIS_URL, config, concurrency: 8 });
  }
  return f;
}

/** Recorder: a listener that writes down every call, in order. */
class Recorder implements AppClientListener {
  calls: unknown[][] = [];
  connected(appId: string) {
    this.calls.push(['connected', appId]);
  }
  disconnected() {
    this.calls.push(['disconnected']);
  }
  dead(reason: string) {
    this.calls.push(['dead', reason]);
  }
  executorAdded(fullId: string, workerId: string, hostPort: string, cores: number, memoryMB: number) {
    this.calls.push(['executorAdded', fullId, workerId, hostPort, cores, memoryMB]);
  }
  executorRemoved(fullId: string, message: string, exitStatus: number | undefined, workerHost: string | undefined) {
    this.calls.push(['executorRemoved', fullId, message, exitStatus, workerHost]);
  }
  workerRemoved(workerId: string, host: string, message: string) {
    this.calls.push(['workerRemoved', workerId, host, message]);
  }
  of(kind: string) {
    return this.calls.filter((call) => call[0] === kind);
  }
}

function newClient(f: Fixture, options: Partial<AppClientOptions> = {}): AppClient {
  const client = new AppClient({
    redisUrl: REDIS_URL,
    cluster: f.cluster,
    appDescription: appDescription({ name: 'app-client-test', coresPerExecutor: 1, maxCores: 2 }),
    registrationTimeoutMs: 10_000,
    eventBlockMs: 1_000,
    ...options,
  });
  f.clients.push(client);
  return client;
}

/** collect records every raw event the client delivers. */
function collect(client: AppClient): AppEventRecord[] {
  const seen: AppEventRecord[] = [];
  client.on('event', (event) => seen.push(event));
  return seen;
}

async function reportState(
  f: Fixture,
  report: { appId: string; execId: number; state: 'RUNNING' | 'EXITED' | 'FAILED'; workerId: string; epoch: number; exitStatus?: number; message?: string },
) {
  assert.equal(await f.masterClient.ask('ExecutorStateChanged', report, 10_000), true);
}

async function streamIds(f: Fixture, appId: string): Promise<string[]> {
  return (await redis.xrange(f.keys.appEvents(appId), '-', '+')).map(([id]) => id);
}

test('register → connected; ExecutorAdded and ExecutorUpdated(EXITED, 3) reach the listener; stop unregisters', async () => {
  const f = await fixture('appc-life');
  const listener = new Recorder();
  const client = newClient(f, { listener });
  const events = collect(client);

  const appId = await client.start();
  assert.ok(appId, 'start() resolves with the app id');
  assert.equal(client.appId, appId);
  assert.deepEqual(listener.calls[0], ['connected', appId]);
  await waitFor(() => events.some((e) => e.type === 'RegisteredApplication'), { message: 'RegisteredApplication in the stream' });
  const registered = events.find((e) => e.type === 'RegisteredApplication')!;
  assert.equal(registered.type === 'RegisteredApplication' && registered.body.appId, appId);

  const epoch = await registerFakeWorker(f.masterClient, { id: 'w1', cores: 4, memoryMB: 4096, port: 7101 });
  await waitFor(() => listener.of('executorAdded').length === 2, { message: 'two executorAdded calls' });
  assert.deepEqual(
    listener.of('executorAdded').sort(),
    [
      ['executorAdded', `${appId}/0`, 'w1', '127.0.0.1:7101', 1, 256],
      ['executorAdded', `${appId}/1`, 'w1', '127.0.0.1:7101', 1, 256],
    ],
  );
  const launches = await waitFor(async () => {
    const inbox = (await readInbox(redis, f.keys, 'w1')).filter((entry) => entry.type === 'LaunchExecutor');
    return inbox.length === 2 ? inbox : undefined;
  }, { message: 'two LaunchExecutor in the worker inbox' });
  assert.deepEqual(launches.map((l) => [l.body.appId, l.body.execId]).sort(), [[appId, 0], [appId, 1]]);

  await reportState(f, { appId: appId!, execId: 0, state: 'RUNNING', workerId: 'w1', epoch });
  await waitFor(() => events.some((e) => e.type === 'ExecutorUpdated' && e.body.state === 'RUNNING'), { message: 'ExecutorUpdated RUNNING' });
  assert.equal(listener.of('executorRemoved').length, 0, 'RUNNING is not a removal');

  await reportState(f, { appId: appId!, execId: 0, state: 'EXITED', workerId: 'w1', epoch, exitStatus: 3, message: 'Command exited with code 3' });
  await waitFor(() => listener.of('executorRemoved').length === 1, { message: 'executorRemoved for the exit' });
  assert.deepEqual(listener.of('executorRemoved')[0], ['executorRemoved', `${appId}/0`, 'Command exited with code 3', 3, undefined]);
  const exited = events.find((e) => e.type === 'ExecutorUpdated' && e.body.state === 'EXITED');
  assert.ok(exited && exited.type === 'ExecutorUpdated');
  assert.equal(exited.body.exitStatus, 3);
  assert.equal(client.lastEventId, events.at(-1)!.id, 'the cursor is the last delivered event');

  // The freed core lets the master replace executor 0 with executor 2.
  await waitFor(() => listener.of('executorAdded').some((call) => call[1] === `${appId}/2`), { message: 'replacement executor 2' });

  assert.equal(await client.requestTotalExecutors(1), true);
  assert.equal(Number(await redis.hget(f.keys.app(appId!), 'executorLimit')), 1);
  assert.equal(await client.killExecutors(['1', 'not-a-number']), true);
  await waitFor(async () => (await readInbox(redis, f.keys, 'w1')).some((e) => e.type === 'KillExecutor' && e.body.execId === 1), {
    message: 'KillExecutor for executor 1',
  });

  await client.stop();
  assert.deepEqual(listener.of('dead'), [['dead', STOPPED_REASON]]);
  assert.equal(await redis.hget(f.keys.app(appId!), 'state'), 'FINISHED');
  assert.equal(await client.requestTotalExecutors(2), false, 'after stop, as before registration');
  assert.equal(await client.killExecutors(['2']), false);
  await client.stop(); // idempotent
  assert.equal(listener.of('dead').length, 1, 'dead at most once');
  // Every stream entry was delivered exactly once, in order.
  assert.deepEqual(events.map((e) => e.id), (await streamIds(f, appId!)).slice(0, events.length));
  assert.equal(new Set(events.map((e) => e.id)).size, events.length);
});

test('requestTotalExecutors and killExecutors are false before registration; bad arguments are refused', async () => {
  const f = await fixture('appc-pre', { master: false });
  const client = newClient(f);
  assert.equal(await client.requestTotalExecutors(3), false);
  assert.equal(await client.killExecutors(['0']), false);
  assert.equal(await client.kill(), false);
  await assert.rejects(client.requestTotalExecutors(-1), /requestedTotal must be an integer ≥ 0, got -1/);
  await assert.rejects(client.requestTotalExecutors(1.5), /requestedTotal must be an integer ≥ 0, got 1.5/);
  await assert.rejects(client.killExecutors('3' as never), /executorIds must be an array/);
  await client.stop();
});

test('resume: a new client with the same clientId and the saved lastEventId sees exactly the events it missed', async () => {
  const f = await fixture('appc-resume');
  const clientId = `resume-${randomUUID()}`;
  const first = newClient(f, { clientId });
  const firstEvents = collect(first);
  const appId = (await first.start())!;
  const epoch = await registerFakeWorker(f.masterClient, { id: 'w1', cores: 2, memoryMB: 4096 });
  await waitFor(() => firstEvents.filter((e) => e.type === 'ExecutorAdded').length === 2, { message: 'two ExecutorAdded' });
  await reportState(f, { appId, execId: 0, state: 'RUNNING', workerId: 'w1', epoch });
  await waitFor(() => firstEvents.some((e) => e.type === 'ExecutorUpdated'), { message: 'first ExecutorUpdated' });

  // The process "exits": detach without unregistering, keeping the cursor.
  const saved = first.lastEventId;
  assert.equal(saved, firstEvents.at(-1)!.id);
  await first.close();
  assert.equal(await redis.hget(f.keys.app(appId), 'state'), 'RUNNING', 'close() leaves the app registered');

  // Events while nobody listens.
  await reportState(f, { appId, execId: 1, state: 'RUNNING', workerId: 'w1', epoch });
  await reportState(f, { appId, execId: 0, state: 'EXITED', workerId: 'w1', epoch, exitStatus: 3, message: 'Command exited with code 3' });
  await reportState(f, { appId, execId: 1, state: 'EXITED', workerId: 'w1', epoch, exitStatus: 3, message: 'Command exited with code 3' });
  const missed = (await streamIds(f, appId)).filter((id) => compareStreamIds(id, saved) > 0);

  const listener = new Recorder();
  const second = newClient(f, { clientId, lastEventId: saved, listener });
  const secondEvents = collect(second);
  assert.equal(await second.start(), appId, 'the same clientId gets the same app');
  await waitFor(() => secondEvents.length >= missed.length, { message: `${missed.length} missed events` });

  const allIds = await streamIds(f, appId);
  const delivered = [...firstEvents, ...secondEvents].map((e) => e.id);
  assert.deepEqual(delivered, allIds.slice(0, delivered.length), 'nothing lost, nothing repeated, stream order');
  assert.ok(secondEvents.every((e) => compareStreamIds(e.id, saved) > 0), 'only events after the cursor');
  assert.ok(!secondEvents.some((e) => e.type === 'RegisteredApplication'), 'the registration event is not replayed');
  assert.equal(listener.of('executorRemoved').length, 2);
  assert.deepEqual(listener.of('executorRemoved').map((c) => c[1]).sort(), [`${appId}/0`, `${appId}/1`]);
  await second.stop();
});

test('a dropped Redis connection loses no event and repeats none; disconnected is reported once', async () => {
  const f = await fixture('appc-drop');
  const listener = new Recorder();
  const client = newClient(f, { listener, eventBlockMs: 30_000 });
  const events = collect(client);
  const appId = (await client.start())!;
  const epoch = await registerFakeWorker(f.masterClient, { id: 'w1', cores: 2, memoryMB: 4096 });
  await waitFor(() => events.filter((e) => e.type === 'ExecutorAdded').length === 2, { message: 'two ExecutorAdded' });

  // Kill the event connection while it blocks in XREAD, as a network drop would.
  // Found by client id: app ids repeat across the suite's concurrent clusters.
  const list = await redis.client('LIST');
  const line = String(list).split('\n').find((l) => l.includes(`name=flint-app-events-${client.clientId}-`));
  assert.ok(line, 'the dedicated event connection is visible in CLIENT LIST');
  const connectionId = /\bid=(\d+)/.exec(line!)![1]!;
  await redis.client('KILL', 'ID', connectionId);
  await reportState(f, { appId, execId: 0, state: 'RUNNING', workerId: 'w1', epoch });
  await reportState(f, { appId, execId: 0, state: 'FAILED', workerId: 'w1', epoch, exitStatus: 1, message: 'boom' });

  await waitFor(() => listener.of('executorRemoved').length === 1, { message: 'executorRemoved after the reconnect', timeoutMs: 15_000 });
  assert.deepEqual(listener.of('disconnected'), [['disconnected']]);
  const allIds = await streamIds(f, appId);
  assert.deepEqual(events.map((e) => e.id), allIds.slice(0, events.length));
  assert.equal(new Set(events.map((e) => e.id)).size, events.length);
  await client.stop();
});

test('ApplicationRemoved (kill) makes the client dead with Spark\'s reason and ends its iterator', async () => {
  const f = await fixture('appc-kill');
  const listener = new Recorder();
  const client = newClient(f, { listener });
  const iterated: string[] = [];
  const appId = (await client.start())!;
  const iteration = (async () => {
    for await (const event of client) iterated.push(event.type);
  })();
  await waitFor(() => iterated.includes('RegisteredApplication'), { message: 'iterator sees RegisteredApplication' });
  assert.equal(await client.kill(), true);
  await iteration; // ends by itself after ApplicationRemoved
  assert.equal(iterated.at(-1), 'ApplicationRemoved');
  assert.deepEqual(listener.of('dead'), [['dead', 'Master removed our application: KILLED']]);
  assert.equal(client.deadReason, 'Master removed our application: KILLED');
  assert.equal(await client.requestTotalExecutors(1), false);
  await client.stop();
  assert.equal(listener.of('dead').length, 1, 'stop after removal does not call dead again');
  assert.equal(await redis.hget(f.keys.app(appId), 'state'), 'KILLED');
});

test('no master: registration gives up after the configured attempts with Spark\'s reason', async () => {
  const f = await fixture('appc-nomaster', { master: false });
  const listener = new Recorder();
  const client = newClient(f, { listener, registrationRetries: 2, registrationTimeoutMs: 400 });
  const started = Date.now();
  assert.equal(await client.start(), undefined);
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 700, `two attempts of 400 ms each, took ${elapsed} ms`);
  assert.deepEqual(listener.calls, [['dead', GIVE_UP_REASON]]);
  assert.equal(client.deadReason, GIVE_UP_REASON);
  assert.equal(await client.requestTotalExecutors(1), false);
  await client.stop();
  assert.equal(listener.of('dead').length, 1);
});

test('a registration the master refuses ends at once with the master\'s reason', async () => {
  const f = await fixture('appc-refuse', { conf: { 'spark.master.useAppNameAsAppId.enabled': 'true' } });
  const desc = appDescription({ name: 'same name' });
  const winner = newClient(f, { appDescription: desc });
  assert.equal(await winner.start(), 'samename');
  const listener = new Recorder();
  const loser = newClient(f, { appDescription: desc, listener, registrationTimeoutMs: 20_000 });
  const started = Date.now();
  assert.equal(await loser.start(), undefined);
  assert.ok(Date.now() - started < 10_000, 'no 20 s retry slots for a refusal');
  assert.equal(listener.calls.length, 1);
  assert.match(String(listener.calls[0]![1]), /^Master refused the registration: .*samename is already in use/);
  await loser.stop();
  await winner.stop();
});
