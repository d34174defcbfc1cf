/**
 * Worker loss under a supervised driver, end to end (acceptance point 3 of the
 * drivers/submission issue, SPARK-19900): two `flint worker` child processes
 * (spark.worker.timeout 2 s) and a supervised driver submitted through REST. The
 * worker running it is lost for real: SIGKILLed (then started again with the same
 * work dir) or SIGSTOPped (then continued). Its driver container keeps running
 * meanwhile, as agents leave containers for re-adoption. After the timeout the
 * master marks the worker DEAD, retires the driver id as RELAUNCHING and runs the
 * driver under a new id on the other worker. When the lost worker is back it
 * registers again under a new epoch, reports the old driver in WorkerLatestState,
 * and the master sends KillDriver: the old container stops while the relaunched
 * driver keeps running elsewhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TEST_IMAGE } from '../helpers/env.ts';
import { docker, waitFor } from '../helpers/isolation.ts';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AGENT_STATE_FILE } from '../../workers/agent/state-file.ts';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { driverCluster, sparkCreateBody, type DriverCluster, type WorkerProcess } from './drivers-e2e-cluster.ts';

const TIMEOUT = { 'spark.worker.timeout': '2s' };

async function isRunning(containerId: string): Promise<boolean | undefined> {
  try {
    return (await docker().getContainer(containerId).inspect()).State.Running;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return undefined;
    throw error;
  }
}

/** submitSleeper submits a `sleep 300` driver through REST, in Spark's request shape. */
async function submitSleeper(c: DriverCluster, supervise: boolean): Promise<string> {
  const { status, json } = await c.postCreate(
    sparkCreateBody({
      appResource: `docker://${TEST_IMAGE}`,
      appArgs: ['sleep', '300'],
      sparkProperties: {
        'spark.app.name': supervise ? 'supervised' : 'unsupervised',
        'spark.master': 'spark://127.0.0.1:6066',
        'spark.driver.memory': '64m',
        'spark.driver.cores': '1',
        'spark.driver.supervise': String(supervise),
        'spark.submit.deployMode': 'cluster',
      },
    }),
  );
  assert.equal(status, 200);
  assert.equal(json.success, true, JSON.stringify(json));
  return String(json.submissionId);
}

/** WorkerLoss: how the worker running the driver is taken away and brought back. */
interface WorkerLoss {
  lose(worker: WorkerProcess): Promise<void>;
  /** brings the worker back; resolves once it is running again (not necessarily registered) */
  bringBack(worker: WorkerProcess, c: DriverCluster): Promise<void>;
}

async function relaunchAfterWorkerLoss(c: DriverCluster, loss: WorkerLoss): Promise<void> {
  const workers = [await c.spawnWorker(await c.workDir(), { conf: TIMEOUT }), await c.spawnWorker(await c.workDir(), { conf: TIMEOUT })];
  const oldId = await submitSleeper(c, true);

  const first = await c.waitForState(oldId, 'RUNNING');
  const holder = workers.find((w) => w.workerId === first.workerId);
  const survivor = workers.find((w) => w.workerId !== first.workerId)!;
  assert.ok(holder, `the driver runs on one of the two workers (${first.workerId})`);
  const [oldContainer] = await waitFor(
    async () => {
      const list = await c.driverContainers(oldId);
      return list.length === 1 && list[0]!.State === 'running' ? list : undefined;
    },
    { timeoutMs: 30_000, message: 'old driver container running' },
  );
  assert.equal(oldContainer!.Labels[LABEL.worker], holder.workerId);
  const oldEpoch = Number(await c.redis.hget(c.keys.worker(holder.workerId), 'epoch'));

  await loss.lose(holder);
  assert.equal(await isRunning(oldContainer!.Id), true, 'a lost agent leaves its driver running');

  const retired = await c.waitForState(oldId, 'RELAUNCHING', 20_000);
  assert.equal(retired.success, true);
  // as in Spark (removeDriver keeps driver.worker), the retired id still names the worker it ran on
  assert.equal(retired.workerId, holder.workerId);
  assert.equal(retired.workerHostPort, first.workerHostPort);
  assert.equal(await c.redis.hget(c.keys.worker(holder.workerId), 'state'), 'DEAD');
  assert.equal(await c.redis.hexists(c.keys.schedulable, holder.workerId), 0, 'a DEAD worker is never schedulable');
  const newId = await c.redis.hget(c.keys.driver(oldId), 'relaunchedAs');
  assert.ok(newId && newId !== oldId, `a new driver id (${newId})`);
  assert.equal(await c.redis.hget(c.keys.driver(newId), 'relaunchOf'), oldId);

  const relaunched = await c.waitForState(newId, 'RUNNING', 20_000);
  assert.equal(relaunched.workerId, survivor.workerId, 'relaunched on the other worker');
  assert.match(relaunched.workerHostPort ?? '', /^127\.0\.0\.1:\d+$/);
  const [newContainer] = await waitFor(
    async () => {
      const list = await c.driverContainers(newId);
      return list.length === 1 && list[0]!.State === 'running' ? list : undefined;
    },
    { timeoutMs: 30_000, message: 'relaunched driver container running' },
  );
  assert.equal(newContainer!.Labels[LABEL.worker], survivor.workerId);
  assert.equal(await isRunning(oldContainer!.Id), true, 'the old container still runs while its worker is away');

  // the lost worker comes back under the same worker id and registers again
  await loss.bringBack(holder, c);
  const newEpoch = await waitFor(
    async () => {
      const w = await c.redis.hmget(c.keys.worker(holder.workerId), 'state', 'epoch');
      return w[0] === 'ALIVE' && Number(w[1]) > oldEpoch ? Number(w[1]) : undefined;
    },
    { timeoutMs: 30_000, message: 'the lost worker registered again under a new epoch' },
  );
  await waitFor(async () => (await isRunning(oldContainer!.Id)) !== true, { timeoutMs: 30_000, message: 'the old driver container stopped' });
  await waitFor(async () => (await isRunning(oldContainer!.Id)) === undefined, { timeoutMs: 15_000, message: 'the old driver container removed' });
  // the lost worker handled the master's KillDriver (handled inbox entries are deleted, so its own
  // record of the final report it delivered is the proof): KILLED, not an exit of its own
  const reported = await waitFor(
    async () => (JSON.parse(await readFile(join(holder.workDir, AGENT_STATE_FILE), 'utf8').catch(() => '{}')) as { reported?: Record<string, string> }).reported?.[`driver:${oldId}`],
    { timeoutMs: 15_000, message: `the lost worker (epoch ${newEpoch}) reports ${oldId} ended` },
  );
  assert.equal(reported, 'KILLED');

  // the relaunched driver is untouched, and the old id stays retired
  assert.equal(await isRunning(newContainer!.Id), true);
  const after = await c.status(newId);
  assert.equal(after.driverState, 'RUNNING');
  assert.equal(after.workerId, survivor.workerId);
  const oldStatus = await c.status(oldId);
  assert.equal(oldStatus.driverState, 'RELAUNCHING', 'the KILLED report of the old driver does not change its retired id');
  assert.equal(oldStatus.workerId, holder.workerId);
  assert.equal(await c.redis.hget(c.keys.worker(holder.workerId), 'state'), 'ALIVE');
  assert.equal(await c.redis.hget(c.keys.worker(holder.workerId), 'coresUsed'), '0');
  assert.deepEqual(await c.redis.smembers(c.keys.driversActive), [newId]);
  assert.deepEqual(await c.driverContainers(oldId), [], 'no container of the old id anywhere');
}

