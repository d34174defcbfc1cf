/**
 * Driver placement: the driver half of Spark Standalone's `schedule()`, as a pure
 * function. Drivers are placed before any executor of the same pass.
 *
 * spreadOutDrivers = true (Spark's default): the alive workers are shuffled with the
 * injected `random`; each waiting driver, FIFO, visits up to every worker round-robin
 * from `curPos`, and `curPos` advances after every visit, the successful one included,
 * so the next driver starts just past the worker that took the previous one.
 * spreadOutDrivers = false: workers sorted by id, first fit.
 *
 * In both modes a driver is skipped (it keeps waiting) once running drivers reach
 * spark.deploy.maxDrivers, and a driver that fits nowhere keeps waiting, never dropped.
 * Spark's warning "Driver X requires more resource than any of Workers could have." is
 * returned as a string: in spread-out mode only when the last worker visited holds no
 * driver and no executor (Spark's isClusterIdle), in first-fit mode whenever no worker fits.
 *
 * Flint guard against drivers starving applications (SPARK-27750): in Spark, drivers
 * can take every core of the cluster, and since executors are scheduled after drivers,
 * applications then wait forever while their drivers run. With
 * spark.flint.deploy.driverCoresFraction = f (0 < f <= 1), drivers together may hold at
 * most f x (total cores of alive workers); a driver whose cores would cross that line
 * waits (with a warning) and later, smaller drivers may still go. f = 1 switches the
 * guard off: Spark's behaviour exactly. The total is the sum of `coresTotal` of the
 * alive workers; when a snapshot lacks `coresTotal` the guard uses the lower bound
 * (sum of free cores + cores held by running drivers), which only makes it stricter.
 */
import type { DriverPlacement, DriverSnapshot, WorkerSnapshot } from './types.ts';
import { copyWorker, deductFromWorker, resourceTotals, resourcesMeetRequirements } from './schedule-executors.ts';

/** DriverSchedulingInput: what scheduleDrivers needs; nothing in it is changed. */
export interface DriverSchedulingInput {
  /** ALIVE workers only */
  workers: readonly WorkerSnapshot[];
  /** waiting drivers, FIFO (oldest first) */
  drivers: readonly DriverSnapshot[];
  /** drivers already RUNNING (count toward maxDrivers) */
  runningDrivers: number;
  /** cores held by running drivers (for the driver-cores guard) */
  driverCoresInUse: number;
  spreadOutDrivers: boolean;
  /** spark.deploy.maxDrivers */
  maxDrivers: number;
  /** spark.flint.deploy.driverCoresFraction, 0 < f <= 1; 1 = Spark's behaviour */
  driverCoresFraction: number;
  /** uniform in [0, 1); used only to shuffle workers when spreading drivers out */
  random: () => number;
}

/** DriverSchedulingResult: placements in decision order, warnings, and the capacity left. */
export interface DriverSchedulingResult {
  placements: DriverPlacement[];
  warnings: string[];
  /** working copies of the input workers (input order) after the placements */
  workersAfter: WorkerSnapshot[];
}

/** canLaunchDriver is Spark's canLaunchDriver: memory, cores and custom resources all fit. */
export function canLaunchDriver(worker: WorkerSnapshot, driver: DriverSnapshot): boolean {
  return (
    worker.memoryFreeMB >= driver.memoryMB &&
    worker.coresFree >= driver.cores &&
    resourcesMeetRequirements(worker.resourcesFree, driver.resourceReqs)
  );
}

/** driverSnapshotProblem names what is wrong with a driver snapshot, or returns undefined. */
export function driverSnapshotProblem(driver: DriverSnapshot): string | undefined {
  const where = `driver ${driver.id}`;
  if (!Number.isInteger(driver.cores) || driver.cores < 1) return `${where}: cores must be a positive integer, got ${driver.cores}`;
  if (!Number.isInteger(driver.memoryMB) || driver.memoryMB < 0) {
    return `${where}: memoryMB must be a non-negative integer, got ${driver.memoryMB}`;
  }
  for (const req of driver.resourceReqs) {
    if (!Number.isInteger(req.amount) || req.amount < 1) {
      return `${where}: resource ${req.name} amount must be a positive integer, got ${req.amount}`;
    }
  }
  return undefined;
}

/** driverTooLargeWarning: Spark's wording, kept so operators recognise it. */
export function driverTooLargeWarning(driverId: string): string {
  return `Driver ${driverId} requires more resource than any of Workers could have.`;
}

/** driverCoresGuardWarning: why a driver that would fit still waits. */
export function driverCoresGuardWarning(driverId: string, fraction: number, limit: number): string {
  return `Driver ${driverId} waits: drivers would hold more than ${fraction} of the alive cores (${limit}) (spark.flint.deploy.driverCoresFraction, SPARK-27750).`;
}

/**
 * shuffleWith is a Fisher-Yates shuffle of a copy, drawing from the injected random so
 * a pass is reproducible for a given seed.
 */
