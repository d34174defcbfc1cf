/**
 * The agent's command handling, driven by writing entries straight into its inbox
 * stream (as the master's commit scripts write them) against the real Redis and
 * Docker, with a real master in-process only to answer registrations: invalid and
 * wrong-epoch entries, duplicate launches, launch errors, kills, OOM, pending
 * entries after a crash, heartbeat-driven re-registration, and drivers (exit 0,
 * failure, supervise with relaunch back-off, kill).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeEntry, INBOX_GROUP } from '../../protocol/streams.ts';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import type { AgentHandle } from '../../workers/agent/agent.ts';
import { docker, recordContainerEvents, waitFor } from '../helpers/isolation.ts';
import { agentFixture, type AgentFixture } from '../helpers/agent-fixture.ts';
import { REDIS_URL, TEST_IMAGE } from '../helpers/env.ts';
import { Queue } from 'bullmq';
import { bullConnection } from '../../lib/redis.ts';

/**
 * DIRECT: these tests put commands straight into an inbox, for apps and drivers the master
 * never placed; the periodic reconciliation would rightly have the master kill them, so it is
 * off here (it has tests of its own in agent-reconcile.test.ts).
 */
const DIRECT = { 'spark.flint.worker.reconcileInterval': '0' };

async function push(f: AgentFixture, workerId: string, type: string, body: unknown): Promise<string> {
  return (await f.redis.xadd(f.keys.workerInbox(workerId), '*', ...encodeEntry(type, body)))!;
}

function launchExecutor(appId: string, execId: number, epoch: number, command: string[], extra: Record<string, unknown> = {}) {
  return {
    masterUrl: 'flint://test',
    appId,
    execId,
    cores: 1,
    memoryMB: 32,
    epoch,
    appDesc: { name: 'direct', image: TEST_IMAGE, command },
    ...extra,
  };
}

function launchDriver(driverId: string, epoch: number, command: string[], supervise = false) {
  return {
    driverId,
    epoch,
    driverDesc: { name: driverId, image: TEST_IMAGE, command, cores: 1, memoryMB: 32, supervise, appResource: 'docker://x' },
  };
}

async function pendingCount(f: AgentFixture, workerId: string): Promise<number> {
  const summary = (await f.redis.xpending(f.keys.workerInbox(workerId), INBOX_GROUP)) as [number, ...unknown[]];
  return Number(summary[0]);
}

function finishedExecutor(agent: AgentHandle, appId: string, execId: number) {
  return agent.view().finishedExecutors.find((e) => e.appId === appId && e.execId === execId);
}

function finishedDriver(agent: AgentHandle, driverId: string) {
  return agent.view().finishedDrivers.find((d) => d.driverId === driverId);
}

