/**
 * The HTTP invocation adapter against the real Redis: one request runs one
 * handler and returns its reply; the effect equals the queue path's (the same
 * messages through MasterClient.ask on another cluster leave the same state,
 * events and replies); malformed messages get 400 and a dead-letter entry;
 * handler failures are 500; the Idempotency-Key reaches the handler; with a
 * secret configured, only an admin token gets through.
 */
import { appDescription } from '../helpers/protocol.ts';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startMaster, type MasterHost } from '../../functions/host.ts';
import { createInvokeApp, startInvokeServer } from '../../functions/http/invoke.ts';
import { signToken } from '../../lib/http/auth.ts';
import { loadConfig } from '../../protocol/config.ts';
import { clusterKeys, type Keys } from '../../protocol/keys.ts';
import { MasterClient } from '../../client/master-client.ts';
import { REDIS_URL } from '../helpers/env.ts';
import { cleanupCluster, uniqueCluster, waitFor } from '../helpers/isolation.ts';

let redis: Redis;
const started: { cluster: string; master: MasterHost }[] = [];

before(() => {
  redis = new Redis(REDIS_URL);
});

after(async () => {
  for (const { cluster, master } of started) {
    await master.stop().catch(() => undefined);
    await cleanupCluster(redis, cluster);
  }
  redis.disconnect();
});

async function startCluster(name: string): Promise<{ cluster: string; keys: Keys; master: MasterHost }> {
  const cluster = uniqueCluster(name);
  const config = loadConfig({ env: {}, overrides: { 'spark.flint.cluster': cluster, 'spark.flint.reaper.interval': '100ms' } });
  const master = await startMaster({ redisUrl: REDIS_URL, config, concurrency: 4 });
  started.push({ cluster, master });
  return { cluster, keys: clusterKeys(cluster), master };
}

const WORKER = {
  id: 'worker-invoke-1',
  host: '127.0.0.1',
  port: 7101,
  cores: 4,
  memoryMB: 4096,
  webUiUrl: '',
  resources: {},
  labels: {},
  executors: [],
  driverIds: [],
};

const APP = {
  clientId: 'client-invoke-1',
  appDescription: appDescription({ name: 'invoke-equivalence', maxCores: 2, coresPerExecutor: 1, memoryPerExecutorMB: 256 }),
};

/** normalize removes what legitimately differs between two clusters: names, clocks, stream ids. */
function normalize(value: unknown, cluster: string): unknown {
  const text = JSON.stringify(value)
    .split(cluster)
    .join('<cluster>')
    .replace(/\d{13}-\d+/g, '<stream-id>')
    .replace(/\d{14}/g, '<spark-ts>')
    .replace(/\b1\d{12}\b/g, '<ms>');
  return JSON.parse(text);
}

async function waitQuiet(keys: Keys, master: MasterHost): Promise<void> {
  await waitFor(
    async () => {
      await master.scheduler.idle();
      const [dirty, done] = await redis.mget(keys.scheduleDirty, keys.scheduleDone);
      return (dirty ?? '0') === (done ?? '0');
    },
    { timeoutMs: 10_000, message: 'scheduling passes settled' },
  );
}

/** clusterState: the Redis state and messages the two messages produce, in comparable form. */
async function clusterState(keys: Keys, appId: string) {
  const stream = async (key: string) => ((await redis.xrange(key, '-', '+')) as unknown as [string, string[]][]).map(([, fields]) => fields);
  const worker = await redis.hgetall(keys.worker(WORKER.id));
  delete worker.lastHeartbeat; // heartbeats continue on their own clock
  return {
    worker,
    workerExecutors: (await redis.smembers(keys.workerExecutors(WORKER.id))).sort(),
    inbox: await stream(keys.workerInbox(WORKER.id)),
    schedulable: await redis.hgetall(keys.schedulable),
    app: await redis.hgetall(keys.app(appId)),
    appExecutors: await redis.hgetall(keys.appExecutors(appId)),
    appEvents: await stream(keys.appEvents(appId)),
    appsWaiting: await redis.zrange(keys.appsWaiting, '0', '-1'),
    clusterEvents: await stream(keys.clusterEvents),
    deadLetters: await redis.xlen(keys.deadLetters),
  };
}

