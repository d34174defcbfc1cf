/**
 * Unit tests of protocol/states.ts: the four state machines as Spark defines them
 * (ExecutorState, DriverState, ApplicationState, WorkerState). The expected
 * predicates and edges are written out here from Spark's sources, independently
 * of the tables under test, and every pair of states is checked against them.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  APPLICATION_STATES,
  APPLICATION_TRANSITIONS,
  DRIVER_STATES,
  DRIVER_TRANSITIONS,
  EXECUTOR_STATES,
  EXECUTOR_TRANSITIONS,
  MasterStatus,
  WORKER_STATES,
  WORKER_TRANSITIONS,
  canTransitionApplication,
  canTransitionDriver,
  canTransitionExecutor,
  canTransitionWorker,
  isApplicationFinished,
  isDriverCompleted,
  isDriverFinalReport,
  isExecutorFinished,
  isWorkerAlive,
  type ApplicationState,
  type DriverState,
  type ExecutorState,
  type WorkerState,
} from '../../protocol/states.ts';

/** checkAllPairs compares `can(from, to)` with the expected edge list for every pair of states. */
function checkAllPairs<S extends string>(states: readonly S[], can: (from: S, to: S) => boolean, expected: ReadonlyArray<`${S}->${S}`>) {
  const allowed = new Set<string>(expected);
  const mismatches: string[] = [];
  for (const from of states) {
    for (const to of states) {
      const edge = `${from}->${to}`;
      if (can(from, to) !== allowed.has(edge)) mismatches.push(`${edge}: expected ${allowed.has(edge) ? 'allowed' : 'refused'}`);
    }
  }
  assert.deepEqual(mismatches, []);
}

/** checkTable: a row for every state, targets valid and without repeats. */
function checkTable<S extends string>(states: readonly S[], table: Record<S, readonly S[]>) {
  assert.deepEqual(Object.keys(table).sort(), [...states].sort());
  for (const from of states) {
    for (const to of table[from]) assert.ok(states.includes(to), `${from} -> unknown state ${to}`);
    assert.equal(new Set(table[from]).size, table[from].length, `${from} lists a target twice`);
  }
}

describe('ExecutorState', () => {
  test('values are Spark\'s, in Spark\'s order', () => {
    assert.deepEqual(EXECUTOR_STATES, ['LAUNCHING', 'RUNNING', 'KILLED', 'FAILED', 'LOST', 'EXITED', 'DECOMMISSIONED']);
  });

  test('isFinished: KILLED, FAILED, LOST, EXITED; DECOMMISSIONED is not finished', () => {
    const finished = EXECUTOR_STATES.filter(isExecutorFinished);
    assert.deepEqual(finished, ['KILLED', 'FAILED', 'LOST', 'EXITED']);
    assert.equal(isExecutorFinished('DECOMMISSIONED'), false);
    assert.equal(isExecutorFinished('LAUNCHING'), false);
    assert.equal(isExecutorFinished('RUNNING'), false);
  });

  test('the transition table is total and well formed', () => checkTable(EXECUTOR_STATES, EXECUTOR_TRANSITIONS));

  test('every pair of states: allowed exactly as Spark\'s lifecycle', () => {
    const ends = ['KILLED', 'FAILED', 'LOST', 'EXITED'] as const;
    checkAllPairs<ExecutorState>(EXECUTOR_STATES, canTransitionExecutor, [
      'LAUNCHING->RUNNING',
      'LAUNCHING->DECOMMISSIONED',
      'RUNNING->DECOMMISSIONED',
      ...ends.map((end) => `LAUNCHING->${end}` as const),
      ...ends.map((end) => `RUNNING->${end}` as const),
      ...ends.map((end) => `DECOMMISSIONED->${end}` as const),
    ]);
  });

  test('finished executors have no outgoing transitions', () => {
    for (const state of EXECUTOR_STATES.filter(isExecutorFinished)) {
      assert.deepEqual(EXECUTOR_TRANSITIONS[state], [], state);
    }
  });

  test('a RUNNING executor cannot go back to LAUNCHING, a DECOMMISSIONED one cannot run again', () => {
    assert.equal(canTransitionExecutor('RUNNING', 'LAUNCHING'), false);
    assert.equal(canTransitionExecutor('DECOMMISSIONED', 'RUNNING'), false);
    assert.equal(canTransitionExecutor('DECOMMISSIONED', 'LAUNCHING'), false);
  });

  test('a decommissioned executor still finishes (its process lives on)', () => {
    for (const end of ['KILLED', 'FAILED', 'LOST', 'EXITED'] as const) assert.equal(canTransitionExecutor('DECOMMISSIONED', end), true);
  });
});

