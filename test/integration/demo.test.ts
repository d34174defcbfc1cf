/**
 * The Pi demo in cluster mode on an in-process cluster: a master host, a real
 * worker agent, and the REST server plus the application HTTP API started the
 * way `flint up` and `flint master` start them (startMasterServices). The driver is submitted
 * through the REST server and runs on the worker; it registers its application
 * through the app API, and its executors compute the slices.
 *
 * With Docker, the driver and every executor must be flint-demo:latest
 * containers (seen through Docker's create events, by label). On the process
 * runtime the same scripts run as local processes; there the test also plays a
 * dead executor that claims a slice and never reports it, so the driver must
 * hand that slice out again. Either way pi must be within 1e-9 of π (a slice
 * missing or counted twice would be off by far more), and nothing of the run
 * may be left: no container, no process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startMaster } from '../../functions/host.ts';
import { signToken } from '../../lib/http/auth.ts';
import { startAgent } from '../../workers/agent/agent.ts';
import { DockerRuntime } from '../../workers/runtime/docker.ts';
import { runtimeStateDir } from '../../workers/runtime/task-identity.ts';
import { ProcessRuntime } from '../../workers/runtime/process.ts';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { loadConfig } from '../../protocol/config.ts';
import { clusterKeys } from '../../protocol/keys.ts';
import { startMasterServices } from '../../functions/master-main.ts';
import { DEMO_IMAGE } from '../../demo/image.ts';
import { DemoError, runPiDemo, type PiDemoEvent, type PiDemoOptions } from '../../demo/pi-demo.ts';
import { REDIS_URL } from '../helpers/env.ts';
import { cleanupCluster, docker, makeTempDir, recordContainerEvents, removeContainersByLabel, uniqueCluster, waitFor } from '../helpers/isolation.ts';

interface DemoCluster {
  cluster: string;
  workDir: string;
  redis: Redis;
  /** what runPiDemo needs to reach this cluster */
  demo: Pick<PiDemoOptions, 'runtime' | 'restUrl' | 'token' | 'appApiUrl' | 'driverToken'>;
  fatal: string[];
}

/** withDemoCluster starts a master, one agent with `runtime`, and the submission servers; tears all down afterwards. */
async function withDemoCluster(runtime: 'docker' | 'process', body: (c: DemoCluster) => Promise<void>): Promise<void> {
  const cluster = uniqueCluster(`demo-${runtime}`);
  const secret = randomBytes(32).toString('base64url');
  const config = loadConfig({
    env: {},
    overrides: {
      'spark.flint.cluster': cluster,
      'spark.flint.auth.secret': secret,
      'spark.flint.reaper.interval': '200ms',
      'spark.flint.worker.relistInterval': '300ms',
      'spark.flint.worker.stopGracePeriod': '1s',
      'spark.flint.worker.registrationInterval': '300ms',
    },
  });
  const redis = new Redis(REDIS_URL);
  const workDir = await makeTempDir(`demo-${runtime}`);
  const fatal: string[] = [];
  const master = await startMaster({ redisUrl: REDIS_URL, config, concurrency: 8 });
  const agent = await startAgent({
    redisUrl: REDIS_URL,
    config,
    cores: 3,
    memoryMB: 1024,
    port: 0,
    workDir: workDir.path,
    runtime: (worker) =>
      runtime === 'docker'
        ? new DockerRuntime({ stateDir: runtimeStateDir(worker, 'docker'), cluster: worker.cluster, workerId: worker.workerId, relistIntervalMs: 300 })
        : new ProcessRuntime({ stateDir: join(workDir.path, '.flint-process-runtime'), pollIntervalMs: 100 }),
    onFatal: (message) => fatal.push(message),
  });
  // the REST server and the application API, started as `flint master` and `flint up` start them
  const serviceConfig = loadConfig({
    env: {},
    overrides: {
      ...config.raw,
      'spark.master.rest.port': '0',
      'spark.flint.master.ui.enabled': 'false',
      'spark.flint.master.appApi.enabled': 'true',
      'spark.flint.master.appApi.port': '0',
    },
  });
  const servers = await startMasterServices({ redisUrl: REDIS_URL, config: serviceConfig });
  try {
    await body({
      cluster,
      workDir: workDir.path,
      redis,
      fatal,
      demo: {
        runtime,
        restUrl: servers.restUrl!,
        token: signToken(secret, { scope: ['admin'], ttlSeconds: 600, subject: 'demo-test' }),
        appApiUrl: servers.appApiUrl!,
        driverToken: signToken(secret, { scope: ['submit'], ttlSeconds: 600, subject: 'demo-test-driver' }),
      },
    });
  } finally {
    await servers.close().catch(() => undefined);
    await agent.stop({ abrupt: true }).catch(() => undefined);
    await removeContainersByLabel(LABEL.cluster, cluster).catch(() => undefined);
    await master.stop().catch(() => undefined);
    await cleanupCluster(redis, cluster);
    redis.disconnect();
    await workDir.cleanup();
  }
}

