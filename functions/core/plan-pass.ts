/**
 * One scheduling pass, as data: Spark Standalone's `schedule()` (drivers first, then
 * executors FIFO over the apps) over a snapshot, returning every placement the pass
 * decides. The caller commits them (commitPlacements re-checks each one).
 *
 * The pass works on copies: each placement is deducted from the copy of its worker
 * (cores, memory, custom resources) before the next driver or app is considered, and
 * each app's coresLeft and liveExecutors move with its own placements, exactly as
 * Spark's in-memory WorkerInfo and ApplicationInfo change during schedule().
 *
 * Cost, and why it is still Spark's result: two observations keep a pass near
 * O(apps x workers) plus O(placements), O(apps x workers log workers) at worst.
 *  1. Only a prefix of the usable workers can receive cores. Every worker that gets
 *     cores gets its first step (minCores = coresPerExecutor ?? 1) in the first round,
 *     in order, and opens a new executor with it; so at most
 *     k = min(floor(coresLeft / minCores), executorLimit - liveExecutors) workers are
 *     touched, always the first k usable ones, and with only them coresToAssign still
 *     allows every step the full list would. The pass therefore hands
 *     scheduleExecutorsOnWorkers the first k usable workers; the result is identical
 *     (a property test compares it with the plain full-list computation).
 *  2. The workers are kept in policy order across apps: after an app only the workers
 *     it touched have changed, and only they move (binary insertion for a few, a merge
 *     for many). Ids are ranked once per pass so comparisons are on numbers. Once no
 *     cores are free at all, later apps are passed over at once.
 */
import type { WorkerSelectionPolicy } from '../../protocol/config.ts';
import type { AppSnapshot, DriverPlacement, DriverSnapshot, ExecutorPlacement, WorkerSnapshot } from './types.ts';
import {
  allocateExecutors,
  appSnapshotProblem,
  WORKER_SELECTION_POLICIES,
  executorFitChecker,
  deductFromWorker,
  scheduleExecutorsOnWorkers,
} from './schedule-executors.ts';
import { scheduleDrivers } from './schedule-drivers.ts';

/** SchedulingPassConfig: the scheduling keys of FlintConfig a pass needs. */
export interface SchedulingPassConfig {
  /** spark.deploy.spreadOut */
  spreadOut: boolean;
  /** spark.deploy.spreadOutDrivers */
  spreadOutDrivers: boolean;
  /** spark.deploy.workerSelectionPolicy */
  workerSelectionPolicy: WorkerSelectionPolicy;
  /** spark.deploy.maxDrivers */
  maxDrivers: number;
  /** spark.flint.deploy.driverCoresFraction (1 = Spark's behaviour) */
  driverCoresFraction: number;
}

/** SchedulingPassInput: the snapshot a pass decides on; nothing in it is changed. */
export interface SchedulingPassInput {
  /** ALIVE workers only */
  workers: readonly WorkerSnapshot[];
  /** active apps in scheduling order (FIFO, Flint's priority on top) */
  apps: readonly AppSnapshot[];
  /** waiting drivers, FIFO */
  drivers: readonly DriverSnapshot[];
  /** drivers already RUNNING */
  runningDrivers: number;
  /** cores held by running drivers */
  driverCoresInUse: number;
  config: SchedulingPassConfig;
  /** uniform in [0, 1); only the driver shuffle draws from it */
  random: () => number;
}

/** SchedulingPassPlan: what the pass decided, in decision order. */
export interface SchedulingPassPlan {
  drivers: DriverPlacement[];
  executors: ExecutorPlacement[];
  warnings: string[];
}

/** appTooLargeWarning: Spark's wording for an app no worker can host. */
export function appTooLargeWarning(appId: string): string {
  return `App ${appId} requires more resource than any of Workers could have.`;
}

/**
 * planSchedulingPass runs drivers first, then each app in the given order: skip it
 * unless coresLeft >= coresPerExecutor ?? 1, order the usable workers, plan cores with
 * scheduleExecutorsOnWorkers and turn each worker's cores into executors.
 */