describe('DriverState', () => {
  test('values are Spark\'s, in Spark\'s order', () => {
    assert.deepEqual(DRIVER_STATES, ['SUBMITTED', 'RUNNING', 'FINISHED', 'RELAUNCHING', 'UNKNOWN', 'KILLED', 'FAILED', 'ERROR']);
  });

  test('a worker may report only ERROR, FINISHED, KILLED or FAILED (Spark throws on others)', () => {
    assert.deepEqual(DRIVER_STATES.filter(isDriverFinalReport), ['FINISHED', 'KILLED', 'FAILED', 'ERROR']);
  });

  test('completed drivers: the final reports plus RELAUNCHING (the retired id of a relaunched driver)', () => {
    assert.deepEqual(DRIVER_STATES.filter(isDriverCompleted), ['FINISHED', 'RELAUNCHING', 'KILLED', 'FAILED', 'ERROR']);
    for (const state of ['SUBMITTED', 'RUNNING', 'UNKNOWN'] as const) assert.equal(isDriverCompleted(state), false, state);
  });

  test('the transition table is total and well formed', () => checkTable(DRIVER_STATES, DRIVER_TRANSITIONS));

  test('every pair of states: allowed exactly as Spark\'s lifecycle', () => {
    checkAllPairs<DriverState>(DRIVER_STATES, canTransitionDriver, [
      // launched, or killed / errored / retired for relaunch while waiting
      'SUBMITTED->RUNNING',
      'SUBMITTED->KILLED',
      'SUBMITTED->ERROR',
      'SUBMITTED->RELAUNCHING',
      // the process ends, or its worker is lost
      'RUNNING->FINISHED',
      'RUNNING->KILLED',
      'RUNNING->FAILED',
      'RUNNING->ERROR',
      'RUNNING->RELAUNCHING',
      // UNKNOWN is never assigned by Spark 4's Master; it may resolve to anything but SUBMITTED
      'UNKNOWN->RUNNING',
      'UNKNOWN->FINISHED',
      'UNKNOWN->KILLED',
      'UNKNOWN->FAILED',
      'UNKNOWN->ERROR',
      'UNKNOWN->RELAUNCHING',
    ]);
  });

  test('completed drivers have no outgoing transitions; a relaunch gets a new driver id', () => {
    for (const state of DRIVER_STATES.filter(isDriverCompleted)) assert.deepEqual(DRIVER_TRANSITIONS[state], [], state);
    assert.equal(canTransitionDriver('RELAUNCHING', 'SUBMITTED'), false);
  });

  test('only a running driver can finish or fail; a waiting one is killed or errors', () => {
    assert.equal(canTransitionDriver('SUBMITTED', 'FINISHED'), false);
    assert.equal(canTransitionDriver('SUBMITTED', 'FAILED'), false);
    assert.equal(canTransitionDriver('RUNNING', 'SUBMITTED'), false);
  });
});

describe('ApplicationState', () => {
  test('values are Spark\'s, in Spark\'s order', () => {
    assert.deepEqual(APPLICATION_STATES, ['WAITING', 'RUNNING', 'FINISHED', 'FAILED', 'KILLED', 'UNKNOWN']);
  });

  test('isFinished is Spark\'s state ∉ {WAITING, RUNNING}, so UNKNOWN counts as finished', () => {
    assert.deepEqual(APPLICATION_STATES.filter(isApplicationFinished), ['FINISHED', 'FAILED', 'KILLED', 'UNKNOWN']);
  });

  test('the transition table is total and well formed', () => checkTable(APPLICATION_STATES, APPLICATION_TRANSITIONS));

  test('every pair of states: allowed exactly as Spark\'s lifecycle', () => {
    checkAllPairs<ApplicationState>(APPLICATION_STATES, canTransitionApplication, [
      'WAITING->RUNNING',
      'WAITING->FINISHED',
      'WAITING->FAILED',
      'WAITING->KILLED',
      'RUNNING->FINISHED',
      'RUNNING->FAILED',
      'RUNNING->KILLED',
      // recovery: acknowledged → WAITING, silent → removed as FINISHED
      'UNKNOWN->WAITING',
      'UNKNOWN->FINISHED',
    ]);
  });

  test('FINISHED, FAILED and KILLED are final; a RUNNING app never goes back to WAITING', () => {
    for (const state of ['FINISHED', 'FAILED', 'KILLED'] as const) assert.deepEqual(APPLICATION_TRANSITIONS[state], [], state);
    assert.equal(canTransitionApplication('RUNNING', 'WAITING'), false);
  });
});

describe('WorkerState', () => {
  test('values are Spark\'s, in Spark\'s order', () => {
    assert.deepEqual(WORKER_STATES, ['ALIVE', 'DEAD', 'DECOMMISSIONED', 'UNKNOWN']);
  });

  test('only ALIVE workers are alive (schedulable)', () => {
    assert.deepEqual(WORKER_STATES.filter(isWorkerAlive), ['ALIVE']);
  });

  test('the transition table is total and well formed', () => checkTable(WORKER_STATES, WORKER_TRANSITIONS));

  test('every pair of states: allowed exactly as Flint\'s worker lifecycle', () => {
    checkAllPairs<WorkerState>(WORKER_STATES, canTransitionWorker, [
      // a duplicate registration keeps the worker ALIVE (with a fresh epoch)
      'ALIVE->ALIVE',
      'ALIVE->DEAD',
      'ALIVE->DECOMMISSIONED',
      // a decommissioned worker is no longer recovered; it can only be lost
      'DECOMMISSIONED->DEAD',
      // recovery: a response makes it ALIVE, silence DEAD
      'UNKNOWN->ALIVE',
      'UNKNOWN->DEAD',
      // a DEAD worker that heartbeats again re-registers under a new epoch
      'DEAD->ALIVE',
    ]);
  });

  test('decommissioning is one-way, and a DEAD worker cannot be decommissioned', () => {
    assert.equal(canTransitionWorker('DECOMMISSIONED', 'ALIVE'), false);
    assert.equal(canTransitionWorker('DECOMMISSIONED', 'DECOMMISSIONED'), false);
    assert.equal(canTransitionWorker('DEAD', 'DECOMMISSIONED'), false);
  });
});

test('MasterStatus keeps Spark\'s RecoveryState values for its JSON', () => {
  assert.deepEqual(Object.values(MasterStatus), ['STANDBY', 'ALIVE', 'RECOVERING', 'COMPLETING_RECOVERY']);
});
