/**
 * Application liveness (issue 12, acceptance 1-3) against the real Redis, the real
 * Docker engine and real processes: a master in this process with a short
 * spark.flint.app.timeout, a worker agent running executors as containers, the
 * application client in a child process (SIGKILLed to play a driver that dies),
 * the app API over HTTP, and a cluster-mode driver container that registers its
 * own application. Every wait is bounded; the bounds asserted are the issue's.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AppClient } from '../../client/app-client.ts';
import { startAppHttpServer, type RunningAppHttpServer } from '../../functions/http/app-api.ts';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { agentFixture, type AgentFixture } from '../helpers/agent-fixture.ts';
import { REDIS_URL, TEST_IMAGE } from '../helpers/env.ts';
import { waitFor } from '../helpers/isolation.ts';
import { appDescription, readAppEvents } from '../helpers/protocol.ts';
import { spawnLivenessChild, stopChild, type LivenessChild } from '../helpers/liveness-children.ts';

/** APP_TIMEOUT_MS: spark.flint.app.timeout of this test's cluster. */
const APP_TIMEOUT_MS = 2_000;

let f: AgentFixture;
let api: RunningAppHttpServer;
const children: LivenessChild[] = [];
const clients: AppClient[] = [];

before(async () => {
  f = await agentFixture('liveness', { conf: { 'spark.flint.app.timeout': `${APP_TIMEOUT_MS}ms`, 'spark.flint.reaper.interval': '100ms' } });
  await f.startAgent({ workDir: await f.workDir(), cores: 3, memoryMB: 2048 });
  await waitFor(async () => (await f.redis.hlen(f.keys.schedulable)) === 1, { message: 'the worker registered', timeoutMs: 20_000 });
  api = await startAppHttpServer({ redisUrl: REDIS_URL, cluster: f.cluster, port: 0, pollMs: 200 });
});

after(async () => {
  for (const child of children) await stopChild(child);
  for (const client of clients) await client.stop().catch(() => undefined);
  await api?.close();
  await f?.cleanup();
});

async function appState(appId: string): Promise<{ state: string | null; endTime: number; endReason: string | null }> {
  const [state, endTime, endReason] = await f.redis.hmget(f.keys.app(appId), 'state', 'endTime', 'endReason');
  return { state, endTime: Number(endTime), endReason };
}

async function runningContainers(appId: string): Promise<number> {
  return (await f.containers([`${LABEL.app}=${appId}`])).filter((c) => c.State === 'running').length;
}

async function workerCoresUsed(): Promise<number> {
  const workerId = (await f.redis.smembers(f.keys.workersAll))[0]!;
  return Number(await f.redis.hget(f.keys.worker(workerId), 'coresUsed'));
}

const sleepApp = (name: string, cores: number) =>
  appDescription({ name, image: TEST_IMAGE, command: ['sleep', '300'], maxCores: cores, coresPerExecutor: 1, memoryPerExecutorMB: 64 });

test('an AppClient whose process is SIGKILLed: its app is FINISHED within spark.flint.app.timeout + 1 s, containers gone, cores free', async () => {
  const child = await spawnLivenessChild('app-client', { REDIS_URL, CLUSTER: f.cluster, DESC: JSON.stringify(sleepApp('dies', 2)) });
  children.push(child);
  const appId = child.ready.appId!;
  await waitFor(async () => (await runningContainers(appId)) === 2, { message: 'both executors running', timeoutMs: 30_000 });
  assert.equal(await workerCoresUsed(), 2);

  child.child.kill('SIGKILL');
  await child.exit;
  const killedAt = Date.now();
  const finished = await waitFor(async () => {
    const s = await appState(appId);
    return s.state === 'FINISHED' ? s : undefined;
  }, { message: 'the app FINISHED after its client died', timeoutMs: APP_TIMEOUT_MS + 5_000, intervalMs: 20 });
  assert.ok(finished.endTime - killedAt <= APP_TIMEOUT_MS + 1_000, `FINISHED ${finished.endTime - killedAt} ms after the client died (bound: ${APP_TIMEOUT_MS + 1_000} ms)`);
  assert.match(finished.endReason ?? '', /its client did not renew its lease for 2000 ms/);
  const removed = (await readAppEvents(f.redis, f.keys, appId)).find((e) => e.type === 'ApplicationRemoved');
  assert.match(String(removed?.body.message), /^FINISHED: its client did not renew its lease/, 'ApplicationRemoved is sent with the reason');
  assert.ok((await f.redis.lrange(f.keys.appsCompleted, 0, -1)).includes(appId), 'shown as completed');
  assert.equal(await workerCoresUsed(), 0, 'the cores are free at once');
  await waitFor(async () => (await runningContainers(appId)) === 0, { message: "the app's containers stopped", timeoutMs: 15_000 });
});

