/**
 * Executor placement: Spark Standalone's `startExecutorsOnWorkers` pipeline as pure
 * functions, reproducing Master.scala's behaviour step for step.
 *
 *   orderUsableWorkers          alive workers that can host one executor of the app
 *                               (canLaunchExecutor), in spark.deploy.workerSelectionPolicy order
 *   scheduleExecutorsOnWorkers  how many cores each usable worker gives the app
 *                               (round-robin in coresPerExecutor steps when spreading out,
 *                               otherwise filling one worker before the next)
 *   allocateExecutors           turns one worker's assigned cores into executors
 *
 * Nothing here reads a clock, draws a random number or touches I/O; inputs are never
 * mutated except through the explicit working-copy helpers at the bottom, which the
 * scheduling pass uses on its own copies.
 */
import type { ResourceRequirement } from '../../protocol/messages.ts';
import type { WorkerSelectionPolicy } from '../../protocol/config.ts';
import type { AppSnapshot, ExecutorPlacement, WorkerSnapshot } from './types.ts';

/** WORKER_SELECTION_POLICIES: every policy orderUsableWorkers understands. */
export const WORKER_SELECTION_POLICIES: readonly WorkerSelectionPolicy[] = [
  'CORES_FREE_ASC',
  'CORES_FREE_DESC',
  'MEMORY_FREE_ASC',
  'MEMORY_FREE_DESC',
  'WORKER_ID',
];

/**
 * resourceTotals folds requirements into name → amount. Spark checks each requirement
 * on its own, which would over-commit if a name appeared twice; summing per name is the
 * same for well-formed input and safe for the rest.
 */
export function resourceTotals(reqs: readonly ResourceRequirement[]): Record<string, number> {
  const totals: Record<string, number> = {};
  for (const req of reqs) totals[req.name] = (totals[req.name] ?? 0) + req.amount;
  return totals;
}

/**
 * resourcesMeetRequirements is Spark's ResourceUtils.resourcesMeetRequirements: every
 * requested resource has at least the requested amount free (a resource the worker
 * does not have counts as 0 free).
 */
export function resourcesMeetRequirements(
  free: Readonly<Record<string, number>>,
  reqs: readonly ResourceRequirement[],
): boolean {
  const totals = resourceTotals(reqs);
  for (const name of Object.keys(totals)) {
    if ((free[name] ?? 0) < totals[name]) return false;
  }
  return true;
}

/**
 * appSnapshotProblem names what is wrong with a snapshot the placement loop cannot
 * handle (a coresPerExecutor of 0 would loop forever), or returns undefined.
 */
export function appSnapshotProblem(app: AppSnapshot): string | undefined {
  const where = `app ${app.id}`;
  if (app.coresPerExecutor !== undefined && (!Number.isInteger(app.coresPerExecutor) || app.coresPerExecutor < 1)) {
    return `${where}: coresPerExecutor must be a positive integer or unset, got ${app.coresPerExecutor}`;
  }
  if (!(app.coresLeft >= 0) || (Number.isFinite(app.coresLeft) && !Number.isInteger(app.coresLeft))) {
    return `${where}: coresLeft must be a non-negative integer, got ${app.coresLeft}`;
  }
  if (!Number.isInteger(app.memoryPerExecutorMB) || app.memoryPerExecutorMB < 0) {
    return `${where}: memoryPerExecutorMB must be a non-negative integer, got ${app.memoryPerExecutorMB}`;
  }
  if (!(app.executorLimit >= 0)) {
    return `${where}: executorLimit must be >= 0 (Infinity when unlimited), got ${app.executorLimit}`;
  }
  if (!Number.isInteger(app.liveExecutors) || app.liveExecutors < 0) {
    return `${where}: liveExecutors must be a non-negative integer, got ${app.liveExecutors}`;
  }
  for (const req of app.resourcesPerExecutor) {
    if (!Number.isInteger(req.amount) || req.amount < 1) {
      return `${where}: resource ${req.name} amount must be a positive integer, got ${req.amount}`;
    }
  }
  return undefined;
}

/** assertValidApp throws a RangeError naming the field when appSnapshotProblem finds one. */
export function assertValidApp(app: AppSnapshot): void {
  const problem = appSnapshotProblem(app);
  if (problem !== undefined) throw new RangeError(problem);
}

/**
 * canLaunchExecutor is Spark's canLaunchExecutor: the worker has room for one executor
 * of the app (memory, coresPerExecutor or 1 core, custom resources).
 */
