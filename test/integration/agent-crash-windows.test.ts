/**
 * Crash windows and one live agent per worker (issue 10, acceptance 2 and 6), with real
 * `flint worker` processes, SIGKILLed for real, against the real Docker engine and Redis:
 *   - an agent SIGKILLed between a container's create and its start (held there by the
 *     test-only pause) leaves, after its restart, no never-started container, and master
 *     and agent agree on the executor (it runs, RUNNING on both sides);
 *   - a second `flint worker` on the same work dir exits non-zero with a clear message
 *     while the first runs; once the first is SIGKILLed, a new one starts and re-adopts;
 *   - another agent claiming a live worker id (same --id, another work dir) is refused with
 *     Spark's "Duplicate worker ID", while the first agent restarted on its work dir is
 *     taken back under its epoch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentFixture } from '../helpers/agent-fixture.ts';
import { FlintWorkers, tracedClient } from '../helpers/acceptance.ts';
import { appDescription } from '../helpers/protocol.ts';
import { docker, waitFor } from '../helpers/isolation.ts';
import { runFlint } from '../helpers/flint-process.ts';
import { REDIS_URL, TEST_IMAGE } from '../helpers/env.ts';
import { LABEL } from '../../workers/runtime/task-identity.ts';

const FAST = { 'spark.flint.worker.registrationInterval': '300ms', 'spark.flint.worker.relistInterval': '300ms', 'spark.flint.worker.reconcileInterval': '300ms' };

test('an agent SIGKILLed between create and start leaves no never-started container after its restart, and master and agent agree', { timeout: 120_000 }, async () => {
  const f = await agentFixture('crash-create');
  const workers = new FlintWorkers();
  const traced = tracedClient(f.cluster, appDescription({ name: 'crash-window', image: TEST_IMAGE, command: ['sleep', '300'], coresPerExecutor: 1, maxCores: 1, memoryPerExecutorMB: 32 }));
  try {
    const workDir = await f.workDir();
    const paused = await workers.start({ cluster: f.cluster, workDir, cores: 1, memory: '512m', conf: FAST, env: { NODE_ENV: 'test', FLINT_TEST_PAUSE_AFTER_CREATE_MS: '60000' } });
    const appId = (await traced.client.start())!;
    const [created] = await waitFor(
      async () => {
        const list = await docker().listContainers({ all: true, filters: { label: [`${LABEL.cluster}=${f.cluster}`, `${LABEL.app}=${appId}`] } });
        return list.length === 1 && list[0]!.State === 'created' ? list : undefined;
      },
      { timeoutMs: 30_000, message: "the executor's container created and held before its start" },
    );
    await workers.sigkill(paused);
    assert.equal((await docker().getContainer(created!.Id).inspect()).State.Status, 'created', 'the crash left a never-started container');

    const restarted = await workers.start({ cluster: f.cluster, workDir, cores: 1, memory: '512m', conf: FAST });
    assert.equal(restarted.workerId, paused.workerId, 'the same worker id, from the work dir');
    // the launch was never acknowledged, so it is still wanted: the restarted agent starts it afresh
    const running = await waitFor(
      async () => {
        const list = await docker().listContainers({ all: true, filters: { label: [`${LABEL.cluster}=${f.cluster}`, `${LABEL.app}=${appId}`] } });
        return list.length === 1 && list[0]!.State === 'running' ? list[0] : undefined;
      },
      { timeoutMs: 30_000, message: 'the executor running after the restart' },
    );
    assert.notEqual(running!.Id, created!.Id, 'the never-started container was removed, not started');
    await waitFor(async () => JSON.parse((await f.redis.hget(f.keys.appExecutors(appId), '0')) ?? '{}').state === 'RUNNING', { timeoutMs: 15_000, message: 'RUNNING on the master' });
    assert.equal(await f.redis.hlen(f.keys.appExecutors(appId)), 1, 'one executor: nothing was launched twice or lost');
    assert.deepEqual(await docker().listContainers({ all: true, filters: { label: [`${LABEL.cluster}=${f.cluster}`], status: ['created'] } }), []);
  } finally {
    await traced.client.stop();
    await workers.cleanup();
    await f.cleanup();
  }
});

test('an agent SIGKILLed while relaunching a supervised driver (old run removed, new one created, not started) starts it again after its restart', { timeout: 120_000 }, async () => {
  const f = await agentFixture('crash-relaunch');
  const workers = new FlintWorkers();
  try {
    const workDir = await f.workDir();
    // the first run fails after a second; the runs after it sleep (the marker file stays in the driver's work dir)
    const command = ['sh', '-c', 'if [ -f ran ]; then sleep 300; else touch ran; sleep 1; exit 1; fi'];
    const paused = await workers.start({
      cluster: f.cluster, workDir, cores: 1, memory: '512m', conf: FAST,
      env: { NODE_ENV: 'test', FLINT_TEST_PAUSE_AFTER_CREATE_MS: '60000', FLINT_TEST_PAUSE_SKIP_CREATES: '1' },
    });
    const reply = (await f.masterClient.ask('RequestSubmitDriver', {
      driverDescription: { name: 'supervised', appResource: `docker://${TEST_IMAGE}`, mainClass: '', image: TEST_IMAGE, command, env: {}, memoryMB: 32, cores: 1, supervise: true, resourceReqs: [], sparkProperties: {} },
    })) as { driverId: string };
    const driverId = reply.driverId;
    const ofDriver = { all: true, filters: { label: [`${LABEL.cluster}=${f.cluster}`, `${LABEL.driver}=${driverId}`] } };
    // the first run exits 1; the relaunch removed it and created the second run, held before its start
    await waitFor(async () => {
      const list = await docker().listContainers(ofDriver);
      return list.length === 1 && list[0]!.State === 'created' ? list : undefined;
    }, { timeoutMs: 30_000, message: 'the relaunch created and held' });
    await workers.sigkill(paused);

    await workers.start({ cluster: f.cluster, workDir, cores: 1, memory: '512m', conf: FAST });
    const running = await waitFor(async () => {
      const list = await docker().listContainers(ofDriver);
      return list.length === 1 && list[0]!.State === 'running' ? list[0] : undefined;
    }, { timeoutMs: 30_000, message: 'the supervised driver running again after the restart' });
    assert.equal(running!.Labels[LABEL.worker], paused.workerId);
    assert.deepEqual(await docker().listContainers({ all: true, filters: { label: [`${LABEL.cluster}=${f.cluster}`], status: ['created'] } }), []);
    // both sides agree: the same driver, RUNNING on the same worker (never relaunched elsewhere under a new id)
    const d = await f.redis.hmget(f.keys.driver(driverId), 'state', 'workerId', 'relaunchedAs');
    assert.deepEqual(d, ['RUNNING', paused.workerId, null]);
  } finally {
    await workers.cleanup();
    await f.cleanup();
  }
});

test('one live agent per work dir: a second flint worker exits non-zero saying why; after the first is SIGKILLed a new one starts and re-adopts', { timeout: 120_000 }, async () => {
  const f = await agentFixture('lock');
  const workers = new FlintWorkers();
  const traced = tracedClient(f.cluster, appDescription({ name: 'locked', image: TEST_IMAGE, command: ['sleep', '300'], coresPerExecutor: 1, maxCores: 1, memoryPerExecutorMB: 32 }));
  try {
    const workDir = await f.workDir();
    const first = await workers.start({ cluster: f.cluster, workDir, cores: 1, memory: '512m', conf: FAST });
    const appId = (await traced.client.start())!;
    const container = await waitFor(
      async () => (await docker().listContainers({ all: true, filters: { label: [`${LABEL.cluster}=${f.cluster}`, `${LABEL.app}=${appId}`] } })).find((c) => c.State === 'running'),
      { timeoutMs: 30_000, message: 'executor running' },
    );

    const second = runFlint(['worker', '--redis', REDIS_URL, '--cluster', f.cluster, '--work-dir', workDir, '--port', '0', '--cores', '1', '--memory', '512m'], { FLINT_LOG_LEVEL: 'warn' });
    const code = await second.exit;
    assert.notEqual(code, 0);
    assert.match(second.stderr(), new RegExp(`another flint worker is running on the work dir ${workDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(pid ${first.pid} `));
    assert.equal(second.stderr().trim().split('\n').length, 1, `one line: ${second.stderr()}`);
    assert.equal((await docker().getContainer(container!.Id).inspect()).State.Running, true, 'the refused agent touched nothing');

    await workers.sigkill(first);
    const third = await workers.start({ cluster: f.cluster, workDir, cores: 1, memory: '512m', conf: FAST });
    assert.equal(third.workerId, first.workerId);
    assert.equal(third.epoch, first.epoch, 'taken back under its epoch (the restart was shorter than the timeout)');
    await new Promise((resolve) => setTimeout(resolve, 1500)); // a few relists and reconciliations
    assert.equal((await docker().getContainer(container!.Id).inspect()).State.Running, true, 're-adopted, not restarted');
    assert.equal(JSON.parse((await f.redis.hget(f.keys.appExecutors(appId), '0'))!).state, 'RUNNING');
  } finally {
    await traced.client.stop();
    await workers.cleanup();
    await f.cleanup();
  }
});

test('another agent claiming a live worker id is refused with "Duplicate worker ID"; the agent itself, restarted, is taken back', { timeout: 120_000 }, async () => {
  const f = await agentFixture('dup-id');
  const workers = new FlintWorkers();
  try {
    const id = `worker-dup-${f.cluster.slice(-8)}`;
    const workDir = await f.workDir();
    const first = await workers.start({ cluster: f.cluster, workDir, cores: 1, memory: '512m', conf: FAST, id });
    const intruder = runFlint(
      ['worker', '--redis', REDIS_URL, '--cluster', f.cluster, '--work-dir', await f.workDir(), '--port', '0', '--cores', '1', '--memory', '512m', '--id', id, '--conf', 'spark.flint.worker.registrationInterval=300ms'],
      { FLINT_LOG_LEVEL: 'warn' },
    );
    assert.notEqual(await intruder.exit, 0);
    assert.match(intruder.stderr(), /Worker registration failed: Duplicate worker ID/);
    assert.equal(await f.redis.hget(f.keys.worker(id), 'state'), 'ALIVE', 'the live worker is untouched');
    assert.equal(Number(await f.redis.hget(f.keys.worker(id), 'epoch')), first.epoch);

    // the same agent (its work dir, hence its instance) restarted: the same registration, taken back
    await workers.sigkill(first);
    const again = await workers.start({ cluster: f.cluster, workDir, cores: 1, memory: '512m', conf: FAST, id });
    assert.equal(again.epoch, first.epoch);
  } finally {
    await workers.cleanup();
    await f.cleanup();
  }
});
