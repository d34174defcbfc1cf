/**
 * The supervised driver's relaunch back-off (Spark's DriverRunner.runCommandWithRetry)
 * and its final states.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideDriverRetry, driverFinalState, sleepCheckingEverySecond, SUCCESSFUL_RUN_MS } from '../../workers/driver-runner.ts';

/** simulate: feed run durations (ms) of a supervised driver that always fails; returns the sleeps. */
function simulate(durations: number[]): number[] {
  let waitSeconds = 1;
  const sleeps: number[] = [];
  for (const runDurationMs of durations) {
    const decision = decideDriverRetry({ exitCode: 1, supervise: true, killed: false, runDurationMs, waitSeconds });
    assert.equal(decision.relaunch, true);
    if (!decision.relaunch) break;
    sleeps.push(decision.sleepSeconds);
    waitSeconds = decision.nextWaitSeconds;
  }
  return sleeps;
}

test('short failing runs back off 1, 2, 4, 8, ... seconds with no upper bound', () => {
  assert.deepEqual(simulate(Array(12).fill(100)), [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]);
});

test('a run longer than 5 s resets the back-off to 1 before sleeping', () => {
  assert.deepEqual(simulate([1000, 1000, 1000, 10_000, 1000, 1000]), [1, 2, 4, 1, 2, 4]);
  // exactly 5 s is not "longer than" 5 s
  assert.deepEqual(simulate([1000, 1000, SUCCESSFUL_RUN_MS]), [1, 2, 4]);
  assert.deepEqual(simulate([1000, 1000, SUCCESSFUL_RUN_MS + 1]), [1, 2, 1]);
});

test('no relaunch: exit 0, killed, or not supervised', () => {
  assert.deepEqual(decideDriverRetry({ exitCode: 0, supervise: true, killed: false, runDurationMs: 1, waitSeconds: 4 }), { relaunch: false, state: 'FINISHED' });
  assert.deepEqual(decideDriverRetry({ exitCode: 1, supervise: true, killed: true, runDurationMs: 1, waitSeconds: 4 }), { relaunch: false, state: 'KILLED' });
  assert.deepEqual(decideDriverRetry({ exitCode: 1, supervise: false, killed: false, runDurationMs: 1, waitSeconds: 1 }), { relaunch: false, state: 'FAILED' });
  assert.deepEqual(decideDriverRetry({ exitCode: 137, supervise: false, killed: true, runDurationMs: 1, waitSeconds: 1 }), { relaunch: false, state: 'KILLED' });
});

test('final state: exit 0 wins even when killed; then killed; else failed', () => {
  assert.equal(driverFinalState(0, true), 'FINISHED');
  assert.equal(driverFinalState(0, false), 'FINISHED');
  assert.equal(driverFinalState(143, true), 'KILLED');
  assert.equal(driverFinalState(2, false), 'FAILED');
  assert.equal(driverFinalState(-1, false), 'FAILED');
});

test('the back-off sleep stops within a second once cancelled', async () => {
  let cancelled = false;
  const started = Date.now();
  setTimeout(() => (cancelled = true), 100);
  await sleepCheckingEverySecond(30, () => cancelled);
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 900 && elapsed < 2500, `slept ${elapsed} ms`);
  const before = Date.now();
  await sleepCheckingEverySecond(5, () => true);
  assert.ok(Date.now() - before < 50, 'an already cancelled sleep returns at once');
});
