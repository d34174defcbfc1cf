/**
 * Driver placement: Spark's driver scenarios (SPARK-46800 spread / no spread,
 * SPARK-45174 max drivers, driver resources) plus the round-robin details of
 * schedule(), drivers that fit nowhere, and Flint's SPARK-27750 guard.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { scheduleDrivers, shuffleWith, type DriverSchedulingInput } from '../../functions/core/schedule-drivers.ts';
import type { DriverSnapshot, WorkerSnapshot } from '../../functions/core/types.ts';
import { seeded } from '../helpers/seeded-random.ts';

const INT_MAX = 2147483647;

function worker(id: string, cores: number, memoryMB: number, extra: Partial<WorkerSnapshot> = {}): WorkerSnapshot {
  return { id, host: '127.0.0.1', port: 7078, coresFree: cores, coresTotal: cores, memoryFreeMB: memoryMB, resourcesFree: {}, epoch: 3, ...extra };
}

function driver(id: string, cores: number, memoryMB: number, resources: Record<string, number> = {}): DriverSnapshot {
  return { id, cores, memoryMB, resourceReqs: Object.entries(resources).map(([name, amount]) => ({ name, amount })) };
}

function input(over: Partial<DriverSchedulingInput>): DriverSchedulingInput {
  return {
    workers: [],
    drivers: [],
    runningDrivers: 0,
    driverCoresInUse: 0,
    spreadOutDrivers: true,
    maxDrivers: INT_MAX,
    driverCoresFraction: 1,
    random: seeded(1),
    ...over,
  };
}

const countPerWorker = (ids: string[], placements: { workerId: string }[]) => ids.map((id) => placements.filter((p) => p.workerId === id).length);

describe('SPARK-46800 (verifyDrivers): three 512 MB / 10 core workers, three 1-core 1 MB drivers', () => {
  const workers = [worker('w1', 10, 512), worker('w2', 10, 512), worker('w3', 10, 512)];
  const drivers = [1, 2, 3].map((i) => driver(`driver${i}`, 1, 1));

  test('SPARK-46800: schedule to spread out drivers', () => {
    for (const seed of [1, 2, 3, 42, 1234]) {
      const result = scheduleDrivers(input({ workers, drivers, random: seeded(seed) }));
      assert.equal(result.placements.length, 3);
      assert.deepEqual(countPerWorker(['w1', 'w2', 'w3'], result.placements), [1, 1, 1], `seed ${seed}`);
    }
  });

  test('SPARK-46800: schedule not to spread out drivers', () => {
    const result = scheduleDrivers(input({ workers: workers.slice().reverse(), drivers, spreadOutDrivers: false }));
    assert.deepEqual(countPerWorker(['w1', 'w2', 'w3'], result.placements), [3, 0, 0]);
    assert.deepEqual(result.warnings, []);
  });
});

test('SPARK-45174: scheduling with max drivers', () => {
  for (const spreadOutDrivers of [true, false]) {
    const workers = [worker('w', 10, 512)];
    const first = scheduleDrivers(input({ workers, drivers: [1, 2, 3].map((i) => driver(`driver${i}`, 1, 1)), maxDrivers: 4, spreadOutDrivers }));
    assert.equal(first.placements.length, 3);
    // three more arrive; three already run, so one more may start and two keep waiting
    const second = scheduleDrivers(input({
      workers: first.workersAfter,
      drivers: [4, 5, 6].map((i) => driver(`driver${i}`, 1, 1)),
      runningDrivers: 3,
      maxDrivers: 4,
      spreadOutDrivers,
    }));
    assert.deepEqual(second.placements.map((p) => p.driverId), ['driver4']);
    assert.deepEqual(second.warnings, [], 'at the cap Spark waits without a warning');
  }
});

test('spread out: round-robin over the shuffled workers, curPos moving past the worker that took the last driver', () => {
  const workers = ['a', 'b', 'c', 'd'].map((id) => worker(id, 8, 8192));
  const shuffledIds = shuffleWith(workers, seeded(7)).map((w) => w.id);
  const drivers = [1, 2, 3, 4, 5, 6].map((i) => driver(`d${i}`, 1, 256));
  const result = scheduleDrivers(input({ workers, drivers, random: seeded(7) }));
  assert.deepEqual(result.placements.map((p) => p.workerId), [0, 1, 2, 3, 0, 1].map((i) => shuffledIds[i]));

  // the second shuffled worker is full: d2 skips it and lands on the third; d3 then starts at the fourth
  const full = shuffledIds[1];
  const crowded = workers.map((w) => (w.id === full ? { ...w, coresFree: 0, hasWork: true } : w));
  const skipping = scheduleDrivers(input({ workers: crowded, drivers: drivers.slice(0, 3), random: seeded(7) }));
  assert.deepEqual(skipping.placements.map((p) => p.workerId), [shuffledIds[0], shuffledIds[2], shuffledIds[3]]);
});

test('a placed driver takes its cores, memory and resources from the worker (assign resources to driver)', () => {
  // Spark's "assign/recycle resources to/from driver": 10 cores, 1024 MB, 3 gpu, 3 fpga; driver 3 cores, 100 MB, 3 gpu, 3 fpga
  const w = worker('w', 10, 1024, { resourcesFree: { gpu: 3, fpga: 3 } });
  const result = scheduleDrivers(input({ workers: [w], drivers: [driver('driver-0', 3, 100, { gpu: 3, fpga: 3 })] }));
  assert.deepEqual(result.placements, [{ driverId: 'driver-0', workerId: 'w', epoch: 3, cores: 3, memoryMB: 100, resources: { gpu: 3, fpga: 3 } }]);
  assert.deepEqual(result.workersAfter[0].resourcesFree, { gpu: 0, fpga: 0 });
  assert.equal(result.workersAfter[0].coresFree, 7);
  assert.equal(result.workersAfter[0].memoryFreeMB, 924);
  assert.equal(result.workersAfter[0].hasWork, true);
  assert.deepEqual(w.resourcesFree, { gpu: 3, fpga: 3 }, 'the snapshot is not changed');
});

describe('a driver that fits nowhere keeps waiting', () => {
  const workers = [worker('a', 4, 1024), worker('b', 4, 1024)];
  const big = driver('driver-big', 8, 512);
  const small = driver('driver-small', 1, 128);

  test('spread out: not placed, Spark\'s warning when the last worker visited is idle, later drivers still go', () => {
    const result = scheduleDrivers(input({ workers, drivers: [big, small] }));
    assert.deepEqual(result.placements.map((p) => p.driverId), ['driver-small']);
    assert.deepEqual(result.warnings, ['Driver driver-big requires more resource than any of Workers could have.']);
  });

  test('spread out: no warning when the last worker visited already has work (the cluster is busy, not too small)', () => {
    const busy = workers.map((w) => ({ ...w, hasWork: true }));
    const result = scheduleDrivers(input({ workers: busy, drivers: [big] }));
    assert.deepEqual(result.placements, []);
    assert.deepEqual(result.warnings, []);
  });

  test('spread out with no alive worker: Spark warns too', () => {
    const result = scheduleDrivers(input({ workers: [], drivers: [small] }));
    assert.deepEqual(result.placements, []);
    assert.deepEqual(result.warnings, ['Driver driver-small requires more resource than any of Workers could have.']);
  });

  test('first fit: warned whenever no worker fits', () => {
    const busy = workers.map((w) => ({ ...w, hasWork: true }));
    const result = scheduleDrivers(input({ workers: busy, drivers: [big, small], spreadOutDrivers: false }));
    assert.deepEqual(result.placements.map((p) => [p.driverId, p.workerId]), [['driver-small', 'a']]);
    assert.deepEqual(result.warnings, ['Driver driver-big requires more resource than any of Workers could have.']);
  });

  test('a driver needing a resource no worker has waits', () => {
    const result = scheduleDrivers(input({ workers, drivers: [driver('driver-gpu', 1, 1, { gpu: 1 })], spreadOutDrivers: false }));
    assert.deepEqual(result.placements, []);
    assert.equal(result.warnings.length, 1);
  });
});

describe('SPARK-27750 guard: driverCoresFraction', () => {
  const workers = [worker('a', 4, 8192), worker('b', 4, 8192)]; // 8 alive cores
  const drivers = [1, 2, 3].map((i) => driver(`d${i}`, 2, 256));

  test('fraction 1 is Spark: drivers may take every core', () => {
    const result = scheduleDrivers(input({ workers, drivers: [...drivers, driver('d4', 2, 256)] }));
    assert.equal(result.placements.length, 4);
  });

  test('fraction 0.5: drivers hold at most 4 of 8 cores; the one that would cross waits with a warning', () => {
    for (const spreadOutDrivers of [true, false]) {
      const result = scheduleDrivers(input({ workers, drivers, driverCoresFraction: 0.5, spreadOutDrivers }));
      assert.deepEqual(result.placements.map((p) => p.driverId), ['d1', 'd2']);
      assert.equal(result.warnings.length, 1);
      assert.match(result.warnings[0], /^Driver d3 waits: drivers would hold more than 0\.5 of the alive cores \(4\)/);
    }
  });

  test('cores of running drivers count; a smaller driver behind a blocked one may still go', () => {
    const result = scheduleDrivers(input({
      workers: [worker('a', 1, 8192, { coresTotal: 4 }), worker('b', 4, 8192)],
      drivers: [driver('d-big', 2, 256), driver('d-one', 1, 256)],
      runningDrivers: 1,
      driverCoresInUse: 3,
      driverCoresFraction: 0.5,
    }));
    assert.deepEqual(result.placements.map((p) => p.driverId), ['d-one']);
  });

  test('without coresTotal the guard uses free cores + running driver cores (a lower bound)', () => {
    const noTotals = [worker('a', 2, 8192, { coresTotal: undefined }), worker('b', 4, 8192, { coresTotal: undefined })];
    // bound = 6 free + 2 in use = 8 -> at most 4 driver cores; 2 in use leaves room for one 2-core driver
    const result = scheduleDrivers(input({ workers: noTotals, drivers, driverCoresInUse: 2, runningDrivers: 1, driverCoresFraction: 0.5 }));
    assert.deepEqual(result.placements.map((p) => p.driverId), ['d1']);
  });
});

test('bad input gets a clear error or a warning, never a crash', () => {
  const workers = [worker('a', 4, 1024)];
  assert.throws(() => scheduleDrivers(input({ workers, driverCoresFraction: 0 })), /driverCoresFraction must be in \(0, 1\]/);
  assert.throws(() => scheduleDrivers(input({ workers, driverCoresFraction: 1.5 })), /driverCoresFraction must be in \(0, 1\]/);
  assert.throws(() => scheduleDrivers(input({ workers, maxDrivers: 0 })), /maxDrivers must be >= 1/);
  assert.throws(
    () => scheduleDrivers(input({ workers: [worker('a', 1, 1), worker('b', 1, 1)], drivers: [driver('d', 1, 1)], random: () => 1 })),
    /random\(\) must return a number in \[0, 1\)/,
  );
  const result = scheduleDrivers(input({ workers, drivers: [driver('broken', 0, 10), driver('fine', 1, 10)] }));
  assert.deepEqual(result.placements.map((p) => p.driverId), ['fine']);
  assert.deepEqual(result.warnings, ['driver broken: cores must be a positive integer, got 0; it keeps waiting']);
});
