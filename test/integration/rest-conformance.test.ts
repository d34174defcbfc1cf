/**
 * HTTP conformance of the REST submission server with Spark's protocol
 * (StandaloneRestSubmitSuite's "good request paths", "bad requests", "bad
 * request paths", "unknown fields", readyz, killall, clear): status codes,
 * response types and Spark's messages.
 *
 * Most cases drive the hono app in-process (`app.request()`) with a small
 * in-memory DriverGateway written below. That gateway exists to exercise the
 * HTTP protocol; it is not a stand-in for Redis or the master (MasterGateway is
 * exercised against the real Redis at the end of this file, in-process and against
 * `flint master` and `flint worker` processes started as an operator starts them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { createRestApp, startRestServer, type RestBindings } from '../../functions/http/rest/server.ts';
import { GatewayUnavailableError, MasterGateway, type DriverGateway } from '../../functions/http/rest/gateway.ts';
import { signToken } from '../../lib/http/auth.ts';
import { toSparkJson } from '../../protocol/rest.ts';
import { RestSubmissionClient, buildCreateSubmissionRequest } from '../../client/rest-client.ts';
import { loadConfig } from '../../protocol/config.ts';
import { startMaster } from '../../functions/host.ts';
import { REDIS_ARGV_URL, REDIS_URL } from '../helpers/env.ts';
import { cleanupCluster, uniqueCluster } from '../helpers/isolation.ts';
import { startProcessCluster } from '../helpers/flint-cluster.ts';
import type { DriverDescription, DriverStatusResponse } from '../../protocol/messages.ts';
import type { DriverState } from '../../protocol/states.ts';

const SECRET = 'conformance-secret-0123456789abcdef0123456789';
const ADMIN = signToken(SECRET, { scope: 'admin', ttlSeconds: 3600, subject: 'conformance' });

/** InMemoryGateway: drivers in a Map, as the master would answer (HTTP-protocol test only). */
class InMemoryGateway implements DriverGateway {
  readonly drivers = new Map<string, { desc: DriverDescription; state: DriverState; workerId?: string; workerHostPort?: string; exception?: string }>();
  isReady = true;
  failWith?: Error;
  private next = 0;

  async submitDriver(desc: DriverDescription) {
    this.throwIfFailing();
    const driverId = `driver-20260101120000-${String(this.next++).padStart(4, '0')}`;
    this.drivers.set(driverId, { desc, state: 'SUBMITTED' });
    return { success: true, driverId, message: `Driver successfully submitted as ${driverId}` };
  }
  async killDriver(driverId: string) {
    this.throwIfFailing();
    const driver = this.drivers.get(driverId);
    if (!driver || driver.state === 'KILLED') return { driverId, success: false, message: `Driver ${driverId} has already finished or does not exist` };
    driver.state = 'KILLED';
    return { driverId, success: true, message: `Kill request for ${driverId} submitted` };
  }
  async killAllDrivers() {
    this.throwIfFailing();
    for (const driver of this.drivers.values()) driver.state = 'KILLED';
    return { success: true, message: 'Kill request for all drivers submitted' };
  }
  async driverStatus(driverId: string): Promise<DriverStatusResponse> {
    this.throwIfFailing();
    const driver = this.drivers.get(driverId);
    if (!driver) return { found: false };
    return { found: true, state: driver.state, workerId: driver.workerId, workerHostPort: driver.workerHostPort, exception: driver.exception };
  }
  async clearCompleted() {
    this.throwIfFailing();
    for (const [id, driver] of this.drivers) if (driver.state === 'KILLED') this.drivers.delete(id);
    return true;
  }
  async ready() {
    this.throwIfFailing();
    return this.isReady;
  }
  private throwIfFailing() {
    if (this.failWith) throw this.failWith;
  }
}

