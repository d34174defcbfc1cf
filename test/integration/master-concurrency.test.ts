/**
 * Leaderless consistency under load, with real processes: three `flint master`
 * processes, 200 simulated workers and 500 applications registered at once.
 * - no worker is ever over-committed (checked from Redis during the run and after);
 * - every app gets the cores Spark's algorithm grants on that cluster (the pure
 *   planner run over the same apps in registration order);
 * - no LaunchExecutor is written twice for one executor id;
 * - SIGKILL of one master process mid-run loses no message, and the final state
 *   equals the run without the kill.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import { clusterKeys, type Keys } from '../../protocol/keys.ts';
import { MasterClient } from '../../client/master-client.ts';
import { planSchedulingPass } from '../../functions/core/plan-pass.ts';
import type { AppSnapshot, WorkerSnapshot } from '../../functions/core/types.ts';
import { REDIS_ARGV_URL, REDIS_URL } from '../helpers/env.ts';
import { cleanupCluster, uniqueCluster, waitFor } from '../helpers/isolation.ts';
import { appDescription, registerFakeWorker } from '../helpers/protocol.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const WORKERS = 200;
const APPS = 500;
const WORKER_CORES = 8;
const WORKER_MEMORY = 8192;
const APP_CORES = 3;
const APP_MEMORY = 256;

let redis: Redis;
const clusters: string[] = [];

before(() => {
  redis = new Redis(REDIS_URL);
});

after(async () => {
  for (const cluster of clusters) await cleanupCluster(redis, cluster);
  redis.disconnect();
});

function startMasterProcess(cluster: string): ChildProcess {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'flint.js'), 'master', '--redis', REDIS_ARGV_URL, '--cluster', cluster, '--conf', 'spark.flint.reaper.interval=200ms',
    // several masters on one host: these only handle messages (no REST server or UI ports to share)
    '--conf', 'spark.master.rest.enabled=false', '--conf', 'spark.flint.master.ui.enabled=false'], {
    cwd: ROOT,
    env: { ...process.env, FLINT_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return child;
}

async function waitForMasters(keys: Keys, count: number): Promise<void> {
  await waitFor(async () => (await redis.hlen(keys.masters)) >= count, { timeoutMs: 30_000, message: `${count} master processes` });
}

interface Summary {
  apps: number;
  grants: Record<string, number>;
  executors: number;
  launchEntries: number;
  duplicateLaunches: string[];
  coresUsed: number;
  memoryUsed: number;
  violations: string[];
}

async function checkCapacity(keys: Keys, workerIds: string[]): Promise<string[]> {
  const pipeline = redis.pipeline();
  for (const id of workerIds) pipeline.hmget(keys.worker(id), 'cores', 'coresUsed', 'memoryMB', 'memoryUsed');
  const rows = (await pipeline.exec()) ?? [];
  const violations: string[] = [];
  rows.forEach(([, value], index) => {
    const [cores, coresUsed, memory, memoryUsed] = (value as string[]).map(Number);
    if (coresUsed! > cores! || memoryUsed! > memory! || coresUsed! < 0 || memoryUsed! < 0) {
      violations.push(`${workerIds[index]}: cores ${coresUsed}/${cores}, memory ${memoryUsed}/${memory}`);
    }
  });
  return violations;
}

async function runScenario(killOne: boolean): Promise<Summary> {
  const cluster = uniqueCluster(killOne ? 'conc-kill' : 'conc');
  clusters.push(cluster);
  const keys = clusterKeys(cluster);
  const masters = [startMasterProcess(cluster), startMasterProcess(cluster), startMasterProcess(cluster)];
  const client = new MasterClient(REDIS_URL, cluster);
  const violations: string[] = [];
  let checking = true;
  try {
    await waitForMasters(keys, 3);
    const workerIds = Array.from({ length: WORKERS }, (_, i) => `w${String(i).padStart(3, '0')}`);
    for (let i = 0; i < WORKERS; i += 25) {
      await Promise.all(workerIds.slice(i, i + 25).map((id) => registerFakeWorker(client, { id, cores: WORKER_CORES, memoryMB: WORKER_MEMORY })));
    }
    const checker = (async () => {
      while (checking) {
        violations.push(...(await checkCapacity(keys, workerIds)));
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();

    let registered = 0;
    const registrations = Array.from({ length: APPS }, (_, i) =>
      client
        .ask<{ appId: string }>(
          'RegisterApplication',
          { clientId: `client-${i}`, appDescription: appDescription({ name: `app ${i}`, maxCores: APP_CORES, coresPerExecutor: 1, memoryPerExecutorMB: APP_MEMORY }) },
          90_000,
        )
        .then((reply) => {
          registered++;
          return reply.appId;
        }),
    );
    if (killOne) {
      await waitFor(() => registered >= APPS / 4, { timeoutMs: 60_000, message: 'a quarter of the apps registered' });
      masters[0]!.kill('SIGKILL');
    }
    const appIds = await Promise.all(registrations);
    assert.equal(new Set(appIds).size, APPS, 'every registration got its own app id');

    await waitFor(
      async () => {
        const pipeline = redis.pipeline();
        for (const appId of appIds) pipeline.hget(keys.app(appId), 'coresGranted');
        const granted = ((await pipeline.exec()) ?? []).reduce((sum, [, v]) => sum + Number(v), 0);
        return granted === APPS * APP_CORES;
      },
      { timeoutMs: 90_000, intervalMs: 200, message: `${APPS * APP_CORES} cores granted` },
    );
    checking = false;
    await checker;
    violations.push(...(await checkCapacity(keys, workerIds)));

    // what Spark's algorithm grants on this cluster, for these apps in registration order
    const order = await redis.zrange(keys.appsWaiting, '0', '-1');
    const workers: WorkerSnapshot[] = workerIds.map((id, i) => ({ id, host: '127.0.0.1', port: i, coresFree: WORKER_CORES, memoryFreeMB: WORKER_MEMORY, resourcesFree: {}, epoch: 1 }));
    const apps: AppSnapshot[] = order.map((id) => ({ id, coresLeft: APP_CORES, coresPerExecutor: 1, memoryPerExecutorMB: APP_MEMORY, resourcesPerExecutor: [], executorLimit: Infinity, liveExecutors: 0 }));
    const plan = planSchedulingPass({
      workers, apps, drivers: [], runningDrivers: 0, driverCoresInUse: 0, random: () => 0.5,
      config: { spreadOut: true, spreadOutDrivers: true, workerSelectionPolicy: 'CORES_FREE_DESC', maxDrivers: 1e9, driverCoresFraction: 1 },
    });
    const expected: Record<string, number> = {};
    for (const p of plan.executors) expected[p.appId] = (expected[p.appId] ?? 0) + p.cores;

    const grants: Record<string, number> = {};
    const pipeline = redis.pipeline();
    for (const appId of appIds) pipeline.hget(keys.app(appId), 'coresGranted');
    ((await pipeline.exec()) ?? []).forEach(([, v], i) => (grants[appIds[i]!] = Number(v)));
    assert.deepEqual(grants, expected, 'grants equal Spark\'s algorithm on this cluster');

    const launched = new Map<string, number>();
    for (const id of workerIds) {
      for (const [, fields] of await redis.xrange(keys.workerInbox(id), '-', '+')) {
        if (fields[1] !== 'LaunchExecutor') continue;
        const body = JSON.parse(fields[3]!);
        const key = `${body.appId}/${body.execId}`;
        launched.set(key, (launched.get(key) ?? 0) + 1);
      }
    }
    const usage = await Promise.all(workerIds.map((id) => redis.hmget(keys.worker(id), 'coresUsed', 'memoryUsed')));
    let executors = 0;
    for (const appId of appIds) executors += await redis.hlen(keys.appExecutors(appId));
    return {
      apps: appIds.length,
      grants: Object.fromEntries(Object.entries(grants).map(([id, cores]) => [id.replace(/^app-\d+-/, ''), cores])),
      executors,
      launchEntries: [...launched.values()].reduce((a, b) => a + b, 0),
      duplicateLaunches: [...launched.entries()].filter(([, n]) => n > 1).map(([k]) => k),
      coresUsed: usage.reduce((sum, [c]) => sum + Number(c), 0),
      memoryUsed: usage.reduce((sum, [, m]) => sum + Number(m), 0),
      violations,
    };
  } finally {
    checking = false;
    await client.close();
    for (const child of masters) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    }
    await Promise.all(masters.map((child) => (child.exitCode !== null || child.signalCode !== null ? undefined : new Promise((resolve) => child.once('exit', resolve)))));
  }
}

let baseline: Summary | undefined;

test('3 master processes, 200 workers, 500 concurrent apps: no over-commit, Spark\'s grants, no duplicate launch', { timeout: 240_000 }, async () => {
  baseline = await runScenario(false);
  assert.deepEqual(baseline.violations, []);
  assert.deepEqual(baseline.duplicateLaunches, []);
  assert.equal(baseline.executors, APPS * APP_CORES);
  assert.equal(baseline.launchEntries, APPS * APP_CORES);
  assert.equal(baseline.coresUsed, APPS * APP_CORES);
  assert.equal(baseline.memoryUsed, APPS * APP_CORES * APP_MEMORY);
});

test('SIGKILL of one master process mid-run: nothing lost, same final state as without the kill', { timeout: 240_000 }, async () => {
  const killed = await runScenario(true);
  assert.deepEqual(killed.violations, []);
  assert.deepEqual(killed.duplicateLaunches, []);
  assert.ok(baseline, 'the baseline run completed');
  const { violations: _a, ...withKill } = killed;
  const { violations: _b, ...withoutKill } = baseline;
  assert.deepEqual(withKill, withoutKill);
});