test('3. killing (SIGKILL) the worker that runs a supervised driver relaunches it on another worker under a new id; restarted with the same work dir, the old worker kills the old driver', { timeout: 120_000 }, async () => {
  const c = await driverCluster('drv-e2e-3-kill', { conf: TIMEOUT });
  try {
    await relaunchAfterWorkerLoss(c, {
      async lose(worker) {
        worker.child.kill('SIGKILL');
        await worker.exit;
      },
      async bringBack(worker) {
        const restarted = await c.spawnWorker(worker.workDir, { conf: TIMEOUT });
        assert.equal(restarted.workerId, worker.workerId, 'the work dir keeps the worker id');
      },
    });
  } finally {
    await c.cleanup();
  }
});

test('3. stopping (SIGSTOP) the worker that runs a supervised driver relaunches it on another worker under a new id; continued, the old worker kills the old driver', { timeout: 120_000 }, async () => {
  const c = await driverCluster('drv-e2e-3-stop', { conf: TIMEOUT });
  let stopped: WorkerProcess | undefined;
  try {
    await relaunchAfterWorkerLoss(c, {
      async lose(worker) {
        stopped = worker;
        worker.child.kill('SIGSTOP');
      },
      async bringBack(worker) {
        worker.child.kill('SIGCONT');
        stopped = undefined;
      },
    });
  } finally {
    // a stopped process ignores SIGKILL until continued
    stopped?.child.kill('SIGCONT');
    await c.cleanup();
  }
});

test('3. an unsupervised driver whose worker is killed ends ERROR (not relaunched); restarted, the worker kills it', { timeout: 120_000 }, async () => {
  const c = await driverCluster('drv-e2e-3-error', { conf: TIMEOUT });
  try {
    const worker = await c.spawnWorker(await c.workDir(), { conf: TIMEOUT });
    const driverId = await submitSleeper(c, false);
    const running = await c.waitForState(driverId, 'RUNNING');
    const [container] = await waitFor(
      async () => {
        const list = await c.driverContainers(driverId);
        return list.length === 1 && list[0]!.State === 'running' ? list : undefined;
      },
      { timeoutMs: 30_000, message: 'driver container running' },
    );
    worker.child.kill('SIGKILL');
    await worker.exit;

    const lost = await c.waitForState(driverId, 'ERROR', 20_000);
    assert.equal(lost.workerId, worker.workerId);
    assert.equal(lost.workerHostPort, running.workerHostPort);
    assert.equal(await c.redis.hget(c.keys.driver(driverId), 'relaunchedAs'), null, 'not relaunched');
    assert.equal(await c.redis.scard(c.keys.driversActive), 0);
    assert.equal(await isRunning(container!.Id), true, 'its container runs on while the worker is away');

    const restarted = await c.spawnWorker(worker.workDir, { conf: TIMEOUT });
    assert.equal(restarted.workerId, worker.workerId);
    await waitFor(async () => (await isRunning(container!.Id)) === undefined, { timeoutMs: 30_000, message: 'the lost driver killed and removed' });
    assert.equal((await c.status(driverId)).driverState, 'ERROR', 'the KILLED report does not change the final state');
  } finally {
    await c.cleanup();
  }
});