export function canLaunchExecutor(worker: WorkerSnapshot, app: AppSnapshot): boolean {
  return executorFitChecker(app)(worker);
}

/**
 * executorFitChecker returns canLaunchExecutor for one app with its requirements folded
 * once, for callers that test many workers (the pass tests thousands per app).
 */
export function executorFitChecker(app: AppSnapshot): (worker: WorkerSnapshot) => boolean {
  const memory = app.memoryPerExecutorMB;
  const cores = app.coresPerExecutor ?? 1;
  const totals = resourceTotals(app.resourcesPerExecutor);
  const names = Object.keys(totals);
  return (worker) => {
    if (worker.memoryFreeMB < memory || worker.coresFree < cores) return false;
    for (const name of names) if ((worker.resourcesFree[name] ?? 0) < totals[name]) return false;
    return true;
  };
}

function compareIds(a: string, b: string): number {
  // Java's String.compareTo and JS `<` both compare UTF-16 code units.
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * compareWorkersBy returns the comparator of a selection policy. Spark sorts by
 * (free, id) ascending and reverses for the DESC policies, so DESC ties go to the
 * larger id first; comparing both keys descending gives the same order.
 */
export function compareWorkersBy(policy: WorkerSelectionPolicy): (a: WorkerSnapshot, b: WorkerSnapshot) => number {
  switch (policy) {
    case 'CORES_FREE_ASC':
      return (a, b) => a.coresFree - b.coresFree || compareIds(a.id, b.id);
    case 'CORES_FREE_DESC':
      return (a, b) => b.coresFree - a.coresFree || compareIds(b.id, a.id);
    case 'MEMORY_FREE_ASC':
      return (a, b) => a.memoryFreeMB - b.memoryFreeMB || compareIds(a.id, b.id);
    case 'MEMORY_FREE_DESC':
      return (a, b) => b.memoryFreeMB - a.memoryFreeMB || compareIds(b.id, a.id);
    case 'WORKER_ID':
      return (a, b) => compareIds(a.id, b.id);
    default:
      throw new RangeError(`unknown worker selection policy: ${String(policy)} (expected one of ${WORKER_SELECTION_POLICIES.join(', ')})`);
  }
}

/**
 * orderUsableWorkers returns the workers that can launch one executor of the app, in
 * the order the policy offers them (CORES_FREE_DESC is Spark's default). The input
 * array is not changed.
 */
export function orderUsableWorkers(
  workers: readonly WorkerSnapshot[],
  app: AppSnapshot,
  policy: WorkerSelectionPolicy = 'CORES_FREE_DESC',
): WorkerSnapshot[] {
  const compare = compareWorkersBy(policy);
  return workers.filter(executorFitChecker(app)).sort(compare);
}

/**
 * scheduleExecutorsOnWorkers is Spark's function of the same name: it only plans, and
 * returns the cores assigned on each usable worker (same positions as `usable`).
 *
 * Cores go out in steps of minCores = coresPerExecutor ?? 1, never more than
 * min(coresLeft, sum of free cores). A step that opens a new executor also needs the
 * executor's memory and resources on top of the executors already planned there, and
 * must keep planned + live executors under the executor limit. Without
 * coresPerExecutor there is one executor per worker per pass, and later steps only add
 * cores to it. With spreadOut each free worker takes one step per round (round-robin);
 * without it a worker is filled before the next. Allocating coresPerExecutor at a time,
 * not 1 core, matters: with 4 workers of 16 cores, cores.max = 48 and executor.cores =
 * 16, single cores would leave 12 per worker and launch nothing (SPARK-8881).
 */
export function scheduleExecutorsOnWorkers(
  app: AppSnapshot,
  usable: readonly WorkerSnapshot[],
  spreadOut: boolean,
): number[] {
  assertValidApp(app);
  const minCores = app.coresPerExecutor ?? 1;
  const oneExecutorPerWorker = app.coresPerExecutor === undefined;
  const memoryPerExecutor = app.memoryPerExecutorMB;
  const reqs = resourceTotals(app.resourcesPerExecutor);
  const reqNames = Object.keys(reqs);
  const numUsable = usable.length;
  const assignedCores = new Array<number>(numUsable).fill(0);
  const assignedExecutors = new Array<number>(numUsable).fill(0);
  // Spark sums assignedExecutors on every check; a running total gives the same answer in O(1).
  let totalAssignedExecutors = 0;
  let sumFree = 0;
  for (const w of usable) sumFree += w.coresFree;
  let coresToAssign = Math.min(app.coresLeft, sumFree);

  const canLaunchExecutorForApp = (pos: number): boolean => {
    const keepScheduling = coresToAssign >= minCores;
    const worker = usable[pos];
    const enoughCores = worker.coresFree - assignedCores[pos] >= minCores;
    const executorsHere = assignedExecutors[pos];
    const launchingNewExecutor = !oneExecutorPerWorker || executorsHere === 0;
    if (!launchingNewExecutor) {
      // adding cores to the executor already planned here: memory and limit were checked when it was opened
      return keepScheduling && enoughCores;
    }
    if (!keepScheduling || !enoughCores) return false;
    const enoughMemory = worker.memoryFreeMB - executorsHere * memoryPerExecutor >= memoryPerExecutor;
    if (!enoughMemory) return false;
    for (const name of reqNames) {
      if ((worker.resourcesFree[name] ?? 0) - reqs[name] * executorsHere < reqs[name]) return false;
    }
    return totalAssignedExecutors + app.liveExecutors < app.executorLimit;
  };

  let freeWorkers: number[] = [];
  for (let pos = 0; pos < numUsable; pos++) if (canLaunchExecutorForApp(pos)) freeWorkers.push(pos);
  while (freeWorkers.length > 0) {
    for (const pos of freeWorkers) {
      let keepScheduling = true;
      while (keepScheduling && canLaunchExecutorForApp(pos)) {
        coresToAssign -= minCores;
        assignedCores[pos] += minCores;
        if (oneExecutorPerWorker) {
          if (assignedExecutors[pos] === 0) totalAssignedExecutors += 1;
          assignedExecutors[pos] = 1;
        } else {
          assignedExecutors[pos] += 1;
          totalAssignedExecutors += 1;
        }
        // spreading out: one step per worker per round, then move on to the next worker
        if (spreadOut) keepScheduling = false;
      }
    }
    freeWorkers = freeWorkers.filter(canLaunchExecutorForApp);
  }
  return assignedCores;
}

/**
 * allocateExecutors is Spark's allocateWorkerResourceToExecutors, as data: with
 * coresPerExecutor set the assigned cores split evenly into floor(assigned / cpe)
 * executors; otherwise one executor takes them all.
 */
export function allocateExecutors(app: AppSnapshot, worker: WorkerSnapshot, assignedCores: number): ExecutorPlacement[] {
  if (!Number.isInteger(assignedCores) || assignedCores < 0) {
    throw new RangeError(`allocateExecutors: assignedCores must be a non-negative integer, got ${assignedCores}`);
  }
  if (assignedCores === 0) return [];
  const cpe = app.coresPerExecutor;
  const numExecutors = cpe !== undefined ? Math.floor(assignedCores / cpe) : 1;
  const coresEach = cpe ?? assignedCores;
  const resources = resourceTotals(app.resourcesPerExecutor);
  const placements: ExecutorPlacement[] = [];
  for (let i = 0; i < numExecutors; i++) {
    placements.push({
      appId: app.id,
      workerId: worker.id,
      epoch: worker.epoch,
      cores: coresEach,
      memoryMB: app.memoryPerExecutorMB,
      resources: { ...resources },
    });
  }
  return placements;
}

// ---------------------------------------------------------------- working copies

/** Capacity: what one placement (driver or executor) takes from a worker. */
export interface Capacity {
  cores: number;
  memoryMB: number;
  resources: Readonly<Record<string, number>>;
}

/** copyWorker: a working copy the pass may deduct from without touching the snapshot. */
export function copyWorker(worker: WorkerSnapshot): WorkerSnapshot {
  // hasWork always present, so marking a copy busy later does not reshape the object
  return { ...worker, resourcesFree: { ...worker.resourcesFree }, hasWork: worker.hasWork ?? false };
}

/** deductFromWorker takes a placement's capacity from a working copy and marks it busy. */
export function deductFromWorker(worker: WorkerSnapshot, taken: Capacity): void {
  worker.coresFree -= taken.cores;
  worker.memoryFreeMB -= taken.memoryMB;
  const names = Object.keys(taken.resources);
  for (let i = 0; i < names.length; i++) {
    worker.resourcesFree[names[i]] = (worker.resourcesFree[names[i]] ?? 0) - taken.resources[names[i]];
  }
  worker.hasWork = true;
}