test('executors: bad and stale entries are dropped and acked; launches are idempotent; kill, exit, OOM and launch errors end as Spark says', { timeout: 120_000 }, async () => {
  const f = await agentFixture('agent-inbox', { conf: DIRECT });
  try {
    const agent = await f.startAgent({ workDir: await f.workDir(), cores: 4, memoryMB: 1024 });
    const epoch = agent.epoch()!;
    const id = agent.workerId;
    const appId = `app-direct-${randomUUID().slice(0, 8)}`;

    // invalid entries and a command for another epoch: logged, acked, nothing started
    await f.redis.xadd(f.keys.workerInbox(id), '*', 'type', 'LaunchExecutor', 'body', '{not json');
    await f.redis.xadd(f.keys.workerInbox(id), '*', 'type', 'Bogus', 'body', '{}');
    await push(f, id, 'LaunchExecutor', { ...launchExecutor(appId, 99, epoch, ['sleep', '30']), cores: -1 });
    await push(f, id, 'LaunchExecutor', launchExecutor(appId, 98, epoch + 1000, ['sleep', '30']));

    // a long runner launched twice, a kill target, an exit code, an OOM, a missing image
    await push(f, id, 'LaunchExecutor', launchExecutor(appId, 0, epoch, ['sleep', '300']));
    await push(f, id, 'LaunchExecutor', launchExecutor(appId, 0, epoch, ['sleep', '300']));
    await push(f, id, 'LaunchExecutor', launchExecutor(appId, 1, epoch, ['sleep', '300']));
    await push(f, id, 'LaunchExecutor', launchExecutor(appId, 2, epoch, ['sh', '-c', 'echo {{APP_ID}}/{{EXECUTOR_ID}} cores={{CORES}}; exit 5']));
    await push(f, id, 'LaunchExecutor', { ...launchExecutor(appId, 3, epoch, ['sh', '-c', 'a=$(head -c 60000000 /dev/zero | tr "\\0" x); echo survived']), memoryMB: 16 });
    await push(f, id, 'LaunchExecutor', { ...launchExecutor(appId, 4, epoch, ['true']), appDesc: { name: 'x', image: `flint-no-such-image-${randomUUID().slice(0, 6)}:1`, command: [] } });

    const exited = await waitFor(() => finishedExecutor(agent, appId, 2), { timeoutMs: 30_000, message: 'executor 2 exited' });
    assert.equal(exited.state, 'EXITED');
    assert.equal(exited.exitStatus, 5);
    assert.equal(exited.message, 'Command exited with code 5');
    assert.match(await readFile(join(exited.workDir, 'stdout'), 'utf8'), new RegExp(`${appId}/2 cores=1`));

    const oom = await waitFor(() => finishedExecutor(agent, appId, 3), { timeoutMs: 30_000, message: 'executor 3 OOM-killed' });
    assert.equal(oom.state, 'FAILED');
    assert.equal(oom.exitStatus, 137);
    assert.match(oom.message!, /OOMKilled/);

    const missing = await waitFor(() => finishedExecutor(agent, appId, 4), { timeoutMs: 30_000, message: 'executor 4 failed to launch' });
    assert.equal(missing.state, 'FAILED');
    assert.match(missing.message!, /ImageNotFoundError/);

    await waitFor(() => agent.view().executors.filter((e) => e.state === 'RUNNING').length === 2, { timeoutMs: 30_000, message: 'executors 0 and 1 running' });
    const zero = await f.containers([`${LABEL.executor}=0`]);
    assert.equal(zero.length, 1, 'a repeated LaunchExecutor adopts the running container');
    assert.equal((await f.containers([`${LABEL.executor}=98`])).length + (await f.containers([`${LABEL.executor}=99`])).length, 0, 'refused entries started nothing');

    // KillExecutor: SIGTERM, grace, KILLED with the exit code; the container is removed
    await push(f, id, 'KillExecutor', { masterUrl: 'flint://test', appId, execId: 1, epoch });
    const killed = await waitFor(() => finishedExecutor(agent, appId, 1), { timeoutMs: 30_000, message: 'executor 1 killed' });
    assert.equal(killed.state, 'KILLED');
    assert.equal(killed.message, `Runner thread for executor ${appId}/1 interrupted`);
    assert.ok(killed.exitStatus === 143 || killed.exitStatus === 137, `exit status ${killed.exitStatus}`);
    await waitFor(async () => (await f.containers([`${LABEL.executor}=1`])).length === 0, { message: 'killed container removed' });

    // a launch of an executor that already finished here is refused (no second container)
    await push(f, id, 'LaunchExecutor', launchExecutor(appId, 2, epoch, ['sleep', '300']));
    await waitFor(async () => (await pendingCount(f, id)) === 0, { message: 'every entry acked' });
    assert.equal((await f.containers([`${LABEL.executor}=2`])).length, 0);
    assert.deepEqual(f.fatal, []);
  } finally {
    await f.cleanup();
  }
});

