/**
 * Driver scheduling rules end to end (drivers/submission issue): on a real master,
 * REST server and Docker agent, (a) a pass places drivers before executors, even
 * for an application that registered first; (b) spark.deploy.maxDrivers caps the
 * running drivers: a second driver waits while capacity is free and runs once the
 * first finishes; (c) the SPARK-27750 guard spark.flint.deploy.driverCoresFraction
 * holds a driver back while its cores would cross the fraction, leaving the free
 * cores to applications.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { TEST_IMAGE } from '../helpers/env.ts';
import { waitFor } from '../helpers/isolation.ts';
import { appDescription } from '../helpers/protocol.ts';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { driverCluster, sparkCreateBody, type DriverCluster } from './drivers-e2e-cluster.ts';

async function submitDriver(c: DriverCluster, name: string, script: string): Promise<string> {
  const { status, json } = await c.postCreate(
    sparkCreateBody({
      appResource: `docker://${TEST_IMAGE}`,
      appArgs: ['sh', '-c', script],
      sparkProperties: { 'spark.app.name': name, 'spark.driver.memory': '64m', 'spark.driver.cores': '1', 'spark.submit.deployMode': 'cluster' },
    }),
  );
  assert.equal(status, 200);
  assert.equal(json.success, true, JSON.stringify(json));
  return String(json.submissionId);
}

async function registerApp(c: DriverCluster): Promise<string> {
  const reply = await c.masterClient.ask<{ appId: string }>(
    'RegisterApplication',
    { clientId: `client-${randomUUID()}`, appDescription: appDescription({ image: TEST_IMAGE, command: ['sleep', '300'], maxCores: 1, coresPerExecutor: 1, memoryPerExecutorMB: 64 }) },
    30_000,
  );
  return reply.appId;
}

async function runningExecutors(c: DriverCluster, appId: string): Promise<number> {
  return (await c.containers([`${LABEL.app}=${appId}`])).filter((info) => info.State === 'running').length;
}

/** assertStaysSubmitted checks, over several scheduling passes, that the driver is not placed. */
async function assertStaysSubmitted(c: DriverCluster, driverId: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    assert.equal((await c.status(driverId)).driverState, 'SUBMITTED');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

test('scheduling: drivers are placed before executors, even for an application that registered first', { timeout: 90_000 }, async () => {
  const c = await driverCluster('drv-e2e-sched-order');
  try {
    // both wait for a worker: the application first, the driver second
    const appId = await registerApp(c);
    const driverId = await submitDriver(c, 'first-in-line', 'sleep 3');
    assert.equal((await c.status(driverId)).driverState, 'SUBMITTED');

    // one worker, one core: the pass gives it to the driver
    const agent = await c.startAgent({ workDir: await c.workDir(), cores: 1, memoryMB: 512 });
    const running = await c.waitForState(driverId, 'RUNNING');
    assert.equal(running.workerId, agent.workerId);
    assert.equal(await c.redis.hlen(c.keys.appExecutors(appId)), 0, 'no executor while the driver holds the only core');

    // the driver finishes; its core goes to the application
    await c.waitForState(driverId, 'FINISHED', 30_000);
    await waitFor(async () => (await runningExecutors(c, appId)) === 1, { timeoutMs: 30_000, message: 'the application got the freed core' });
  } finally {
    await c.cleanup();
  }
});

test('scheduling: spark.deploy.maxDrivers=1 caps running drivers; the second waits with capacity free, then runs when the first finishes', { timeout: 90_000 }, async () => {
  const c = await driverCluster('drv-e2e-sched-max', { conf: { 'spark.deploy.maxDrivers': '1' } });
  try {
    const agent = await c.startAgent({ workDir: await c.workDir(), cores: 2, memoryMB: 1024 });
    const first = await submitDriver(c, 'first', 'sleep 6');
    const second = await submitDriver(c, 'second', 'sleep 1');
    assert.equal((await c.waitForState(first, 'RUNNING')).workerId, agent.workerId);
    await assertStaysSubmitted(c, second, 2000);
    assert.equal(await c.redis.hget(c.keys.worker(agent.workerId), 'coresUsed'), '1', 'a core is free all along');

    await c.waitForState(first, 'FINISHED', 30_000);
    assert.equal((await c.waitForState(second, 'RUNNING', 15_000)).workerId, agent.workerId);
    await c.waitForState(second, 'FINISHED', 30_000);
  } finally {
    await c.cleanup();
  }
});

test('scheduling: spark.flint.deploy.driverCoresFraction=0.5 holds a driver back (SPARK-27750) and leaves the free core to an application', { timeout: 90_000 }, async () => {
  const c = await driverCluster('drv-e2e-sched-guard', { conf: { 'spark.flint.deploy.driverCoresFraction': '0.5' } });
  try {
    const agent = await c.startAgent({ workDir: await c.workDir(), cores: 2, memoryMB: 1024 });
    const first = await submitDriver(c, 'first', 'sleep 8');
    const second = await submitDriver(c, 'second', 'sleep 1');
    assert.equal((await c.waitForState(first, 'RUNNING')).workerId, agent.workerId);
    // drivers may hold floor(0.5 x 2) = 1 core: the second waits although a core is free
    await assertStaysSubmitted(c, second, 1500);
    assert.equal(await c.redis.hget(c.keys.worker(agent.workerId), 'coresUsed'), '1');

    // the free core goes to an application
    const appId = await registerApp(c);
    await waitFor(async () => (await runningExecutors(c, appId)) === 1, { timeoutMs: 30_000, message: 'the application got the core drivers may not take' });
    assert.equal((await c.status(second)).driverState, 'SUBMITTED');

    // the first driver finishes: the second may now hold the drivers' one core
    await c.waitForState(first, 'FINISHED', 30_000);
    assert.equal((await c.waitForState(second, 'RUNNING', 15_000)).workerId, agent.workerId);
    await c.waitForState(second, 'FINISHED', 30_000);
  } finally {
    await c.cleanup();
  }
});
