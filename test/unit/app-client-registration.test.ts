/**
 * AppClient registration schedule (Spark's tryRegisterAllMasters): attempts on a
 * fixed 20 s grid, give up after 3 with Spark's reason, stop early on abort.
 * Pure: the ask and the clock are injected.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  registerWithRetries,
  GIVE_UP_REASON,
  STOPPED_REASON,
  REGISTRATION_RETRIES,
  REGISTRATION_TIMEOUT_MS,
  AppClient,
  AppClientError,
  RegistrationRefusedError,
  refusedReason,
  type RegistrationClock,
} from '../../client/app-client.ts';

/** FakeClock: time moves only when the code sleeps or an attempt says it took time. */
class FakeClock implements RegistrationClock {
  t = 1_000_000;
  sleeps: number[] = [];
  now() {
    return this.t;
  }
  async sleep(ms: number, signal?: AbortSignal) {
    if (signal?.aborted) return;
    this.sleeps.push(ms);
    this.t += ms;
  }
}

const policy = { retries: REGISTRATION_RETRIES, timeoutMs: REGISTRATION_TIMEOUT_MS };
const reply = { appId: 'app-20240101000000-0000', masterUrl: 'flint://test' };

test('Spark defaults: 3 attempts, 20 s each', () => {
  assert.equal(REGISTRATION_RETRIES, 3);
  assert.equal(REGISTRATION_TIMEOUT_MS, 20_000);
  assert.equal(GIVE_UP_REASON, 'All masters are unresponsive! Giving up.');
});

test('a reply on the first attempt registers at once, without waiting', async () => {
  const clock = new FakeClock();
  const timeouts: number[] = [];
  const outcome = await registerWithRetries(async (timeoutMs) => {
    timeouts.push(timeoutMs);
    return reply;
  }, policy, clock);
  assert.deepEqual(outcome, { ok: true, reply, attempts: 1 });
  assert.deepEqual(timeouts, [20_000]);
  assert.deepEqual(clock.sleeps, []);
});

test('attempts that time out use their whole slot; the third attempt succeeds at 40 s', async () => {
  const clock = new FakeClock();
  const start = clock.t;
  const startedAt: number[] = [];
  const outcome = await registerWithRetries(async (timeoutMs) => {
    startedAt.push(clock.t - start);
    if (startedAt.length < 3) {
      clock.t += timeoutMs; // the ask waited its full timeout
      throw new Error(`no reply to RegisterApplication within ${timeoutMs} ms`);
    }
    return reply;
  }, policy, clock);
  assert.equal(outcome.ok, true);
  assert.equal(outcome.attempts, 3);
  assert.deepEqual(startedAt, [0, 20_000, 40_000]);
  assert.deepEqual(clock.sleeps, [], 'a timed-out attempt already used its slot');
});

test('attempts that fail fast still start on the 20 s grid, then Spark gives up', async () => {
  const clock = new FakeClock();
  const start = clock.t;
  const startedAt: number[] = [];
  const outcome = await registerWithRetries(async () => {
    startedAt.push(clock.t - start);
    clock.t += 150; // e.g. Redis refused the connection after 150 ms
    throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
  }, policy, clock);
  assert.deepEqual(startedAt, [0, 20_000, 40_000]);
  assert.deepEqual(clock.sleeps, [19_850, 19_850]);
  assert.equal(outcome.ok, false);
  if (outcome.ok) return;
  assert.equal(outcome.reason, GIVE_UP_REASON);
  assert.equal(outcome.attempts, 3);
  assert.deepEqual(outcome.errors, Array(3).fill('connect ECONNREFUSED 127.0.0.1:6379'));
});

test('retries and timeout are configurable', async () => {
  const clock = new FakeClock();
  const start = clock.t;
  const startedAt: number[] = [];
  const outcome = await registerWithRetries(async () => {
    startedAt.push(clock.t - start);
    throw new Error('down');
  }, { retries: 5, timeoutMs: 1_000 }, clock);
  assert.deepEqual(startedAt, [0, 1_000, 2_000, 3_000, 4_000]);
  assert.equal(outcome.ok, false);
  assert.equal(outcome.attempts, 5);
});