async function invoke(app: ReturnType<typeof createInvokeApp>, type: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await app.request(`/invoke/${type}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as { ok: boolean; reply?: unknown; error?: string } };
}

test('one message in, one reply out: the adapter has the same effect as the queue path', async () => {
  const viaHttp = await startCluster('invoke-http');
  const viaQueue = await startCluster('invoke-queue');
  const app = createInvokeApp({ host: viaHttp.master });

  const httpWorker = await invoke(app, 'RegisterWorker', WORKER);
  assert.equal(httpWorker.status, 200);
  assert.equal(httpWorker.json.ok, true);
  const httpApp = await invoke(app, 'RegisterApplication', APP);
  assert.equal(httpApp.status, 200);

  const client = new MasterClient(REDIS_URL, viaQueue.cluster);
  let queueApp: { appId: string };
  try {
    const queueWorker = await client.ask('RegisterWorker', WORKER);
    queueApp = await client.ask<{ appId: string }>('RegisterApplication', APP);
    assert.deepEqual(normalize(httpWorker.json.reply, viaHttp.cluster), normalize(queueWorker, viaQueue.cluster));
    assert.deepEqual(normalize(httpApp.json.reply, viaHttp.cluster), normalize(queueApp, viaQueue.cluster));
  } finally {
    await client.close();
  }

  await waitQuiet(viaHttp.keys, viaHttp.master);
  await waitQuiet(viaQueue.keys, viaQueue.master);
  const appId = (httpApp.json.reply as { appId: string }).appId;
  const httpState = await clusterState(viaHttp.keys, appId);
  const queueState = await clusterState(viaQueue.keys, queueApp.appId);
  // the app got its two executors on the worker, through either path
  assert.equal(Object.keys(httpState.appExecutors).length, 2);
  assert.equal(httpState.inbox.filter((fields) => fields[1] === 'LaunchExecutor').length, 2);
  assert.deepEqual(normalize(httpState, viaHttp.cluster), normalize(queueState, viaQueue.cluster));
});

test('a malformed message is refused with 400 and dead-lettered; a bad route or method is refused', async () => {
  const { keys, master } = await startCluster('invoke-bad');
  const app = createInvokeApp({ host: master });

  const missingField = await invoke(app, 'RegisterWorker', { id: 'w-bad', host: '127.0.0.1' });
  assert.equal(missingField.status, 400);
  assert.equal(missingField.json.ok, false);
  assert.match(missingField.json.error!, /RegisterWorker: .*port/);

  const notJson = await invoke(app, 'RegisterApplication', '{not json');
  assert.equal(notJson.status, 400);
  assert.match(notJson.json.error!, /not valid JSON/);

  const unknownType = await invoke(app, 'LaunchRockets', {});
  assert.equal(unknownType.status, 400);
  assert.match(unknownType.json.error!, /unknown message type 'LaunchRockets'/);

  const letters = (await redis.xrange(keys.deadLetters, '-', '+')) as [string, string[]][];
  const entries = letters.map(([, fields]) => Object.fromEntries(fields.reduce<[string, string][]>((acc, v, i) => (i % 2 ? acc : [...acc, [v, fields[i + 1]!]]), [])));
  assert.deepEqual(entries.map((e) => e.type), ['RegisterWorker', 'RegisterApplication', 'LaunchRockets']);
  assert.equal(entries[1]!.raw, '{not json');
  assert.match(entries[0]!.reason!, /port/);
  // nothing was registered
  assert.equal(await redis.exists(keys.worker('w-bad')), 0);

  assert.equal((await app.request('/invoke/RegisterWorker', { method: 'GET' })).status, 405);
  assert.equal((await app.request('/elsewhere', { method: 'POST' })).status, 404);
  const badKey = await invoke(app, 'RegisterWorker', WORKER, { 'idempotency-key': 'has spaces' });
  assert.equal(badKey.status, 400);
  assert.match(badKey.json.error!, /Idempotency-Key/);
});

test('the Idempotency-Key is the request id: a retried RequestSubmitDriver returns the first driver', async () => {
  const { keys, master } = await startCluster('invoke-idem');
  const app = createInvokeApp({ host: master });
  const submit = {
    driverDescription: { name: 'idem', image: 'flint-test-busybox:latest', command: ['true'], memoryMB: 64, cores: 1 },
  };
  const first = await invoke(app, 'RequestSubmitDriver', submit, { 'idempotency-key': 'submit-once-1' });
  const again = await invoke(app, 'RequestSubmitDriver', submit, { 'idempotency-key': 'submit-once-1' });
  const other = await invoke(app, 'RequestSubmitDriver', submit);
  assert.equal(first.status, 200);
  const firstId = (first.json.reply as { driverId: string }).driverId;
  assert.ok(firstId);
  assert.equal((again.json.reply as { driverId: string }).driverId, firstId);
  assert.notEqual((other.json.reply as { driverId: string }).driverId, firstId);
  assert.equal(await redis.scard(keys.driversActive), 2);
});

test('a handler failure is a 500 and is not dead-lettered', async () => {
  const failing = {
    async handle(): Promise<unknown> {
      throw new Error('Redis went away');
    },
  };
  const app = createInvokeApp({ host: failing });
  const result = await invoke(app, 'RegisterWorker', WORKER);
  assert.equal(result.status, 500);
  assert.equal(result.json.ok, false);
  assert.match(result.json.error!, /Redis went away/);
});

test('with a secret, only a token with the admin scope may invoke; the served adapter works over HTTP', async () => {
  const { master } = await startCluster('invoke-auth');
  const secret = 'x'.repeat(48);
  const app = createInvokeApp({ host: master, secret });
  const body = { ...WORKER, id: 'worker-auth-1', port: 7201 };

  assert.equal((await invoke(app, 'RegisterWorker', body)).status, 401);
  const submitOnly = signToken(secret, { scope: 'submit', ttlSeconds: 60 });
  assert.equal((await invoke(app, 'RegisterWorker', body, { authorization: `Bearer ${submitOnly}` })).status, 403);
  const admin = signToken(secret, { scope: 'admin', ttlSeconds: 60 });
  const ok = await invoke(app, 'RegisterWorker', body, { authorization: `Bearer ${admin}` });
  assert.equal(ok.status, 200);
  assert.equal((ok.json.reply as { type: string }).type, 'RegisteredWorker');

  await assert.rejects(startInvokeServer({ host: master, hostname: '0.0.0.0', port: 0 }), /refusing to listen/);
  const server = await startInvokeServer({ host: master, hostname: '127.0.0.1', port: 0 });
  try {
    const response = await fetch(`${server.url}/invoke/RegisterWorker`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...WORKER, id: 'worker-auth-2', port: 7202 }),
    });
    assert.equal(response.status, 200);
    const json = (await response.json()) as { ok: boolean; reply: { type: string; duplicate: boolean } };
    assert.equal(json.reply.type, 'RegisteredWorker');
    assert.equal(json.reply.duplicate, false);
  } finally {
    await server.close();
  }
});
