/**
 * Acceptance of the worker agent, point 5: a real heartbeat gap. A `flint worker`
 * process (node bin/flint.js worker) is frozen with SIGSTOP for longer than
 * spark.worker.timeout (2 s) while its executor runs; a second worker takes the
 * replacement. The master declares the frozen worker DEAD and the AppClient hears
 * LOST; after SIGCONT the agent re-registers on its own under a new epoch and the
 * master's reconciliation (WorkerLatestState → KillExecutor) kills the executor it
 * already replaced, while the replacement keeps running.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { docker, waitFor } from '../helpers/isolation.ts';
import { appDescription, readInbox } from '../helpers/protocol.ts';
import { agentFixture, FAST_CONF } from '../helpers/agent-fixture.ts';
import { TEST_IMAGE } from '../helpers/env.ts';
import { execIdOf, FlintWorkers, tracedClient } from '../helpers/acceptance.ts';

test('point 5: a heartbeat gap beyond the timeout makes the worker DEAD and its executor LOST; the agent re-registers on its own and the master kills the executor it replaced', { timeout: 60_000 }, async () => {
  const timeout = { 'spark.worker.timeout': '2s' };
  const f = await agentFixture('acc-p5', { conf: timeout });
  const workers = new FlintWorkers();
  const traced = tracedClient(
    f.cluster,
    appDescription({ name: 'acceptance-lost', image: TEST_IMAGE, command: ['sh', '-c', 'sleep 120'], maxCores: 1, coresPerExecutor: 1, memoryPerExecutorMB: 32 }),
  );
  let frozen = false;
  let frozenPid = 0;
  try {
    // the app's only executor lands on the `flint worker` process: it is the only worker at first
    const stalled = await workers.start({ cluster: f.cluster, workDir: await f.workDir(), cores: 1, memory: '256m', conf: { ...FAST_CONF, ...timeout } });
    const appId = (await traced.client.start())!;
    assert.ok(appId);
    const first = await waitFor(() => traced.listener.added[0], { timeoutMs: 15_000, message: 'the first executor placed' });
    assert.equal(first.workerId, stalled.workerId);
    const oldExecId = execIdOf(first.fullId);
    await waitFor(() => traced.updates(oldExecId).some((e) => e.body.state === 'RUNNING'), { timeoutMs: 15_000, message: 'the first executor RUNNING' });
    const [oldContainer] = await f.containers([`${LABEL.app}=${appId}`, `${LABEL.executor}=${oldExecId}`]);
    assert.equal(oldContainer?.State, 'running');
    // the second worker (in-process agent) has room for the replacement
    const standby = await f.startAgent({ workDir: await f.workDir(), cores: 1, memoryMB: 256 });

    process.kill(stalled.pid, 'SIGSTOP');
    frozen = true;
    frozenPid = stalled.pid;
    const stoppedAt = Date.now();
    await waitFor(async () => (await f.redis.hget(f.keys.worker(stalled.workerId), 'state')) === 'DEAD', { timeoutMs: 10_000, intervalMs: 100, message: 'the silent worker DEAD' });
    // declared dead for the silence, not before the timeout: the last beat came before the freeze
    const [lastHeartbeat, deadSince] = (await f.redis.hmget(f.keys.worker(stalled.workerId), 'lastHeartbeat', 'deadSince')).map(Number);
    assert.ok(lastHeartbeat! <= stoppedAt + 50, `last beat ${lastHeartbeat! - stoppedAt} ms after the freeze`);
    assert.ok(deadSince! - lastHeartbeat! >= 2000, `declared dead ${deadSince! - lastHeartbeat!} ms after the last beat`);
    assert.match((await f.redis.hget(f.keys.worker(stalled.workerId), 'deathReason'))!, /^Not receiving heartbeat for 2 seconds$/);

    // the client hears LOST with Spark's reason, and that the worker was removed
    const lost = await waitFor(() => traced.listener.removedOf(first.fullId)[0], { timeoutMs: 5_000, message: 'executorRemoved for the lost executor' });
    assert.equal(lost.message, 'worker lost: Not receiving heartbeat for 2 seconds');
    assert.equal(lost.exitStatus, undefined);
    assert.deepEqual(traced.updates(oldExecId).map((e) => e.body.state), ['RUNNING', 'LOST']);
    assert.deepEqual(traced.listener.workersRemoved, [{ workerId: stalled.workerId, host: '127.0.0.1', message: 'Not receiving heartbeat for 2 seconds' }]);

    // the replacement lands on the other worker and runs
    const replacement = await waitFor(() => traced.listener.added.find((call) => call.fullId !== first.fullId), { timeoutMs: 10_000, message: 'a replacement executor' });
    assert.equal(replacement.workerId, standby.workerId);
    const newExecId = execIdOf(replacement.fullId);
    await waitFor(() => traced.updates(newExecId).some((e) => e.body.state === 'RUNNING'), { timeoutMs: 15_000, message: 'the replacement RUNNING' });
    const [newContainer] = await f.containers([`${LABEL.app}=${appId}`, `${LABEL.executor}=${newExecId}`]);
    assert.equal(newContainer?.State, 'running');
    // while the agent was frozen its container kept running: nothing has killed it yet
    assert.equal((await docker().getContainer(oldContainer.Id).inspect()).State.Running, true);

    process.kill(stalled.pid, 'SIGCONT');
    frozen = false;
    // the agent finds out on its own (its heartbeat is answered 'reconnect') and registers under a new epoch
    const epoch = await waitFor(
      async () => {
        const [state, value] = await f.redis.hmget(f.keys.worker(stalled.workerId), 'state', 'epoch');
        return state === 'ALIVE' && Number(value) !== stalled.epoch ? Number(value) : undefined;
      },
      { timeoutMs: 15_000, message: 're-registered under a new epoch' },
    );
    assert.ok(epoch > stalled.epoch);
    // reconciliation: the master no longer holds the old executor there, so it sends KillExecutor at the new epoch
    const kill = await waitFor(
      async () => (await readInbox(f.redis, f.keys, stalled.workerId)).find((e) => e.type === 'KillExecutor' && e.body.appId === appId && e.body.execId === oldExecId),
      { timeoutMs: 10_000, message: 'KillExecutor for the replaced executor' },
    );
    assert.equal(kill.body.epoch, epoch);
    await waitFor(
      async () => {
        const info = await docker().getContainer(oldContainer.Id).inspect().catch(() => undefined);
        return info === undefined || !info.State.Running;
      },
      { timeoutMs: 15_000, message: 'the replaced executor\'s container killed' },
    );
    // the lost executor stays LOST for the master and the client (the agent's KILLED report is a duplicate)
    const oldExecutor = JSON.parse((await f.redis.hget(f.keys.appExecutors(appId), String(oldExecId)))!) as { state: string };
    assert.equal(oldExecutor.state, 'LOST');
    assert.equal(traced.listener.removedOf(first.fullId).length, 1);
    // the replacement keeps running, and the resumed worker takes no executor of this app
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal((await docker().getContainer(newContainer!.Id).inspect()).State.Running, true, 'the replacement keeps running');
    assert.deepEqual(traced.updates(newExecId).map((e) => e.body.state), ['RUNNING']);
    assert.equal(traced.listener.added.length, 2);
    assert.equal(await f.redis.hget(f.keys.app(appId), 'state'), 'RUNNING');
    assert.equal(stalled.child.exitCode, null, 'the resumed agent is still up');
    assert.deepEqual(f.fatal, []);
  } finally {
    if (frozen) process.kill(frozenPid, 'SIGCONT');
    await traced.client.stop();
    await workers.cleanup();
    await f.cleanup();
  }
});
