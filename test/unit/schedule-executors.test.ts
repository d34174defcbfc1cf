/**
 * Executor placement against Spark's own scheduling scenarios (MasterSuite /
 * MasterSuiteBase, WorkerSelectionSuite): same cluster, same apps, same expected
 * core arrays. Spark's suite uses three workers of 10 cores and 512 MB.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  allocateExecutors,
  canLaunchExecutor,
  orderUsableWorkers,
  scheduleExecutorsOnWorkers,
} from '../../functions/core/schedule-executors.ts';
import { planSchedulingPass } from '../../functions/core/plan-pass.ts';
import type { AppSnapshot, WorkerSnapshot } from '../../functions/core/types.ts';
import type { WorkerSelectionPolicy } from '../../protocol/config.ts';

/** Spark's defaultCores (Int.MaxValue): coresLeft of an app without spark.cores.max. */
const INT_MAX = 2147483647;

function worker(id: string, cores: number, memoryMB: number, resources: Record<string, number> = {}): WorkerSnapshot {
  return { id, host: '127.0.0.1', port: 7078, coresFree: cores, coresTotal: cores, memoryFreeMB: memoryMB, resourcesFree: resources, epoch: 1 };
}

/** makeAppInfo as in MasterSuiteBase: memory per executor, optional cores per executor, max cores, resources. */
function makeApp(
  memoryPerExecutorMB: number,
  opts: { coresPerExecutor?: number; maxCores?: number; executorLimit?: number; resources?: Record<string, number> } = {},
): AppSnapshot {
  return {
    id: 'app-test',
    coresLeft: opts.maxCores ?? INT_MAX,
    coresPerExecutor: opts.coresPerExecutor,
    memoryPerExecutorMB,
    resourcesPerExecutor: Object.entries(opts.resources ?? {}).map(([name, amount]) => ({ name, amount })),
    executorLimit: opts.executorLimit ?? Infinity,
    liveExecutors: 0,
  };
}

/** Spark's workerInfos: the same 512 MB / 10 core worker three times. */
const sparkWorkers = (): WorkerSnapshot[] => [worker('w1', 10, 512), worker('w2', 10, 512), worker('w3', 10, 512)];

const schedule = (app: AppSnapshot, spreadOut: boolean) => scheduleExecutorsOnWorkers(app, sparkWorkers(), spreadOut);

for (const spreadOut of [true, false]) {
  const mode = spreadOut ? 'spread out' : 'no spread out';
  describe(`MasterSuite scenarios - ${mode}`, () => {
    test(`basic scheduling - ${mode}`, () => {
      assert.deepEqual(schedule(makeApp(128), spreadOut), [10, 10, 10]);
    });

    test(`basic scheduling with more memory - ${mode}`, () => {
      assert.deepEqual(schedule(makeApp(384), spreadOut), [10, 10, 10]);
    });

    test(`scheduling with max cores - ${mode}`, () => {
      const cores1 = schedule(makeApp(128, { maxCores: 8 }), spreadOut);
      const cores2 = schedule(makeApp(128, { maxCores: 16 }), spreadOut);
      if (spreadOut) {
        assert.deepEqual(cores1, [3, 3, 2]);
        assert.deepEqual(cores2, [6, 5, 5]);
      } else {
        assert.deepEqual(cores1, [8, 0, 0]);
        assert.deepEqual(cores2, [10, 6, 0]);
      }
    });

    test(`scheduling with cores per executor - ${mode}`, () => {
      assert.deepEqual(schedule(makeApp(128, { coresPerExecutor: 2 }), spreadOut), [8, 8, 8]); // 4 * 2 because of memory limits
      assert.deepEqual(schedule(makeApp(32, { coresPerExecutor: 2 }), spreadOut), [10, 10, 10]); // 5 * 2
      assert.deepEqual(schedule(makeApp(32, { coresPerExecutor: 3 }), spreadOut), [9, 9, 9]); // 3 * 3
    });

    test(`scheduling with cores per executor AND max cores - ${mode}`, () => {
      const cores1 = schedule(makeApp(32, { coresPerExecutor: 2, maxCores: 4 }), spreadOut);
      const cores2 = schedule(makeApp(32, { coresPerExecutor: 2, maxCores: 20 }), spreadOut);
      const cores3 = schedule(makeApp(32, { coresPerExecutor: 3, maxCores: 20 }), spreadOut);
      if (spreadOut) {
        assert.deepEqual(cores1, [2, 2, 0]);
        assert.deepEqual(cores2, [8, 6, 6]);
        assert.deepEqual(cores3, [6, 6, 6]);
      } else {
        assert.deepEqual(cores1, [4, 0, 0]);
        assert.deepEqual(cores2, [10, 10, 0]);
        assert.deepEqual(cores3, [9, 9, 0]);
      }
    });

    test(`scheduling with executor limit - ${mode}`, () => {
      assert.deepEqual(schedule(makeApp(32, { executorLimit: 0 }), spreadOut), [0, 0, 0]);
      assert.deepEqual(schedule(makeApp(32, { executorLimit: 2 }), spreadOut), [10, 10, 0]);
      assert.deepEqual(schedule(makeApp(32, { executorLimit: 5 }), spreadOut), [10, 10, 10]);
    });

    test(`scheduling with executor limit AND max cores - ${mode}`, () => {
      const at = (limit: number) => schedule(makeApp(32, { maxCores: 16, executorLimit: limit }), spreadOut);
      assert.deepEqual(at(0), [0, 0, 0]);
      if (spreadOut) {
        assert.deepEqual(at(2), [8, 8, 0]);
        assert.deepEqual(at(5), [6, 5, 5]);
      } else {
        assert.deepEqual(at(2), [10, 6, 0]);
        assert.deepEqual(at(5), [10, 6, 0]);
      }
    });

    test(`scheduling with executor limit AND cores per executor - ${mode}`, () => {
      const at = (limit: number) => schedule(makeApp(32, { coresPerExecutor: 4, executorLimit: limit }), spreadOut);
      assert.deepEqual(at(0), [0, 0, 0]);
      assert.deepEqual(at(2), spreadOut ? [4, 4, 0] : [8, 0, 0]);
      assert.deepEqual(at(5), [8, 8, 4]);
    });

    test(`scheduling with executor limit AND cores per executor AND max cores - ${mode}`, () => {
      const at = (limit: number) => schedule(makeApp(32, { coresPerExecutor: 4, maxCores: 18, executorLimit: limit }), spreadOut);
      assert.deepEqual(at(0), [0, 0, 0]);
      if (spreadOut) {
        assert.deepEqual(at(2), [4, 4, 0]);
        assert.deepEqual(at(5), [8, 4, 4]);
      } else {
        assert.deepEqual(at(2), [8, 0, 0]);
        assert.deepEqual(at(5), [8, 8, 0]);
      }
    });
  });
}