export function shuffleWith<T>(items: readonly T[], random: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const r = random();
    if (!(r >= 0 && r < 1)) throw new RangeError(`random() must return a number in [0, 1), got ${r}`);
    const j = Math.floor(r * (i + 1));
    const tmp = out[i];
    out[i] = out[j];
    out[j] = tmp;
  }
  return out;
}

/** aliveCoresTotal: the guard's denominator (see the module header for the fallback). */
export function aliveCoresTotal(workers: readonly WorkerSnapshot[], driverCoresInUse: number): number {
  let total = 0;
  let free = 0;
  let complete = true;
  for (const w of workers) {
    free += Math.max(0, w.coresFree);
    if (w.coresTotal === undefined) complete = false;
    else total += w.coresTotal;
  }
  return complete ? total : free + driverCoresInUse;
}

function assertValidInput(input: DriverSchedulingInput): void {
  const { maxDrivers, driverCoresFraction, runningDrivers, driverCoresInUse } = input;
  if (!(maxDrivers >= 1)) throw new RangeError(`maxDrivers must be >= 1, got ${maxDrivers}`);
  if (!(driverCoresFraction > 0 && driverCoresFraction <= 1)) {
    throw new RangeError(`driverCoresFraction must be in (0, 1], got ${driverCoresFraction}`);
  }
  if (!(runningDrivers >= 0)) throw new RangeError(`runningDrivers must be >= 0, got ${runningDrivers}`);
  if (!(driverCoresInUse >= 0)) throw new RangeError(`driverCoresInUse must be >= 0, got ${driverCoresInUse}`);
}

/**
 * scheduleDrivers places waiting drivers on workers as Spark's schedule() does, plus the
 * driver-cores guard. Drivers not in `placements` stay waiting.
 */
export function scheduleDrivers(input: DriverSchedulingInput): DriverSchedulingResult {
  assertValidInput(input);
  const workers = input.workers.map(copyWorker);
  const placements: DriverPlacement[] = [];
  const warnings: string[] = [];
  let running = input.runningDrivers;

  // SPARK-27750 guard; with f = 1 it is off and placement is Spark's exactly.
  const guardOn = input.driverCoresFraction < 1;
  const driverCoresLimit = guardOn
    ? Math.floor(input.driverCoresFraction * aliveCoresTotal(input.workers, input.driverCoresInUse) + 1e-9)
    : Infinity;
  let driverCores = input.driverCoresInUse;
  const guardAllows = (driver: DriverSnapshot): boolean => {
    if (driverCores + driver.cores <= driverCoresLimit) return true;
    warnings.push(driverCoresGuardWarning(driver.id, input.driverCoresFraction, driverCoresLimit));
    return false;
  };

  // a malformed snapshot waits with a warning instead of failing the whole pass
  const isPlaceable = (driver: DriverSnapshot): boolean => {
    const problem = driverSnapshotProblem(driver);
    if (problem !== undefined) {
      warnings.push(`${problem}; it keeps waiting`);
      return false;
    }
    return guardAllows(driver);
  };

  const launch = (worker: WorkerSnapshot, driver: DriverSnapshot): void => {
    const resources = resourceTotals(driver.resourceReqs);
    deductFromWorker(worker, { cores: driver.cores, memoryMB: driver.memoryMB, resources });
    placements.push({
      driverId: driver.id,
      workerId: worker.id,
      epoch: worker.epoch,
      cores: driver.cores,
      memoryMB: driver.memoryMB,
      resources,
    });
    running += 1;
    driverCores += driver.cores;
  };

  if (input.spreadOutDrivers) {
    const shuffled = shuffleWith(workers, input.random);
    const numWorkersAlive = shuffled.length;
    let curPos = 0;
    for (const driver of input.drivers) {
      if (running >= input.maxDrivers) continue; // at the cap: Spark skips it without a warning
      if (!isPlaceable(driver)) continue;
      let launched = false;
      let isClusterIdle = true;
      let visited = 0;
      while (visited < numWorkersAlive && !launched) {
        const worker = shuffled[curPos];
        isClusterIdle = !worker.hasWork;
        visited += 1;
        if (canLaunchDriver(worker, driver)) {
          launch(worker, driver);
          launched = true;
        }
        curPos = (curPos + 1) % numWorkersAlive;
      }
      if (!launched && isClusterIdle) warnings.push(driverTooLargeWarning(driver.id));
    }
  } else {
    // sorted by id so the choice is deterministic, as in Spark
    const byId = workers.slice().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const driver of input.drivers) {
      if (running >= input.maxDrivers) continue;
      if (!isPlaceable(driver)) continue;
      const worker = byId.find((w) => canLaunchDriver(w, driver));
      if (worker) launch(worker, driver);
      else warnings.push(driverTooLargeWarning(driver.id));
    }
  }
  return { placements, warnings, workersAfter: workers };
}