function setup(overrides: Partial<RestBindings> = {}) {
  const gateway = new InMemoryGateway();
  const app = createRestApp({
    gateway,
    auth: { secret: SECRET },
    serverSparkVersion: '4.0.0',
    masterUrl: 'spark://127.0.0.1:7077',
    restPort: 6066,
    serverEnv: {},
    ...overrides,
  });
  const call = (method: string, path: string, body?: string, token: string | undefined = ADMIN) =>
    app.request(path, { method, body, headers: token ? { Authorization: `Bearer ${token}` } : {} });
  return { gateway, app, call };
}

const GOOD_REQUEST = buildCreateSubmissionRequest({
  appResource: 'docker://flint-test-busybox:latest',
  appArgs: ['echo', 'hello'],
  sparkProperties: { 'spark.app.name': 'conformance', 'spark.driver.memory': '256m', 'spark.driver.cores': '1' },
  environmentVariables: { SPARK_CONF_VALUE: '1' },
});
const GOOD_JSON = toSparkJson(GOOD_REQUEST);

/** The body of Spark's documentation (reference section 6.2), exactly as a Spark client sends it. */
const SPARK_DOCS_EXAMPLE = `{"action":"CreateSubmissionRequest","appArgs":["/opt/spark/examples/src/main/python/pi.py","10"],
 "appResource":"","clientSparkVersion":"","environmentVariables":{},
 "mainClass":"org.apache.spark.deploy.SparkSubmit",
 "sparkProperties":{"spark.master":"spark://master:7077","spark.app.name":"Spark Pi",
   "spark.driver.memory":"1g","spark.driver.cores":"1","spark.jars":""}}`;

async function expectError(response: Response, status: number, message?: string | RegExp): Promise<Record<string, unknown>> {
  assert.equal(response.status, status);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
  const body = (await response.json()) as Record<string, unknown>;
  assert.equal(body.action, 'ErrorResponse');
  assert.equal(body.serverSparkVersion, '4.0.0');
  assert.equal('success' in body, false, 'ErrorResponse has no success field');
  if (typeof message === 'string') assert.equal(body.message, message);
  else if (message) assert.match(String(body.message), message);
  return body;
}

const PATH_SUFFIX = ' Please submit requests through http://[host]:[port]/v1/submissions/...';

// ---------------------------------------------------------------- good requests

test('create, status, kill: good request paths answer 200 with the right response types', async () => {
  const { call, gateway } = setup();
  const created = await call('POST', '/v1/submissions/create', GOOD_JSON);
  assert.equal(created.status, 200);
  const createBody = (await created.json()) as Record<string, unknown>;
  assert.deepEqual(createBody, {
    action: 'CreateSubmissionResponse',
    message: 'Driver successfully submitted as driver-20260101120000-0000',
    serverSparkVersion: '4.0.0',
    submissionId: 'driver-20260101120000-0000',
    success: true,
  });
  const desc = gateway.drivers.get('driver-20260101120000-0000')!.desc;
  assert.equal(desc.image, 'flint-test-busybox:latest');
  assert.deepEqual(desc.command, ['echo', 'hello']);
  assert.equal(desc.memoryMB, 256);

  // /kill/any/thing and /status/any/thing use the first segment as the id (Spark's parseSubmissionId)
  const killed = (await (await call('POST', '/v1/submissions/kill/driver-20260101120000-0000/extra')).json()) as Record<string, unknown>;
  assert.equal(killed.action, 'KillSubmissionResponse');
  assert.equal(killed.submissionId, 'driver-20260101120000-0000');
  assert.equal(killed.success, true);
  const status = await call('GET', '/v1/submissions/status/driver-20260101120000-0000/any/thing', undefined, undefined);
  assert.equal(status.status, 200);
  assert.deepEqual(await status.json(), {
    action: 'SubmissionStatusResponse',
    driverState: 'KILLED',
    serverSparkVersion: '4.0.0',
    submissionId: 'driver-20260101120000-0000',
    success: true,
  });
});