test('pending entries of a crashed agent are handled after restart; a heartbeat answered "unknown" re-registers under a new epoch and old commands are refused', { timeout: 120_000 }, async () => {
  // heartbeats every timeout/4 = 1 s
  const f = await agentFixture('agent-pending', { conf: { ...DIRECT, 'spark.worker.timeout': '4s' } });
  try {
    const workDir = await f.workDir();
    let agent = await f.startAgent({ workDir, cores: 2, memoryMB: 512 });
    const id = agent.workerId;
    const epoch = agent.epoch()!;
    await agent.stop({ abrupt: true });
    const appId = `app-pending-${randomUUID().slice(0, 8)}`;
    await push(f, id, 'LaunchExecutor', launchExecutor(appId, 0, epoch, ['sleep', '300']));
    // the crashed agent had read the entry (it is pending for its consumer) but never acked it
    await f.redis.xreadgroup('GROUP', INBOX_GROUP, id, 'COUNT', 10, 'STREAMS', f.keys.workerInbox(id), '>');
    assert.equal(await pendingCount(f, id), 1);

    agent = await f.startAgent({ workDir, cores: 2, memoryMB: 512 });
    assert.equal(agent.epoch(), epoch);
    await waitFor(() => agent.view().executors.some((e) => e.appId === appId && e.state === 'RUNNING'), { timeoutMs: 30_000, message: 'pending launch handled' });
    await waitFor(async () => (await pendingCount(f, id)) === 0, { message: 'pending entry acked' });

    // the master forgets the worker: the next heartbeat answers 'unknown' and the agent registers again
    await f.redis.del(f.keys.worker(id));
    await waitFor(() => (agent.epoch() !== epoch ? agent.epoch() : undefined), { timeoutMs: 30_000, message: 're-registered under a new epoch' });
    const newEpoch = agent.epoch()!;
    assert.ok(newEpoch > epoch);
    assert.equal(await f.redis.hget(f.keys.worker(id), 'state'), 'ALIVE');
    // a command for the old incarnation is refused; one for the new epoch runs
    await push(f, id, 'LaunchExecutor', launchExecutor(appId, 7, epoch, ['sleep', '300']));
    await push(f, id, 'LaunchExecutor', launchExecutor(appId, 8, newEpoch, ['sleep', '300']));
    await waitFor(() => agent.view().executors.some((e) => e.execId === 8 && e.state === 'RUNNING'), { timeoutMs: 30_000, message: 'new-epoch launch handled' });
    await waitFor(async () => (await pendingCount(f, id)) === 0, { message: 'entries acked' });
    assert.equal((await f.containers([`${LABEL.executor}=7`])).length, 0, 'old-epoch command refused');
    assert.deepEqual(f.fatal, []);
  } finally {
    await f.cleanup();
  }
});

test('drivers: exit 0 FINISHED, failure FAILED, supervised failures relaunched with back-off in new containers, KillDriver KILLED', { timeout: 120_000 }, async () => {
  const f = await agentFixture('agent-drivers', { conf: DIRECT });
  const created = await recordContainerEvents(f.cluster, ['create']);
  try {
    const agent = await f.startAgent({ workDir: await f.workDir(), cores: 4, memoryMB: 1024 });
    const id = agent.workerId;
    const epoch = agent.epoch()!;
    const tag = randomUUID().slice(0, 8);
    await push(f, id, 'LaunchDriver', launchDriver(`driver-ok-${tag}`, epoch, ['sh', '-c', 'echo {{USER_JAR}} {{WORKER_URL}}; exit 0']));
    await push(f, id, 'LaunchDriver', launchDriver(`driver-bad-${tag}`, epoch, ['sh', '-c', 'exit 4']));
    await push(f, id, 'LaunchDriver', launchDriver(`driver-sup-${tag}`, epoch, ['sh', '-c', 'exit 9'], true));

    const ok = await waitFor(() => finishedDriver(agent, `driver-ok-${tag}`), { timeoutMs: 30_000, message: 'driver ok finished' });
    assert.equal(ok.state, 'FINISHED');
    assert.equal(ok.exitStatus, 0);
    assert.equal((await readFile(join(ok.workDir, 'stdout'), 'utf8')).trim(), `docker://x flint://${f.cluster}/worker/${id}`);
    const bad = await waitFor(() => finishedDriver(agent, `driver-bad-${tag}`), { timeoutMs: 30_000, message: 'driver bad failed' });
    assert.equal(bad.state, 'FAILED');
    assert.equal(bad.exitStatus, 4);

    // the supervised driver keeps failing: relaunched after 1 s, then 2 s, each time in a new container
    // (counted from Docker's create events: a container that lives a few ms can slip between listings)
    const started = Date.now();
    await waitFor(() => (agent.view().drivers.find((d) => d.driverId === `driver-sup-${tag}`)?.relaunches ?? 0) >= 2, { timeoutMs: 30_000, intervalMs: 20, message: 'two relaunches' });
    assert.ok(Date.now() - started >= 2500, 'back-off of 1 s then 2 s before the second relaunch');
    const supervised = () => new Set(created.events.filter((e) => e.attributes[LABEL.driver] === `driver-sup-${tag}`).map((e) => e.containerId));
    await waitFor(() => supervised().size >= 3, { timeoutMs: 10_000, message: `the first run and two relaunches in 3 containers (saw ${supervised().size})` });
    assert.equal(agent.view().drivers.find((d) => d.driverId === `driver-sup-${tag}`)?.state, 'RUNNING');
    assert.ok((await f.containers([`${LABEL.driver}=driver-sup-${tag}`])).length <= 1, 'the exited container is removed before a relaunch');

    // killing it during the back-off ends it as KILLED and nothing is relaunched
    await push(f, id, 'KillDriver', { driverId: `driver-sup-${tag}`, epoch });
    const sup = await waitFor(() => finishedDriver(agent, `driver-sup-${tag}`), { timeoutMs: 30_000, message: 'supervised driver killed' });
    assert.equal(sup.state, 'KILLED');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal((await f.containers([`${LABEL.driver}=driver-sup-${tag}`])).filter((c) => c.State === 'running').length, 0);

    // a running driver killed: KILLED with its exit code
    await push(f, id, 'LaunchDriver', launchDriver(`driver-long-${tag}`, epoch, ['sleep', '300']));
    await waitFor(async () => (await f.containers([`${LABEL.driver}=driver-long-${tag}`])).some((c) => c.State === 'running'), { timeoutMs: 30_000, message: 'long driver running' });
    await push(f, id, 'KillDriver', { driverId: `driver-long-${tag}`, epoch });
    const long = await waitFor(() => finishedDriver(agent, `driver-long-${tag}`), { timeoutMs: 30_000, message: 'long driver killed' });
    assert.equal(long.state, 'KILLED');
    assert.ok(long.exitStatus !== undefined && long.exitStatus !== 0);
    await waitFor(async () => (await f.containers([`${LABEL.driver}=driver-long-${tag}`])).length === 0, { message: 'killed driver container removed' });
    assert.equal((await docker().listContainers({ filters: { label: [`${LABEL.cluster}=${f.cluster}`] } })).length, 0, 'nothing left running');
    assert.deepEqual(f.fatal, []);
  } finally {
    created.close();
    await f.cleanup();
  }
});

