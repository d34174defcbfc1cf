/**
 * The application API over HTTP against the real Redis and a real master
 * (startMaster in-process, one unique cluster per test). Events are read as a
 * client in another language would: fetch + server-sent events over a real
 * socket, resumed with Last-Event-ID.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startMaster, type MasterHost } from '../../functions/host.ts';
import { loadConfig } from '../../protocol/config.ts';
import { clusterKeys, type Keys } from '../../protocol/keys.ts';
import { MasterClient } from '../../client/master-client.ts';
import { createAppHttpApp, startAppHttpServer, type AppHttp, type RunningAppHttpServer } from '../../functions/http/app-api.ts';
import { signToken } from '../../lib/http/auth.ts';
import { REDIS_URL } from '../helpers/env.ts';
import { cleanupCluster, uniqueCluster, waitFor } from '../helpers/isolation.ts';
import { appDescription, readInbox, registerFakeWorker } from '../helpers/protocol.ts';
import { executorToken } from '../../lib/http/app-tokens.ts';
import { MAX_STREAMS_PER_APP } from '../../functions/http/app-event-hub.ts';

interface Fixture {
  cluster: string;
  keys: Keys;
  master: MasterHost;
  masterClient: MasterClient;
  api?: AppHttp;
  server?: RunningAppHttpServer;
}

let redis: Redis;
const fixtures: Fixture[] = [];

before(async () => {
  redis = new Redis(REDIS_URL);
});

after(async () => {
  for (const f of fixtures) {
    await f.server?.close();
    await f.api?.close();
    await f.masterClient.close();
    await f.master.stop();
    await cleanupCluster(redis, f.cluster);
  }
  redis.disconnect();
});

async function fixture(name: string, http: { secret?: string; pollMs?: number; keepAliveMs?: number; maxStreams?: number } = {}): Promise<Fixture & { url: string }> {
  const cluster = uniqueCluster(name);
  const config = loadConfig({ env: {}, overrides: { 'spark.flint.cluster': cluster, 'spark.flint.reaper.interval': '100ms' } });
  const master = await startMaster({ redisUrl: REDIS_URL, config, concurrency: 8 });
  const f: Fixture = { cluster, keys: clusterKeys(cluster), master, masterClient: new MasterClient(REDIS_URL, cluster) };
  fixtures.push(f);
  f.server = await startAppHttpServer({
    redisUrl: REDIS_URL,
    cluster,
    port: 0,
    pollMs: http.pollMs ?? 200,
    keepAliveMs: http.keepAliveMs,
    maxStreams: http.maxStreams,
    auth: http.secret ? { secret: http.secret } : undefined,
  });
  return { ...f, url: f.server.url };
}

interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

interface SseRead {
  events: SseEvent[];
  comments: string[];
  /** ended: the server closed the stream (rather than the reader stopping early) */
  ended: boolean;
}

/**
 * readSse reads server-sent events until `stop` says so (then aborts) or the
 * server ends the stream.
 */
