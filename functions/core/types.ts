/**
 * Snapshot and decision types of the pure master core. The core sees read-only
 * snapshots loaded by the handlers and returns decisions as data; it imports no
 * I/O library and reads no clock (time is passed in as `now`).
 */
import type { ResourceRequirement } from '../../protocol/messages.ts';

/** WorkerSnapshot: what scheduling needs of one ALIVE worker (from the `schedulable` hash). */
export interface WorkerSnapshot {
  id: string;
  host: string;
  port: number;
  coresFree: number;
  memoryFreeMB: number;
  /** free amount per custom resource name (e.g. gpu → 2) */
  resourcesFree: Record<string, number>;
  /**
   * total cores the worker registered with; only the driver-cores guard
   * (spark.flint.deploy.driverCoresFraction) reads it. When absent the guard falls
   * back to a lower bound (see schedule-drivers.ts).
   */
  coresTotal?: number;
  /** registration epoch the placement is made against; the commit refuses a different one */
  epoch: number;
  /** drivers and executors currently placed (for Spark's "requires more resource than any worker" warning) */
  hasWork?: boolean;
}

/** AppSnapshot: what scheduling needs of one active application. */
export interface AppSnapshot {
  id: string;
  /** requestedCores - coresGranted (Spark's coresLeft) */
  coresLeft: number;
  /** spark.executor.cores; undefined = one executor per worker per pass taking all assigned cores */
  coresPerExecutor?: number;
  memoryPerExecutorMB: number;
  resourcesPerExecutor: ResourceRequirement[];
  /** the executor limit (RequestExecutors target); Infinity when unlimited */
  executorLimit: number;
  /** executors of the app that are not finished (count toward the limit) */
  liveExecutors: number;
}

/** ExecutorPlacement: one executor to launch, as decided by a pass. */
export interface ExecutorPlacement {
  appId: string;
  workerId: string;
  epoch: number;
  cores: number;
  memoryMB: number;
  /** custom resource amounts (name → count); the commit picks concrete addresses */
  resources: Record<string, number>;
}

/** DriverSnapshot: a waiting driver. */
export interface DriverSnapshot {
  id: string;
  cores: number;
  memoryMB: number;
  resourceReqs: ResourceRequirement[];
}

/** DriverPlacement: one waiting driver to launch on one worker. */
export interface DriverPlacement {
  driverId: string;
  workerId: string;
  epoch: number;
  cores: number;
  memoryMB: number;
  resources: Record<string, number>;
}