test('the executor limit counts executors the app already has', () => {
  // limit 5 with 3 live executors leaves room for 2 new ones (Spark: assigned + executorsForRpId < target)
  const app = { ...makeApp(32, { coresPerExecutor: 4, executorLimit: 5 }), liveExecutors: 3 };
  assert.deepEqual(scheduleExecutorsOnWorkers(app, sparkWorkers(), true), [4, 4, 0]);
  assert.deepEqual(scheduleExecutorsOnWorkers({ ...app, liveExecutors: 5 }, sparkWorkers(), true), [0, 0, 0]);
});

test('SPARK-8881: cores are handed out coresPerExecutor at a time, so 16-core executors launch', () => {
  // Master.scala's worked example: 4 workers of 16 cores, cores.max = 48, executor.cores = 16
  const workers = ['a', 'b', 'c', 'd'].map((id) => worker(id, 16, 65536));
  const app = makeApp(1024, { coresPerExecutor: 16, maxCores: 48 });
  assert.deepEqual(scheduleExecutorsOnWorkers(app, workers, true), [16, 16, 16, 0]);
});

test('custom resources per executor limit the executors on each worker', () => {
  const workers = [worker('g1', 10, 4096, { gpu: 2 }), worker('g2', 10, 4096, { gpu: 2 }), worker('g3', 10, 4096, { gpu: 3 })];
  // 1 gpu per 2-core executor: at most 2 executors on a 2-gpu worker, 3 on the 3-gpu one
  const perExecutor = makeApp(256, { coresPerExecutor: 2, resources: { gpu: 1 } });
  assert.deepEqual(scheduleExecutorsOnWorkers(perExecutor, workers, true), [4, 4, 6]);
  assert.deepEqual(scheduleExecutorsOnWorkers(perExecutor, workers, false), [4, 4, 6]);
  // without coresPerExecutor there is one executor per worker, which takes every core but 1 gpu
  assert.deepEqual(scheduleExecutorsOnWorkers(makeApp(256, { resources: { gpu: 1 } }), workers, true), [10, 10, 10]);
  // a worker without the resource is not usable at all
  const noGpu = worker('plain', 10, 4096);
  assert.equal(canLaunchExecutor(noGpu, perExecutor), false);
  assert.deepEqual(orderUsableWorkers([noGpu, ...workers], perExecutor).map((w) => w.id), ['g3', 'g2', 'g1']);
});

test('assigned cores never exceed coresLeft or the free cores, and no usable worker means no cores', () => {
  assert.deepEqual(scheduleExecutorsOnWorkers(makeApp(32, { maxCores: 0 }), sparkWorkers(), true), [0, 0, 0]);
  assert.deepEqual(scheduleExecutorsOnWorkers(makeApp(32), [], true), []);
  const uneven = [worker('x', 3, 512), worker('y', 7, 512)];
  assert.deepEqual(scheduleExecutorsOnWorkers(makeApp(32, { coresPerExecutor: 2 }), uneven, true), [2, 6]);
});

