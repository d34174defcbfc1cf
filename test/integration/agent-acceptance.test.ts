/**
 * Acceptance of the worker agent, points 1–3: an application registered through the
 * AppClient on a cluster of two real agents (in-process, Docker runtime) against a
 * real master, the real Redis and the real Docker engine. Point 1: its executors are
 * containers with the requested limits, hardening and labels. Point 2: exit codes
 * and OOM kills reach the client, and clean exits are no failures. Point 3:
 * unregistering stops the containers within the grace period and nothing of the test
 * stays behind. (Points 4–6: agent-acceptance-*.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { docker, makeTempDir, removeContainersByLabel, uniqueCluster, waitFor } from '../helpers/isolation.ts';
import { DockerRuntime } from '../../workers/runtime/docker.ts';
import type { TaskSpec } from '../../workers/runtime/types.ts';
import { appDescription } from '../helpers/protocol.ts';
import { agentFixture } from '../helpers/agent-fixture.ts';
import { REDIS_URL, TEST_IMAGE } from '../helpers/env.ts';
import { clusterContainerCount, clusterKeyCount, execIdOf, recordContainerEvents, tracedClient } from '../helpers/acceptance.ts';

test('point 1: an app registered through the AppClient on 2 agents runs as containers with the requested NanoCpus, Memory, PidsLimit, CapDrop ALL, no-new-privileges and labels', { timeout: 60_000 }, async () => {
  const f = await agentFixture('acc-p1', { conf: { 'spark.flint.worker.pidsLimit': '48' } });
  const traced = tracedClient(
    f.cluster,
    appDescription({
      name: 'acceptance-limits',
      image: TEST_IMAGE,
      command: ['sh', '-c', 'sleep 60'],
      maxCores: 2,
      coresPerExecutor: 1,
      memoryPerExecutorMB: 48,
      labels: { team: 'acceptance', purpose: 'limits' },
    }),
  );
  try {
    const a = await f.startAgent({ workDir: await f.workDir(), cores: 1, memoryMB: 256 });
    const b = await f.startAgent({ workDir: await f.workDir(), cores: 1, memoryMB: 256 });
    const appId = await traced.client.start();
    assert.ok(appId, `registered (dead: ${traced.client.deadReason})`);
    assert.deepEqual(traced.listener.connectedIds, [appId]);

    await waitFor(() => traced.listener.added.length === 2, { timeoutMs: 20_000, message: 'two executorAdded calls' });
    assert.deepEqual(traced.listener.added.map((call) => call.workerId).sort(), [a.workerId, b.workerId].sort(), 'one executor on each 1-core agent');
    for (const call of traced.listener.added) {
      const agent = call.workerId === a.workerId ? a : b;
      assert.deepEqual([call.cores, call.memoryMB, call.hostPort], [1, 48, `127.0.0.1:${agent.view().port}`]);
    }
    const running = await waitFor(
      async () => {
        const list = await f.containers([`${LABEL.app}=${appId}`]);
        return list.length === 2 && list.every((c) => c.State === 'running') ? list : undefined;
      },
      { timeoutMs: 20_000, message: 'two executor containers running' },
    );
    for (const info of running) {
      const inspect = await docker().getContainer(info.Id).inspect();
      const execId = Number(inspect.Config.Labels[LABEL.executor]);
      const placedOn = traced.listener.added.find((call) => execIdOf(call.fullId) === execId)!.workerId;
      assert.equal(inspect.HostConfig.NanoCpus, 1e9, 'one requested core');
      assert.equal(inspect.HostConfig.Memory, 48 * 1024 * 1024, 'the requested memory');
      assert.equal(inspect.HostConfig.MemorySwap, 48 * 1024 * 1024, 'no swap beyond the limit');
      assert.equal(inspect.HostConfig.PidsLimit, 48, 'spark.flint.worker.pidsLimit');
      assert.deepEqual(inspect.HostConfig.CapDrop, ['ALL']);
      assert.ok(inspect.HostConfig.SecurityOpt?.includes('no-new-privileges'), `SecurityOpt: ${JSON.stringify(inspect.HostConfig.SecurityOpt)}`);
      assert.equal(inspect.HostConfig.Privileged, false);
      assert.equal(inspect.Config.Image, TEST_IMAGE);
      const labels = inspect.Config.Labels;
      assert.equal(labels[LABEL.cluster], f.cluster);
      assert.equal(labels[LABEL.worker], placedOn, 'the worker label names the agent the master placed it on');
      assert.equal(labels[LABEL.kind], 'executor');
      assert.equal(labels[LABEL.app], appId);
      assert.equal(labels[LABEL.task], `executor:${appId}/${execId}`);
      assert.equal(labels.team, 'acceptance', "the application's own labels");
      assert.equal(labels.purpose, 'limits');
    }
    // the master heard RUNNING from both agents, and the client saw it
    await waitFor(() => traced.events.filter((e) => e.type === 'ExecutorUpdated' && e.body.state === 'RUNNING').length === 2, {
      timeoutMs: 15_000,
      message: 'ExecutorUpdated RUNNING for both executors at the client',
    });
    assert.equal(traced.listener.removed.length, 0);
    await traced.client.stop();
    await waitFor(async () => (await f.containers([`${LABEL.app}=${appId}`])).length === 0, { timeoutMs: 20_000, message: 'containers removed after stop' });
    assert.deepEqual(f.fatal, []);
  } finally {
    await traced.client.stop();
    await f.cleanup();
  }
});

test('point 2: exit 3 reaches the client as ExecutorUpdated with exit status 3, a memory overrun as OOM-killed, and exit 0 is EXITED without counting as a failure', { timeout: 60_000 }, async () => {
  // Spark resets an app's retry count when one of its executors is RUNNING, and every executor of a
  // real agent is RUNNING before it exits: with maxExecutorRetries = 1 a single abnormal exit removes
  // the app, so an exit 0 that counted as a failure would remove the clean app at its first exit
  const f = await agentFixture('acc-p2', { conf: { 'spark.deploy.maxExecutorRetries': '1' } });
  const app = (name: string, command: string, memoryPerExecutorMB: number) =>
    tracedClient(f.cluster, appDescription({ name, image: TEST_IMAGE, command: ['sh', '-c', command], maxCores: 1, coresPerExecutor: 1, memoryPerExecutorMB }));
  const failing = app('exit-3', 'sleep 0.3; exit 3', 32);
  // the allocation starts after a moment: an OOM within the first milliseconds of a container comes
  // before containerd watches its cgroup, and Docker then never learns of it (see the runtime test below)
  const oom = app('oom', 'sleep 0.5; exec tail < /dev/zero', 16);
  const clean = app('exit-0', 'sleep 0.3; exit 0', 32);
  const clients = [failing, oom, clean];
  try {
    await f.startAgent({ workDir: await f.workDir(), cores: 2, memoryMB: 512 });
    await f.startAgent({ workDir: await f.workDir(), cores: 2, memoryMB: 512 });
    const [failingId, oomId, cleanId] = await Promise.all(clients.map((c) => c.client.start()));
    assert.ok(failingId && oomId && cleanId, 'all three registered');

    // exit 3: ExecutorUpdated EXITED with exit status 3 at the client, and it counts as a failure
    await waitFor(() => failing.listener.deadReasons.length === 1, { timeoutMs: 30_000, message: 'the exit-3 app removed after maxExecutorRetries failures' });
    assert.deepEqual(failing.listener.deadReasons, ['Master removed our application: FAILED']);
    const failed = failing.events.filter((e) => e.type === 'ExecutorUpdated' && e.body.state !== 'RUNNING');
    assert.equal(failed.length, 1, JSON.stringify(failing.events));
    const [exit3] = failed;
    assert.ok(exit3?.type === 'ExecutorUpdated');
    assert.equal(exit3.body.state, 'EXITED');
    assert.equal(exit3.body.exitStatus, 3);
    assert.equal(exit3.body.message, 'Command exited with code 3');
    assert.equal(exit3.body.oomKilled, undefined);
    assert.deepEqual(failing.listener.removed.map((call) => [call.message, call.exitStatus, call.oomKilled]), [['Command exited with code 3', 3, false]]);
    assert.equal(await f.redis.hget(f.keys.app(failingId), 'state'), 'FAILED');

    // a memory overrun: the kernel's OOM killer, reported as such (never guessed from 137)
    const oomKill = await waitFor(() => oom.listener.removed[0], { timeoutMs: 30_000, message: 'the OOM-killed executor reaches the client' });
    assert.equal(oomKill.oomKilled, true, JSON.stringify(oomKill));
    assert.equal(oomKill.exitStatus, 137);
    assert.match(oomKill.message, /OOMKilled: the executor exceeded its memory limit/);
    const oomUpdate = oom.updates(execIdOf(oomKill.fullId)).at(-1)!;
    assert.equal(oomUpdate.body.state, 'FAILED');
    assert.equal(oomUpdate.body.oomKilled, true);

    // exit 0: EXITED, and more clean exits than maxExecutorRetries leave the app running with retryCount 0
    await waitFor(() => clean.listener.removed.length >= 4, { timeoutMs: 30_000, message: 'four clean exits (more than maxExecutorRetries)' });
    for (const call of clean.listener.removed) assert.deepEqual([call.message, call.exitStatus, call.oomKilled], ['Command exited with code 0', 0, false]);
    assert.ok(clean.events.filter((e) => e.type === 'ExecutorUpdated' && e.body.state !== 'RUNNING').every((e) => e.type === 'ExecutorUpdated' && e.body.state === 'EXITED'));
    assert.deepEqual(clean.listener.deadReasons, [], 'the app is not removed');
    assert.equal(await f.redis.hget(f.keys.app(cleanId), 'state'), 'RUNNING');
    assert.equal(await f.redis.hget(f.keys.app(cleanId), 'retryCount'), '0');
    assert.ok(clean.client.isRegistered);
    assert.deepEqual(f.fatal, []);
  } finally {
    await Promise.allSettled(clients.map((c) => c.client.stop()));
    await f.cleanup();
  }
});

test('point 3: unregistering the app stops its containers (KILLED) within the grace period, and no container or key of the test is left behind', { timeout: 60_000 }, async () => {
  const graceMs = 3000;
  const f = await agentFixture('acc-p3', { conf: { 'spark.flint.worker.stopGracePeriod': `${graceMs}ms` } });
  // executor 0 leaves on SIGTERM; executor 1 ignores it (the init passes SIGTERM on; its shell traps it away) and is SIGKILLed at the end of the grace period
  const traced = tracedClient(
    f.cluster,
    appDescription({
      name: 'acceptance-unregister',
      image: TEST_IMAGE,
      command: ['sh', '-c', 'if [ "$FLINT_EXECUTOR_ID" = 0 ]; then trap "exit 143" TERM; else trap "" TERM; fi; while :; do sleep 0.1; done'],
      maxCores: 2,
      coresPerExecutor: 1,
      memoryPerExecutorMB: 32,
    }),
  );
  const events = await recordContainerEvents(f.cluster);
  let cleaned = false;
  try {
    const a = await f.startAgent({ workDir: await f.workDir(), cores: 1, memoryMB: 256 });
    const b = await f.startAgent({ workDir: await f.workDir(), cores: 1, memoryMB: 256 });
    const appId = (await traced.client.start())!;
    assert.ok(appId);
    const running = await waitFor(
      async () => {
        const list = await f.containers([`${LABEL.app}=${appId}`]);
        return list.length === 2 && list.every((c) => c.State === 'running') ? list : undefined;
      },
      { timeoutMs: 20_000, message: 'two executor containers running' },
    );
    await waitFor(() => traced.events.filter((e) => e.type === 'ExecutorUpdated' && e.body.state === 'RUNNING').length === 2, { timeoutMs: 15_000, message: 'both RUNNING' });

    const started = Date.now();
    await traced.client.stop(); // UnregisterApplication, answered
    assert.deepEqual(traced.listener.deadReasons, ['Application has been stopped.']);
    // the engine's own record of when each container died
    const died = await waitFor(
      () => {
        const byExec = new Map<number, number>();
        for (const event of events.events) {
          const info = running.find((c) => c.Id === event.containerId);
          if (event.action === 'die' && info) byExec.set(Number(info.Labels[LABEL.executor]), event.timeMs);
        }
        return byExec.size === 2 ? byExec : undefined;
      },
      { timeoutMs: graceMs + 10_000, message: 'both containers died' },
    );
    const politeAfter = died.get(0)! - started;
    const stubbornAfterPolite = died.get(1)! - died.get(0)!;
    assert.ok(politeAfter < graceMs, `the SIGTERM-polite executor stopped ${politeAfter} ms after the unregistration (grace ${graceMs} ms)`);
    // both agents got their KillExecutor from the same commit, so the polite exit marks the SIGTERM
    assert.ok(
      stubbornAfterPolite > graceMs - 1000 && stubbornAfterPolite < graceMs + 1000,
      `the stubborn executor was SIGKILLed ${stubbornAfterPolite} ms after the SIGTERM (grace ${graceMs} ms)`,
    );

    // the agents report KILLED with the exit codes and remove the containers
    const finished = await waitFor(
      () => {
        const all = [...a.view().finishedExecutors, ...b.view().finishedExecutors].filter((e) => e.appId === appId);
        return all.length === 2 ? all.sort((x, y) => x.execId - y.execId) : undefined;
      },
      { timeoutMs: 10_000, message: 'both executors finished on the agents' },
    );
    assert.deepEqual(finished.map((e) => [e.execId, e.state, e.exitStatus]), [[0, 'KILLED', 143], [1, 'KILLED', 137]]);
    await waitFor(async () => (await f.containers([`${LABEL.app}=${appId}`])).length === 0, { timeoutMs: 10_000, message: 'the app\'s containers removed by the agents' });
    assert.equal(await f.redis.hget(f.keys.app(appId), 'state'), 'FINISHED');
    const executors = Object.values(await f.redis.hgetall(f.keys.appExecutors(appId))).map((raw) => JSON.parse(raw) as { state: string });
    assert.deepEqual(executors.map((e) => e.state), ['KILLED', 'KILLED']);
    for (const worker of [a, b]) {
      assert.deepEqual(await f.redis.hmget(f.keys.worker(worker.workerId), 'coresUsed', 'memoryUsed'), ['0', '0'], 'capacity given back');
    }
    assert.equal(await clusterContainerCount(f.cluster), 0, 'no container left by the system itself');
    assert.deepEqual(f.fatal, []);

    cleaned = true;
    await f.cleanup();
    assert.equal(await clusterContainerCount(f.cluster), 0, 'no container of the test left');
    const probe = new Redis(REDIS_URL);
    try {
      assert.equal(await clusterKeyCount(probe, f.cluster), 0, 'no key of the test left');
    } finally {
      probe.disconnect();
    }
  } finally {
    events.close();
    await traced.client.stop();
    if (!cleaned) await f.cleanup();
  }
});

test('point 2 (runtime): every container Docker sends an `oom` event for is reported OOM-killed, also when the event comes after its exit', { timeout: 60_000 }, async () => {
  const cluster = uniqueCluster('acc-p2-oom');
  const workerId = 'worker-oom';
  const root = await makeTempDir('acc-p2-oom');
  const events = await recordContainerEvents(cluster, ['oom']);
  const runtime = new DockerRuntime({ stateDir: join(root.path, '.flint-docker-runtime'), cluster, workerId, relistIntervalMs: 300 });
  try {
    // instant overruns, all at once: under this load Docker 20.10 sometimes sends `oom` after `die`
    // (and leaves State.OOMKilled false), and sometimes none at all (OOM before containerd watched)
    const specs = Array.from({ length: 8 }, (_, execId): TaskSpec => ({
      kind: 'executor', taskId: `executor:app-oom/${execId}`, workerId, cluster, appId: 'app-oom', execId, image: TEST_IMAGE,
      command: ['sh', '-c', 'exec tail < /dev/zero'], env: {}, cores: 1, memoryMB: 16, workDir: join(root.path, String(execId)), network: 'none', pidsLimit: 16,
    }));
    const started = await Promise.all(specs.map((spec) => runtime.start(spec)));
    const exits = await Promise.all(specs.map((spec) => runtime.wait(spec.taskId)));
    // Docker's own stream is the witness, read after every exit was reported (a late `oom` is in it by then)
    await new Promise((resolve) => setTimeout(resolve, 500));
    const withOomEvent = new Set(events.events.filter((e) => e.action === 'oom').map((e) => e.containerId));
    assert.ok(withOomEvent.size > 0, 'Docker reported at least one OOM');
    for (const [index, exit] of exits.entries()) {
      assert.equal(exit.exitCode, 137);
      if (withOomEvent.has(started[index]!.handle)) assert.equal(exit.oomKilled, true, `executor ${index}: Docker sent \`oom\` but the exit says ${JSON.stringify(exit)}`);
    }
  } finally {
    events.close();
    await runtime.close();
    await removeContainersByLabel(LABEL.cluster, cluster);
    await root.cleanup();
  }
});
