/**
 * The agent never wedges (issue 10, acceptance 1, 7 and point 2), against the real Docker
 * engine, Redis and an in-process master:
 *   - twenty applications whose executable does not exist in the image give two agents far
 *     more failing launches (at least 200) than their in-flight limit (4 each): every one is
 *     FAILED at once with Spark's one-line reason, never a container left `created`, each bad
 *     application ends FAILED after spark.deploy.maxExecutorRetries, and a valid application
 *     registered afterwards has its executors RUNNING within 10 s;
 *   - killing an executor whose command is `sleep 600` (no signal handler of its own) takes
 *     well under 2 s with a 10 s grace period: the container's init passes SIGTERM on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentFixture } from '../helpers/agent-fixture.ts';
import { tracedClient, type TracedClient } from '../helpers/acceptance.ts';
import { appDescription } from '../helpers/protocol.ts';
import { docker, waitFor } from '../helpers/isolation.ts';
import { TEST_IMAGE } from '../helpers/env.ts';
import { LABEL } from '../../workers/runtime/task-identity.ts';

const BAD_APPS = 20;
const MAX_RETRIES = 10;
const IN_FLIGHT = 4;
const MISSING = '/nonexistent-binary';

test('launches of a missing executable never wedge the agents: FAILED at once with one line, no created container, bad apps FAILED after maxExecutorRetries, a valid app RUNNING within 10 s', { timeout: 300_000 }, async () => {
  const f = await agentFixture('never-wedges', { conf: { 'spark.deploy.maxExecutorRetries': String(MAX_RETRIES) } });
  const clients: TracedClient[] = [];
  try {
    const agents = await Promise.all([0, 1].map(async () => f.startAgent({ workDir: await f.workDir(), cores: 4, memoryMB: 1024, maxInFlightCommands: IN_FLIGHT })));
    for (let i = 0; i < BAD_APPS; i++) {
      clients.push(tracedClient(f.cluster, appDescription({ name: `typo-${i}`, image: TEST_IMAGE, command: [MISSING], coresPerExecutor: 1, maxCores: 4, memoryPerExecutorMB: 32 })));
    }
    const badIds = await Promise.all(clients.map(async (c) => (await c.client.start())!));
    const states = await waitFor(
      async () => {
        const all = await Promise.all(badIds.map((id) => f.redis.hget(f.keys.app(id), 'state')));
        return all.every((state) => state === 'FAILED') ? all : undefined;
      },
      { timeoutMs: 240_000, intervalMs: 500, message: 'every bad application FAILED' },
    );
    assert.equal(states.length, BAD_APPS);

    let launches = 0;
    for (const id of badIds) {
      const executors = Object.values(await f.redis.hgetall(f.keys.appExecutors(id))).map((text) => JSON.parse(text) as { state: string; message?: string });
      launches += executors.length;
      const failed = executors.filter((e) => e.state === 'FAILED');
      assert.ok(failed.length >= MAX_RETRIES, `${id}: ${failed.length} FAILED executors, at least spark.deploy.maxExecutorRetries (${MAX_RETRIES}) before the app failed`);
      for (const e of failed) assert.equal(e.message, `TaskStartError: cannot run "${MISSING}": No such file or directory`, 'one line: the reason, never a stack trace');
      // the rest were still launching when the application was removed: killed by the master with it
      for (const e of executors.filter((x) => x.state !== 'FAILED')) assert.equal(e.state, 'KILLED', JSON.stringify(e));
    }
    assert.ok(launches >= 200, `at least 200 launches of a missing executable (got ${launches})`);

    // every slot came back, however many launches failed (a launch placed just before its app failed may still be ending)
    await waitFor(
      async () => agents.every((agent) => agent.view().inbox.inFlight === 0) && (await Promise.all(agents.map((a) => f.redis.xlen(f.keys.workerInbox(a.workerId))))).every((n) => n === 0),
      { timeoutMs: 15_000, message: 'every command handled and acknowledged, none in flight' },
    );
    const created = await docker().listContainers({ all: true, filters: { label: [`${LABEL.cluster}=${f.cluster}`], status: ['created'] } });
    assert.deepEqual(created, [], 'no container left in the created state');

    const valid = tracedClient(f.cluster, appDescription({ name: 'valid', image: TEST_IMAGE, command: ['sleep', '300'], coresPerExecutor: 1, maxCores: 2, memoryPerExecutorMB: 32 }));
    clients.push(valid);
    const validId = (await valid.client.start())!;
    const registeredAt = Date.now();
    await waitFor(
      async () => Object.values(await f.redis.hgetall(f.keys.appExecutors(validId))).filter((text) => (JSON.parse(text) as { state: string }).state === 'RUNNING').length === 2,
      { timeoutMs: 10_000, intervalMs: 50, message: 'the valid application has 2 RUNNING executors within 10 s of its registration' },
    );
    const took = Date.now() - registeredAt;
    assert.ok(took < 10_000, `RUNNING after ${took} ms`);
    assert.deepEqual(f.fatal, []);
  } finally {
    await Promise.allSettled(clients.map((c) => c.client.stop()));
    await f.cleanup();
  }
});

test('killing an executor whose command is `sleep 600` is done in well under 2 s with a 10 s grace period (the init passes SIGTERM on)', { timeout: 90_000 }, async () => {
  const f = await agentFixture('kill-sleep', { conf: { 'spark.flint.worker.stopGracePeriod': '10s' } });
  const traced = tracedClient(f.cluster, appDescription({ name: 'sleeper', image: TEST_IMAGE, command: ['sleep', '600'], coresPerExecutor: 1, maxCores: 1, memoryPerExecutorMB: 32 }));
  try {
    const agent = await f.startAgent({ workDir: await f.workDir(), cores: 1, memoryMB: 256 });
    await traced.client.start();
    await waitFor(() => traced.updates(0).some((u) => u.body.state === 'RUNNING'), { timeoutMs: 30_000, message: 'executor 0 RUNNING' });
    const asked = Date.now();
    assert.equal(await traced.client.killExecutors([0]), true);
    // the agent reported KILLED (a finished executor is listed once its final report was delivered)
    const killed = await waitFor(() => agent.view().finishedExecutors.find((e) => e.execId === 0), { timeoutMs: 15_000, intervalMs: 20, message: 'executor 0 reported ended' });
    const took = Date.now() - asked;
    assert.equal(killed.state, 'KILLED');
    assert.equal(killed.exitStatus, 143, 'ended by the SIGTERM, not by the SIGKILL at the end of the grace period');
    assert.ok(took < 2000, `KillExecutors to the KILLED report took ${took} ms`);
    // (the app still wants its core, so the master places a replacement: only executor 0's container must be gone)
    const ofExecutor0 = [`${LABEL.cluster}=${f.cluster}`, `${LABEL.executor}=0`];
    await waitFor(async () => (await docker().listContainers({ all: true, filters: { label: ofExecutor0 } })).length === 0, {
      timeoutMs: 10_000,
      message: "the killed executor's container is removed",
    });
  } finally {
    await traced.client.stop();
    await f.cleanup();
  }
});