async function readSse(url: string, headers: Record<string, string>, stop: (read: SseRead) => boolean, timeoutMs = 15_000): Promise<SseRead> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const read: SseRead = { events: [], comments: [], ended: false };
  try {
    const response = await fetch(url, { headers, signal: controller.signal });
    assert.equal(response.status, 200, `GET ${url} → ${response.status}: ${response.status === 200 ? '' : await response.text()}`);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        read.ended = true;
        return read;
      }
      buffer += value;
      let boundary: number;
      while ((boundary = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        const event: SseEvent = { data: '' };
        const data: string[] = [];
        let isComment = true;
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) {
            read.comments.push(line.slice(1).trim());
            continue;
          }
          isComment = false;
          const colon = line.indexOf(':');
          const field = line.slice(0, colon);
          const text = line.slice(colon + 1).replace(/^ /, '');
          if (field === 'data') data.push(text);
          else if (field === 'id') event.id = text;
          else if (field === 'event') event.event = text;
        }
        if (!isComment) {
          event.data = data.join('\n');
          read.events.push(event);
        }
        if (stop(read)) {
          controller.abort();
          await reader.cancel().catch(() => undefined);
          return read;
        }
      }
    }
  } catch (error) {
    if (controller.signal.aborted && (error as Error).name === 'AbortError') return read;
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

const bearer = (token: unknown) => ({ authorization: `Bearer ${String(token)}` });

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function report(f: Fixture, appId: string, execId: number, state: 'RUNNING' | 'EXITED', epoch: number, exitStatus?: number) {
  const message = exitStatus === undefined ? undefined : `Command exited with code ${exitStatus}`;
  assert.equal(await f.masterClient.ask('ExecutorStateChanged', { appId, execId, state, workerId: 'w1', epoch, exitStatus, message }), true);
}

/** eventReaders: the blocking connections the app API of `cluster` holds for event streams (one, shared by all its streams). */
async function eventReaders(cluster: string): Promise<number> {
  return String(await redis.client('LIST')).split('\n').filter((line) => line.includes(`name=flint-app-http-events-${cluster} `)).length;
}

async function streamIds(f: Fixture, appId: string): Promise<string[]> {
  return (await redis.xrange(f.keys.appEvents(appId), '-', '+')).map(([id]) => id);
}

test('POST /v1/apps, SSE events with ids, resume with Last-Event-ID and ?lastEventId, executors, DELETE ends the stream', async () => {
  const f = await fixture('apph-life');
  const created = await post(`${f.url}/v1/apps`, { ...appDescription({ name: 'http-app', coresPerExecutor: 1, maxCores: 2 }), clientId: 'http-client-1' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const appId = created.body.appId as string;
  assert.match(appId, /^app-\d{14}-\d{4}$/);
  assert.equal(created.body.clientId, 'http-client-1');
  assert.match(String(created.body.appToken), /^fa1\./, 'the registration returns the application\'s token');
  const auth = bearer(created.body.appToken);
  const again = await post(`${f.url}/v1/apps`, { ...appDescription({ name: 'http-app' }), clientId: 'http-client-1' });
  assert.equal(again.body.appId, appId, 'a retried POST with the same clientId gets the same app');
  assert.equal(again.body.appToken, created.body.appToken, 'and the same token');

  const state = await fetch(`${f.url}/v1/apps/${appId}`, { headers: auth });
  assert.equal(state.status, 200);
  const app = (await state.json()) as Record<string, unknown>;
  assert.equal(app.id, appId);
  assert.equal(app.state, 'WAITING');
  assert.equal(app.coresGranted, 0);
  assert.equal((app.desc as { name: string }).name, 'http-app');
  assert.equal(app.clientId, undefined, 'the idempotency key is not shown');

  const epoch = await registerFakeWorker(f.masterClient, { id: 'w1', cores: 2, memoryMB: 4096, port: 7201 });
  const first = await readSse(`${f.url}/v1/apps/${appId}/events`, auth, (r) => r.events.filter((e) => e.event === 'ExecutorAdded').length === 2);
  assert.deepEqual(first.events.map((e) => e.event), ['RegisteredApplication', 'ExecutorAdded', 'ExecutorAdded']);
  assert.deepEqual(first.events.map((e) => e.id), (await streamIds(f, appId)).slice(0, 3), 'each SSE id is the stream id');
  assert.deepEqual(JSON.parse(first.events[1]!.data), { id: 0, workerId: 'w1', hostPort: '127.0.0.1:7201', cores: 1, memoryMB: 256 });

  const running = await waitFor(async () => {
    const r = (await (await fetch(`${f.url}/v1/apps/${appId}`)).json()) as { state: string; coresGranted: number; executors: { id: number; state: string }[] };
    return r.coresGranted === 2 ? r : undefined;
  }, { message: 'two cores granted' });
  assert.deepEqual(running.executors.map((e) => e.id), [0, 1]);

  await report(f, appId, 0, 'RUNNING', epoch);
  await report(f, appId, 0, 'EXITED', epoch, 3);
  const lastSeen = first.events.at(-1)!.id!;
  const resumed = await readSse(`${f.url}/v1/apps/${appId}/events`, { ...auth, 'Last-Event-ID': lastSeen }, (r) => r.events.length === 2);
  assert.deepEqual(resumed.events.map((e) => e.event), ['ExecutorUpdated', 'ExecutorUpdated']);
  assert.deepEqual(resumed.events.map((e) => JSON.parse(e.data).state), ['RUNNING', 'EXITED']);
  assert.equal(JSON.parse(resumed.events[1]!.data).exitStatus, 3);
  assert.deepEqual([...first.events, ...resumed.events].map((e) => e.id), (await streamIds(f, appId)).slice(0, 5), 'no gap and no repeat');

  const byQuery = await readSse(`${f.url}/v1/apps/${appId}/events?lastEventId=${resumed.events[0]!.id}`, auth, (r) => r.events.length === 1);
  assert.equal(byQuery.events[0]!.id, resumed.events[1]!.id);

  const limited = await post(`${f.url}/v1/apps/${appId}/executors`, { total: 1 }, auth);
  assert.deepEqual([limited.status, limited.body], [200, { ok: true, appId, requestedTotal: 1 }]);
  assert.equal(Number(await redis.hget(f.keys.app(appId), 'executorLimit')), 1);
  const killed = await post(`${f.url}/v1/apps/${appId}/kill-executors`, { executorIds: [1, 'x'] }, auth);
  assert.deepEqual([killed.status, killed.body], [200, { ok: true, appId }]);

  // Live streams that are following when the app is unregistered end by themselves once drained;
  // three at once share the process's one blocking reader.
  const following = readSse(`${f.url}/v1/apps/${appId}/events`, auth, () => false);
  const others = [readSse(`${f.url}/v1/apps/${appId}/events`, auth, () => false), readSse(`${f.url}/v1/apps/${appId}/events`, auth, () => false)];
  await waitFor(async () => (await eventReaders(f.cluster)) === 1, { message: 'the shared reader is open' });
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(await eventReaders(f.cluster), 1, 'three open streams, one blocking reader');
  const removed = await fetch(`${f.url}/v1/apps/${appId}`, { method: 'DELETE', headers: auth });
  assert.deepEqual([removed.status, await removed.json()], [200, { ok: true, appId }]);
  const all = await following;
  assert.equal(all.ended, true, 'the server ended the stream');
  for (const other of await Promise.all(others)) assert.deepEqual(other.events.map((e) => e.id), all.events.map((e) => e.id), 'every stream got every event once');
  assert.deepEqual(all.events.map((e) => e.id), await streamIds(f, appId), 'the whole stream, once');

  const finished = (await (await fetch(`${f.url}/v1/apps/${appId}`)).json()) as { state: string };
  assert.equal(finished.state, 'FINISHED');
  const gone = await fetch(`${f.url}/v1/apps/${appId}`, { method: 'DELETE', headers: auth });
  assert.equal(gone.status, 404);
  assert.match(((await gone.json()) as { error: string }).error, /unknown or finished application/);
  assert.equal((await post(`${f.url}/v1/apps/${appId}/executors`, { total: 2 }, auth)).status, 404);
  assert.equal(await eventReaders(f.cluster), 1, 'one shared event reader, however many streams the process served');
});

test('POST /v1/apps/:id/kill: the SSE stream ends right after ApplicationRemoved(KILLED)', async () => {
  const f = await fixture('apph-kill');
  const { body } = await post(`${f.url}/v1/apps`, appDescription({ name: 'to-kill' }));
  const appId = body.appId as string;
  const following = readSse(`${f.url}/v1/apps/${appId}/events`, bearer(body.appToken), () => false);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const killed = await post(`${f.url}/v1/apps/${appId}/kill`, {}, bearer(body.appToken));
  assert.deepEqual([killed.status, killed.body], [200, { ok: true, appId }]);
  const read = await following;
  assert.equal(read.ended, true);
  assert.deepEqual(read.events.map((e) => e.event), ['RegisteredApplication', 'ApplicationRemoved']);
  assert.deepEqual(JSON.parse(read.events[1]!.data), { message: 'KILLED' });
});

test('an idle stream gets keep-alive comments; a stream needs a token; maxStreams caps streams (429) and a closed one frees its place', async () => {
  const f = await fixture('apph-keepalive', { pollMs: 100, keepAliveMs: 250, maxStreams: 1 });
  const { body } = await post(`${f.url}/v1/apps`, appDescription({ name: 'idle' }));
  const url = `${f.url}/v1/apps/${body.appId}/events`;
  const anonymous = await fetch(url);
  assert.equal(anonymous.status, 401, 'an event stream needs a token');
  assert.match(((await anonymous.json()) as { error: string }).error, /needs the application's token/);
  const other = await post(`${f.url}/v1/apps`, appDescription({ name: 'other' }));
  assert.equal((await fetch(url, { headers: bearer(other.body.appToken) })).status, 403, "another application's token cannot follow it");

  const read = await readSse(url, bearer(body.appToken), (r) => r.comments.length >= 2, 15_000);
  assert.deepEqual(read.comments.slice(0, 2), ['keep-alive', 'keep-alive']);
  assert.deepEqual(read.events.map((e) => e.event), ['RegisteredApplication']);
  // with one stream open (maxStreams 1), another is refused
  const holder = new AbortController();
  const held = await fetch(url, { headers: bearer(body.appToken), signal: holder.signal });
  assert.equal(held.status, 200);
  const second = await fetch(url, { headers: bearer(body.appToken) });
  assert.equal(second.status, 429);
  assert.equal(second.headers.get('retry-after'), '1');
  assert.match(((await second.json()) as { error: string }).error, /spark\.flint\.appApi\.maxStreams/);
  holder.abort();
  // The client went away: the server gives its place back.
  const reopened = await waitFor(async () => {
    const response = await fetch(url, { headers: bearer(body.appToken), signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
    if (response?.status === 200) return response;
    await response?.body?.cancel();
    return undefined;
  }, { message: 'a new stream once the aborted one released its place' });
  await reopened.body?.cancel();
});

test('one application cannot take every stream place: past MAX_STREAMS_PER_APP its own are refused (429), another application still gets one', async () => {
  const f = await fixture('apph-perapp', { pollMs: 100, maxStreams: 100 });
  const a = await post(`${f.url}/v1/apps`, appDescription({ name: 'greedy' }));
  const b = await post(`${f.url}/v1/apps`, appDescription({ name: 'polite' }));
  const holder = new AbortController();
  try {
    const urlA = `${f.url}/v1/apps/${a.body.appId}/events`;
    for (let i = 0; i < MAX_STREAMS_PER_APP; i++) assert.equal((await fetch(urlA, { headers: bearer(a.body.appToken), signal: holder.signal })).status, 200, `stream ${i + 1}`);
    const refused = await fetch(urlA, { headers: bearer(a.body.appToken) });
    assert.equal(refused.status, 429);
    assert.match(((await refused.json()) as { error: string }).error, new RegExp(`application '${a.body.appId}' already has ${MAX_STREAMS_PER_APP} event streams open`));
    const other = await fetch(`${f.url}/v1/apps/${b.body.appId}/events`, { headers: bearer(b.body.appToken), signal: holder.signal });
    assert.equal(other.status, 200);
  } finally {
    holder.abort();
  }
});

test('bad input gets 400 with a JSON error; unknown apps 404', async () => {
  const cluster = uniqueCluster('apph-bad');
  const config = loadConfig({ env: {}, overrides: { 'spark.flint.cluster': cluster } });
  const master = await startMaster({ redisUrl: REDIS_URL, config, concurrency: 2 });
  const api = createAppHttpApp({ redisUrl: REDIS_URL, cluster });
  fixtures.push({ cluster, keys: clusterKeys(cluster), master, masterClient: new MasterClient(REDIS_URL, cluster), api });
  const call = async (method: string, path: string, body?: string, headers: Record<string, string> = {}) => {
    const response = await api.app.request(path, { method, body, headers: { 'content-type': 'application/json', ...headers } });
    return { status: response.status, body: (await response.json()) as { error?: string } };
  };

  let r = await call('POST', '/v1/apps', '{not json');
  assert.equal(r.status, 400);
  assert.match(r.body.error!, /^request body is not valid JSON/);
  r = await call('POST', '/v1/apps', '[1]');
  assert.deepEqual(r, { status: 400, body: { error: 'request body must be a JSON object' } });
  r = await call('POST', '/v1/apps', JSON.stringify({ name: 'x' }));
  assert.equal(r.status, 400);
  assert.match(r.body.error!, /^invalid request body: image: /);
  r = await call('POST', '/v1/apps', JSON.stringify({ ...appDescription(), maxCores: 0, clientId: 'bad id' }));
  assert.match(r.body.error!, /maxCores: .*clientId: /);

  const { body: created } = await call('POST', '/v1/apps', JSON.stringify(appDescription()));
  const appId = (created as { appId: string }).appId;
  const token = { authorization: `Bearer ${(created as { appToken: string }).appToken}` };
  r = await call('POST', `/v1/apps/${appId}/executors`, JSON.stringify({ total: -1 }), token);
  assert.equal(r.status, 400);
  assert.match(r.body.error!, /^invalid request body: total: /);
  r = await call('POST', `/v1/apps/${appId}/kill-executors`, JSON.stringify({ executorIds: 'all' }), token);
  assert.equal(r.status, 400);
  r = await call('POST', '/v1/apps', JSON.stringify({ ...appDescription(), conf: { 'spark.flint.executor.heartbeat.enabled': 'true', 'spark.network.timeout': '1s', 'spark.executor.heartbeatInterval': '2s', 'spark.flint.executor.heartbeat.url': 'http://127.0.0.1:1' } }));
  assert.equal(r.status, 400);
  assert.match(r.body.error!, /spark\.network\.timeout=1000ms must be greater than spark\.executor\.heartbeatInterval=2000ms/);
  r = await call('POST', '/v1/apps', JSON.stringify({ ...appDescription(), conf: { 'spark.executor.heartbeat.maxFailures': 'many' } }));
  assert.equal(r.status, 400);
  assert.match(r.body.error!, /conf spark\.executor\.heartbeat\.maxFailures="many": 'many' is not an integer/);
  r = await call('POST', '/v1/apps', JSON.stringify({ ...appDescription(), conf: { 'spark.flint.executor.heartbeat.enabled': 'true' } }));
  assert.equal(r.status, 400, 'heartbeats need a URL executors can reach, and this app API (no server) has none');
  assert.match(r.body.error!, /spark\.flint\.executor\.heartbeat\.url/);
  r = await call('POST', '/v1/apps', JSON.stringify(appDescription()), { 'idempotency-key': 'has space' });
  assert.deepEqual(r, { status: 400, body: { error: 'invalid Idempotency-Key: use 1-255 printable ASCII characters' } });
  r = await call('POST', '/v1/apps', JSON.stringify({ ...appDescription(), clientId: 'c1' }), { 'idempotency-key': 'k1' });
  assert.deepEqual(r, { status: 400, body: { error: 'send either a clientId or an Idempotency-Key header, not both' } });
  r = await call('GET', `/v1/apps/${appId}/events`, undefined, { 'last-event-id': 'yesterday' });
  assert.deepEqual(r, { status: 400, body: { error: "invalid Last-Event-ID 'yesterday': expected a stream id such as 1700000000000-0" } });
  r = await call('GET', '/v1/apps/has%20space');
  assert.equal(r.status, 400);
  assert.match(r.body.error!, /^invalid application id 'has space'/);
  r = await call('GET', '/v1/apps/app-none');
  assert.deepEqual(r, { status: 404, body: { error: "unknown application 'app-none'" } });
  r = await call('GET', '/v1/apps/app-none/events', undefined, token);
  assert.equal(r.status, 404);
  r = await call('POST', '/v1/apps/app-none/executors', JSON.stringify({ total: 1 }), token);
  assert.equal(r.status, 404);
  r = await call('POST', `/v1/apps/${appId}/executors`, JSON.stringify({ total: 1 }));
  assert.equal(r.status, 401, 'a mutation needs a token');
  r = await call('POST', `/v1/apps/${appId}/executors`, JSON.stringify({ total: 1 }), { authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln' });
  assert.equal(r.status, 401);
  assert.match(r.body.error!, /no spark\.flint\.auth\.secret configured, so it accepts no cluster token/);
  r = await call('GET', '/v2/nothing');
  assert.deepEqual(r, { status: 404, body: { error: 'no route for GET /v2/nothing' } });
});

test('with a secret, registering needs the submit scope; acting on an app needs its token or kill/admin; reads stay open', async () => {
  const secret = 'a'.repeat(16) + 'b'.repeat(16) + 'c'.repeat(8);
  const f = await fixture('apph-auth', { secret });
  const desc = appDescription({ name: 'auth-app' });

  const anonymous = await post(`${f.url}/v1/apps`, desc);
  assert.equal(anonymous.status, 401);
  assert.match(String(anonymous.body.error), /Missing bearer token: this request needs a token with the 'submit' scope/);
  const wrongScope = await post(`${f.url}/v1/apps`, desc, { authorization: `Bearer ${signToken(secret, { scope: 'kill', ttlSeconds: 60 })}` });
  assert.equal(wrongScope.status, 403);
  const forged = await post(`${f.url}/v1/apps`, desc, { authorization: `Bearer ${signToken('z'.repeat(40), { scope: 'submit', ttlSeconds: 60 })}` });
  assert.equal(forged.status, 401);

  const token = signToken(secret, { scope: 'submit', ttlSeconds: 60 });
  const created = await post(`${f.url}/v1/apps`, desc, { authorization: `Bearer ${token}` });
  assert.equal(created.status, 201);
  const appId = created.body.appId as string;
  assert.equal((await fetch(`${f.url}/v1/apps/${appId}`)).status, 200, 'reading state needs no token');
  assert.equal((await fetch(`${f.url}/v1/apps/${appId}`, { method: 'DELETE' })).status, 401);
  assert.equal((await post(`${f.url}/v1/apps/${appId}/executors`, { total: 1 })).status, 401);
  const bySubmitter = await fetch(`${f.url}/v1/apps/${appId}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
  assert.equal(bySubmitter.status, 403, 'a submit token registers applications; it does not own them');
  const deleted = await fetch(`${f.url}/v1/apps/${appId}`, { method: 'DELETE', headers: bearer(created.body.appToken) });
  assert.equal(deleted.status, 200);
});

test('the server refuses a non-loopback address without a secret', async () => {
  await assert.rejects(startAppHttpServer({ redisUrl: REDIS_URL, cluster: uniqueCluster('apph-bind'), host: '0.0.0.0', port: 0 }), /refusing to listen on 0\.0\.0\.0/);
});

test('two tenants: A\'s application token cannot kill, unregister, resize, follow or read the env of B\'s application; an admin token can kill it', async () => {
  const secret = 'tenant-secret-0123456789abcdefghijklmnopqrstuvwxyz';
  const f = await fixture('apph-tenants', { secret });
  const submitA = signToken(secret, { scope: 'submit', ttlSeconds: 60, subject: 'tenant-a' });
  const submitB = signToken(secret, { scope: 'submit', ttlSeconds: 60, subject: 'tenant-b' });
  const a = await post(`${f.url}/v1/apps`, appDescription({ name: 'tenant-a', env: { A_VAR: 'a' } }), bearer(submitA));
  const b = await post(
    `${f.url}/v1/apps`,
    {
      ...appDescription({ name: 'tenant-b', env: { DB_PASSWORD: 'hunter2', REGION: 'eu' }, command: ['run', '--api-token=abc123', 'plain=value'] }),
      conf: { 'spark.db.password': 'pw', 'spark.app.name': 'b' },
    },
    bearer(submitB),
  );
  assert.equal(a.status, 201);
  assert.equal(b.status, 201);
  const appB = b.body.appId as string;
  const asA = bearer(a.body.appToken);

  const refused = [
    await post(`${f.url}/v1/apps/${appB}/kill`, {}, asA),
    await post(`${f.url}/v1/apps/${appB}/unregister`, {}, asA),
    await post(`${f.url}/v1/apps/${appB}/executors`, { total: 5 }, asA),
    await post(`${f.url}/v1/apps/${appB}/kill-executors`, { executorIds: [0] }, asA),
    await post(`${f.url}/v1/apps/${appB}/heartbeat`, {}, asA),
  ];
  assert.deepEqual(refused.map((r) => r.status), [403, 403, 403, 403, 403]);
  assert.match(String(refused[0]!.body.error), /belongs to another application/);
  const deleted = await fetch(`${f.url}/v1/apps/${appB}`, { method: 'DELETE', headers: asA });
  assert.equal(deleted.status, 403);
  assert.equal((await fetch(`${f.url}/v1/apps/${appB}/events`, { headers: asA })).status, 403);
  assert.equal((await post(`${f.url}/v1/apps/${appB}/kill`, {}, bearer(submitA))).status, 403, "a submit token is not B's either");

  const seenByA = (await (await fetch(`${f.url}/v1/apps/${appB}`, { headers: asA })).json()) as { desc: { env: Record<string, string>; conf: Record<string, string>; command: string[] } };
  assert.deepEqual(seenByA.desc.env, { DB_PASSWORD: '*********(redacted)', REGION: '*********(redacted)' }, "A cannot read B's env");
  assert.deepEqual(seenByA.desc.conf, { 'spark.db.password': '*********(redacted)', 'spark.app.name': 'b' }, 'secret-looking conf values are redacted');
  assert.deepEqual(seenByA.desc.command, ['run', '--api-token=*********(redacted)', 'plain=value']);
  const anonymous = (await (await fetch(`${f.url}/v1/apps/${appB}`)).json()) as typeof seenByA;
  assert.equal(anonymous.desc.env.DB_PASSWORD, '*********(redacted)');
  const seenByB = (await (await fetch(`${f.url}/v1/apps/${appB}`, { headers: bearer(b.body.appToken) })).json()) as typeof seenByA;
  assert.deepEqual(seenByB.desc.env, { DB_PASSWORD: 'hunter2', REGION: 'eu' }, 'the owner reads its own env');
  assert.equal(await redis.hget(f.keys.app(appB), 'state'), 'WAITING', 'nothing A tried changed B');

  const admin = signToken(secret, { scope: 'admin', ttlSeconds: 60 });
  const seenByAdmin = (await (await fetch(`${f.url}/v1/apps/${appB}`, { headers: bearer(admin) })).json()) as typeof seenByA;
  assert.equal(seenByAdmin.desc.env.DB_PASSWORD, 'hunter2', 'an admin reads everything');
  const killed = await post(`${f.url}/v1/apps/${appB}/kill`, {}, bearer(admin));
  assert.deepEqual([killed.status, killed.body], [200, { ok: true, appId: appB }]);
  assert.equal(await redis.hget(f.keys.app(appB), 'state'), 'KILLED');
  assert.equal(await redis.hget(f.keys.app(a.body.appId as string), 'state'), 'WAITING');
});

test("an executor's heartbeat token: computed in the master's commit (Lua HMAC-SHA1) exactly as node computes it, good for its own heartbeats only", async () => {
  const f = await fixture('apph-exec-token');
  const conf = {
    'spark.flint.executor.heartbeat.enabled': 'true',
    'spark.executor.heartbeatInterval': '250ms',
    'spark.network.timeout': '60s',
    'spark.executor.heartbeat.maxFailures': '7',
  };
  const created = await post(`${f.url}/v1/apps`, { ...appDescription({ name: 'beats', coresPerExecutor: 1, maxCores: 2 }), conf });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const appId = created.body.appId as string;
  const epoch = await registerFakeWorker(f.masterClient, { id: 'w1', cores: 2, memoryMB: 4096 });
  const launches = await waitFor(async () => {
    const entries = (await readInbox(redis, f.keys, 'w1')).filter((e) => e.type === 'LaunchExecutor');
    return entries.length === 2 ? entries : undefined;
  }, { message: 'two LaunchExecutor entries' });
  const key = (await redis.hget(f.keys.appSecret(appId), 'key'))!;
  for (const launch of launches) {
    const execId = launch.body.execId as number;
    assert.deepEqual(launch.body.heartbeat, { url: f.url, intervalMs: 250, maxFailures: 7, token: executorToken(key, appId, execId) });
  }
  const tokenOf = (execId: number) => (launches.find((l) => l.body.execId === execId)!.body.heartbeat as { token: string }).token;
  const beat = (execId: number, token: string, body = '') =>
    fetch(`${f.url}/v1/apps/${appId}/executors/${execId}/heartbeat`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });

  let r = await beat(0, tokenOf(0));
  assert.deepEqual([r.status, await r.json()], [200, { ok: true, registered: false }], 'a beat before RUNNING is accepted, not yet recorded');
  await report(f, appId, 0, 'RUNNING', epoch);
  r = await beat(0, tokenOf(0), JSON.stringify({ metrics: { tasks: 3, heapMb: 12.5 } }));
  assert.deepEqual([r.status, await r.json()], [200, { ok: true, registered: true }]);
  const metrics = JSON.parse((await redis.hget(f.keys.appExecutorMetrics(appId), '0'))!) as { at: number; metrics: unknown };
  assert.deepEqual(metrics.metrics, { tasks: 3, heapMb: 12.5 });
  assert.ok(Number(await redis.zscore(f.keys.appExecutorBeats(appId), '0')) >= metrics.at - 1);

  assert.equal((await beat(1, tokenOf(0))).status, 403, "executor 0's token is not executor 1's");
  assert.equal((await beat(0, tokenOf(0).slice(0, -1) + (tokenOf(0).endsWith('0') ? '1' : '0'))).status, 403, 'a forged token');
  assert.equal((await beat(0, '')).status, 401);
  assert.equal((await beat(0, tokenOf(0), '[1]')).status, 400);
  assert.equal((await beat(0, tokenOf(0), JSON.stringify({ metrics: { blob: 'x'.repeat(5000) } }))).status, 413);
  assert.equal((await post(`${f.url}/v1/apps/${appId}/kill`, {}, bearer(tokenOf(0)))).status, 403, 'an executor token cannot kill its own app');
  assert.equal((await post(`${f.url}/v1/apps/${appId}/executors`, { total: 9 }, bearer(tokenOf(0)))).status, 403);

  await report(f, appId, 0, 'EXITED', epoch, 0);
  assert.equal((await beat(0, tokenOf(0))).status, 404, 'a finished executor is forgotten by the receiver');
  assert.equal(await redis.zscore(f.keys.appExecutorBeats(appId), '0'), null);
  assert.ok(JSON.parse((await redis.hget(f.keys.appExecutors(appId), '0'))!).lastHeartbeat > 0, 'its last beat stays on its record');
});