test('a malformed app snapshot gets a clear error instead of an endless loop', () => {
  assert.throws(() => scheduleExecutorsOnWorkers(makeApp(32, { coresPerExecutor: 0 }), sparkWorkers(), true), /coresPerExecutor must be a positive integer/);
  assert.throws(() => scheduleExecutorsOnWorkers({ ...makeApp(32), coresLeft: -1 }, sparkWorkers(), true), /coresLeft must be a non-negative integer/);
  assert.throws(() => orderUsableWorkers(sparkWorkers(), makeApp(32), 'FASTEST' as WorkerSelectionPolicy), /unknown worker selection policy: FASTEST/);
});

describe('orderUsableWorkers', () => {
  const workers = [worker('b', 4, 2048), worker('c', 8, 1024), worker('a', 4, 4096), worker('tiny', 1, 64)];
  const app = makeApp(128, { coresPerExecutor: 2 });
  const order = (policy: WorkerSelectionPolicy) => orderUsableWorkers(workers, app, policy).map((w) => w.id);

  test('CORES_FREE_DESC (default): most free cores first, ties to the larger id first', () => {
    assert.deepEqual(orderUsableWorkers(workers, app).map((w) => w.id), ['c', 'b', 'a']);
    assert.deepEqual(order('CORES_FREE_DESC'), ['c', 'b', 'a']);
  });
  test('CORES_FREE_ASC, MEMORY_FREE_ASC, MEMORY_FREE_DESC, WORKER_ID', () => {
    assert.deepEqual(order('CORES_FREE_ASC'), ['a', 'b', 'c']);
    assert.deepEqual(order('MEMORY_FREE_ASC'), ['c', 'b', 'a']);
    assert.deepEqual(order('MEMORY_FREE_DESC'), ['a', 'b', 'c']);
    assert.deepEqual(order('WORKER_ID'), ['a', 'b', 'c']);
  });
  test('the filter is canLaunchExecutor and the input is left alone', () => {
    const before = structuredClone(workers);
    assert.equal(order('WORKER_ID').includes('tiny'), false);
    assert.deepEqual(workers, before);
  });
});

describe('allocateExecutors', () => {
  const w = worker('w', 10, 4096, { gpu: 4 });
  test('with coresPerExecutor the cores split into floor(assigned / cpe) executors of cpe cores', () => {
    const placements = allocateExecutors(makeApp(256, { coresPerExecutor: 3, resources: { gpu: 1 } }), w, 9);
    assert.equal(placements.length, 3);
    for (const p of placements) assert.deepEqual(p, { appId: 'app-test', workerId: 'w', epoch: 1, cores: 3, memoryMB: 256, resources: { gpu: 1 } });
  });
  test('without coresPerExecutor one executor takes every assigned core', () => {
    assert.deepEqual(allocateExecutors(makeApp(512), w, 7), [{ appId: 'app-test', workerId: 'w', epoch: 1, cores: 7, memoryMB: 512, resources: {} }]);
    assert.deepEqual(allocateExecutors(makeApp(512), w, 0), []);
  });
});

// SPARK-46881 (WorkerSelectionSuite): workers 10001..10003 with 5/6/7 cores and
// 1280/5120/3840 MB; an app of 128 MB, 2 cores per executor, cores.max 4 (two executors).
const selectionCases: Array<[WorkerSelectionPolicy, boolean, string[]]> = [
  ['CORES_FREE_ASC', true, ['10001', '10002']],
  ['CORES_FREE_ASC', false, ['10001']],
  ['CORES_FREE_DESC', true, ['10002', '10003']],
  ['CORES_FREE_DESC', false, ['10003']],
  ['MEMORY_FREE_ASC', true, ['10001', '10003']],
  ['MEMORY_FREE_ASC', false, ['10001']],
  ['MEMORY_FREE_DESC', true, ['10002', '10003']],
  ['MEMORY_FREE_DESC', false, ['10002']],
  ['WORKER_ID', true, ['10001', '10002']],
  ['WORKER_ID', false, ['10001']],
];
for (const [policy, spreadOut, expected] of selectionCases) {
  test(`SPARK-46881: scheduling with workerSelectionPolicy - ${policy} (${spreadOut})`, () => {
    const workers = [1, 2, 3].map((idx) => worker(String(10000 + idx), 4 + idx, 1280 * (idx < 2 ? idx : 6 - idx)));
    const plan = planSchedulingPass({
      workers,
      apps: [makeApp(128, { coresPerExecutor: 2, maxCores: 4 })],
      drivers: [],
      runningDrivers: 0,
      driverCoresInUse: 0,
      config: { spreadOut, spreadOutDrivers: true, workerSelectionPolicy: policy, maxDrivers: INT_MAX, driverCoresFraction: 1 },
      random: () => 0,
    });
    assert.equal(plan.executors.length, 2);
    assert.deepEqual([...new Set(plan.executors.map((e) => e.workerId))].sort(), expected);
  });
}
