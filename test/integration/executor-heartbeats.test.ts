/**
 * Spark's HeartbeatReceiver in Flint (issue 12, acceptance 4 and 5) against the real
 * Docker engine, Redis and processes: executors are containers that POST heartbeats
 * to the app API with the token their LaunchExecutor carried; two app API processes
 * (children) and the AppClient (this process) all run the receiver for the same
 * application. An executor frozen with `docker pause` must be expired within
 * spark.network.timeout + spark.network.timeoutInterval + 1 s, exactly once however
 * many receivers run, killed, and replaced; the one that keeps beating is untouched.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { AppClient } from '../../client/app-client.ts';
import { startUiServer } from '../../functions/http/ui-server.ts';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { agentFixture, type AgentFixture } from '../helpers/agent-fixture.ts';
import { REDIS_URL, TEST_IMAGE } from '../helpers/env.ts';
import { docker, waitFor } from '../helpers/isolation.ts';
import { appDescription, readAppEvents } from '../helpers/protocol.ts';
import { spawnLivenessChild, stopChild, type LivenessChild } from '../helpers/liveness-children.ts';

const NETWORK_TIMEOUT_MS = 2_000;
const TIMEOUT_INTERVAL_MS = 500;

let f: AgentFixture | undefined;
const children: LivenessChild[] = [];
let client: AppClient | undefined;

after(async () => {
  await client?.stop().catch(() => undefined);
  for (const child of children) await stopChild(child);
  await f?.cleanup();
});

/** BEATING: an executor that heartbeats every 300 ms with a counter as its metrics, as long as it lives. */
const BEATING = [
  'n=0',
  'while true; do',
  '  n=$((n + 1))',
  '  wget -q -O /dev/null --header "Authorization: Bearer $FLINT_HEARTBEAT_TOKEN" --post-data "{\\"metrics\\":{\\"beats\\":$n}}" "$FLINT_HEARTBEAT_URL" || echo "beat $n failed" >&2',
  '  sleep 0.3',
  'done',
].join('\n');

interface SseEvent {
  event: string;
  data: string;
}

/** followSse collects the events of an SSE response into `events` until aborted. */
function followSse(response: Response, events: SseEvent[]): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = '';
  return response
    .body!.pipeTo(
      new WritableStream({
        write(chunk) {
          buffer += decoder.decode(chunk, { stream: true });
          let boundary: number;
          while ((boundary = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, boundary);
            buffer = buffer.slice(boundary + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event) events.push({ event, data: data ?? '' });
          }
        },
      }),
    )
    .catch(() => undefined);
}