test('a malformed reply counts as a failed attempt, with the reason kept', async () => {
  const clock = new FakeClock();
  const replies: unknown[] = [{ appId: '' }, 42, reply];
  const outcome = await registerWithRetries(async () => replies.shift(), policy, clock);
  assert.equal(outcome.ok, true);
  assert.equal(outcome.attempts, 3);

  const malformed = await registerWithRetries(async () => ({ appId: 7 }), { retries: 2, timeoutMs: 10 }, new FakeClock());
  assert.equal(malformed.ok, false);
  if (malformed.ok) return;
  assert.equal(malformed.reason, GIVE_UP_REASON);
  assert.equal(malformed.errors.length, 2);
  assert.match(malformed.errors[0]!, /^unexpected reply: appId: /);
});

test('a refusal by the master ends registration at once with the master\'s reason', async () => {
  const clock = new FakeClock();
  let attempts = 0;
  const thrown = await registerWithRetries(async () => {
    attempts += 1;
    throw new RegistrationRefusedError('application id pi is already in use');
  }, policy, clock);
  assert.equal(attempts, 1);
  assert.deepEqual(thrown, {
    ok: false,
    reason: 'Master refused the registration: application id pi is already in use',
    attempts: 1,
    errors: ['application id pi is already in use'],
  });
  assert.deepEqual(clock.sleeps, []);

  const replied = await registerWithRetries(async () => ({ error: 'no' }), policy, new FakeClock());
  assert.deepEqual(replied, { ok: false, reason: refusedReason('no'), attempts: 1, errors: ['no'] });
});

test('aborting (stop during registration) ends the schedule without further attempts', async () => {
  const clock = new FakeClock();
  const controller = new AbortController();
  let attempts = 0;
  const outcome = await registerWithRetries(async () => {
    attempts += 1;
    controller.abort();
    throw new Error('timed out');
  }, policy, clock, controller.signal);
  assert.equal(attempts, 1);
  assert.equal(outcome.ok, false);
  if (outcome.ok) return;
  assert.equal(outcome.reason, STOPPED_REASON);

  const already = new AbortController();
  already.abort();
  const none = await registerWithRetries(async () => reply, policy, clock, already.signal);
  assert.deepEqual(none, { ok: false, reason: STOPPED_REASON, attempts: 0, errors: [] });
});

test('AppClient refuses bad input with a clear error before any I/O', () => {
  const desc = { name: 'pi', image: 'flint-test-busybox:latest' };
  assert.throws(() => new AppClient({ appDescription: { name: 'pi' } }), (error: Error) => {
    assert.ok(error instanceof AppClientError);
    assert.match(error.message, /invalid application description: image: /);
    return true;
  });
  assert.throws(() => new AppClient({ appDescription: { ...desc, maxCores: 0 } }), /maxCores: /);
  assert.throws(() => new AppClient({ appDescription: { ...desc, memoryPerExecutorMB: 1.5 } }), /memoryPerExecutorMB: /);
  assert.throws(() => new AppClient({ appDescription: desc, clientId: 'has space' }), /invalid clientId 'has space'/);
  assert.throws(() => new AppClient({ appDescription: desc, lastEventId: 'yesterday' }), /invalid lastEventId 'yesterday'/);
  assert.throws(() => new AppClient({ appDescription: desc, registrationRetries: 0 }), /registrationRetries must be an integer ≥ 1/);
  assert.throws(() => new AppClient({ appDescription: desc, registrationTimeoutMs: -1 }), /registrationTimeoutMs must be > 0/);
  assert.throws(() => new AppClient({ appDescription: desc, cluster: 'bad name!' }), /invalid cluster name/);
});
