/**
 * Drivers end to end through the REST submission server (acceptance points 1 and
 * 2 of the drivers/submission issue): a request body in exactly the shape Spark's
 * RestSubmissionClient sends runs as a container on a real agent and reaches
 * FINISHED, with the worker id and host:port in its status; a supervised driver
 * that fails is relaunched by its agent with Spark's back-off (1 s, then 2 s); an
 * unsupervised one ends FAILED; a kill ends KILLED and removes its container.
 * Real master, real REST server, real agent, real Redis and Docker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DriverDescription } from '../../protocol/messages.ts';
import { TEST_IMAGE } from '../helpers/env.ts';
import { docker, waitFor } from '../helpers/isolation.ts';
import { containerTimes, driverCluster, sparkCreateBody, type ContainerTimes, type DriverCluster } from './drivers-e2e-cluster.ts';

/** sparkProperties as Spark's client fills them for `spark-submit --deploy-mode cluster --master spark://127.0.0.1:6066`. */
function sparkProperties(extra: Record<string, string>): Record<string, string> {
  return {
    'spark.app.name': 'Spark Pi',
    'spark.master': 'spark://127.0.0.1:6066',
    'spark.driver.memory': '1g',
    'spark.driver.cores': '1',
    'spark.submit.deployMode': 'cluster',
    'spark.driver.supervise': 'false',
    'spark.submit.pyFiles': '',
    ...extra,
  };
}

async function submit(c: DriverCluster, body: string): Promise<string> {
  const { status, json } = await c.postCreate(body);
  assert.equal(status, 200, JSON.stringify(json));
  assert.equal(json.action, 'CreateSubmissionResponse');
  assert.equal(json.success, true, JSON.stringify(json));
  assert.equal(json.unknownFields, undefined, 'every field Spark sends is known');
  const id = String(json.submissionId);
  assert.match(id, /^driver-\d{14}-\d{4}$/);
  assert.equal(json.message, `Driver successfully submitted as ${id}`);
  return id;
}

test("1. a driver submitted through REST exactly as Spark's client sends it runs as a container and reaches FINISHED; status gives the worker id and host:port (docker:// appResource and spark.flint.image)", { timeout: 90_000 }, async () => {
  const c = await driverCluster('drv-e2e-1');
  try {
    const agent = await c.startAgent({ workDir: await c.workDir(), cores: 2, memoryMB: 4096 });
    const hostPort = `127.0.0.1:${agent.view().port}`;
    const viaResource = await submit(
      c,
      sparkCreateBody({
        appResource: `docker://${TEST_IMAGE}`,
        appArgs: ['sh', '-c', 'sleep 6; echo "hello from $FLINT_DRIVER_ID as $SPARK_USER"'],
        environmentVariables: { SPARK_USER: 'e2e-user', SPARK_SCALA_VERSION: '2.13' },
        sparkProperties: sparkProperties({ 'spark.jars': `docker://${TEST_IMAGE}` }),
      }),
    );
    const viaProperty = await submit(
      c,
      sparkCreateBody({
        appResource: 'file:/opt/spark/examples/jars/spark-examples.jar',
        appArgs: ['sh', '-c', 'sleep 6; echo "hello from $FLINT_DRIVER_ID"'],
        sparkProperties: sparkProperties({ 'spark.flint.image': TEST_IMAGE, 'spark.jars': 'file:/opt/spark/examples/jars/spark-examples.jar' }),
      }),
    );

    for (const driverId of [viaResource, viaProperty]) {
      // the master's copy of the request: image, argv command, memory, and spark.master rewritten from the REST port
      const desc = JSON.parse((await c.redis.hget(c.keys.driver(driverId), 'desc'))!) as DriverDescription;
      assert.equal(desc.image, TEST_IMAGE);
      assert.equal(desc.command[0], 'sh');
      assert.equal(desc.memoryMB, 1024);
      assert.equal(desc.cores, 1);
      assert.equal(desc.supervise, false);
      assert.equal(desc.sparkProperties['spark.master'], 'spark://127.0.0.1:7077');

      const running = await c.waitForState(driverId, 'RUNNING');
      assert.equal(running.success, true);
      assert.equal(running.workerId, agent.workerId);
      assert.equal(running.workerHostPort, hostPort);

      const [container] = await waitFor(
        async () => {
          const list = await c.driverContainers(driverId);
          return list.length === 1 && list[0]!.State === 'running' ? list : undefined;
        },
        { timeoutMs: 20_000, message: `${driverId} container running` },
      );
      const inspect = await docker().getContainer(container!.Id).inspect();
      assert.equal(inspect.Config.Image, TEST_IMAGE);
      assert.equal(inspect.HostConfig.Memory, 1024 * 1024 * 1024);
      assert.equal(inspect.HostConfig.NanoCpus, 1e9);
      assert.ok(inspect.Config.Env.includes(`FLINT_DRIVER_ID=${driverId}`));
      if (driverId === viaResource) assert.ok(inspect.Config.Env.includes('SPARK_USER=e2e-user'), 'environmentVariables reach the driver');
    }

    for (const driverId of [viaResource, viaProperty]) {
      const finished = await c.waitForState(driverId, 'FINISHED');
      assert.equal(finished.workerId, agent.workerId, 'a finished driver still names its worker');
      assert.equal(finished.workerHostPort, hostPort);
      assert.equal(finished.message, undefined, 'no exception');
      await waitFor(async () => (await c.driverContainers(driverId)).length === 0, { message: `${driverId} container removed` });
      const stdout = await readFile(join(agent.view().workDir, driverId, 'stdout'), 'utf8');
      assert.match(stdout, new RegExp(`hello from ${driverId}`));
    }
    assert.match(await readFile(join(agent.view().workDir, viaResource, 'stdout'), 'utf8'), /as e2e-user/);
    assert.equal(await c.redis.scard(c.keys.driversActive), 0);
    assert.deepEqual((await c.redis.lrange(c.keys.driversCompleted, 0, -1)).sort(), [viaResource, viaProperty].sort());
    assert.equal(await c.redis.hget(c.keys.worker(agent.workerId), 'coresUsed'), '0', 'capacity given back');
  } finally {
    await c.cleanup();
  }
});