test('an executor frozen with docker pause is expired once (three receivers in three processes), killed and replaced; one that keeps beating is untouched', async () => {
  f = await agentFixture('exec-hb', { conf: { 'spark.flint.reaper.interval': '100ms' } });
  const fx = f;
  const agent = await fx.startAgent({ workDir: await fx.workDir(), cores: 3, memoryMB: 2048 });
  await waitFor(async () => (await fx.redis.hlen(fx.keys.schedulable)) === 1, { message: 'the worker registered', timeoutMs: 20_000 });
  const first = await spawnLivenessChild('app-api', { REDIS_URL, CLUSTER: fx.cluster, RECEIVER_TICK_MS: '100' });
  children.push(first);
  const second = await spawnLivenessChild('app-api', { REDIS_URL, CLUSTER: fx.cluster, RECEIVER_TICK_MS: '100' });
  children.push(second);

  const conf = {
    'spark.flint.executor.heartbeat.enabled': 'true',
    'spark.executor.heartbeatInterval': '300ms',
    'spark.network.timeout': `${NETWORK_TIMEOUT_MS}ms`,
    'spark.network.timeoutInterval': `${TIMEOUT_INTERVAL_MS}ms`,
    'spark.executor.heartbeat.maxFailures': '30',
  };
  const desc = appDescription({
    name: 'beating',
    image: TEST_IMAGE,
    command: ['sh', '-c', BEATING],
    maxCores: 2,
    coresPerExecutor: 1,
    memoryPerExecutorMB: 64,
    conf,
  });
  const registered = await fetch(`${first.ready.url}/v1/apps`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...desc, clientId: 'hb-app' }) });
  assert.equal(registered.status, 201, await registered.clone().text());
  const { appId, appToken } = (await registered.json()) as { appId: string; appToken: string };

  // the AppClient is the driver's side of the same app (same clientId): a third receiver, and the listener
  const logLines: string[] = [];
  const lost: { fullId: string; message: string }[] = [];
  client = new AppClient({
    redisUrl: REDIS_URL,
    cluster: fx.cluster,
    appDescription: { ...desc, conf: { ...conf, 'spark.flint.executor.heartbeat.url': first.ready.url! } },
    clientId: 'hb-app',
    driverId: null,
    listener: { executorLost: (fullId, message) => lost.push({ fullId, message }) },
    logger: pino({ level: 'info' }, new Writable({ write: (chunk, _enc, done) => (logLines.push(String(chunk)), done()) })),
  });
  assert.equal(await client.start(), appId);

  // the SSE stream is served by the other app API process
  const events: SseEvent[] = [];
  const controller = new AbortController();
  const stream = await fetch(`${second.ready.url}/v1/apps/${appId}/events`, { headers: { authorization: `Bearer ${appToken}` }, signal: controller.signal });
  assert.equal(stream.status, 200);
  const streaming = followSse(stream, events);

  const beats = async () => Object.fromEntries(
    (await fx.redis.zrange(fx.keys.appExecutorBeats(appId), '0', '-1', 'WITHSCORES')).flatMap((v, i, all) => (i % 2 === 0 ? [[v, Number(all[i + 1])]] : [])),
  ) as Record<string, number>;
  await waitFor(async () => {
    const last = await beats();
    const metrics = await fx.redis.hgetall(fx.keys.appExecutorMetrics(appId));
    return Object.keys(last).length === 2 && metrics['0'] && metrics['1'];
  }, { message: 'both executors RUNNING and beating with metrics', timeoutMs: 30_000 });
  const containerOf = async (execId: number) => (await fx.containers([`${LABEL.app}=${appId}`, `${LABEL.executor}=${execId}`]))[0];
  const frozen = (await containerOf(0))!;
  const healthy = (await containerOf(1))!;

  await docker().getContainer(frozen.Id).pause();
  const pausedAt = Date.now();
  const lostEvent = await waitFor(() => events.find((e) => e.event === 'ExecutorLost'), {
    message: 'ExecutorLost on the SSE stream',
    timeoutMs: NETWORK_TIMEOUT_MS + TIMEOUT_INTERVAL_MS + 10_000,
    intervalMs: 20,
  });
  const detectedMs = Date.now() - pausedAt;
  assert.ok(detectedMs <= NETWORK_TIMEOUT_MS + TIMEOUT_INTERVAL_MS + 1_000, `expired ${detectedMs} ms after the pause (bound ${NETWORK_TIMEOUT_MS + TIMEOUT_INTERVAL_MS + 1_000} ms)`);
  const body = JSON.parse(lostEvent.data) as { id: number; message: string };
  assert.equal(body.id, 0);
  assert.match(body.message, /^Executor heartbeat timed out after \d+ ms$/);
  const silentMs = Number(/after (\d+) ms/.exec(body.message)![1]);
  assert.ok(silentMs > NETWORK_TIMEOUT_MS, `silent for ${silentMs} ms, more than spark.network.timeout`);
  await waitFor(() => lost.length === 1, { message: 'the listener heard executorLost' });
  assert.deepEqual(lost[0], { fullId: `${appId}/0`, message: body.message });

  // killed (the paused container is stopped), and a replacement is RUNNING
  await waitFor(async () => (await containerOf(0))?.State !== 'running' && (await containerOf(0))?.State !== 'paused', { message: 'the frozen executor killed', timeoutMs: 20_000 });
  await waitFor(async () => {
    const raw = await fx.redis.hget(fx.keys.appExecutors(appId), '2');
    return raw && (JSON.parse(raw) as { state: string }).state === 'RUNNING' && (await containerOf(2))?.State === 'running';
  }, { message: 'a replacement executor RUNNING', timeoutMs: 30_000 });

  // let every receiver run a few more checks: still one expiry, one kill, one replacement
  await new Promise((resolve) => setTimeout(resolve, 3 * TIMEOUT_INTERVAL_MS));
  const expiries = [first, second]
    .flatMap((child) => child.stdout().split('\n'))
    .concat(logLines)
    .filter((line) => line.includes(`Removing executor ${appId}/0 with no recent heartbeats`));
  assert.equal(expiries.length, 1, `exactly one receiver expired it: ${expiries.join('\n')}`);
  assert.equal((await readAppEvents(fx.redis, fx.keys, appId)).filter((e) => e.type === 'ExecutorLost').length, 1, 'one ExecutorLost');
  // one kill, of the frozen executor (handled inbox entries are deleted: the agent's own record tells)
  const ended = agent.view().finishedExecutors.filter((e) => e.appId === appId);
  assert.deepEqual(ended.map((e) => [e.execId, e.state]), [[0, 'KILLED']], 'one kill, of the frozen executor');
  assert.deepEqual(agent.view().executors.filter((e) => e.appId === appId).map((e) => e.execId).sort(), [1, 2], 'the beating executor and the replacement run on');
  assert.deepEqual(Object.keys(await fx.redis.hgetall(fx.keys.appExecutors(appId))).sort(), ['0', '1', '2'], 'one replacement');
  const record0 = JSON.parse((await fx.redis.hget(fx.keys.appExecutors(appId), '0'))!) as { state: string; message: string; lastHeartbeat: number };
  assert.equal(record0.state, 'KILLED');
  assert.equal(record0.message, body.message);
  assert.ok(record0.lastHeartbeat <= pausedAt + 50, 'its last heartbeat is kept on the record');

  // the executor that kept beating is untouched: same container, running, fresh beats
  const stillHealthy = (await containerOf(1))!;
  assert.equal(stillHealthy.Id, healthy.Id);
  assert.equal(stillHealthy.State, 'running');
  assert.equal(JSON.parse((await fx.redis.hget(fx.keys.appExecutors(appId), '1'))!).state, 'RUNNING');
  assert.ok(Date.now() - (await beats())['1']! < 1_500, 'executor 1 keeps beating');
  assert.equal(lost.length, 1);
  assert.deepEqual(events.filter((e) => e.event === 'ExecutorLost').length, 1, 'the stream reported it once');

  // what the UI and GET /v1/apps/:id show: last heartbeat and latest metrics per executor
  const state = (await (await fetch(`${first.ready.url}/v1/apps/${appId}`, { headers: { authorization: `Bearer ${appToken}` } })).json()) as {
    executors: { id: number; lastHeartbeat?: number; latestMetrics?: { at: number; metrics: { beats: number } } }[];
  };
  const one = state.executors.find((e) => e.id === 1)!;
  assert.ok(one.lastHeartbeat && Date.now() - one.lastHeartbeat < 2_000);
  assert.ok(one.latestMetrics && one.latestMetrics.metrics.beats > 3, JSON.stringify(one));
  // what a task sent as metrics is its owner's: an anonymous reader sees the heartbeat time only
  const anonymous = (await (await fetch(`${first.ready.url}/v1/apps/${appId}`)).json()) as { executors: { id: number; lastHeartbeat?: number; latestMetrics?: unknown }[] };
  const seen = anonymous.executors.find((e) => e.id === 1)!;
  assert.ok(seen.lastHeartbeat !== undefined);
  assert.equal(seen.latestMetrics, undefined);

  // the master UI's application page: each executor's last heartbeat and latest metrics
  const ui = await startUiServer({ redisUrl: REDIS_URL, config: fx.config, port: 0, queueBoard: false });
  try {
    const page = await (await fetch(`${ui.url}/app/?appId=${appId}`)).text();
    assert.match(page, /<th>Last Heartbeat<\/th><th>Latest Metrics<\/th>/);
    const row = /<tr data-executor-id="1">[\s\S]*?<\/tr>/.exec(page)?.[0] ?? '';
    assert.match(row, /class="executor-heartbeat">\d{4}\/\d{2}\/\d{2} [\d:]+ <span class="muted">\(\d+ ms ago\)|class="executor-heartbeat">[^<]+<span class="muted">\(/, row);
    assert.match(row, /class="executor-metrics">beats=\d+/, row);
    const removed = /<tr data-executor-id="0">[\s\S]*?<\/tr>/.exec(page)?.[0] ?? '';
    assert.match(removed, /Executor heartbeat timed out after \d+ ms/, 'the removed executor shows why');
  } finally {
    await ui.close();
  }
  controller.abort();
  await streaming;
});