test("the response bodies are Spark's JSON: golden status response, sorted keys, Jackson layout", async () => {
  const { call, gateway } = setup({ serverSparkVersion: '1.2.3' });
  gateway.drivers.set('driver_123', {
    desc: {} as DriverDescription,
    state: 'RUNNING',
    workerId: 'worker_123',
    workerHostPort: '1.2.3.4:7780',
  });
  const text = await (await call('GET', '/v1/submissions/status/driver_123')).text();
  const golden =
    '{"action":"SubmissionStatusResponse","driverState":"RUNNING","serverSparkVersion":"1.2.3","submissionId":"driver_123","success":true,"workerHostPort":"1.2.3.4:7780","workerId":"worker_123"}';
  assert.equal(text.replace(/\s/g, ''), golden);
  assert.match(text, /^\{\n {2}"action" : "SubmissionStatusResponse",\n/);
});

test('kill or status of an unknown submission is 200 with success false (a logical failure, not an HTTP one)', async () => {
  const { call } = setup();
  const kill = await call('POST', '/v1/submissions/kill/does-not-exist');
  assert.equal(kill.status, 200);
  assert.deepEqual(await kill.json(), {
    action: 'KillSubmissionResponse',
    message: 'Driver does-not-exist has already finished or does not exist',
    serverSparkVersion: '4.0.0',
    submissionId: 'does-not-exist',
    success: false,
  });
  const status = await call('GET', '/v1/submissions/status/does-not-exist');
  assert.equal(status.status, 200);
  assert.deepEqual(await status.json(), { action: 'SubmissionStatusResponse', serverSparkVersion: '4.0.0', submissionId: 'does-not-exist', success: false });
});

test("a request exactly as Spark's client sends it is accepted unchanged (with a default driver image)", async () => {
  const { call, gateway } = setup({ defaultImage: 'apache/spark:4.0.0' });
  const response = await call('POST', '/v1/submissions/create', SPARK_DOCS_EXAMPLE);
  assert.equal(response.status, 200);
  const body = (await response.json()) as Record<string, unknown>;
  assert.equal(body.success, true);
  assert.equal(body.unknownFields, undefined);
  const desc = gateway.drivers.get(String(body.submissionId))!.desc;
  assert.equal(desc.image, 'apache/spark:4.0.0');
  assert.deepEqual(desc.command, ['/opt/spark/examples/src/main/python/pi.py', '10']);
  assert.equal(desc.name, 'Spark Pi');
  assert.equal(desc.memoryMB, 1024);
  assert.equal(desc.sparkProperties['spark.master'], 'spark://master:7077');

  // Without a default image the same request is a clear 400 naming what to set.
  const { call: callNoDefault } = setup();
  await expectError(await callNoDefault('POST', '/v1/submissions/create', SPARK_DOCS_EXAMPLE), 400, /^Malformed request: No container image for the driver: set the property 'spark\.flint\.image'/);
});

test('unknownFields lists the fields the server does not know; the status is still 200', async () => {
  const { call } = setup();
  const withExtra = JSON.stringify({ ...JSON.parse(GOOD_JSON), tomato: 'not-a-fruit', potato: 'not-po-tah-to' }, null, 2);
  const plain = (await (await call('POST', '/v1/submissions/create', GOOD_JSON)).json()) as Record<string, unknown>;
  assert.equal(plain.unknownFields, undefined);
  const response = await call('POST', '/v1/submissions/create', withExtra);
  assert.equal(response.status, 200);
  assert.deepEqual(((await response.json()) as Record<string, unknown>).unknownFields, ['tomato', 'potato']);
});

test('killall and clear answer KillAllSubmissionResponse and ClearResponse', async () => {
  const { call, gateway } = setup();
  await call('POST', '/v1/submissions/create', GOOD_JSON);
  const killAll = await call('POST', '/v1/submissions/killall');
  assert.equal(killAll.status, 200);
  assert.deepEqual(await killAll.json(), { action: 'KillAllSubmissionResponse', message: 'Kill request for all drivers submitted', serverSparkVersion: '4.0.0', success: true });
  const clear = await call('POST', '/v1/submissions/clear');
  assert.equal(clear.status, 200);
  assert.deepEqual(await clear.json(), { action: 'ClearResponse', message: '', serverSparkVersion: '4.0.0', success: true });
  assert.equal(gateway.drivers.size, 0);
});

test('readyz: 200 ReadyzResponse when ready, 503 "Master is not ready." otherwise', async () => {
  const { call, gateway } = setup();
  const ready = await call('GET', '/v1/submissions/readyz', undefined, undefined);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { action: 'ReadyzResponse', message: '', serverSparkVersion: '4.0.0', success: true });
  gateway.isReady = false;
  await expectError(await call('GET', '/v1/submissions/readyz'), 503, 'Master is not ready.');
  gateway.failWith = new Error('connection refused');
  await expectError(await call('GET', '/v1/submissions/readyz'), 503, 'Master is not ready.');
});