test('a live AppClient that only waits (no asks) for five timeouts keeps its application', async () => {
  const client = new AppClient({ redisUrl: REDIS_URL, cluster: f.cluster, appDescription: sleepApp('waits', 1), driverId: null });
  clients.push(client);
  const appId = (await client.start())!;
  const started = Date.now();
  // sample the state all along: it must never leave RUNNING/WAITING
  while (Date.now() - started < 5 * APP_TIMEOUT_MS) {
    const { state } = await appState(appId);
    assert.ok(state === 'WAITING' || state === 'RUNNING', `still active after ${Date.now() - started} ms (was ${state})`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assert.equal(client.deadReason, undefined);
  await client.stop();
  assert.equal((await appState(appId)).state, 'FINISHED');
});

test('over HTTP: an app with no further requests is FINISHED after the timeout; one whose client keeps an event stream open is not', async () => {
  const post = async (body: unknown) => {
    const response = await fetch(`${api.url}/v1/apps`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(response.status, 201);
    return (await response.json()) as { appId: string; appToken: string; leaseTimeoutMs: number };
  };
  const silent = await post(sleepApp('silent', 1));
  assert.equal(silent.leaseTimeoutMs, APP_TIMEOUT_MS, 'the client learns how often to renew');
  const registeredAt = Date.now();
  const following = await post(sleepApp('following', 1));
  const controller = new AbortController();
  const stream = await fetch(`${api.url}/v1/apps/${following.appId}/events`, { headers: { authorization: `Bearer ${following.appToken}` }, signal: controller.signal });
  assert.equal(stream.status, 200);
  const drain = stream.body!.pipeTo(new WritableStream()).catch(() => undefined);

  const finished = await waitFor(async () => {
    const s = await appState(silent.appId);
    return s.state === 'FINISHED' ? s : undefined;
  }, { message: 'the silent HTTP app FINISHED', timeoutMs: APP_TIMEOUT_MS + 5_000, intervalMs: 20 });
  assert.ok(finished.endTime - registeredAt <= APP_TIMEOUT_MS + 1_000, `FINISHED ${finished.endTime - registeredAt} ms after its registration`);

  // the followed one outlives three timeouts
  while (Date.now() - registeredAt < 3 * APP_TIMEOUT_MS) {
    const { state } = await appState(following.appId);
    assert.ok(state === 'WAITING' || state === 'RUNNING', `the app with an open stream is still active (was ${state})`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  // an explicit heartbeat renews too, and closing the stream lets the lease lapse
  const beat = await fetch(`${api.url}/v1/apps/${following.appId}/heartbeat`, { method: 'POST', headers: { authorization: `Bearer ${following.appToken}` } });
  assert.deepEqual(await beat.json(), { ok: true, appId: following.appId });
  controller.abort();
  await drain;
  await waitFor(async () => (await appState(following.appId)).state === 'FINISHED', { message: 'the app FINISHED once its stream closed', timeoutMs: APP_TIMEOUT_MS + 5_000 });
  const late = await fetch(`${api.url}/v1/apps/${following.appId}/heartbeat`, { method: 'POST', headers: { authorization: `Bearer ${following.appToken}` } });
  assert.equal(late.status, 404, 'a finished app has no lease to renew');
});

test("a cluster-mode driver that is killed takes its application with it", async () => {
  // the driver registers its own app over HTTP (host network), linked by FLINT_DRIVER_ID, renews it, and waits
  const registration = JSON.stringify({ ...sleepApp('driven', 1), conf: { 'spark.flint.driver.id': '@DRIVER@' } });
  const script = [
    `body=$(echo '${registration}' | sed "s/@DRIVER@/$FLINT_DRIVER_ID/")`,
    `reply=$(wget -q -O - --header 'Content-Type: application/json' --post-data "$body" ${api.url}/v1/apps) || exit 3`,
    `token=$(echo "$reply" | sed -n 's/.*"appToken":"\\([^"]*\\)".*/\\1/p')`,
    `app=$(echo "$reply" | sed -n 's/.*"appId":"\\([^"]*\\)".*/\\1/p')`,
    'echo "registered $app"',
    `while true; do wget -q -O /dev/null --post-data '' --header "Authorization: Bearer $token" ${api.url}/v1/apps/$app/heartbeat; sleep 0.3; done`,
  ].join('\n');
  const submitted = await f.masterClient.ask<{ driverId: string }>('RequestSubmitDriver', {
    driverDescription: { name: 'driver', appResource: '', mainClass: '', image: TEST_IMAGE, command: ['sh', '-c', script], env: {}, memoryMB: 64, cores: 1, supervise: false, resourceReqs: [], sparkProperties: {} },
  });
  const driverId = submitted.driverId;
  const appId = await waitFor(async () => (await f.redis.smembers(f.keys.driverApps(driverId)))[0], { message: 'the driver registered its app', timeoutMs: 30_000 });
  assert.equal(await f.redis.hget(f.keys.app(appId), 'driverId'), driverId);
  await waitFor(async () => (await runningContainers(appId)) === 1, { message: "the driver's app has its executor", timeoutMs: 30_000 });
  // longer than the timeout: the driver keeps its app alive
  await new Promise((resolve) => setTimeout(resolve, APP_TIMEOUT_MS + 500));
  assert.equal((await appState(appId)).state, 'RUNNING');

  const killed = await f.masterClient.ask<{ success: boolean }>('RequestKillDriver', { driverId });
  assert.equal(killed.success, true);
  const ended = await waitFor(async () => {
    const s = await appState(appId);
    return s.state === 'KILLED' ? s : undefined;
  }, { message: "the app ended with its driver", timeoutMs: 20_000 });
  assert.equal(await f.redis.hget(f.keys.driver(driverId), 'state'), 'KILLED');
  assert.match(ended.endReason ?? '', new RegExp(`its driver ${driverId} ended \\(KILLED\\)`));
  await waitFor(async () => (await runningContainers(appId)) === 0, { message: "the app's executor stopped", timeoutMs: 15_000 });
  assert.equal(await f.redis.exists(f.keys.driverApps(driverId)), 0, 'the link is gone with the driver');
});

test('an app naming a driver that is not running is refused, naming the key', async () => {
  const response = await fetch(`${api.url}/v1/apps`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...sleepApp('orphan', 1), conf: { 'spark.flint.driver.id': 'driver-19990101000000-9999' } }),
  });
  assert.equal(response.status, 422);
  assert.match(((await response.json()) as { error: string }).error, /spark\.flint\.driver\.id names driver driver-19990101000000-9999, which is not running/);
});
