/**
 * Property tests of the scheduling core over random clusters, apps and drivers:
 * nothing over-committed, no app past cores.max or its executor limit, executors
 * shaped as asked, the driver cap and guard kept, the optimised pass equal to the
 * plain transliteration of Spark's startExecutorsOnWorkers, and determinism per seed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { planSchedulingPass, type SchedulingPassInput, type SchedulingPassPlan } from '../../functions/core/plan-pass.ts';
import {
  allocateExecutors,
  appSnapshotProblem,
  deductFromWorker,
  orderUsableWorkers,
  resourceTotals,
  scheduleExecutorsOnWorkers,
  WORKER_SELECTION_POLICIES,
} from '../../functions/core/schedule-executors.ts';
import { aliveCoresTotal, scheduleDrivers } from '../../functions/core/schedule-drivers.ts';
import type { AppSnapshot, DriverSnapshot, ExecutorPlacement, WorkerSnapshot } from '../../functions/core/types.ts';
import type { ResourceRequirement } from '../../protocol/messages.ts';
import { seeded } from '../helpers/seeded-random.ts';

const NUM_RUNS = 300;
const RESOURCE_NAMES = ['gpu', 'fpga'];

// plain objects (fast-check may build null-prototype ones, which structuredClone would not keep)
const resourcesArb = fc
  .record({ gpu: fc.integer({ min: 0, max: 4 }), fpga: fc.integer({ min: 0, max: 2 }) }, { requiredKeys: [] })
  .map((r): Record<string, number> => ({ ...r }));
const reqsArb: fc.Arbitrary<ResourceRequirement[]> = fc
  .subarray(RESOURCE_NAMES, { maxLength: 2 })
  .chain((names) => fc.tuple(...names.map((name) => fc.integer({ min: 1, max: 2 }).map((amount) => ({ name, amount })))))
  .map((reqs) => [...reqs]);
const noReqs = fc.constant<ResourceRequirement[]>([]);

const workersArbOf = (maxLength: number, minLength = 0) => fc.array(
  fc.record({
    coresFree: fc.integer({ min: 0, max: 16 }),
    coresUsed: fc.integer({ min: 0, max: 8 }),
    memoryFreeMB: fc.integer({ min: 0, max: 16 }).map((n) => n * 256),
    resourcesFree: resourcesArb,
    epoch: fc.integer({ min: 1, max: 5 }),
    hasWork: fc.boolean(),
  }),
  { minLength, maxLength },
).map((ws) => ws.map((w, i): WorkerSnapshot => ({
  // ids in an order unrelated to the array order, so sorting by id matters
  id: `w${String((i * 37) % 101).padStart(3, '0')}`,
  host: '127.0.0.1',
  port: 7000 + i,
  coresFree: w.coresFree,
  coresTotal: w.coresFree + w.coresUsed,
  memoryFreeMB: w.memoryFreeMB,
  resourcesFree: w.resourcesFree,
  epoch: w.epoch,
  hasWork: w.hasWork,
})));
const workersArb = workersArbOf(12);

const appsArbOf = (maxLength: number) => fc.array(
  fc.record({
    coresLeft: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.constant(2147483647)),
    coresPerExecutor: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
    memoryPerExecutorMB: fc.integer({ min: 0, max: 8 }).map((n) => n * 256),
    resourcesPerExecutor: fc.oneof({ weight: 3, arbitrary: noReqs }, { weight: 1, arbitrary: reqsArb }),
    executorLimit: fc.oneof(fc.constant(Infinity), fc.integer({ min: 0, max: 8 })),
    liveExecutors: fc.integer({ min: 0, max: 3 }),
  }),
  { maxLength },
).map((as) => as.map((a, i): AppSnapshot => ({ id: `app-${i}`, ...a })));
const appsArb = appsArbOf(6);

const driversArb = fc.array(
  fc.record({
    cores: fc.integer({ min: 1, max: 8 }),
    memoryMB: fc.integer({ min: 0, max: 8 }).map((n) => n * 256),
    resourceReqs: fc.oneof({ weight: 3, arbitrary: noReqs }, { weight: 1, arbitrary: reqsArb }),
  }),
  { maxLength: 6 },
).map((ds) => ds.map((d, i): DriverSnapshot => ({ id: `driver-${i}`, ...d })));

const passArbOf = (workers: ReturnType<typeof workersArbOf>, apps: ReturnType<typeof appsArbOf>) => fc.record({
  workers,
  apps,
  drivers: driversArb,
  runningDrivers: fc.integer({ min: 0, max: 4 }),
  driverCoresInUse: fc.integer({ min: 0, max: 8 }),
  spreadOut: fc.boolean(),
  spreadOutDrivers: fc.boolean(),
  workerSelectionPolicy: fc.constantFrom(...WORKER_SELECTION_POLICIES),
  maxDrivers: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constant(2147483647)),
  driverCoresFraction: fc.oneof(fc.constant(1), fc.double({ min: 0.05, max: 1, noNaN: true })),
  seed: fc.integer(),
});
const passArb = passArbOf(workersArb, appsArb);
/** larger clusters, where one app may touch more workers than the pass re-inserts one by one */
const largePassArb = passArbOf(workersArbOf(90, 40), appsArbOf(12));