// ---------------------------------------------------------------- bad requests

test('bad create bodies get 400 ErrorResponses: missing, malformed, non-object, missing or renamed action', async () => {
  const { call, gateway } = setup();
  const cases: Array<[string, string | undefined, RegExp]> = [
    ['missing JSON', undefined, /^Malformed request: No content to map/],
    ['malformed JSON', GOOD_JSON.substring(GOOD_JSON.length / 2), /^Malformed request: Unable to parse the request body as JSON/],
    ['not an object', '"hello, world"', /^Malformed request: Action field not found in JSON:\n"hello, world"$/],
    ['an array', '[1, 2, 3]', /^Malformed request: Action field not found in JSON/],
    ['renamed action', GOOD_JSON.replaceAll('action', 'fraction'), /^Malformed request: Action field not found in JSON/],
    ['missing action', JSON.stringify({ ...GOOD_REQUEST, action: undefined }), /^Malformed request: Action field not found in JSON/],
    ['unknown action', JSON.stringify({ ...GOOD_REQUEST, action: 'LaunchMissiles' }), /^Malformed request: Unknown message type 'LaunchMissiles'/],
  ];
  for (const [label, body, message] of cases) {
    await expectError(await call('POST', '/v1/submissions/create', body), 400, message);
    assert.equal(gateway.drivers.size, 0, label);
  }
});

test('validation failures get 400 with Spark’s messages: missing appResource, bad spark.driver.cores, no properties, no app name', async () => {
  const { call, gateway } = setup();
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ appResource: undefined }, "'appResource' is missing in message CreateSubmissionRequest."],
    [{ clientSparkVersion: undefined }, "'clientSparkVersion' is missing in message CreateSubmissionRequest."],
    [{ sparkProperties: undefined }, 'No Spark properties set!'],
    [{ sparkProperties: { 'spark.driver.cores': '1' } }, "'spark.app.name' is missing in message CreateSubmissionRequest."],
    [{ sparkProperties: { 'spark.app.name': 'a', 'spark.driver.cores': 'one hundred feet' } }, "Property 'spark.driver.cores' expected numeric value: actual was 'one hundred feet'."],
    [{ sparkProperties: { 'spark.app.name': 'a', 'spark.driver.supervise': 'nope, never' } }, "Property 'spark.driver.supervise' expected boolean value: actual was 'nope, never'."],
    [{ sparkProperties: { 'spark.app.name': 'a', 'spark.executor.memory': 'lots' } }, "Property 'spark.executor.memory' expected memory value: actual was 'lots'."],
  ];
  for (const [change, cause] of cases) {
    const body = JSON.stringify({ ...GOOD_REQUEST, ...change });
    await expectError(await call('POST', '/v1/submissions/create', body), 400, `Malformed request: Validation of message CreateSubmissionRequest failed!\nCaused by: ${cause}`);
  }
  assert.equal(gateway.drivers.size, 0);
});

test('a valid message of another type is 400 "Received message of unexpected type"', async () => {
  const { call } = setup();
  const body = '{"action":"KillSubmissionResponse","serverSparkVersion":"4.0.0","submissionId":"d","success":true}';
  await expectError(await call('POST', '/v1/submissions/create', body), 400, 'Received message of unexpected type KillSubmissionResponse.');
});

