/**
 * A whole scheduling pass: drivers before apps, apps FIFO, and every placement
 * deducted from the pass's working copies so later drivers and apps see less.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planSchedulingPass, type SchedulingPassInput } from '../../functions/core/plan-pass.ts';
import type { AppSnapshot, DriverSnapshot, ExecutorPlacement, WorkerSnapshot } from '../../functions/core/types.ts';

const INT_MAX = 2147483647;

function worker(id: string, cores: number, memoryMB: number, resourcesFree: Record<string, number> = {}): WorkerSnapshot {
  return { id, host: '127.0.0.1', port: 7078, coresFree: cores, coresTotal: cores, memoryFreeMB: memoryMB, resourcesFree, epoch: 1 };
}

function app(id: string, coresLeft: number, memoryPerExecutorMB: number, extra: Partial<AppSnapshot> = {}): AppSnapshot {
  return { id, coresLeft, memoryPerExecutorMB, resourcesPerExecutor: [], executorLimit: Infinity, liveExecutors: 0, ...extra };
}

function driver(id: string, cores: number, memoryMB: number, resources: Record<string, number> = {}): DriverSnapshot {
  return { id, cores, memoryMB, resourceReqs: Object.entries(resources).map(([name, amount]) => ({ name, amount })) };
}

function pass(over: Partial<SchedulingPassInput>): SchedulingPassInput {
  return {
    workers: [],
    apps: [],
    drivers: [],
    runningDrivers: 0,
    driverCoresInUse: 0,
    config: { spreadOut: true, spreadOutDrivers: false, workerSelectionPolicy: 'CORES_FREE_DESC', maxDrivers: INT_MAX, driverCoresFraction: 1 },
    random: () => 0.5,
    ...over,
  };
}

const coresOf = (executors: ExecutorPlacement[], appId: string) =>
  executors.filter((e) => e.appId === appId).reduce((sum, e) => sum + e.cores, 0);

test('apps are served FIFO: the first app takes what it can before the second gets the rest', () => {
  const plan = planSchedulingPass(pass({
    workers: [worker('w1', 4, 4096), worker('w2', 4, 4096)],
    apps: [app('app-1', 6, 512), app('app-2', 8, 512)],
  }));
  assert.equal(coresOf(plan.executors, 'app-1'), 6);
  assert.equal(coresOf(plan.executors, 'app-2'), 2);
  // spread out: app-1 gets 3 + 3, one executor per worker; app-2 the last core of each
  assert.deepEqual(plan.executors.map((e) => [e.appId, e.workerId, e.cores]), [
    ['app-1', 'w2', 3], ['app-1', 'w1', 3], ['app-2', 'w2', 1], ['app-2', 'w1', 1],
  ]);
});

test('the order given is the order served (a later app in the list gets only leftovers)', () => {
  const workers = [worker('w1', 4, 4096)];
  const first = planSchedulingPass(pass({ workers, apps: [app('x', 4, 256), app('y', 4, 256)] }));
  const swapped = planSchedulingPass(pass({ workers, apps: [app('y', 4, 256), app('x', 4, 256)] }));
  assert.deepEqual(first.executors.map((e) => e.appId), ['x']);
  assert.deepEqual(swapped.executors.map((e) => e.appId), ['y']);
});

test('memory and resources taken by one app are gone for the next', () => {
  const plan = planSchedulingPass(pass({
    workers: [worker('w', 16, 2048, { gpu: 2 })],
    apps: [
      app('mem-hungry', 4, 1536, { coresPerExecutor: 4 }),
      app('needs-1024', 4, 1024, { coresPerExecutor: 4 }), // 512 MB left: no room
      app('gpu-a', 2, 256, { coresPerExecutor: 1, resourcesPerExecutor: [{ name: 'gpu', amount: 1 }] }),
      app('gpu-b', 4, 256, { coresPerExecutor: 1, resourcesPerExecutor: [{ name: 'gpu', amount: 1 }] }), // gpus gone
    ],
  }));
  // 512 MB and 2 gpus left after mem-hungry: exactly two 256 MB, 1-gpu executors for gpu-a, then nothing
  assert.deepEqual(plan.executors.map((e) => [e.appId, e.cores, e.memoryMB]), [
    ['mem-hungry', 4, 1536], ['gpu-a', 1, 256], ['gpu-a', 1, 256],
  ]);
});

test('drivers are placed first and their capacity is gone for the apps of the same pass', () => {
  const plan = planSchedulingPass(pass({
    workers: [worker('w1', 4, 2048), worker('w2', 4, 2048)],
    drivers: [driver('driver-1', 2, 1024)],
    apps: [app('app-1', INT_MAX, 1024)],
  }));
  assert.deepEqual(plan.drivers.map((d) => [d.driverId, d.workerId]), [['driver-1', 'w1']]); // first fit by id
  // w1 keeps 2 cores and 1024 MB: one executor of 2 cores there, one of 4 on w2
  assert.deepEqual(plan.executors.map((e) => [e.workerId, e.cores]).sort(), [['w1', 2], ['w2', 4]]);
});

test('assign resources to executor (Spark): the driver takes half the gpus/fpgas, the app\'s one executor the other half', () => {
  // Spark's "assign/recycle resources to/from executor": worker 10 cores, 2048 MB, 6 gpu, 6 fpga;
  // driver 3 cores, 100 MB, 3 gpu, 3 fpga; app cores.max 4, 1234 MB, 3 gpu + 3 fpga per executor
  const res = [{ name: 'gpu', amount: 3 }, { name: 'fpga', amount: 3 }];
  const plan = planSchedulingPass(pass({
    workers: [worker('w', 10, 2048, { gpu: 6, fpga: 6 })],
    drivers: [driver('driver-0', 3, 100, { gpu: 3, fpga: 3 })],
    apps: [app('app-0', 4, 1234, { resourcesPerExecutor: res })],
    config: { spreadOut: true, spreadOutDrivers: true, workerSelectionPolicy: 'CORES_FREE_DESC', maxDrivers: INT_MAX, driverCoresFraction: 1 },
  }));
  assert.deepEqual(plan.drivers.map((d) => d.resources), [{ gpu: 3, fpga: 3 }]);
  assert.deepEqual(plan.executors, [{ appId: 'app-0', workerId: 'w', epoch: 1, cores: 4, memoryMB: 1234, resources: { gpu: 3, fpga: 3 } }]);
});

test('an app with coresLeft below coresPerExecutor is skipped; the executor limit counts live executors', () => {
  const plan = planSchedulingPass(pass({
    workers: [worker('w', 16, 8192)],
    apps: [
      app('too-few-left', 3, 256, { coresPerExecutor: 4 }),
      app('at-limit', 8, 256, { executorLimit: 2, liveExecutors: 2 }),
      app('one-more', 8, 256, { coresPerExecutor: 2, executorLimit: 3, liveExecutors: 2 }),
    ],
  }));
  assert.deepEqual(plan.executors.map((e) => [e.appId, e.cores]), [['one-more', 2]]);
});

test('Spark\'s "App X requires more resource" warning: only with a single waiting app that has no executors', () => {
  const workers = [worker('w', 4, 1024)];
  const lone = planSchedulingPass(pass({ workers, apps: [app('huge', 8, 4096)] }));
  assert.deepEqual(lone.warnings, ['App huge requires more resource than any of Workers could have.']);
  const withExecutors = planSchedulingPass(pass({ workers, apps: [app('huge', 8, 4096, { liveExecutors: 1 })] }));
  assert.deepEqual(withExecutors.warnings, []);
  const two = planSchedulingPass(pass({ workers, apps: [app('huge', 8, 4096), app('small', 1, 64)] }));
  assert.deepEqual(two.warnings, []);
  assert.deepEqual(two.executors.map((e) => e.appId), ['small']);
});

test('the snapshot is not changed by a pass', () => {
  const input = pass({
    workers: [worker('w1', 8, 4096, { gpu: 2 }), worker('w2', 8, 4096)],
    drivers: [driver('d', 1, 512, { gpu: 1 })],
    apps: [app('a', 6, 512), app('b', 6, 512, { coresPerExecutor: 2 })],
  });
  const before = structuredClone(input.workers.concat());
  const appsBefore = structuredClone(input.apps.concat());
  const plan = planSchedulingPass(input);
  assert.ok(plan.executors.length > 0 && plan.drivers.length === 1);
  assert.deepEqual(input.workers, before);
  assert.deepEqual(input.apps, appsBefore);
});

test('a malformed app is skipped with a warning and the others are still scheduled', () => {
  const plan = planSchedulingPass(pass({
    workers: [worker('w', 4, 1024)],
    apps: [app('broken', 4, 256, { coresPerExecutor: 0 }), app('fine', 2, 256)],
  }));
  assert.deepEqual(plan.executors.map((e) => e.appId), ['fine']);
  assert.deepEqual(plan.warnings, ['app broken: coresPerExecutor must be a positive integer or unset, got 0; skipped in this pass']);
});

test('a pass over 1,000 workers and 1,000 apps (timing reported, not asserted)', (t) => {
  const workers = Array.from({ length: 1000 }, (_, i) => worker(`worker-${String(i).padStart(4, '0')}`, 16 + (i % 9), 16384 + (i % 7) * 1024, i % 4 === 0 ? { gpu: 2 } : {}));
  const apps = Array.from({ length: 1000 }, (_, i) =>
    app(`app-${i}`, 4 + (i % 13), 512 + (i % 5) * 256, i % 3 === 0 ? { coresPerExecutor: 1 + (i % 4) } : {}));
  const drivers = Array.from({ length: 200 }, (_, i) => driver(`driver-${i}`, 1 + (i % 2), 512));
  const input = pass({ workers, apps, drivers, config: { spreadOut: true, spreadOutDrivers: true, workerSelectionPolicy: 'CORES_FREE_DESC', maxDrivers: INT_MAX, driverCoresFraction: 1 } });
  for (let i = 0; i < 3; i++) planSchedulingPass(input); // warm up the JIT: a master runs passes all day
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const plan = planSchedulingPass(input);
  const cpu = process.cpuUsage(cpuBefore);
  const elapsed = performance.now() - started;
  // CPU time as well as wall time: on a shared machine the wall clock includes waiting for a core
  t.diagnostic(`1000 workers x 1000 apps + 200 drivers: ${elapsed.toFixed(1)} ms wall, ${((cpu.user + cpu.system) / 1000).toFixed(1)} ms CPU, ${plan.executors.length} executors, ${plan.drivers.length} drivers`);
  assert.equal(plan.drivers.length, 200);
  // every app wants at most 16 cores and the cluster has ~20,000: every app gets all it can use
  // (with coresPerExecutor, whole executors only)
  const granted = new Map<string, number>();
  for (const e of plan.executors) granted.set(e.appId, (granted.get(e.appId) ?? 0) + e.cores);
  for (const a of apps) {
    const usable = a.coresPerExecutor ? Math.floor(a.coresLeft / a.coresPerExecutor) * a.coresPerExecutor : a.coresLeft;
    assert.equal(granted.get(a.id), usable, a.id);
  }
});