export function planSchedulingPass(input: SchedulingPassInput): SchedulingPassPlan {
  const { config } = input;
  const compare = compareSlotsBy(config.workerSelectionPolicy); // rejects an unknown policy up front

  const driverResult = scheduleDrivers({
    workers: input.workers,
    drivers: input.drivers,
    runningDrivers: input.runningDrivers,
    driverCoresInUse: input.driverCoresInUse,
    spreadOutDrivers: config.spreadOutDrivers,
    maxDrivers: config.maxDrivers,
    driverCoresFraction: config.driverCoresFraction,
    random: input.random,
  });
  const warnings = driverResult.warnings.slice();
  const executors: ExecutorPlacement[] = [];

  // the working copies, already reduced by the drivers of this pass, in policy order
  const ordered = rankById(driverResult.workersAfter).sort(compare);
  // Spark warns that an app may hang only when it is the one waiting app and has no executor
  const mayHangFor = (app: AppSnapshot): boolean => input.apps.length === 1 && app.liveExecutors === 0;
  let coresFreeTotal = 0;
  for (const slot of ordered) if (slot.worker.coresFree > 0) coresFreeTotal += slot.worker.coresFree;

  for (const snapshot of input.apps) {
    const problem = appSnapshotProblem(snapshot);
    if (problem !== undefined) {
      // one malformed app must not stop every other app from being scheduled
      warnings.push(`${problem}; skipped in this pass`);
      continue;
    }
    const app: AppSnapshot = { ...snapshot };
    const minCores = app.coresPerExecutor ?? 1;
    if (app.coresLeft < minCores) continue;

    const mayHang = mayHangFor(app);
    // a full cluster answers every later app at once, without a scan
    if (coresFreeTotal < minCores && !mayHang) continue;
    const reachable = Math.min(Math.floor(app.coresLeft / minCores), app.executorLimit - app.liveExecutors);
    // Spark's hang warning needs to know whether any worker is usable, even when none may be used
    const usable = firstUsable(ordered, executorFitChecker(app), Math.max(reachable, mayHang ? 1 : 0));
    if (mayHang && usable.length === 0) warnings.push(appTooLargeWarning(app.id));
    if (reachable <= 0 || usable.length === 0) continue;

    const assigned = scheduleExecutorsOnWorkers(app, usable.map((slot) => slot.worker), config.spreadOut);
    const touched: Slot[] = [];
    for (let pos = 0; pos < usable.length; pos++) {
      if (assigned[pos] <= 0) continue;
      const worker = usable[pos].worker;
      touched.push(usable[pos]);
      coresFreeTotal -= assigned[pos];
      for (const placement of allocateExecutors(app, worker, assigned[pos])) {
        deductFromWorker(worker, placement);
        app.coresLeft -= placement.cores;
        app.liveExecutors += 1;
        executors.push(placement);
      }
    }
    // WORKER_ID order does not depend on capacity: nothing moves
    if (config.workerSelectionPolicy !== 'WORKER_ID') reorder(ordered, touched, compare);
  }
  return { drivers: driverResult.placements, executors, warnings };
}

/** Slot: a working copy with the rank of its id among the pass's workers. */
interface Slot {
  worker: WorkerSnapshot;
  rank: number;
  /** set while reorder takes the slot out */
  moving: boolean;
}

/** rankById wraps the workers in slots whose rank follows Spark's id order (UTF-16 code units). */
function rankById(workers: readonly WorkerSnapshot[]): Slot[] {
  const byId = workers.slice().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return byId.map((worker, rank) => ({ worker, rank, moving: false }));
}

/**
 * compareSlotsBy is compareWorkersBy (schedule-executors.ts) on slots: the same order,
 * with the id rank in place of the id string.
 */
function compareSlotsBy(policy: WorkerSelectionPolicy): (a: Slot, b: Slot) => number {
  switch (policy) {
    case 'CORES_FREE_ASC':
      return (a, b) => a.worker.coresFree - b.worker.coresFree || a.rank - b.rank;
    case 'CORES_FREE_DESC':
      return (a, b) => b.worker.coresFree - a.worker.coresFree || b.rank - a.rank;
    case 'MEMORY_FREE_ASC':
      return (a, b) => a.worker.memoryFreeMB - b.worker.memoryFreeMB || a.rank - b.rank;
    case 'MEMORY_FREE_DESC':
      return (a, b) => b.worker.memoryFreeMB - a.worker.memoryFreeMB || b.rank - a.rank;
    case 'WORKER_ID':
      return (a, b) => a.rank - b.rank;
    default:
      throw new RangeError(`unknown worker selection policy: ${String(policy)} (expected one of ${WORKER_SELECTION_POLICIES.join(', ')})`);
  }
}

/** firstUsable: the first `limit` slots (in `ordered`'s order) whose worker passes `fits`. */
function firstUsable(ordered: readonly Slot[], fits: (w: WorkerSnapshot) => boolean, limit: number): Slot[] {
  const usable: Slot[] = [];
  if (limit <= 0) return usable;
  for (const slot of ordered) {
    if (!fits(slot.worker)) continue;
    usable.push(slot);
    if (usable.length >= limit) break;
  }
  return usable;
}

/** INSERTION_MAX: up to this many changed workers, binary insertion beats a merge. */
const INSERTION_MAX = 8;

/**
 * reorder restores policy order after the `changed` slots (already in `ordered`) lost
 * capacity. A few are taken out and put back by binary search; many are taken out,
 * sorted among themselves and merged back, O(workers + changed log changed).
 */
function reorder(ordered: Slot[], changed: Slot[], compare: (a: Slot, b: Slot) => number): void {
  if (changed.length === 0) return;
  if (changed.length <= INSERTION_MAX) {
    // take every changed slot out first: binary search needs the rest in order
    for (const slot of changed) ordered.splice(ordered.indexOf(slot), 1);
    for (const slot of changed) {
      let lo = 0;
      let hi = ordered.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (compare(ordered[mid], slot) <= 0) lo = mid + 1;
        else hi = mid;
      }
      ordered.splice(lo, 0, slot);
    }
    return;
  }
  for (const slot of changed) slot.moving = true;
  const rest = ordered.filter((slot) => !slot.moving);
  for (const slot of changed) slot.moving = false;
  changed.sort(compare);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < rest.length && j < changed.length) ordered[k++] = compare(rest[i], changed[j]) <= 0 ? rest[i++] : changed[j++];
  while (i < rest.length) ordered[k++] = rest[i++];
  while (j < changed.length) ordered[k++] = changed[j++];
}