test('a missing submission id is 400 for kill and status', async () => {
  const { call } = setup();
  for (const path of ['/v1/submissions/kill', '/v1/submissions/kill/', '/v1/submissions/kill//x']) {
    await expectError(await call('POST', path), 400, 'Submission ID is missing in kill request.');
  }
  for (const path of ['/v1/submissions/status', '/v1/submissions/status/']) {
    await expectError(await call('GET', path), 400, 'Submission ID is missing in status request.');
  }
});

test('bad request paths: 400 with Spark’s messages, 468 with highestProtocolVersion for an unknown version', async () => {
  const { call } = setup();
  const cases: Array<[string, number, string]> = [
    ['/', 400, 'Missing protocol version.'],
    ['/v1', 400, 'Missing the /submissions prefix.'],
    ['/v1/', 400, 'Missing the /submissions prefix.'],
    ['/v1/submissions', 400, 'Missing an action: please specify one of /create, /kill, /killall, /clear, /status, or /readyz.'],
    ['/v1/submissions/', 400, 'Missing an action: please specify one of /create, /kill, /killall, /clear, /status, or /readyz.'],
    ['/v1/submissions/bad', 400, 'Missing an action: please specify one of /create, /kill, /killall, /clear, /status, or /readyz.'],
    ['/bad-version', 468, "Unknown protocol version 'bad-version'."],
    ['/v2/submissions/create', 468, "Unknown protocol version 'v2'."],
  ];
  for (const [path, status, message] of cases) {
    for (const method of ['GET', 'POST']) {
      const body = await expectError(await call(method, path, undefined, undefined), status, message + PATH_SUFFIX);
      assert.equal(body.highestProtocolVersion, status === 468 ? 'v1' : undefined, `${method} ${path}`);
    }
  }
});

test('a wrong method on a known action is 405 with an Allow header', async () => {
  const { call } = setup();
  const response = await call('GET', '/v1/submissions/create');
  assert.equal(response.headers.get('allow'), 'POST');
  await expectError(response, 405, /use POST/);
  const status = await call('POST', '/v1/submissions/status/x');
  assert.equal(status.headers.get('allow'), 'GET');
  await expectError(status, 405, /use GET/);
});

test('a body over the limit is 413 with an ErrorResponse and never reaches the gateway', async () => {
  const { call, gateway } = setup({ bodyLimitBytes: 4096 });
  const big = JSON.stringify({ ...GOOD_REQUEST, appArgs: ['x'.repeat(5000)] });
  await expectError(await call('POST', '/v1/submissions/create', big), 413, 'Request body too large: the limit is 4096 bytes.');
  assert.equal(gateway.drivers.size, 0);
  // The default limit is 2 MiB (above the 64 KiB description limit, so that an oversized field is named).
  const { call: callDefault } = setup();
  const huge = JSON.stringify({ ...GOOD_REQUEST, appArgs: ['y'.repeat(2 * 1024 * 1024 + 1)] });
  await expectError(await callDefault('POST', '/v1/submissions/create', huge), 413, /limit is 2097152 bytes/);
  assert.equal((await callDefault('POST', '/v1/submissions/create', GOOD_JSON)).status, 200);
});

test('gateway failures: no master in time is 503, anything else 500, both as ErrorResponse', async () => {
  const { call, gateway } = setup();
  gateway.failWith = new GatewayUnavailableError('no reply to RequestDriverStatus within 10 ms');
  await expectError(await call('GET', '/v1/submissions/status/d'), 503, /^Master is not available: no reply to RequestDriverStatus/);
  gateway.failWith = new Error('boom');
  await expectError(await call('POST', '/v1/submissions/killall'), 500, 'Internal server error: boom');
});

// ---------------------------------------------------------------- over real HTTP

