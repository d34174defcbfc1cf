/**
 * Acceptance of the worker agent, point 4: `flint worker` as a real process
 * (node bin/flint.js worker) SIGKILLed 5 times while its executors run, and started
 * again on the same --work-dir each time (so it keeps its worker id). The master runs
 * in this process; the application is registered through the AppClient. Docker's own
 * event stream is the witness that no executor ever got a second container.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { docker, waitFor, writeAtomically } from '../helpers/isolation.ts';
import { appDescription } from '../helpers/protocol.ts';
import { agentFixture, FAST_CONF } from '../helpers/agent-fixture.ts';
import { TEST_IMAGE } from '../helpers/env.ts';
import { execIdOf, FlintWorkers, recordContainerEvents, tracedClient } from '../helpers/acceptance.ts';

/** listedExecutors: the executors a worker's web UI lists (Spark's /json), as app/exec pairs. */
async function listedExecutors(webUiUrl: string): Promise<string[]> {
  const json = (await (await fetch(`${webUiUrl}/json`)).json()) as { executors: { appid: string; id: number }[] };
  return json.executors.map((e) => `${e.appid}/${e.id}`).sort();
}

test('point 4: a flint worker process SIGKILLed 5 times keeps its containers, re-adopts them, reports an exit while it was down with its true code, and never starts a container twice', { timeout: 90_000 }, async () => {
  const f = await agentFixture('acc-p4');
  const workers = new FlintWorkers();
  const events = await recordContainerEvents(f.cluster);
  // each executor waits for a file `exit-now` in its work dir and exits with the code written there
  const traced = tracedClient(
    f.cluster,
    appDescription({
      name: 'acceptance-sigkill',
      image: TEST_IMAGE,
      command: ['sh', '-c', 'while [ ! -f exit-now ]; do sleep 0.1; done; exit $(cat exit-now)'],
      maxCores: 2,
      coresPerExecutor: 1,
      memoryPerExecutorMB: 32,
    }),
  );
  try {
    const workDir = await f.workDir();
    const flags = { cluster: f.cluster, workDir, cores: 2, memory: '512m', conf: FAST_CONF };
    let worker = await workers.start(flags);
    const { workerId, epoch } = worker;
    const appId = (await traced.client.start())!;
    assert.ok(appId);
    await waitFor(() => traced.events.filter((e) => e.type === 'ExecutorUpdated' && e.body.state === 'RUNNING').length === 2, { timeoutMs: 20_000, message: 'two executors RUNNING' });
    const first = await f.containers([`${LABEL.app}=${appId}`]);
    assert.equal(first.length, 2);
    assert.ok(first.every((c) => c.State === 'running' && c.Labels[LABEL.worker] === workerId));
    const [victim, survivor] = [...first].sort((x, y) => Number(x.Labels[LABEL.executor]) - Number(y.Labels[LABEL.executor]));
    const victimExecId = Number(victim!.Labels[LABEL.executor]);
    const survivorExecId = Number(survivor!.Labels[LABEL.executor]);
    /** the container each running executor had before the kills: none may change */
    const containerOf = new Map<number, string>([[victimExecId, victim!.Id], [survivorExecId, survivor!.Id]]);

    for (let round = 1; round <= 5; round++) {
      await workers.sigkill(worker);
      assert.equal((await worker.exited).signal, 'SIGKILL');
      if (round === 2) {
        // while the agent is down the victim exits with code 7
        // renamed into place whole: the executor must never read an empty code and exit 0
        await writeAtomically(join(workDir, appId, String(victimExecId), 'exit-now'), '7');
        const state = await waitFor(
          async () => {
            const s = (await docker().getContainer(victim!.Id).inspect()).State;
            return s.Running ? undefined : s;
          },
          { timeoutMs: 10_000, message: 'the victim exited while the agent was down' },
        );
        assert.equal(state.ExitCode, 7);
        assert.equal(traced.listener.removedOf(`${appId}/${victimExecId}`).length, 0, 'nobody could report it yet');
        containerOf.delete(victimExecId);
      }
      worker = await workers.start(flags);
      assert.equal(worker.workerId, workerId, `round ${round}: the worker id is kept in the work dir`);
      assert.equal(worker.epoch, epoch, `round ${round}: a restart within the timeout is a duplicate registration`);
      for (const [execId, containerId] of containerOf) {
        const state = (await docker().getContainer(containerId).inspect()).State;
        assert.equal(state.Running, true, `round ${round}: executor ${execId} keeps running in container ${containerId.slice(0, 12)}`);
      }
      // the restarted agent re-adopted every running executor (its web UI lists them)
      const expected = [...containerOf.keys()].map((execId) => `${appId}/${execId}`);
      const restarted = worker;
      await waitFor(async () => {
        const listed = await listedExecutors(restarted.webUiUrl);
        return expected.every((id) => listed.includes(id));
      }, { timeoutMs: 10_000, message: `round ${round}: re-adopted ${expected.join(', ')}` });
      if (round === 2) {
        const exit = await waitFor(() => traced.listener.removedOf(`${appId}/${victimExecId}`)[0], { timeoutMs: 15_000, message: 'the exit while down reaches the client' });
        assert.deepEqual([exit.message, exit.exitStatus, exit.oomKilled], ['Command exited with code 7', 7, false]);
        assert.deepEqual(traced.updates(victimExecId).map((e) => [e.body.state, e.body.exitStatus]), [['RUNNING', undefined], ['EXITED', 7]]);
        // the master replaces the victim on the same worker; the replacement must survive the next kills too
        const added = await waitFor(() => traced.listener.added.find((call) => execIdOf(call.fullId) > survivorExecId), { timeoutMs: 15_000, message: 'a replacement executor' });
        const replacementExecId = execIdOf(added.fullId);
        assert.equal(added.workerId, workerId);
        assert.equal(`http://${added.hostPort}`, worker.webUiUrl, 'the master knows where the restarted agent listens now');
        const [replacement] = await waitFor(
          async () => {
            const list = await f.containers([`${LABEL.executor}=${replacementExecId}`, `${LABEL.app}=${appId}`]);
            return list.length === 1 && list[0]!.State === 'running' ? list : undefined;
          },
          { timeoutMs: 15_000, message: 'the replacement container running' },
        );
        await waitFor(() => traced.updates(replacementExecId).some((e) => e.body.state === 'RUNNING'), { timeoutMs: 15_000, message: 'the replacement RUNNING' });
        containerOf.set(replacementExecId, replacement!.Id);
        await waitFor(async () => (await f.containers([`${LABEL.executor}=${victimExecId}`, `${LABEL.app}=${appId}`])).length === 0, { timeoutMs: 10_000, message: 'the exited victim removed' });
      }
    }

    assert.deepEqual(await listedExecutors(worker.webUiUrl), [...containerOf.keys()].map((execId) => `${appId}/${execId}`).sort());
    // the exit was reported once over all restarts; nothing running ever looked finished
    assert.equal(traced.listener.removed.length, 1, JSON.stringify(traced.listener.removed));
    assert.equal(traced.updates(victimExecId).filter((e) => e.body.state === 'EXITED').length, 1);
    for (const execId of containerOf.keys()) {
      assert.deepEqual(traced.updates(execId).map((e) => e.body.state), ['RUNNING'], `executor ${execId}: one RUNNING, no final state`);
    }
    assert.equal(traced.listener.added.length, 3, 'two executors and one replacement, no other');
    // Docker's record: one create and one start per executor id, ever
    const tasks = traced.listener.added.map((call) => `executor:${call.fullId}`).sort();
    const created = events.count('create');
    const started = events.count('start');
    assert.deepEqual([...created.keys()].sort(), tasks);
    for (const task of tasks) {
      assert.equal(created.get(task), 1, `${task} created ${created.get(task)} times`);
      assert.equal(started.get(task), 1, `${task} started ${started.get(task)} times`);
    }
    assert.deepEqual(await f.redis.hmget(f.keys.worker(workerId), 'state', 'epoch'), ['ALIVE', String(epoch)]);
    // every restart listened on a new port (--port 0): the master followed the worker to its current address
    const port = new URL(worker.webUiUrl).port;
    assert.deepEqual(await f.redis.hmget(f.keys.worker(workerId), 'port', 'webUiUrl'), [port, worker.webUiUrl]);
    assert.deepEqual(await f.redis.hgetall(f.keys.workersByAddress), { [`127.0.0.1:${port}`]: workerId }, 'only the current address is held');
  } finally {
    events.close();
    await traced.client.stop();
    await workers.cleanup();
    await f.cleanup();
  }
});

