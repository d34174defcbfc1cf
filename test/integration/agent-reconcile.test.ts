/**
 * Master and agent agree, in both directions (issue 10, acceptance 3, 4, 5 and point 4),
 * against the real Docker engine, Redis and an in-process master; "SIGKILL" of an agent is
 * its abrupt stop (connections and timers dropped, no task or file touched):
 *   - a running executor's container removed behind the agent's back while it is down is
 *     ended LOST by the master within one reconcile interval of the restart, its cores freed
 *     (the application gets a replacement);
 *   - a launch the master placed but whose inbox entry was trimmed before the agent read it
 *     is ended LOST, not held for ever;
 *   - a re-adopted executor is RUNNING on the master after the restart, also when the master
 *     had lost its RUNNING (as a Redis failover can lose a write), and its application's
 *     retry count is reset, as Spark resets it on RUNNING;
 *   - a pending inbox entry whose fields were trimmed is acknowledged, an undecodable one is
 *     dead-lettered and counted, and the next command is handled.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { agentFixture, type AgentFixture } from '../helpers/agent-fixture.ts';
import { tracedClient, type TracedClient } from '../helpers/acceptance.ts';
import { appDescription } from '../helpers/protocol.ts';
import { docker, waitFor } from '../helpers/isolation.ts';
import { TEST_IMAGE } from '../helpers/env.ts';
import { INBOX_GROUP, encodeEntry } from '../../protocol/streams.ts';
import { LABEL } from '../../workers/runtime/task-identity.ts';

const RECONCILE_MS = 1000;
const CONF = { 'spark.flint.worker.reconcileInterval': `${RECONCILE_MS}ms` };

interface ExecutorJson {
  state: string;
  message?: string;
  workerId: string;
}

async function executor(f: AgentFixture, appId: string, execId: number): Promise<ExecutorJson | undefined> {
  const raw = await f.redis.hget(f.keys.appExecutors(appId), String(execId));
  return raw === null ? undefined : (JSON.parse(raw) as ExecutorJson);
}

function sleeper(f: AgentFixture, name: string): TracedClient {
  return tracedClient(f.cluster, appDescription({ name, image: TEST_IMAGE, command: ['sleep', '300'], coresPerExecutor: 1, maxCores: 1, memoryPerExecutorMB: 32 }));
}

test('a container removed behind the back of a stopped agent is ended LOST within one reconcile interval of its restart, its cores freed and replaced', { timeout: 120_000 }, async () => {
  const f = await agentFixture('reconcile-gone', { conf: CONF });
  const traced = sleeper(f, 'gone');
  try {
    const workDir = await f.workDir();
    const first = await f.startAgent({ workDir, cores: 1, memoryMB: 256 });
    const appId = (await traced.client.start())!;
    await waitFor(async () => (await executor(f, appId, 0))?.state === 'RUNNING', { timeoutMs: 30_000, message: 'executor 0 RUNNING' });
    // the launch was handled to the end (acknowledged): a restarted agent has nothing left to redo
    await waitFor(async () => (await f.redis.xlen(f.keys.workerInbox(first.workerId))) === 0, { timeoutMs: 10_000, message: 'the LaunchExecutor acknowledged and deleted' });
    await first.stop({ abrupt: true });
    const [container] = await docker().listContainers({ all: true, filters: { label: [`${LABEL.cluster}=${f.cluster}`, `${LABEL.app}=${appId}`] } });
    await docker().getContainer(container!.Id).remove({ force: true });

    const second = await f.startAgent({ workDir, cores: 1, memoryMB: 256 });
    const registered = Date.now();
    const lost = await waitFor(async () => {
      const e = await executor(f, appId, 0);
      return e?.state === 'LOST' ? e : undefined;
    }, { timeoutMs: 15_000, intervalMs: 50, message: 'executor 0 LOST on the master' });
    const took = Date.now() - registered;
    assert.ok(took < RECONCILE_MS + 2000, `LOST ${took} ms after the restart (reconcile interval ${RECONCILE_MS} ms)`);
    assert.equal(lost.message, `not running on worker ${second.workerId} (the worker does not know it)`);
    await waitFor(() => traced.listener.removedOf(`${appId}/0`).length > 0, { timeoutMs: 5000, message: 'the application was told' });
    // its core came back and went to the replacement: never counted twice
    await waitFor(async () => (await executor(f, appId, 1))?.state === 'RUNNING', { timeoutMs: 30_000, message: 'a replacement executor RUNNING' });
    assert.equal(await f.redis.hget(f.keys.worker(second.workerId), 'coresUsed'), '1');
    assert.deepEqual(await f.redis.smembers(f.keys.workerExecutors(second.workerId)), [`${appId}/1`]);
  } finally {
    await traced.client.stop();
    await f.cleanup();
  }
});

test('a launch whose inbox entry was trimmed before the agent read it is ended LOST, not held for ever', { timeout: 120_000 }, async () => {
  const f = await agentFixture('reconcile-trimmed', { conf: CONF });
  const traced = sleeper(f, 'trimmed');
  try {
    const workDir = await f.workDir();
    const first = await f.startAgent({ workDir, cores: 1, memoryMB: 256 });
    await first.stop({ abrupt: true });
    const appId = (await traced.client.start())!;
    const inbox = f.keys.workerInbox(first.workerId);
    const [launch] = await waitFor(async () => {
      const entries = await f.redis.xrange(inbox, '-', '+');
      return entries.some(([, fields]) => fields[1] === 'LaunchExecutor') ? entries.filter(([, fields]) => fields[1] === 'LaunchExecutor') : undefined;
    }, { timeoutMs: 15_000, message: 'LaunchExecutor placed in the stopped worker\'s inbox' });
    assert.equal((await executor(f, appId, 0))?.state, 'LAUNCHING');
    await f.redis.xdel(inbox, launch![0]);

    await f.startAgent({ workDir, cores: 1, memoryMB: 256 });
    const lost = await waitFor(async () => {
      const e = await executor(f, appId, 0);
      return e?.state === 'LOST' ? e : undefined;
    }, { timeoutMs: RECONCILE_MS + 5000, intervalMs: 50, message: 'the undeliverable launch LOST' });
    assert.match(lost.message ?? '', /the worker does not know it/);
    await waitFor(async () => (await executor(f, appId, 1))?.state === 'RUNNING', { timeoutMs: 30_000, message: 'a replacement executor RUNNING' });
  } finally {
    await traced.client.stop();
    await f.cleanup();
  }
});

test('a re-adopted executor is RUNNING on the master after the restart, also when the master lost its RUNNING; its app\'s retry count is reset', { timeout: 120_000 }, async () => {
  const f = await agentFixture('reconcile-adopt', { conf: CONF });
  const traced = sleeper(f, 'adopt');
  try {
    const workDir = await f.workDir();
    const first = await f.startAgent({ workDir, cores: 1, memoryMB: 256 });
    const appId = (await traced.client.start())!;
    await waitFor(async () => (await executor(f, appId, 0))?.state === 'RUNNING', { timeoutMs: 30_000, message: 'executor 0 RUNNING' });
    const [container] = await docker().listContainers({ all: true, filters: { label: [`${LABEL.cluster}=${f.cluster}`, `${LABEL.app}=${appId}`] } });
    await first.stop({ abrupt: true });
    // what a failover that lost the RUNNING write (and earlier failures) would leave behind
    const held = JSON.parse((await f.redis.hget(f.keys.appExecutors(appId), '0'))!) as Record<string, unknown>;
    await f.redis.hset(f.keys.appExecutors(appId), '0', JSON.stringify({ ...held, state: 'LAUNCHING' }));
    await f.redis.hset(f.keys.app(appId), 'retryCount', '3');

    await f.startAgent({ workDir, cores: 1, memoryMB: 256 });
    await waitFor(async () => (await executor(f, appId, 0))?.state === 'RUNNING', { timeoutMs: 15_000, intervalMs: 50, message: 'the re-adopted executor RUNNING on the master' });
    assert.equal(await f.redis.hget(f.keys.app(appId), 'retryCount'), '0');
    const [again] = await docker().listContainers({ all: true, filters: { label: [`${LABEL.cluster}=${f.cluster}`, `${LABEL.app}=${appId}`] } });
    assert.equal(again!.Id, container!.Id, 'the same container, re-adopted');
    assert.equal(again!.State, 'running');
  } finally {
    await traced.client.stop();
    await f.cleanup();
  }
});

test('a pending inbox entry whose fields were trimmed is acknowledged, an undecodable one dead-lettered and counted, and the next command is handled', { timeout: 120_000 }, async () => {
  // commands go straight into the inbox, for an app the master never placed: no reconciliation here
  const f = await agentFixture('inbox-trimmed', { conf: { 'spark.flint.worker.reconcileInterval': '0' } });
  try {
    const workDir = await f.workDir();
    const first = await f.startAgent({ workDir, cores: 1, memoryMB: 256 });
    const epoch = first.epoch()!;
    const id = first.workerId;
    await first.stop({ abrupt: true });
    const inbox = f.keys.workerInbox(id);
    const appId = `app-trim-${randomUUID().slice(0, 8)}`;
    const launch = (execId: number) => encodeEntry('LaunchExecutor', { masterUrl: 'x', appId, execId, cores: 1, memoryMB: 32, epoch, appDesc: { name: 'trim', image: TEST_IMAGE, command: ['sleep', '300'] } });
    // the dead agent had read an entry (pending for it) that was then trimmed away
    const taken = (await f.redis.xadd(inbox, '*', ...launch(0)))!;
    await f.redis.xreadgroup('GROUP', INBOX_GROUP, id, 'COUNT', '1', 'STREAMS', inbox, '>');
    await f.redis.xdel(inbox, taken);
    await f.redis.xadd(inbox, '*', 'type', 'LaunchExecutor', 'body', '{not json');
    await f.redis.xadd(inbox, '*', ...launch(1));
    const deadBefore = Number((await f.redis.hget(f.keys.stats, 'deadLetters')) ?? 0);

    const second = await f.startAgent({ workDir, cores: 1, memoryMB: 256 });
    await waitFor(async () => (await f.containers([`${LABEL.app}=${appId}`])).some((c) => c.State === 'running' && c.Labels[LABEL.executor] === '1'), {
      timeoutMs: 30_000,
      message: 'the command after the trimmed and the undecodable entries runs',
    });
    await waitFor(async () => Number(((await f.redis.xpending(inbox, INBOX_GROUP)) as [number])[0]) === 0, { timeoutMs: 10_000, message: 'nothing left pending' });
    const stats = second.view().inbox;
    assert.equal(stats.trimmed, 1);
    assert.equal(stats.deadLettered, 1);
    assert.equal(Number(await f.redis.hget(f.keys.stats, 'deadLetters')), deadBefore + 1, 'counted where /metrics reads flint_dead_letters_total');
    const letters = await f.redis.xrange(f.keys.deadLetters, '-', '+');
    const letter = letters.map(([, fields]) => Object.fromEntries(fields.flatMap((v, i) => (i % 2 === 0 ? [[v, fields[i + 1]]] : [])))).find((l) => l.source?.startsWith(`worker ${id} inbox`));
    assert.ok(letter, 'dead-lettered with its source');
    assert.match(letter!.reason!, /LaunchExecutor: body is not valid JSON/);
    assert.equal(second.view().registered, true, 'the agent never exits because of what is in its inbox');
    assert.deepEqual(f.fatal, []);
  } finally {
    await f.cleanup();
  }
});
