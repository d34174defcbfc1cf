/**
 * The worker's registration retry schedule against Spark's numbers
 * (Worker.registerWithMaster / reregisterWithMaster, section 4.3 of the reference).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  GIVE_UP_MESSAGE,
  longIntervalMs,
  nextRegistrationStep,
  registrationFuzz,
  registrationSchedule,
  shortIntervalMs,
  type RegistrationPlan,
} from '../../workers/registration.ts';
import { parseReply, RegisterWorkerReply } from '../../protocol/messages.ts';

const parseRegisterReply = (reply: unknown) => parseReply(RegisterWorkerReply, 'RegisterWorker', reply);

const spark: RegistrationPlan = { baseIntervalMs: 10_000, initialRetries: 6, maxRetries: 16, fuzz: 1 };

test('Spark defaults with fuzz 1: six retries every 10 s, ten every 60 s, give up at 720 s', () => {
  const steps = registrationSchedule(spark);
  assert.equal(steps.length, 17);
  assert.deepEqual(
    steps.slice(0, 6).map((s) => s.delayMs),
    [10_000, 10_000, 10_000, 10_000, 10_000, 10_000],
  );
  assert.deepEqual(steps.slice(6, 16).map((s) => s.delayMs), Array(10).fill(60_000));
  assert.deepEqual(steps.slice(0, 16).map((s) => (s.action === 'retry' ? s.retry : 0)), Array.from({ length: 16 }, (_, i) => i + 1));
  assert.deepEqual(steps[16], { action: 'give-up', delayMs: 60_000 });
  // cumulative times at which each retry fires
  let t = 0;
  const times = steps.map((s) => (t += s.delayMs));
  assert.deepEqual(times.slice(0, 6), [10_000, 20_000, 30_000, 40_000, 50_000, 60_000]);
  assert.equal(times[6], 120_000);
  assert.equal(times[15], 660_000);
  assert.equal(times[16], 720_000);
});

test('fuzz scales both intervals and is rounded as Spark rounds', () => {
  const low = { ...spark, fuzz: 0.5 };
  assert.equal(shortIntervalMs(low), 5_000);
  assert.equal(longIntervalMs(low), 30_000);
  const high = { ...spark, fuzz: 1.4999 };
  assert.equal(shortIntervalMs(high), 14_999);
  assert.equal(longIntervalMs(high), 89_994);
  const odd = { ...spark, baseIntervalMs: 3, fuzz: 1.25 };
  assert.equal(shortIntervalMs(odd), 4); // round(3.75)
  assert.equal(longIntervalMs(odd), 23); // round(22.5)
});

test('registrationFuzz maps [0, 1) onto [0.5, 1.5) and refuses a bad random source', () => {
  assert.equal(registrationFuzz(() => 0), 0.5);
  assert.equal(registrationFuzz(() => 0.25), 0.75);
  assert.ok(registrationFuzz(() => 0.999999) < 1.5);
  assert.throws(() => registrationFuzz(() => 1), RangeError);
  assert.throws(() => registrationFuzz(() => Number.NaN), RangeError);
  for (let i = 0; i < 1000; i++) {
    const fuzz = registrationFuzz();
    assert.ok(fuzz >= 0.5 && fuzz < 1.5, `fuzz ${fuzz} out of range`);
  }
});

test('custom retry counts: the long interval starts after initialRetries; give up after maxRetries', () => {
  const plan = { baseIntervalMs: 100, initialRetries: 2, maxRetries: 4, fuzz: 1 };
  assert.deepEqual(registrationSchedule(plan), [
    { action: 'retry', retry: 1, delayMs: 100 },
    { action: 'retry', retry: 2, delayMs: 100 },
    { action: 'retry', retry: 3, delayMs: 600 },
    { action: 'retry', retry: 4, delayMs: 600 },
    { action: 'give-up', delayMs: 600 },
  ]);
  // more initial retries than the total: the short interval is used to the end
  const allShort = registrationSchedule({ baseIntervalMs: 100, initialRetries: 10, maxRetries: 3, fuzz: 1 });
  assert.deepEqual(allShort.map((s) => s.delayMs), [100, 100, 100, 100]);
  assert.equal(allShort.at(-1)!.action, 'give-up');
});

test('nextRegistrationStep refuses nonsense plans and counters', () => {
  assert.throws(() => nextRegistrationStep(-1, spark), /retriesDone/);
  assert.throws(() => nextRegistrationStep(1.5, spark), /retriesDone/);
  assert.throws(() => nextRegistrationStep(0, { ...spark, fuzz: 1.5 }), /fuzz/);
  assert.throws(() => nextRegistrationStep(0, { ...spark, baseIntervalMs: 0 }), /base interval/);
  assert.throws(() => nextRegistrationStep(0, { ...spark, maxRetries: 0 }), /maxRetries/);
  assert.throws(() => nextRegistrationStep(0, { ...spark, initialRetries: 0 }), /initialRetries/);
});

test('the give-up message is Spark\'s', () => {
  assert.equal(GIVE_UP_MESSAGE, 'All masters are unresponsive! Giving up.');
});

test('parseRegisterReply reads objects and JSON text, and refuses anything else', () => {
  assert.deepEqual(parseRegisterReply({ type: 'RegisteredWorker', epoch: 7, duplicate: true, masterUrl: 'spark://h:7077', masterWebUiUrl: 'http://h:8080' }), {
    type: 'RegisteredWorker',
    epoch: 7,
    duplicate: true,
    masterUrl: 'spark://h:7077',
    masterWebUiUrl: 'http://h:8080',
  });
  assert.deepEqual(parseRegisterReply('{"type":"RegisteredWorker","epoch":3,"duplicate":false}'), { type: 'RegisteredWorker', epoch: 3, duplicate: false });
  assert.deepEqual(parseRegisterReply({ type: 'RegisterWorkerFailed', message: 'Attempted to re-register worker at same address: h:1' }), {
    type: 'RegisterWorkerFailed',
    message: 'Attempted to re-register worker at same address: h:1',
  });
  assert.throws(() => parseRegisterReply({ type: 'RegisteredWorker', epoch: 0 }), /unexpected reply/);
  assert.throws(() => parseRegisterReply(null), /unexpected reply/);
  assert.throws(() => parseRegisterReply('not json'), /unreadable reply/);
});