test('2. a supervised driver that exits non-zero is relaunched with back-off 1 s, 2 s; an unsupervised one ends FAILED; kill ends KILLED and its container is gone', { timeout: 90_000 }, async () => {
  const c = await driverCluster('drv-e2e-2');
  try {
    const agent = await c.startAgent({ workDir: await c.workDir(), cores: 3, memoryMB: 2048 });
    const props = (extra: Record<string, string>) => sparkProperties({ 'spark.driver.memory': '64m', ...extra });
    const supervised = await submit(c, sparkCreateBody({ appResource: `docker://${TEST_IMAGE}`, appArgs: ['sh', '-c', 'exit 3'], sparkProperties: props({ 'spark.driver.supervise': 'true' }) }));
    const unsupervised = await submit(c, sparkCreateBody({ appResource: `docker://${TEST_IMAGE}`, appArgs: ['sh', '-c', 'exit 5'], sparkProperties: props({}) }));
    const longRunning = await submit(c, sparkCreateBody({ appResource: `docker://${TEST_IMAGE}`, appArgs: ['sleep', '300'], sparkProperties: props({}) }));

    // every run of the supervised driver is a new container: record when each was created and when it exited
    const runs = new Map<string, ContainerTimes>();
    await waitFor(
      async () => {
        for (const info of await c.driverContainers(supervised)) {
          if (runs.get(info.Id)?.finishedAt !== undefined) continue;
          const times = await containerTimes(info.Id);
          if (times !== undefined) runs.set(info.Id, times);
        }
        const ordered = [...runs.values()].sort((a, b) => a.createdAt - b.createdAt);
        return ordered.length >= 3 && ordered.slice(0, 2).every((run) => run.finishedAt !== undefined);
      },
      { timeoutMs: 40_000, intervalMs: 100, message: 'three runs of the supervised driver' },
    );
    const ordered = [...runs.values()].sort((a, b) => a.createdAt - b.createdAt);
    // from one run's exit to the next run's container: the back-off, then removing the exited container
    const gaps = [ordered[1]!.createdAt - ordered[0]!.finishedAt!, ordered[2]!.createdAt - ordered[1]!.finishedAt!];
    assert.ok(gaps[0]! >= 1000 && gaps[0]! < 5000, `first relaunch ~1 s after the exit, got ${gaps[0]} ms`);
    assert.ok(gaps[1]! >= 2000 && gaps[1]! < 7000, `second relaunch ~2 s after the exit, got ${gaps[1]} ms`);
    assert.ok(gaps[1]! - gaps[0]! >= 500, `the back-off grows (Spark's waitSeconds doubles): ${gaps.join(', ')} ms`);
    const view = agent.view().drivers.find((d) => d.driverId === supervised);
    assert.ok(view !== undefined && view.relaunches >= 2, `the agent counts its relaunches: ${JSON.stringify(view)}`);
    // relaunches on the worker do not change the master's state (Spark's master never hears of them)
    const supervisedStatus = await c.status(supervised);
    assert.equal(supervisedStatus.driverState, 'RUNNING');
    assert.equal(supervisedStatus.workerId, agent.workerId);

    const failed = await c.waitForState(unsupervised, 'FAILED');
    assert.equal(failed.workerId, agent.workerId);
    await waitFor(async () => (await c.driverContainers(unsupervised)).length === 0, { message: 'failed driver container removed' });
    assert.equal(agent.view().finishedDrivers.find((d) => d.driverId === unsupervised)?.exitStatus, 5);

    // kill a running driver and the supervised one (between runs or running): both KILLED, containers gone
    await c.waitForState(longRunning, 'RUNNING');
    await waitFor(async () => (await c.driverContainers(longRunning)).some((info) => info.State === 'running'), { timeoutMs: 20_000, message: 'long driver running' });
    for (const driverId of [longRunning, supervised]) {
      const killed = await c.client.killSubmission(driverId);
      assert.equal(killed.status, 200);
      assert.deepEqual(killed.body, { action: 'KillSubmissionResponse', message: `Kill request for ${driverId} submitted`, serverSparkVersion: '4.0.0', submissionId: driverId, success: true });
    }
    for (const driverId of [longRunning, supervised]) {
      const killed = await c.waitForState(driverId, 'KILLED', 30_000);
      assert.equal(killed.workerId, agent.workerId);
      await waitFor(async () => (await c.driverContainers(driverId)).length === 0, { timeoutMs: 15_000, message: `${driverId} container gone` });
    }
    const again = await c.client.killSubmission(longRunning);
    assert.equal((again.body as { success: boolean }).success, false, 'a finished driver cannot be killed again');
    await waitFor(async () => (await c.redis.hget(c.keys.worker(agent.workerId), 'coresUsed')) === '0', { message: 'capacity given back' });
    assert.equal(await c.redis.scard(c.keys.driversActive), 0);
  } finally {
    await c.cleanup();
  }
});