test('a graceful stop leaves tasks running for re-adoption; with killOnExit it kills them and reports KILLED first', { timeout: 120_000 }, async () => {
  const f = await agentFixture('agent-stop', { conf: DIRECT });
  try {
    const workDir = await f.workDir();
    let agent = await f.startAgent({ workDir, cores: 2, memoryMB: 512 });
    const id = agent.workerId;
    const epoch = agent.epoch()!;
    const appId = `app-stop-${randomUUID().slice(0, 8)}`;
    await push(f, id, 'LaunchExecutor', launchExecutor(appId, 0, epoch, ['sleep', '300']));
    await waitFor(() => agent.view().executors.some((e) => e.state === 'RUNNING'), { timeoutMs: 30_000, message: 'executor running' });
    const [container] = await f.containers([`${LABEL.app}=${appId}`]);
    await agent.stop();
    assert.equal((await docker().getContainer(container!.Id).inspect()).State.Running, true, 'a plain stop leaves the executor running');

    agent = await f.startAgent({ workDir, cores: 2, memoryMB: 512, killOnExit: true });
    assert.deepEqual(agent.view().executors.map((e) => [e.appId, e.execId, e.state]), [[appId, 0, 'RUNNING']], 're-adopted after a graceful stop');
    await agent.stop();
    const finished = agent.view().finishedExecutors;
    assert.deepEqual(finished.map((e) => [e.execId, e.state]), [[0, 'KILLED']]);
    await assert.rejects(docker().getContainer(container!.Id).inspect(), { statusCode: 404 });
    // the KILLED report went out before the agent stopped (the master handled it as a queue job)
    const queue = new Queue(f.keys.masterQueue, { connection: bullConnection(REDIS_URL), prefix: f.keys.bullPrefix });
    try {
      const jobs = await queue.getJobs(['completed', 'waiting', 'active']);
      const reports = jobs.filter((j) => j.name === 'ExecutorStateChanged' && j.data.appId === appId).map((j) => j.data.state);
      assert.ok(reports.includes('KILLED'), `reports: ${JSON.stringify(reports)}`);
    } finally {
      await queue.close();
    }
    assert.deepEqual(f.fatal, []);
  } finally {
    await f.cleanup();
  }
});