/** processesUnder: pids whose working directory is inside `dir` (drivers, httpd, executors, supervisors of this run). */
async function processesUnder(dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cwd = await readlink(`/proc/${name}/cwd`).catch(() => '');
    if (cwd === dir || cwd.startsWith(`${dir}/`)) found.push(Number(name));
  }
  return found;
}

/** appIdOf: the application the driver registered, from its stdout. */
function appIdOf(stdout: string[]): string {
  const line = stdout.find((l) => l.startsWith('registered application '));
  assert.ok(line, `the driver printed its application id (stdout: ${stdout.join(' | ')})`);
  return line.slice('registered application '.length).trim();
}

function checkProgress(stdout: string[], slices: number): void {
  const progress = stdout.filter((l) => l.startsWith('progress ')).map((l) => Number(l.split(' ')[1]!.split('/')[0]));
  assert.ok(progress.length >= 2, 'the driver printed progress lines');
  assert.equal(progress[0], 0);
  assert.equal(progress.at(-1), slices);
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i]! > progress[i - 1]!, 'progress only goes up');
  assert.ok(stdout.every((l) => !l.startsWith('progress ') || l.endsWith(`/${slices}`)));
}

test('the Pi demo in cluster mode: driver and executors are flint-demo containers, pi from their slices', { timeout: 240_000 }, async () => {
  await withDemoCluster('docker', async (c) => {
    // Docker's create events, by the cluster's label: every task container of the run
    const events = await recordContainerEvents(c.cluster, ['create']);
    const seen: PiDemoEvent['type'][] = [];
    let result;
    try {
      // heartbeats every 200 ms, so the executors beat during so short a job
      result = await runPiDemo({ ...c.demo, slices: 9, executors: 3, intervals: 300_000, heartbeatIntervalMs: 200, timeoutMs: 180_000, onEvent: (e) => seen.push(e.type) });
    } finally {
      events.close();
    }
    assert.ok(Math.abs(result.pi - Math.PI) < 1e-9, `pi ${result.pi} is within 1e-9 of π (error ${result.error})`);
    assert.ok(result.error <= result.errorBound + 1e-12, `error ${result.error} within the midpoint bound ${result.errorBound}`);
    assert.ok(result.executors >= 1 && result.executors <= 3, `1 to 3 executors computed slices (${result.executors})`);
    checkProgress(result.stdout, 9);
    assert.ok(seen.includes('image') && seen.includes('submitted') && seen.includes('state'));
    assert.deepEqual(c.fatal, []);

    const appId = appIdOf(result.stdout);
    const created = events.events.map((e) => e.attributes);
    const drivers = created.filter((labels) => labels[LABEL.kind] === 'driver');
    const executors = created.filter((labels) => labels[LABEL.kind] === 'executor');
    assert.equal(drivers.length, 1, 'one driver container');
    assert.equal(drivers[0]![LABEL.driver], result.driverId);
    assert.ok(executors.length >= result.executors, `${executors.length} executor containers for ${result.executors} working executors`);
    for (const container of [...drivers, ...executors]) assert.equal(container.image, DEMO_IMAGE);
    for (const container of executors) assert.equal(container[LABEL.app], appId);

    // the driver unregistered its application, and nothing of the run is left
    const keys = clusterKeys(c.cluster);
    assert.equal(await c.redis.hget(keys.app(appId), 'state'), 'FINISHED');
    // its executors heartbeat (the app was registered with heartbeats on, linked to its driver)
    assert.equal(await c.redis.hget(keys.app(appId), 'driverId'), result.driverId);
    const metrics = Object.values(await c.redis.hgetall(keys.appExecutorMetrics(appId))).map((m) => JSON.parse(m) as { metrics: { slices: number } });
    assert.ok(metrics.length >= 1, 'the executors sent heartbeats with metrics');
    assert.ok(metrics.every((m) => Number.isInteger(m.metrics.slices)), JSON.stringify(metrics));
    await waitFor(async () => (await docker().listContainers({ all: true, filters: { label: [`${LABEL.cluster}=${c.cluster}`] } })).length === 0, {
      timeoutMs: 20_000,
      message: 'every container of the run removed',
    });
  });
});

