/**
 * The four state machines of the deploy protocol, as Spark defines them
 * (deploy/ExecutorState.scala, master/DriverState.scala, ApplicationState.scala,
 * WorkerState.scala), each with its predicates and the transitions Flint allows.
 *
 * Allowed transitions are data, not code scattered through handlers: the pure
 * core asks `canTransition*` before it decides, and the Lua commit scripts get
 * the same tables (see functions/store/scripts.ts) so Redis refuses what the
 * core would refuse.
 */

export const ExecutorState = {
  LAUNCHING: 'LAUNCHING',
  RUNNING: 'RUNNING',
  KILLED: 'KILLED',
  FAILED: 'FAILED',
  LOST: 'LOST',
  EXITED: 'EXITED',
  DECOMMISSIONED: 'DECOMMISSIONED',
} as const;
export type ExecutorState = (typeof ExecutorState)[keyof typeof ExecutorState];
export const EXECUTOR_STATES = Object.values(ExecutorState) as [ExecutorState, ...ExecutorState[]];

/** isExecutorFinished: KILLED, FAILED, LOST and EXITED end an executor; DECOMMISSIONED does not (its process lives on). */
export function isExecutorFinished(state: ExecutorState): boolean {
  return state === 'KILLED' || state === 'FAILED' || state === 'LOST' || state === 'EXITED';
}

/*
 * Executor lifecycle. LAUNCHING is set by the master when it commits a placement;
 * the agent reports RUNNING once the container started, then exactly one finished
 * state. DECOMMISSIONED executors keep running without new work and can still finish.
 */
export const EXECUTOR_TRANSITIONS: Record<ExecutorState, readonly ExecutorState[]> = {
  LAUNCHING: ['RUNNING', 'KILLED', 'FAILED', 'LOST', 'EXITED', 'DECOMMISSIONED'],
  RUNNING: ['KILLED', 'FAILED', 'LOST', 'EXITED', 'DECOMMISSIONED'],
  DECOMMISSIONED: ['KILLED', 'FAILED', 'LOST', 'EXITED'],
  KILLED: [],
  FAILED: [],
  LOST: [],
  EXITED: [],
};

export function canTransitionExecutor(from: ExecutorState, to: ExecutorState): boolean {
  return EXECUTOR_TRANSITIONS[from].includes(to);
}

export const DriverState = {
  SUBMITTED: 'SUBMITTED',
  RUNNING: 'RUNNING',
  FINISHED: 'FINISHED',
  RELAUNCHING: 'RELAUNCHING',
  UNKNOWN: 'UNKNOWN',
  KILLED: 'KILLED',
  FAILED: 'FAILED',
  ERROR: 'ERROR',
} as const;
export type DriverState = (typeof DriverState)[keyof typeof DriverState];
export const DRIVER_STATES = Object.values(DriverState) as [DriverState, ...DriverState[]];

/** isDriverFinalReport: the states a worker may report in DriverStateChanged (Spark throws on any other). */
export function isDriverFinalReport(state: DriverState): boolean {
  return state === 'ERROR' || state === 'FINISHED' || state === 'KILLED' || state === 'FAILED';
}

/** isDriverCompleted: the driver sits in the completed list (RELAUNCHING is the retired id of a relaunched driver). */
export function isDriverCompleted(state: DriverState): boolean {
  return isDriverFinalReport(state) || state === 'RELAUNCHING';
}

/*
 * Driver lifecycle on the master. SUBMITTED waits for a worker; RUNNING once
 * LaunchDriver is committed. A supervised driver whose worker dies is retired as
 * RELAUNCHING and a new driver with a new id is queued (SPARK-19900).
 */
