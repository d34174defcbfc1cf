/**
 * Decommissioning from the master UI (Spark's `POST /workers/kill/?host=..` →
 * DecommissionWorkersOnHosts) against a real cluster: the real master in-process,
 * protocol-level workers on two hosts (two on host A, one on host B) running an
 * application's executors, and the UI server over HTTP. Decommissioning host A
 * must change exactly A's workers, tell the app and the workers, and send new
 * executors only to B; the route answers as Spark's does (200 / 404, 405 when
 * decommissioning is disabled) behind Flint's admin scope.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { signToken } from '../../lib/http/auth.ts';
import { startUiServer, type UiServer } from '../../functions/http/ui-server.ts';
import { loadConfig } from '../../protocol/config.ts';
import { REDIS_URL } from '../helpers/env.ts';
import { waitFor } from '../helpers/isolation.ts';
import { readAppEvents, readInbox } from '../helpers/protocol.ts';
import { startSimCluster, type SimCluster, type SimWorker } from './ui-cluster.ts';

const SECRET = 'ui-decommission-test-secret-0123456789-abcdefgh';
const HOST_A = 'host-a.example';
const HOST_B = 'host-b.example';
const admin = signToken(SECRET, { scope: 'admin', ttlSeconds: 300 });
const killOnly = signToken(SECRET, { scope: 'kill', ttlSeconds: 300 });

let cluster: SimCluster;
let ui: UiServer;
let a1: SimWorker;
let a2: SimWorker;
let b: SimWorker;
let appId: string;

before(async () => {
  cluster = await startSimCluster('ui-decom', { 'spark.flint.auth.secret': SECRET, 'spark.decommission.enabled': 'true' });
  ui = await startUiServer({ redisUrl: REDIS_URL, config: cluster.config, port: 0, queueBoard: false });
  a1 = await cluster.addWorker({ cores: 2, memoryMB: 2048, host: HOST_A });
  a2 = await cluster.addWorker({ cores: 2, memoryMB: 2048, host: HOST_A });
  b = await cluster.addWorker({ cores: 4, memoryMB: 4096, host: HOST_B });
  // 4 one-core executors spread out over 3 workers: each worker runs at least one
  appId = await cluster.registerApp({ name: 'decom-app', maxCores: 4, coresPerExecutor: 1, memoryPerExecutorMB: 256 });
  await waitFor(
    () => [a1, a2, b].every((w) => w.launched.length > 0 && w.launched.every((e) => e.state === 'RUNNING')) && a1.launched.length + a2.launched.length + b.launched.length === 4,
    { message: 'four RUNNING executors over the three workers', timeoutMs: 15_000 },
  );
});

after(async () => {
  await ui?.close();
  await cluster?.close();
});

function decommission(query: string, headers: Record<string, string> = {}, target: UiServer = ui): Promise<Response> {
  return fetch(`${target.url}/workers/kill/${query}`, { method: 'POST', redirect: 'manual', headers });
}

async function workerStates(): Promise<string[]> {
  return Promise.all([a1, a2, b].map(async (w) => (await cluster.redis.hget(cluster.keys.worker(w.id), 'state')) ?? 'missing'));
}

test('without a token 401, with only the kill scope 403, from another site with the cookie 403: nothing changes', async () => {
  const anonymous = await decommission(`?host=${HOST_A}`, { accept: 'application/json' });
  assert.equal(anonymous.status, 401);
  assert.match(((await anonymous.json()) as { error: string }).error, /Missing bearer token: this request needs a token with the 'admin' scope/);
  const kill = await decommission(`?host=${HOST_A}`, { authorization: `Bearer ${killOnly}`, accept: 'application/json' });
  assert.equal(kill.status, 403);
  assert.match(((await kill.json()) as { error: string }).error, /does not grant the 'admin' scope/);
  const crossSite = await decommission(`?host=${HOST_A}`, { cookie: `flint_token=${admin}`, origin: 'http://evil.example' });
  assert.equal(crossSite.status, 403);
  assert.deepEqual(await workerStates(), ['ALIVE', 'ALIVE', 'ALIVE']);
});

test('a request naming no host, or a malformed one, is refused with 400 and says why', async () => {
  const auth = { authorization: `Bearer ${admin}` };
  const none = await decommission('', auth);
  assert.equal(none.status, 400);
  assert.match(await none.text(), /^Missing host: use POST \/workers\/kill\/\?host=<hostname>/);
  const blank = await decommission('?host=%20&host=', { ...auth, accept: 'application/json' });
  assert.equal(blank.status, 400);
  assert.match(((await blank.json()) as { message: string }).message, /^Missing host/);
  const spaced = await decommission(`?host=${encodeURIComponent('host a')}`, auth);
  assert.equal(spaced.status, 400);
  assert.match(await spaced.text(), /^Invalid host list: .*hostnames\.0: a hostname must not contain whitespace/);
  const tooLong = await decommission(`?host=${'h'.repeat(300)}`, auth);
  assert.equal(tooLong.status, 400);
  assert.match(await tooLong.text(), /^Invalid host list: .*hostnames\.0/);
  assert.deepEqual(await workerStates(), ['ALIVE', 'ALIVE', 'ALIVE']);
});

test('an unknown host: 404 with a count of 0, and nothing changes', async () => {
  const json = await decommission('?host=nowhere.example', { authorization: `Bearer ${admin}`, accept: 'application/json' });
  assert.equal(json.status, 404);
  assert.deepEqual(await json.json(), { hostnames: ['nowhere.example'], decommissioned: 0, message: 'No worker is registered on nowhere.example' });
  const text = await decommission('?host=nowhere.example', { authorization: `Bearer ${admin}` });
  assert.equal(text.status, 404);
  assert.equal(await text.text(), 'No worker is registered on nowhere.example');
  assert.deepEqual(await workerStates(), ['ALIVE', 'ALIVE', 'ALIVE']);
});

test('decommissioning host A: both A workers and their executors, DecommissionWorker to each, B untouched, new executors on B only; a repeat answers the same', async () => {
  const onA = [...a1.launched, ...a2.launched].map((e) => e.execId).sort((x, y) => x - y);
  const onB = b.launched.map((e) => e.execId);

  // the host matches whatever its case
  const response = await decommission(`?host=${HOST_A.toUpperCase()}`, { authorization: `Bearer ${admin}`, accept: 'application/json' });
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { hostnames: [HOST_A.toUpperCase()], decommissioned: 2, message: `Decommissioned 2 workers on ${HOST_A.toUpperCase()}` });
  assert.deepEqual(await workerStates(), ['DECOMMISSIONED', 'DECOMMISSIONED', 'ALIVE']);

  // the app heard that A's executors are DECOMMISSIONED, and nothing about B's
  const updates = (await readAppEvents(cluster.redis, cluster.keys, appId)).filter((e) => e.type === 'ExecutorUpdated' && e.body.state === 'DECOMMISSIONED');
  assert.deepEqual(updates.map((e) => e.body.id).sort(), onA);
  for (const update of updates) {
    assert.equal(update.body.workerHost, HOST_A);
    assert.equal(update.body.message, 'worker decommissioned');
  }

  // each A worker was told, with its registration epoch; B's inbox got no DecommissionWorker
  for (const w of [a1, a2]) {
    const told = (await readInbox(cluster.redis, cluster.keys, w.id)).filter((e) => e.type === 'DecommissionWorker');
    assert.deepEqual(told.map((e) => e.body), [{ epoch: w.epoch }], `${w.id} inbox`);
  }
  const bInbox = await readInbox(cluster.redis, cluster.keys, b.id);
  assert.ok(!bInbox.some((e) => e.type === 'DecommissionWorker'));

  // the app gets its cores back, on B alone
  await waitFor(async () => (await cluster.redis.hget(cluster.keys.app(appId), 'coresGranted')) === '4', { message: 'the app granted 4 cores again', timeoutMs: 15_000 });
  const launchedOnB = (await readInbox(cluster.redis, cluster.keys, b.id)).filter((e) => e.type === 'LaunchExecutor').map((e) => e.body.execId);
  assert.equal(launchedOnB.length, onB.length + onA.length, `B runs its own ${onB.length} and ${onA.length} replacements`);
  for (const w of [a1, a2]) {
    assert.equal((await readInbox(cluster.redis, cluster.keys, w.id)).filter((e) => e.type === 'LaunchExecutor').length, w.launched.length, `no new executor on ${w.id}`);
  }
  const executors = Object.values(await cluster.redis.hgetall(cluster.keys.appExecutors(appId))).map((text) => JSON.parse(text) as { workerId: string; state: string });
  const live = executors.filter((e) => e.state !== 'DECOMMISSIONED');
  assert.equal(live.length, 4);
  assert.ok(live.every((e) => e.workerId === b.id), 'every live executor is on B');
  const json = (await (await fetch(`${ui.url}/json`)).json()) as { aliveworkers: number };
  assert.equal(json.aliveworkers, 1);

  // a repeat names the same workers (Spark counts decommissioned ones too) and changes nothing
  const again = await decommission(`?host=${HOST_A}`, { authorization: `Bearer ${admin}` });
  assert.equal(again.status, 200);
  assert.equal(await again.text(), `Decommissioned 2 workers on ${HOST_A}`);
  for (const w of [a1, a2]) {
    assert.equal((await readInbox(cluster.redis, cluster.keys, w.id)).filter((e) => e.type === 'DecommissionWorker').length, 1, `${w.id} told once`);
  }
  assert.deepEqual(await workerStates(), ['DECOMMISSIONED', 'DECOMMISSIONED', 'ALIVE']);
});

test('hosts may come as form fields too', async () => {
  const response = await fetch(`${ui.url}/workers/kill/`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, accept: 'application/json' },
    body: new URLSearchParams([['host', HOST_A], ['host', 'nowhere.example']]),
  });
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { hostnames: [HOST_A, 'nowhere.example'], decommissioned: 2, message: `Decommissioned 2 workers on ${HOST_A}, nowhere.example` });
});

test('with spark.decommission.enabled=false the route answers 405, even to an admin', async () => {
  const config = loadConfig({ env: {}, overrides: { 'spark.flint.cluster': cluster.name, 'spark.flint.auth.secret': SECRET, 'spark.decommission.enabled': 'false' } });
  const disabled = await startUiServer({ redisUrl: REDIS_URL, config, port: 0, queueBoard: false });
  try {
    const response = await decommission(`?host=${HOST_B}`, { authorization: `Bearer ${admin}` }, disabled);
    assert.equal(response.status, 405);
    assert.match(await response.text(), /spark\.decommission\.enabled is false/);
    assert.equal(await cluster.redis.hget(cluster.keys.worker(b.id), 'state'), 'ALIVE');
  } finally {
    await disabled.close();
  }
});