test('the Pi demo on the process runtime: the same scripts as local processes; a slice claimed by a dead executor is handed out again', { timeout: 240_000 }, async () => {
  await withDemoCluster('process', async (c) => {
    let rogue: Promise<string> | undefined;
    const result = await runPiDemo({
      ...c.demo,
      // many small slices: some are still unclaimed when the dead executor asks, even on a loaded machine
      slices: 40,
      executors: 2,
      intervals: 4_000_000,
      claimTimeoutSeconds: 2,
      pollMs: 50,
      timeoutMs: 180_000,
      onEvent: (event) => {
        // a dead executor: it takes a slice and never reports it
        if (event.type === 'output' && event.line.text.startsWith('task endpoint ') && !rogue) {
          const endpoint = event.line.text.slice('task endpoint '.length).trim();
          rogue = fetch(`${endpoint}/task?executor=999`).then((r) => r.text());
        }
      },
    });
    assert.ok(rogue, 'the driver printed its task endpoint');
    const claimed = (await rogue).trim();
    assert.match(claimed, /^slice \d+ \d+ \d+ 4000000$/, 'the dead executor got a slice');
    const slice = claimed.split(' ')[1];
    assert.match(result.stderr, new RegExp(`slice ${slice}: no result from executor 999 within 2s; handed to executor \\d+`));
    assert.ok(Math.abs(result.pi - Math.PI) < 1e-9, `pi ${result.pi} is within 1e-9 of π (error ${result.error})`);
    checkProgress(result.stdout, 40);
    assert.deepEqual(c.fatal, []);
    const appId = appIdOf(result.stdout);
    assert.equal(await c.redis.hget(clusterKeys(c.cluster).app(appId), 'state'), 'FINISHED');
    // the driver, its httpd and the executors all ran in the worker's work dir; none may be left
    await waitFor(async () => (await processesUnder(c.workDir)).length === 0, { timeoutMs: 20_000, message: 'no process of the run left' });
  });
});

test('runPiDemo refuses bad sizes with a clear error before submitting anything', async () => {
  const demo = { runtime: 'process' as const, restUrl: 'http://127.0.0.1:1', token: 't', appApiUrl: 'http://127.0.0.1:1', driverToken: 't' };
  await assert.rejects(runPiDemo({ ...demo, slices: 0 }), (e: Error) => e instanceof DemoError && /slices must be a positive integer/.test(e.message));
  await assert.rejects(runPiDemo({ ...demo, slices: 4, executors: 0 }), /executors must be a positive integer/);
  await assert.rejects(runPiDemo({ ...demo, slices: 8, intervals: 4 }), /intervals must be an integer of at least slices \(8\)/);
});
