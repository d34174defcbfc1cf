/**
 * Worker agents against a real master (in-process), the real Redis and the real
 * Docker engine: executors placed by the master run as containers with the right
 * limits and labels, exit codes reach the application's event stream, and an agent
 * killed (abruptly) and restarted again and again re-adopts its containers, reports
 * an exit that happened while it was down with its true code, exactly once, and
 * never starts a second container for one executor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { docker, waitFor, writeAtomically } from '../helpers/isolation.ts';
import { appDescription, readAppEvents, type DecodedEvent } from '../helpers/protocol.ts';
import { agentFixture, type AgentFixture } from '../helpers/agent-fixture.ts';
import { TEST_IMAGE } from '../helpers/env.ts';

async function registerApp(f: AgentFixture, overrides: Record<string, unknown>): Promise<string> {
  const reply = await f.masterClient.ask<{ appId: string }>(
    'RegisterApplication',
    { clientId: `client-${randomUUID()}`, appDescription: appDescription({ image: TEST_IMAGE, ...overrides }) },
    30_000,
  );
  return reply.appId;
}

function updates(events: DecodedEvent[], execId: number, state?: string): DecodedEvent[] {
  return events.filter((e) => e.type === 'ExecutorUpdated' && e.body.id === execId && (state === undefined || e.body.state === state));
}

test('two agents run executors with the right limits and labels; exit code 3 is reported as EXITED 3', { timeout: 120_000 }, async () => {
  const f = await agentFixture('agent-master');
  try {
    const a = await f.startAgent({ workDir: await f.workDir(), cores: 1, memoryMB: 512 });
    const b = await f.startAgent({ workDir: await f.workDir(), cores: 1, memoryMB: 512 });
    assert.notEqual(a.workerId, b.workerId);
    assert.ok(a.epoch()! > 0 && b.epoch()! > 0);

    const appId = await registerApp(f, { name: 'sleeper', command: ['sh', '-c', 'sleep 30'], maxCores: 2, coresPerExecutor: 1, memoryPerExecutorMB: 64 });
    const running = await waitFor(
      async () => {
        const list = await f.containers([`${LABEL.app}=${appId}`]);
        return list.length === 2 && list.every((c) => c.State === 'running') ? list : undefined;
      },
      { timeoutMs: 30_000, message: 'two executor containers running' },
    );
    const workers = new Set(running.map((c) => c.Labels[LABEL.worker]));
    assert.deepEqual([...workers].sort(), [a.workerId, b.workerId].sort(), 'one executor on each 1-core worker');
    for (const info of running) {
      const inspect = await docker().getContainer(info.Id).inspect();
      assert.equal(inspect.HostConfig.Memory, 64 * 1024 * 1024);
      assert.equal(inspect.HostConfig.NanoCpus, 1e9);
      assert.equal(inspect.HostConfig.PidsLimit, 64);
      assert.deepEqual(inspect.HostConfig.CapDrop, ['ALL']);
      assert.equal(inspect.HostConfig.Privileged, false);
      assert.equal(inspect.HostConfig.NetworkMode, 'host');
      assert.equal(inspect.Config.Labels[LABEL.kind], 'executor');
      assert.equal(inspect.Config.Labels[LABEL.cluster], f.cluster);
      const execId = inspect.Config.Labels[LABEL.executor];
      assert.equal(inspect.Config.Labels[LABEL.task], `executor:${appId}/${execId}`);
      const env = new Set(inspect.Config.Env);
      assert.ok(env.has(`FLINT_APP_ID=${appId}`) && env.has(`FLINT_EXECUTOR_ID=${execId}`) && env.has('FLINT_MEMORY_MB=64') && env.has('SPARK_LAUNCH_WITH_SCALA=0'));
      assert.ok(inspect.Config.Env.some((e) => e.startsWith('SPARK_LOG_URL_STDOUT=http://127.0.0.1:') && e.endsWith(`/logPage/?appId=${appId}&executorId=${execId}&logType=stdout`)));
    }
    // the master heard RUNNING from both agents
    await waitFor(async () => {
      const events = await readAppEvents(f.redis, f.keys, appId);
      return events.filter((e) => e.type === 'ExecutorUpdated' && e.body.state === 'RUNNING').length === 2;
    }, { timeoutMs: 15_000, message: 'RUNNING reported for both executors' });
    // the agents' own view agrees, and so does the worker UI's /json
    assert.equal(a.view().executors.length + b.view().executors.length, 2);
    assert.ok(a.view().executors.every((e) => e.state === 'RUNNING'));
    const json = (await (await fetch(`${a.webUiUrl}/json`)).json()) as { id: string; cores: number; executors: { appid: string }[] };
    assert.equal(json.id, a.workerId);
    assert.equal(json.cores, 1);
    assert.deepEqual(json.executors.map((e) => e.appid), [appId]);

    // finishing the app kills its executors: KILLED on the agents, containers removed
    await f.masterClient.ask('UnregisterApplication', { appId }, 30_000);
    await waitFor(async () => (await f.containers([`${LABEL.app}=${appId}`])).length === 0, { timeoutMs: 30_000, message: 'executor containers removed after the app finished' });
    // the agents record the final state once the exit has been reported, which may be just after the removal
    const finished = await waitFor(() => {
      const all = [...a.view().finishedExecutors, ...b.view().finishedExecutors];
      return all.length === 2 ? all : undefined;
    }, { timeoutMs: 15_000, message: 'both executors finished on the agents' });
    assert.ok(finished.every((e) => e.state === 'KILLED' && e.exitStatus !== undefined), JSON.stringify(finished));

    // an executor that exits with code 3
    const failing = await registerApp(f, { name: 'exit3', command: ['sh', '-c', 'sleep 0.5; exit 3'], maxCores: 1, coresPerExecutor: 1, memoryPerExecutorMB: 64 });
    const exited = await waitFor(
      async () => {
        const events = await readAppEvents(f.redis, f.keys, failing);
        return events.find((e) => e.type === 'ExecutorUpdated' && e.body.state === 'EXITED');
      },
      { timeoutMs: 30_000, message: 'EXITED reported' },
    );
    assert.equal(exited.body.exitStatus, 3);
    assert.equal(exited.body.message, 'Command exited with code 3');
    const events = await readAppEvents(f.redis, f.keys, failing);
    const execId = exited.body.id as number;
    const order = updates(events, execId).map((e) => e.body.state);
    assert.deepEqual(order, ['RUNNING', 'EXITED'], 'reports of one executor arrive in order');
    await f.masterClient.ask('KillApplication', { appId: failing }, 30_000);
    await waitFor(async () => (await f.containers([`${LABEL.app}=${failing}`])).length === 0, { timeoutMs: 30_000, message: 'the killed app\'s executors are gone' });
    assert.deepEqual(f.fatal, []);
  } finally {
    await f.cleanup();
  }
});

test('an agent killed and restarted 5 times re-adopts its containers and reports an exit that happened while down, once', { timeout: 180_000 }, async () => {
  const f = await agentFixture('agent-restart');
  try {
    const workDir = await f.workDir();
    let agent = await f.startAgent({ workDir, cores: 2, memoryMB: 512 });
    const workerId = agent.workerId;
    const epoch = agent.epoch();
    // each executor waits for a file `exit-now` in its own work dir and exits with the code written there
    const appId = await registerApp(f, {
      name: 'waiter',
      command: ['sh', '-c', 'while [ ! -f exit-now ]; do sleep 0.1; done; exit $(cat exit-now)'],
      maxCores: 2,
      coresPerExecutor: 1,
      memoryPerExecutorMB: 32,
    });
    const first = await waitFor(
      async () => {
        const list = await f.containers([`${LABEL.app}=${appId}`]);
        return list.length === 2 && list.every((c) => c.State === 'running') ? list : undefined;
      },
      { timeoutMs: 30_000, message: 'two executors running' },
    );
    await waitFor(async () => (await readAppEvents(f.redis, f.keys, appId)).filter((e) => e.body.state === 'RUNNING').length === 2, { timeoutMs: 15_000, message: 'both RUNNING' });
    /** every container id ever seen per task id: a second container for one executor would show here */
    const containersByTask = new Map<string, Set<string>>();
    const observe = async () => {
      for (const info of await f.containers()) {
        const task = info.Labels[LABEL.task]!;
        if (!containersByTask.has(task)) containersByTask.set(task, new Set());
        containersByTask.get(task)!.add(info.Id);
      }
    };
    await observe();
    const [victim, survivor] = [...first].sort((x, y) => Number(x.Labels[LABEL.executor]) - Number(y.Labels[LABEL.executor]));
    const victimExecId = Number(victim!.Labels[LABEL.executor]);

    for (let round = 1; round <= 5; round++) {
      await agent.stop({ abrupt: true });
      if (round === 2) {
        // while the agent is down the victim exits with code 7
        // renamed into place whole: the executor must never read an empty code and exit 0
        await writeAtomically(join(workDir, appId, String(victimExecId), 'exit-now'), '7');
        await waitFor(async () => !(await docker().getContainer(victim!.Id).inspect()).State.Running, { timeoutMs: 15_000, message: 'victim exited' });
        const state = (await docker().getContainer(victim!.Id).inspect()).State;
        assert.equal(state.ExitCode, 7);
      }
      await observe();
      agent = await f.startAgent({ workDir, cores: 2, memoryMB: 512 });
      assert.equal(agent.workerId, workerId, 'the worker id is kept in the work dir');
      assert.equal(agent.epoch(), epoch, 'a quick restart is a duplicate registration: same epoch');
      assert.equal((await docker().getContainer(survivor!.Id).inspect()).State.Running, true, `round ${round}: the survivor keeps running`);
      assert.ok(agent.view().executors.some((e) => e.appId === appId && e.execId === Number(survivor!.Labels[LABEL.executor]) && e.state === 'RUNNING'), 're-adopted');
      if (round >= 2) {
        await waitFor(async () => updates(await readAppEvents(f.redis, f.keys, appId), victimExecId, 'EXITED').length === 1, { timeoutMs: 15_000, message: 'the exit while down is reported' });
        // the master replaces the victim: wait for its replacement before the next kill
        await waitFor(
          async () => (await f.containers([`${LABEL.app}=${appId}`, `${LABEL.executor}=${victimExecId}`])).length === 0 && (await f.containers([`${LABEL.app}=${appId}`])).filter((c) => c.State === 'running').length === 2,
          { timeoutMs: 30_000, message: 'victim removed and replaced' },
        );
      }
      await observe();
    }

    const events = await readAppEvents(f.redis, f.keys, appId);
    const exits = updates(events, victimExecId, 'EXITED');
    assert.equal(exits.length, 1, 'reported exactly once over all restarts');
    assert.equal(exits[0]!.body.exitStatus, 7);
    assert.equal(exits[0]!.body.message, 'Command exited with code 7');
    assert.equal(updates(events, Number(survivor!.Labels[LABEL.executor])).filter((e) => e.body.state !== 'RUNNING').length, 0, 'the survivor never looked finished');
    for (const [task, ids] of containersByTask) assert.equal(ids.size, 1, `task ${task} ran in ${ids.size} containers`);
    // every executor the master added got at most one RUNNING
    for (const added of events.filter((e) => e.type === 'ExecutorAdded')) {
      assert.ok(updates(events, added.body.id as number, 'RUNNING').length <= 1, `executor ${added.body.id} reported RUNNING twice`);
    }
    assert.deepEqual(f.fatal, []);
  } finally {
    await f.cleanup();
  }
});
