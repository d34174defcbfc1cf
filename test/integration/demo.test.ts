/**
 * The Pi demo end to end on an in-process cluster: a master host and a real
 * worker agent with the Docker runtime; the executors are flint-demo containers
 * that fetch slices from the driver over loopback and compute them with awk.
 * The printed pi must come from their work: every slice exactly once, so the
 * result is within the midpoint rule's error (a slice missing or counted twice
 * would be off by at least 1/slices of pi's weight, far beyond the tolerance).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startMaster } from '../../functions/host.ts';
import { startAgent } from '../../workers/agent.ts';
import { DockerRuntime } from '../../workers/runtime/docker.ts';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { loadConfig } from '../../protocol/config.ts';
import { runDemo, type DemoProgress } from '../../demo/run-demo.ts';
import { REDIS_URL } from '../helpers/env.ts';
import { cleanupCluster, docker, makeTempDir, removeContainersByLabel, uniqueCluster } from '../helpers/isolation.ts';

test('runDemo computes pi from the executors\' slices on a real cluster', { timeout: 240_000 }, async () => {
  const cluster = uniqueCluster('demo');
  const config = loadConfig({
    env: {},
    overrides: {
      'spark.flint.cluster': cluster,
      'spark.flint.reaper.interval': '200ms',
      'spark.flint.worker.relistInterval': '300ms',
      'spark.flint.worker.stopGracePeriod': '1s',
      'spark.flint.worker.registrationInterval': '300ms',
    },
  });
  const redis = new Redis(REDIS_URL);
  const workDir = await makeTempDir('demo');
  const master = await startMaster({ redisUrl: REDIS_URL, config, concurrency: 8 });
  const fatal: string[] = [];
  const agent = await startAgent({
    redisUrl: REDIS_URL,
    config,
    cores: 3,
    memoryMB: 1024,
    port: 0,
    workDir: workDir.path,
    runtime: (worker) => new DockerRuntime({ cluster: worker.cluster, workerId: worker.workerId, relistIntervalMs: 300 }),
    onFatal: (message) => fatal.push(message),
  });
  try {
    const phases: DemoProgress['phase'][] = [];
    let lastProgress: DemoProgress | undefined;
    const result = await runDemo({
      redisUrl: REDIS_URL,
      cluster,
      slices: 9,
      executors: 3,
      intervals: 300_000,
      timeoutMs: 180_000,
      onProgress: (p) => {
        if (phases.at(-1) !== p.phase) phases.push(p.phase);
        lastProgress = p;
      },
    });
    assert.ok(Math.abs(result.pi - Math.PI) < 1e-9, `pi ${result.pi} is within 1e-9 of π (error ${result.error})`);
    assert.ok(result.error <= result.errorBound + 1e-12, `error ${result.error} within the midpoint bound ${result.errorBound}`);
    assert.equal(result.slices, 9);
    assert.equal(result.intervals, 300_000);
    const computed = Object.values(result.slicesByExecutor).reduce((a, b) => a + b, 0);
    assert.equal(computed, 9, 'every slice was computed exactly once');
    assert.ok(result.executors >= 1 && result.executors <= 3, `1 to 3 executors did the work (${result.executors})`);
    assert.ok(result.executorsLaunched >= result.executors);
    assert.ok(result.elapsedMs > 0);
    assert.deepEqual(phases.slice(0, 3), ['image', 'registering', 'waiting-for-executors']);
    assert.equal(phases.at(-1), 'done');
    assert.equal(lastProgress?.slicesDone, 9);
    assert.deepEqual(fatal, []);

    // the executors were real containers of the demo image on this cluster, and the app is over
    const containers = await docker().listContainers({ all: true, filters: { label: [`${LABEL.cluster}=${cluster}`, `${LABEL.app}=${result.appId}`] } });
    for (const info of containers) assert.equal(info.Image, 'flint-demo:latest');
    assert.notEqual(await redis.hget(`flint{${cluster}}:app:${result.appId}`, 'state'), 'RUNNING');
  } finally {
    await agent.stop({ abrupt: true }).catch(() => undefined);
    await removeContainersByLabel(LABEL.cluster, cluster).catch(() => undefined);
    await master.stop().catch(() => undefined);
    await cleanupCluster(redis, cluster);
    redis.disconnect();
    await workDir.cleanup();
  }
});

test('runDemo refuses bad sizes with a clear error', async () => {
  await assert.rejects(runDemo({ redisUrl: REDIS_URL, cluster: uniqueCluster('demo-bad'), slices: 0 }), /slices must be an integer/);
  await assert.rejects(runDemo({ redisUrl: REDIS_URL, cluster: uniqueCluster('demo-bad'), slices: 4, executors: 0 }), /executors must be a positive integer/);
});