type PassCase = typeof passArb extends fc.Arbitrary<infer T> ? T : never;

function toInput(c: PassCase): SchedulingPassInput {
  return {
    workers: c.workers,
    apps: c.apps,
    drivers: c.drivers,
    runningDrivers: c.runningDrivers,
    driverCoresInUse: c.driverCoresInUse,
    config: {
      spreadOut: c.spreadOut,
      spreadOutDrivers: c.spreadOutDrivers,
      workerSelectionPolicy: c.workerSelectionPolicy,
      maxDrivers: c.maxDrivers,
      driverCoresFraction: c.driverCoresFraction,
    },
    random: seeded(c.seed),
  };
}

/**
 * referencePass: startExecutorsOnWorkers written as plainly as Spark writes it (filter
 * and sort every worker for every app, plan on the full usable list), to check the
 * optimised pass gives the same placements.
 */
function referencePass(input: SchedulingPassInput): SchedulingPassPlan {
  const { config } = input;
  const driverResult = scheduleDrivers({ ...input, ...config });
  const workers = driverResult.workersAfter;
  const warnings = driverResult.warnings.slice();
  const executors: ExecutorPlacement[] = [];
  for (const snapshot of input.apps) {
    const problem = appSnapshotProblem(snapshot);
    if (problem !== undefined) {
      warnings.push(`${problem}; skipped in this pass`);
      continue;
    }
    const app = { ...snapshot };
    if (app.coresLeft < (app.coresPerExecutor ?? 1)) continue;
    const usable = orderUsableWorkers(workers, app, config.workerSelectionPolicy);
    if (input.apps.length === 1 && app.liveExecutors === 0 && usable.length === 0) {
      warnings.push(`App ${app.id} requires more resource than any of Workers could have.`);
    }
    const assigned = scheduleExecutorsOnWorkers(app, usable, config.spreadOut);
    usable.forEach((worker, pos) => {
      for (const placement of allocateExecutors(app, worker, assigned[pos])) {
        deductFromWorker(worker, placement);
        app.coresLeft -= placement.cores;
        app.liveExecutors += 1;
        executors.push(placement);
      }
    });
  }
  return { drivers: driverResult.placements, executors, warnings };
}

test('a pass never over-commits a worker, never exceeds an app\'s cores or executor limit, and shapes executors as asked', () => {
  fc.assert(
    fc.property(passArb, (c) => {
      const plan = planSchedulingPass(toInput(c));
      const byId = new Map(c.workers.map((w) => [w.id, w]));

      // workers: cores, memory and every resource stay within what was free
      const used = new Map<string, { cores: number; memory: number; resources: Record<string, number> }>();
      for (const p of [...plan.drivers, ...plan.executors]) {
        const w = byId.get(p.workerId);
        assert.ok(w, `placement on unknown worker ${p.workerId}`);
        assert.equal(p.epoch, w.epoch);
        const u = used.get(p.workerId) ?? { cores: 0, memory: 0, resources: {} };
        u.cores += p.cores;
        u.memory += p.memoryMB;
        for (const [name, amount] of Object.entries(p.resources)) u.resources[name] = (u.resources[name] ?? 0) + amount;
        used.set(p.workerId, u);
      }
      for (const [id, u] of used) {
        const w = byId.get(id)!;
        assert.ok(u.cores <= w.coresFree, `${id}: ${u.cores} cores placed, ${w.coresFree} free`);
        assert.ok(u.memory <= w.memoryFreeMB, `${id}: ${u.memory} MB placed, ${w.memoryFreeMB} free`);
        for (const [name, amount] of Object.entries(u.resources)) {
          assert.ok(amount <= (w.resourcesFree[name] ?? 0), `${id}: ${amount} ${name} placed, ${w.resourcesFree[name] ?? 0} free`);
        }
      }

      // apps: within cores.max and the executor limit; executors shaped as the app asked
      for (const app of c.apps) {
        const mine = plan.executors.filter((e) => e.appId === app.id);
        const cores = mine.reduce((sum, e) => sum + e.cores, 0);
        assert.ok(cores <= app.coresLeft, `${app.id}: ${cores} cores granted, ${app.coresLeft} left`);
        if (mine.length > 0) assert.ok(app.liveExecutors + mine.length <= app.executorLimit, `${app.id}: over its executor limit`);
        for (const e of mine) {
          assert.ok(e.cores >= 1);
          if (app.coresPerExecutor !== undefined) assert.equal(e.cores, app.coresPerExecutor);
          assert.equal(e.memoryMB, app.memoryPerExecutorMB);
          assert.deepEqual(e.resources, resourceTotals(app.resourcesPerExecutor));
        }
        if (app.coresPerExecutor === undefined) {
          const workersUsed = new Set(mine.map((e) => e.workerId));
          assert.equal(workersUsed.size, mine.length, `${app.id}: one executor per worker per pass without coresPerExecutor`);
        }
      }
    }),
    { numRuns: NUM_RUNS },
  );
});