/** closedPort: a loopback port that was free a moment ago and has nothing listening now. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

test('RestSubmissionClient against the server over HTTP: create, status, kill, killall, clear, readyz', async () => {
  const { app, gateway } = setup();
  const server = await startRestServer(app, { host: '127.0.0.1', port: 0, secret: SECRET });
  try {
    const client = new RestSubmissionClient(server.url.replace('http://', 'spark://'), { token: ADMIN });
    const created = await client.createSubmission(GOOD_REQUEST);
    assert.equal(created.status, 200);
    assert.equal(created.body.action, 'CreateSubmissionResponse');
    const id = (created.body as { submissionId: string }).submissionId;
    assert.equal(gateway.drivers.get(id)!.desc.env.SPARK_CONF_VALUE, '1');
    const status = await client.requestSubmissionStatus(id);
    assert.equal((status.body as { driverState?: string }).driverState, 'SUBMITTED');
    assert.equal((await client.killSubmission(id)).body.action, 'KillSubmissionResponse');
    assert.equal((await client.killAllSubmissions()).status, 200);
    assert.equal((await client.clear()).status, 200);
    assert.equal((await client.readyz()).status, 200);
    // without a token, the client sees the server's 401 ErrorResponse
    const anonymous = await new RestSubmissionClient(server.url).killAllSubmissions();
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.body.action, 'ErrorResponse');
  } finally {
    await server.close();
  }
  // the first of several masters is down: the client moves on to the next
  const second = await startRestServer(app, { host: '127.0.0.1', port: 0, secret: SECRET });
  const downPort = await closedPort();
  try {
    const client = new RestSubmissionClient(`spark://127.0.0.1:${downPort},${second.url.replace('http://', '')}`, { token: ADMIN });
    assert.equal((await client.readyz()).status, 200);
  } finally {
    await second.close();
  }
});

// ---------------------------------------------------------------- MasterGateway on the real Redis

test('MasterGateway on Redis with no master consuming: readyz is 503, asks are 503, bad ids never leave the server', async () => {
  const cluster = uniqueCluster('rest-nomaster');
  const gateway = MasterGateway.connect({ redisUrl: REDIS_URL, cluster, askTimeoutMs: 500 });
  const redis = new Redis(REDIS_URL);
  try {
    const app = createRestApp({ gateway, auth: { secret: SECRET }, serverSparkVersion: '4.0.0', masterUrl: 'spark://127.0.0.1:7077' });
    await expectError(await app.request('/v1/submissions/readyz'), 503, 'Master is not ready.');
    await expectError(await app.request('/v1/submissions/status/driver-20260101120000-0000'), 503, /^Master is not available: no reply to RequestDriverStatus within 500 ms/);
    // An id outside the message grammar is answered "not found" without asking the master.
    const odd = await app.request('/v1/submissions/status/has%20space');
    assert.equal(odd.status, 200);
    assert.deepEqual(await odd.json(), { action: 'SubmissionStatusResponse', serverSparkVersion: '4.0.0', submissionId: 'has space', success: false });
  } finally {
    await gateway.close();
    await cleanupCluster(redis, cluster);
    await redis.quit();
  }
});

/**
 * exerciseRealMaster: create, status, kill, killall, clear through Spark's REST
 * client against a server whose master runs on Redis and has no worker that fits
 * GOOD_REQUEST's 256 MB driver, so a driver waits until killed.
 */