export const DRIVER_TRANSITIONS: Record<DriverState, readonly DriverState[]> = {
  SUBMITTED: ['RUNNING', 'KILLED', 'ERROR', 'RELAUNCHING'],
  RUNNING: ['FINISHED', 'KILLED', 'FAILED', 'ERROR', 'RELAUNCHING'],
  UNKNOWN: ['RUNNING', 'FINISHED', 'KILLED', 'FAILED', 'ERROR', 'RELAUNCHING'],
  FINISHED: [],
  RELAUNCHING: [],
  KILLED: [],
  FAILED: [],
  ERROR: [],
};

export function canTransitionDriver(from: DriverState, to: DriverState): boolean {
  return DRIVER_TRANSITIONS[from].includes(to);
}

export const ApplicationState = {
  WAITING: 'WAITING',
  RUNNING: 'RUNNING',
  FINISHED: 'FINISHED',
  FAILED: 'FAILED',
  KILLED: 'KILLED',
  UNKNOWN: 'UNKNOWN',
} as const;
export type ApplicationState = (typeof ApplicationState)[keyof typeof ApplicationState];
export const APPLICATION_STATES = Object.values(ApplicationState) as [ApplicationState, ...ApplicationState[]];

/** isApplicationFinished: Spark's `state ∉ {WAITING, RUNNING}` (UNKNOWN counts as finished there too). */
export function isApplicationFinished(state: ApplicationState): boolean {
  return state !== 'WAITING' && state !== 'RUNNING';
}

/*
 * Application lifecycle. WAITING on registration, RUNNING once the first executor
 * is granted; FINISHED on unregister, FAILED after maxExecutorRetries abnormal exits
 * in a row, KILLED from the UI or CLI.
 */
export const APPLICATION_TRANSITIONS: Record<ApplicationState, readonly ApplicationState[]> = {
  WAITING: ['RUNNING', 'FINISHED', 'FAILED', 'KILLED'],
  RUNNING: ['FINISHED', 'FAILED', 'KILLED'],
  UNKNOWN: ['WAITING', 'FINISHED'],
  FINISHED: [],
  FAILED: [],
  KILLED: [],
};

export function canTransitionApplication(from: ApplicationState, to: ApplicationState): boolean {
  return APPLICATION_TRANSITIONS[from].includes(to);
}

export const WorkerState = {
  ALIVE: 'ALIVE',
  DEAD: 'DEAD',
  DECOMMISSIONED: 'DECOMMISSIONED',
  UNKNOWN: 'UNKNOWN',
} as const;
export type WorkerState = (typeof WorkerState)[keyof typeof WorkerState];
export const WORKER_STATES = Object.values(WorkerState) as [WorkerState, ...WorkerState[]];

export function isWorkerAlive(state: WorkerState): boolean {
  return state === 'ALIVE';
}

/*
 * Worker lifecycle. A registration makes a worker ALIVE with a new epoch; a
 * heartbeat gap past spark.worker.timeout makes it DEAD (executors LOST). A DEAD
 * worker that heartbeats again is told to reconnect, and its re-registration is
 * DEAD → ALIVE under a fresh epoch, so commands issued to the old incarnation are
 * refused by the agent.
 */
export const WORKER_TRANSITIONS: Record<WorkerState, readonly WorkerState[]> = {
  ALIVE: ['DEAD', 'DECOMMISSIONED', 'ALIVE'],
  DECOMMISSIONED: ['DEAD'],
  UNKNOWN: ['ALIVE', 'DEAD'],
  DEAD: ['ALIVE'],
};

export function canTransitionWorker(from: WorkerState, to: WorkerState): boolean {
  return WORKER_TRANSITIONS[from].includes(to);
}

/** MasterStatus: Flint's master is always ALIVE (leaderless); the other values exist for Spark's JSON. */
export const MasterStatus = {
  STANDBY: 'STANDBY',
  ALIVE: 'ALIVE',
  RECOVERING: 'RECOVERING',
  COMPLETING_RECOVERY: 'COMPLETING_RECOVERY',
} as const;
export type MasterStatus = (typeof MasterStatus)[keyof typeof MasterStatus];