test('point 4 (address): a duplicate registration from a new port moves the worker there, unless another live worker holds that port', { timeout: 30_000 }, async () => {
  const f = await agentFixture('acc-p4-address');
  try {
    const register = (id: string, port: number) =>
      f.masterClient.ask<{ type: string; epoch?: number; duplicate?: boolean; message?: string }>(
        'RegisterWorker',
        { id, host: '127.0.0.1', port, cores: 1, memoryMB: 256, webUiUrl: `http://127.0.0.1:${port}`, resources: {}, labels: {}, executors: [], driverIds: [] },
        10_000,
      );
    const first = await register('w-moving', 7301);
    const other = await register('w-other', 7302);
    assert.equal(other.type, 'RegisteredWorker');
    const moved = await register('w-moving', 7303);
    assert.deepEqual([moved.type, moved.duplicate, moved.epoch], ['RegisteredWorker', true, first.epoch], 'still a duplicate: same epoch');
    assert.deepEqual(await f.redis.hmget(f.keys.worker('w-moving'), 'port', 'webUiUrl', 'state'), ['7303', 'http://127.0.0.1:7303', 'ALIVE']);
    assert.deepEqual(await f.redis.hgetall(f.keys.workersByAddress), { '127.0.0.1:7302': 'w-other', '127.0.0.1:7303': 'w-moving' });
    const compact = JSON.parse((await f.redis.hget(f.keys.schedulable, 'w-moving'))!) as { p: number };
    assert.equal(compact.p, 7303, 'the scheduling snapshot has the new address');
    // the freed port can be taken by a new worker
    assert.equal((await register('w-new', 7301)).type, 'RegisteredWorker');
    const clash = await register('w-moving', 7302);
    assert.deepEqual([clash.type, clash.message], ['RegisterWorkerFailed', 'Attempted to re-register worker at same address: 127.0.0.1:7302']);
    assert.equal(await f.redis.hget(f.keys.worker('w-moving'), 'port'), '7303', 'a refused move changes nothing');
  } finally {
    await f.cleanup();
  }
});