async function exerciseRealMaster(client: RestSubmissionClient): Promise<string> {
  assert.equal((await client.readyz()).status, 200, 'a master consumes the queue');

  const created = await client.createSubmission(GOOD_REQUEST);
  assert.equal(created.status, 200);
  const createBody = created.body as { success: boolean; submissionId: string; message: string };
  assert.equal(createBody.success, true);
  assert.match(createBody.submissionId, /^driver-\d{14}-\d{4}$/);
  assert.equal(createBody.message, `Driver successfully submitted as ${createBody.submissionId}`);
  const id = createBody.submissionId;

  // No worker has room for it: the driver waits.
  const waiting = await client.requestSubmissionStatus(id);
  assert.equal(waiting.status, 200);
  assert.equal((waiting.body as { success: boolean }).success, true);
  assert.equal((waiting.body as { driverState: string }).driverState, 'SUBMITTED');

  const killed = await client.killSubmission(id);
  assert.deepEqual([killed.status, (killed.body as { success: boolean }).success], [200, true]);
  const afterKill = await client.requestSubmissionStatus(id);
  assert.equal((afterKill.body as { driverState: string }).driverState, 'KILLED');

  const again = await client.killSubmission(id);
  assert.equal((again.body as { success: boolean; message: string }).success, false);
  assert.equal((again.body as { message: string }).message, `Driver ${id} has already finished or does not exist`);

  const second = (await client.createSubmission(GOOD_REQUEST)).body as { submissionId: string };
  assert.equal((await client.killAllSubmissions()).status, 200);
  assert.equal(((await client.requestSubmissionStatus(second.submissionId)).body as { driverState: string }).driverState, 'KILLED');

  const cleared = await client.clear();
  assert.deepEqual(cleared.body, { action: 'ClearResponse', message: '', serverSparkVersion: '4.0.0', success: true });
  const gone = await client.requestSubmissionStatus(id);
  assert.equal((gone.body as { success: boolean }).success, false, 'cleared drivers are forgotten');
  return id;
}

test('end to end with a real master on Redis: create, status, kill, killall, clear through the REST server (in-process)', async () => {
  const cluster = uniqueCluster('rest-master');
  const config = loadConfig({ env: {}, overrides: { 'spark.flint.cluster': cluster } });
  const master = await startMaster({ redisUrl: REDIS_URL, config, concurrency: 4 });
  const gateway = MasterGateway.connect({ redisUrl: REDIS_URL, cluster });
  const redis = new Redis(REDIS_URL);
  const server = await startRestServer(
    createRestApp({ gateway, auth: { secret: SECRET }, serverSparkVersion: '4.0.0', masterUrl: 'spark://127.0.0.1:7077' }),
    { host: '127.0.0.1', port: 0, secret: SECRET },
  );
  try {
    await exerciseRealMaster(new RestSubmissionClient(server.url, { token: ADMIN }));
  } finally {
    await server.close();
    await gateway.close();
    await master.stop();
    await cleanupCluster(redis, cluster);
    await redis.quit();
  }
});

test('the same against `flint master` (REST and UI on) plus `flint worker` processes, without flint up; /json shows the cluster', async () => {
  const redis = new Redis(REDIS_URL);
  const cluster = uniqueCluster('rest-procs');
  // the worker has 128 MB: the 256 MB driver of GOOD_REQUEST waits, as in the in-process case
  const procs = await startProcessCluster(redis, { cluster, redisUrl: REDIS_ARGV_URL, secret: SECRET, workers: [{ cores: 2, memory: '128m' }] });
  try {
    // Spark's client speaks spark://host:port for an http server
    const client = new RestSubmissionClient(procs.urls.rest.replace('http://', 'spark://'), { token: ADMIN });
    const id = await exerciseRealMaster(client);
    const json = (await (await fetch(`${procs.urls.ui}/json`)).json()) as { url: string; aliveworkers: number; cores: number; memory: number; workers: { state: string }[]; completeddrivers: { id: string }[] };
    assert.equal(json.aliveworkers, 1);
    assert.deepEqual([json.cores, json.memory], [2, 128]);
    assert.equal(json.url, 'spark://127.0.0.1:7077');
    const page = await (await fetch(`${procs.urls.ui}/`)).text();
    assert.match(page, new RegExp(`<span id="rest-url">spark://127\\.0\\.0\\.1:${new URL(procs.urls.rest).port}</span>`), 'the UI shows the REST server this process bound');
    assert.ok(!json.completeddrivers.some((d) => d.id === id), 'cleared drivers are gone from /json too');
    // a bad request gets Spark's answer from the process as from the in-process server
    const bad = await fetch(`${procs.urls.rest}/v1/submissions/create`, { method: 'POST', body: '{"action":"CreateSubmissionRequest"', headers: { Authorization: `Bearer ${ADMIN}` } });
    await expectError(bad, 400, /^Malformed request/);
  } finally {
    await procs.stop();
    await redis.quit();
  }
});