test('drivers: each placed at most once, the maxDrivers cap and the driver-cores guard hold', () => {
  fc.assert(
    fc.property(passArb, (c) => {
      const plan = planSchedulingPass(toInput(c));
      const ids = plan.drivers.map((d) => d.driverId);
      assert.equal(new Set(ids).size, ids.length);
      for (const d of plan.drivers) {
        const wanted = c.drivers.find((x) => x.id === d.driverId);
        assert.ok(wanted);
        assert.equal(d.cores, wanted.cores);
        assert.equal(d.memoryMB, wanted.memoryMB);
      }
      if (plan.drivers.length > 0) {
        assert.ok(c.runningDrivers + plan.drivers.length <= c.maxDrivers, 'over spark.deploy.maxDrivers');
      }
      if (c.driverCoresFraction < 1 && plan.drivers.length > 0) {
        const held = c.driverCoresInUse + plan.drivers.reduce((sum, d) => sum + d.cores, 0);
        const allowed = c.driverCoresFraction * aliveCoresTotal(c.workers, c.driverCoresInUse);
        assert.ok(held <= allowed + 1e-9, `drivers hold ${held} cores, at most ${allowed} allowed`);
      }
    }),
    { numRuns: NUM_RUNS },
  );
});

test('the pass equals the plain full-list transliteration of Spark\'s startExecutorsOnWorkers', () => {
  fc.assert(
    fc.property(passArb, (c) => {
      assert.deepEqual(planSchedulingPass(toInput(c)), referencePass(toInput(c)));
    }),
    { numRuns: NUM_RUNS * 3 },
  );
  fc.assert(
    fc.property(largePassArb, (c) => {
      assert.deepEqual(planSchedulingPass(toInput(c)), referencePass(toInput(c)));
    }),
    { numRuns: NUM_RUNS },
  );
});

test('a pass is deterministic for a given random seed and leaves its input unchanged', () => {
  fc.assert(
    fc.property(passArb, (c) => {
      const input = toInput(c);
      const before = structuredClone({ workers: input.workers, apps: input.apps, drivers: input.drivers });
      const first = planSchedulingPass(input);
      const second = planSchedulingPass(toInput(c));
      assert.deepEqual(first, second);
      assert.deepEqual({ workers: input.workers, apps: input.apps, drivers: input.drivers }, before);
    }),
    { numRuns: NUM_RUNS },
  );
});

test('scheduleExecutorsOnWorkers alone: steps of minCores, within each worker\'s free cores and min(coresLeft, total free)', () => {
  fc.assert(
    fc.property(workersArb, appsArb.filter((as) => as.length > 0), fc.boolean(), (workers, apps, spreadOut) => {
      const app = apps[0];
      const usable = orderUsableWorkers(workers, app);
      const assigned = scheduleExecutorsOnWorkers(app, usable, spreadOut);
      const minCores = app.coresPerExecutor ?? 1;
      const totalFree = usable.reduce((sum, w) => sum + w.coresFree, 0);
      assert.equal(assigned.length, usable.length);
      assigned.forEach((cores, pos) => {
        assert.equal(cores % minCores, 0);
        assert.ok(cores <= usable[pos].coresFree);
      });
      assert.ok(assigned.reduce((a, b) => a + b, 0) <= Math.min(app.coresLeft, totalFree));
    }),
    { numRuns: NUM_RUNS },
  );
});
