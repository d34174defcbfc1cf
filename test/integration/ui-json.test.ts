/**
 * The master UI against a real cluster: the real master in-process, two workers
 * and one application registered through the real protocol (MasterClient asks),
 * the UI server over HTTP. /json is checked field by field against what the
 * cluster must hold after placement; the pages list what they must; kills need a
 * token (401 without, 403 with the wrong scope) and work with one.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { signToken } from '../../lib/http/auth.ts';
import { startUiServer, type UiServer } from '../../functions/http/ui-server.ts';
import { waitFor } from '../helpers/isolation.ts';
import { REDIS_URL } from '../helpers/env.ts';
import { startSimCluster, type SimCluster } from './ui-cluster.ts';

const SECRET = 'ui-json-test-secret-0123456789-abcdefghijklmnop';
let cluster: SimCluster;
let ui: UiServer;
let appId: string;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON read field by field
type Json = Record<string, any>;

async function getJson(path: string): Promise<Json> {
  const response = await fetch(ui.url + path);
  assert.equal(response.status, 200, `${path} answered ${response.status}`);
  assert.match(response.headers.get('content-type') ?? '', /application\/json/);
  return (await response.json()) as Json;
}

before(async () => {
  cluster = await startSimCluster('ui-json', { 'spark.flint.auth.secret': SECRET, 'spark.master.host': 'master.example', 'spark.master.port': '7177', 'spark.master.rest.port': '6166' });
  ui = await startUiServer({ redisUrl: REDIS_URL, config: cluster.config, port: 0, queueBoard: true });
  await cluster.addWorker({ cores: 4, memoryMB: 4096 });
  await cluster.addWorker({ cores: 2, memoryMB: 2048 });
  // 3 executors of 2 cores and 1000 MB: spread out → 2 on the 4-core worker, 1 on the other
  appId = await cluster.registerApp({ name: 'json-app', maxCores: 6, coresPerExecutor: 2, memoryPerExecutorMB: 1000, user: 'alice' });
  await waitFor(
    async () => {
      const json = await getJson('/json');
      return json.coresused === 6 && json.activeapps?.[0]?.state === 'RUNNING';
    },
    { message: 'the app to be granted 6 cores', timeoutMs: 15_000 },
  );
  // every executor reports RUNNING
  await waitFor(() => cluster.workers.every((w) => w.launched.length > 0 && w.launched.every((e) => e.state === 'RUNNING')), { message: 'executors RUNNING' });
});

after(async () => {
  await ui?.close();
  await cluster?.close();
});

test('/json: MasterStateResponse field by field', async () => {
  const json = await getJson('/json');
  assert.deepEqual(Object.keys(json), ['url', 'workers', 'aliveworkers', 'cores', 'coresused', 'memory', 'memoryused', 'resources', 'resourcesused', 'activeapps', 'completedapps', 'activedrivers', 'completeddrivers', 'status']);
  assert.equal(json.url, 'spark://master.example:7177');
  assert.equal(json.aliveworkers, 2);
  assert.equal(json.cores, 6);
  assert.equal(json.coresused, 6);
  assert.equal(json.memory, 6144);
  assert.equal(json.memoryused, 3000);
  assert.deepEqual(json.resources, [{}, {}]);
  assert.deepEqual(json.resourcesused, [{}, {}]);
  assert.equal(json.status, 'ALIVE');
  assert.deepEqual(json.completedapps, []);
  assert.deepEqual(json.activedrivers, []);
  assert.deepEqual(json.completeddrivers, []);

  const workers = json.workers as Json[];
  assert.equal(workers.length, 2);
  const [big, small] = [...workers].sort((a, b) => b.cores - a.cores) as [Json, Json];
  assert.deepEqual(Object.keys(big), ['id', 'host', 'port', 'webuiaddress', 'cores', 'coresused', 'coresfree', 'memory', 'memoryused', 'memoryfree', 'resources', 'resourcesused', 'resourcesfree', 'state', 'lastheartbeat']);
  assert.equal(big.id, cluster.workers[0]!.id);
  assert.equal(big.host, '127.0.0.1');
  assert.equal(big.port, cluster.workers[0]!.port);
  assert.equal(big.webuiaddress, cluster.workers[0]!.ui!.url);
  assert.equal(big.cores, 4);
  assert.equal(big.coresused, 4);
  assert.equal(big.coresfree, 0);
  assert.equal(big.memory, 4096);
  assert.equal(big.memoryused, 2000);
  assert.equal(big.memoryfree, 2096);
  assert.equal(big.state, 'ALIVE');
  assert.equal(typeof big.lastheartbeat, 'number');
  assert.ok(Date.now() - big.lastheartbeat < 10_000);
  assert.equal(small.coresused, 2);
  assert.equal(small.memoryused, 1000);

  const apps = json.activeapps as Json[];
  assert.equal(apps.length, 1);
  const app = apps[0]!;
  assert.deepEqual(Object.keys(app), ['id', 'starttime', 'name', 'cores', 'user', 'memoryperexecutor', 'memoryperslave', 'resourcesperexecutor', 'resourcesperslave', 'submitdate', 'state', 'duration']);
  assert.equal(app.id, appId);
  assert.equal(app.name, 'json-app');
  assert.equal(app.cores, 6);
  assert.equal(app.user, 'alice');
  assert.equal(app.memoryperexecutor, 1000);
  assert.equal(app.memoryperslave, 1000);
  assert.deepEqual(app.resourcesperexecutor, []);
  assert.equal(app.state, 'RUNNING');
  assert.equal(typeof app.starttime, 'number');
  assert.match(app.submitdate, /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} GMT \d{4}$/);
  assert.ok(app.duration >= 0 && app.duration < 60_000);
});

test('/json/<field>, /json/clusterutilization and an unknown field', async () => {
  assert.deepEqual(await getJson('/json/aliveworkers'), { aliveworkers: 2 });
  assert.deepEqual(await getJson('/json/coresused'), { coresused: 6 });
  assert.deepEqual(await getJson('/json/status'), { status: 'ALIVE' });
  assert.deepEqual(await getJson('/json/nosuchfield'), { nosuchfield: '' });
  assert.deepEqual(await getJson('/json/clusterutilization'), {
    waitingDrivers: 0,
    cores: 6,
    coresused: 6,
    coresutilization: 100,
    memory: 6144,
    memoryused: 3000,
    memoryutilization: 48,
  });
});

test('the master page shows the cluster: URLs, worker counts, capacity, apps', async () => {
  const response = await fetch(ui.url + '/');
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  const page = await response.text();
  assert.match(page, /<span id="master-url">spark:\/\/master\.example:7177<\/span>/);
  assert.match(page, /<span id="rest-url">spark:\/\/master\.example:6166<\/span>/);
  assert.match(page, /2 Alive, 0 Dead, 0 Decommissioned, 0 Unknown/);
  assert.match(page, /<span id="cores">6 Total, 6 Used<\/span>/);
  assert.match(page, /<span id="memory">6\.0 GiB Total, 2\.9 GiB Used<\/span>/);
  assert.match(page, /<span id="app-counts">1 <a href="#running-app">Running<\/a>, 0 <a href="#completed-app">Completed<\/a><\/span>/);
  assert.match(page, /<span id="status">ALIVE<\/span>/);
  for (const w of cluster.workers) assert.ok(page.includes(`data-worker-id="${w.id}"`), `worker ${w.id} listed`);
  assert.ok(page.includes(`data-app-id="${appId}"`));
  assert.ok(page.includes('action="/app/kill/"'));
  // the fragment is the content alone
  const fragment = await (await fetch(ui.url + '/?fragment=1')).text();
  assert.ok(!fragment.includes('<html'));
  assert.ok(fragment.includes(`data-app-id="${appId}"`));
});

test('the app page lists executors with worker, state and log links; the worker page lists what it runs', async () => {
  const page = await (await fetch(`${ui.url}/app/?appId=${encodeURIComponent(appId)}`)).text();
  const rows = page.match(/<tr data-executor-id="\d+">/g) ?? [];
  assert.equal(rows.length, 3);
  assert.equal((page.match(/state-RUNNING">RUNNING/g) ?? []).length, 4); // 3 executors + the app
  const big = cluster.workers[0]!;
  assert.ok(page.includes(`${big.ui!.url}/logPage/?appId=${encodeURIComponent(appId)}&amp;executorId=`), 'log links point at the worker UI');

  const workerPage = await (await fetch(`${ui.url}/worker/?workerId=${encodeURIComponent(big.id)}`)).text();
  assert.match(workerPage, /<strong>Cores:<\/strong> 4 \(4 Used\)/);
  assert.equal((workerPage.match(/<a href="\/app\/\?appId=/g) ?? []).length, 2);

  // the log link leads to the real worker UI log page
  const launched = big.launched[0]!;
  const log = await (await fetch(`${big.ui!.url}/logPage/?appId=${encodeURIComponent(launched.appId)}&executorId=${launched.execId}&logType=stdout`)).text();
  assert.ok(log.includes(`executor ${launched.execId} of ${launched.appId} started`));

  assert.equal((await fetch(`${ui.url}/app/?appId=app-does-not-exist`)).status, 404);
  assert.equal((await fetch(`${ui.url}/worker/?workerId=nope`)).status, 404);
  assert.equal((await fetch(`${ui.url}/app/`)).status, 400);
});

test('names are escaped on every page', async () => {
  const evil = await cluster.registerApp({ name: '<script>alert(1)</script>', maxCores: 1, coresPerExecutor: 1, user: '"><img src=x onerror=alert(2)>' });
  try {
    for (const path of ['/', `/app/?appId=${encodeURIComponent(evil)}`]) {
      const page = await (await fetch(ui.url + path)).text();
      assert.ok(!page.includes('<script>alert(1)</script>'), `${path} renders the name as markup`);
      assert.ok(page.includes('&lt;script&gt;alert(1)&lt;/script&gt;'), `${path} shows the escaped name`);
      assert.ok(!page.includes('<img src=x'), `${path} renders the user as markup`);
    }
  } finally {
    await cluster.client.ask('KillApplication', { appId: evil });
  }
});

test('kill needs a token with the kill scope: 401 without, 403 with another scope, then it kills', async () => {
  const form = () => new URLSearchParams({ id: appId, terminate: 'true' });
  const anonymous = await fetch(ui.url + '/app/kill/', { method: 'POST', body: form(), redirect: 'manual', headers: { origin: ui.url } });
  assert.equal(anonymous.status, 401);
  assert.match(anonymous.headers.get('www-authenticate') ?? '', /Bearer/);
  const forged = await fetch(ui.url + '/app/kill/', { method: 'POST', body: form(), redirect: 'manual', headers: { cookie: 'flint_token=not.a.jwt' } });
  assert.equal(forged.status, 401);
  const submitOnly = signToken(SECRET, { scope: 'submit', ttlSeconds: 60 });
  const wrongScope = await fetch(ui.url + '/app/kill/', { method: 'POST', body: form(), redirect: 'manual', headers: { authorization: `Bearer ${submitOnly}` } });
  assert.equal(wrongScope.status, 403);
  assert.equal((await getJson('/json/activeapps')).activeapps.length, 1, 'nothing was killed yet');

  // a cookie from another site is refused by the Origin check even with a valid token
  const killToken = signToken(SECRET, { scope: 'kill', ttlSeconds: 60 });
  const crossSite = await fetch(ui.url + '/app/kill/', { method: 'POST', body: form(), redirect: 'manual', headers: { cookie: `flint_token=${killToken}`, origin: 'http://evil.example' } });
  assert.equal(crossSite.status, 403);

  // log in through the form (cookie), then kill from the same origin
  const login = await fetch(ui.url + '/login', { method: 'POST', body: new URLSearchParams({ token: killToken, next: '/' }), redirect: 'manual', headers: { origin: ui.url } });
  assert.equal(login.status, 303);
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
  assert.match(login.headers.get('set-cookie') ?? '', /HttpOnly/i);
  assert.match(login.headers.get('set-cookie') ?? '', /SameSite=Strict/i);
  const killed = await fetch(ui.url + '/app/kill/', { method: 'POST', body: form(), redirect: 'manual', headers: { cookie, origin: ui.url } });
  assert.equal(killed.status, 303);
  const json = await getJson('/json');
  assert.deepEqual(json.activeapps, []);
  assert.equal(json.completedapps.length, 2);
  const completed = (json.completedapps as Json[]).find((a) => a.id === appId)!;
  assert.equal(completed.state, 'KILLED');
  assert.equal(json.coresused, 0);

  const badLogin = await fetch(ui.url + '/login', { method: 'POST', body: new URLSearchParams({ token: 'garbage' }), headers: { origin: ui.url } });
  assert.equal(badLogin.status, 401);
  // a body is read before any token is checked: it is bounded
  // (on a connection of its own: the server answers before reading it all, so the connection is not reused)
  const huge = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const request = httpRequest(ui.url + '/login', { method: 'POST', agent: false, headers: { origin: ui.url, 'content-type': 'application/x-www-form-urlencoded' } }, (response) => {
      let text = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => resolve({ status: response.statusCode ?? 0, text }));
    });
    request.on('error', reject);
    request.end(`token=${'x'.repeat(128 * 1024)}`);
  });
  assert.equal(huge.status, 413);
  assert.match(huge.text, /Request body too large: the limit is 65536 bytes/);
});

test('a driver can be killed with a bearer token (no Origin needed)', async () => {
  const submitted = await cluster.client.ask<{ driverId: string }>('RequestSubmitDriver', {
    driverDescription: { name: 'd', appResource: '', mainClass: 'org.example.Main', image: 'flint-test-busybox:latest', command: ['sleep', '60'], env: {}, memoryMB: 64000, cores: 64, supervise: false, resourceReqs: [], sparkProperties: {} },
  });
  // far too big for any worker: it stays waiting
  const waiting = await getJson('/json/activedrivers');
  const driver = (waiting.activedrivers as Json[]).find((d) => d.id === submitted.driverId)!;
  assert.equal(driver.state, 'SUBMITTED');
  assert.equal(driver.worker, 'None');
  assert.equal(driver.starttime, String(driver.starttime));
  assert.equal(driver.mainclass, 'org.example.Main');
  assert.equal((await getJson('/json/clusterutilization')).waitingDrivers, 1);

  const token = signToken(SECRET, { scope: 'kill', ttlSeconds: 60 });
  const response = await fetch(ui.url + '/driver/kill/', {
    method: 'POST',
    body: new URLSearchParams({ id: submitted.driverId, terminate: 'true' }),
    headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
  });
  assert.equal(response.status, 200);
  assert.equal(((await response.json()) as Json).success, true);
  const after = await getJson('/json');
  assert.deepEqual(after.activedrivers, []);
  assert.equal((after.completeddrivers as Json[])[0]!.state, 'KILLED');
});

test('the queue board needs the admin scope', async () => {
  assert.equal((await fetch(ui.url + '/queues', { redirect: 'manual' })).status, 401);
  const kill = signToken(SECRET, { scope: 'kill', ttlSeconds: 60 });
  assert.equal((await fetch(ui.url + '/queues', { headers: { authorization: `Bearer ${kill}` } })).status, 403);
  const admin = signToken(SECRET, { scope: 'admin', ttlSeconds: 60 });
  const board = await fetch(ui.url + '/queues', { headers: { authorization: `Bearer ${admin}` } });
  assert.equal(board.status, 200);
  const boardPage = await board.text();
  assert.ok(boardPage.includes(`"boardTitle":"Flint ${cluster.name}"`), 'the board page is served');
  const css = /href="(static\/css\/[^"]+)"/.exec(boardPage)?.[1];
  assert.ok(css, 'the board page links its stylesheet');
  const asset = await fetch(`${ui.url}/queues/${css}`, { headers: { authorization: `Bearer ${admin}` } });
  assert.equal(asset.status, 200, 'the board serves its static files');
  const queues = await fetch(ui.url + '/queues/api/queues', { headers: { authorization: `Bearer ${admin}` } });
  assert.equal(queues.status, 200);
  const body = (await queues.json()) as { queues: { name: string }[] };
  assert.ok(body.queues.some((q) => q.name === 'master'), JSON.stringify(body).slice(0, 300));

  // the board's changes ride on the session cookie in a browser: they pass the Origin check
  // whatever their content type (hono's csrf() would let a JSON PUT through)
  const login = await fetch(ui.url + '/login', { method: 'POST', body: new URLSearchParams({ token: admin, next: '/queues' }), redirect: 'manual', headers: { origin: ui.url } });
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
  const promote = (headers: Record<string, string>) =>
    fetch(ui.url + '/queues/api/queues/master/promote', { method: 'PUT', headers: { cookie, 'content-type': 'application/json', ...headers }, body: '{}' });
  assert.equal((await promote({ origin: 'http://evil.example' })).status, 403, 'another site cannot change the queues with the cookie');
  assert.equal((await promote({ 'sec-fetch-site': 'cross-site' })).status, 403);
  assert.equal((await promote({})).status, 403, 'neither Origin nor Sec-Fetch-Site: refused');
  assert.equal((await promote({ origin: ui.url, 'sec-fetch-site': 'same-origin' })).status, 200, 'the board itself may');
  assert.equal((await fetch(ui.url + '/queues/api/queues', { headers: { cookie } })).status, 200, 'reads need no Origin');
});
