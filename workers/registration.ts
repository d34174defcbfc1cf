/**
 * The worker's registration retry schedule (Spark's Worker.registerWithMaster /
 * reregisterWithMaster), as a pure function so it can be tested without clocks.
 *
 * Spark sends RegisterWorker, then a timer fires every "short" interval; each
 * firing counts one retry. After `initialRetries` firings the timer switches to
 * the "long" interval (6 × base); when the count passes `maxRetries` the worker
 * gives up with "All masters are unresponsive! Giving up." and exits 1.
 * Both intervals are fuzzed by one factor drawn once per registration in
 * [0.5, 1.5), so a fleet restarted together does not retry in lock-step.
 *
 * Worked example with Spark's defaults (base 10 s, fuzz 1.0, 6 initial, 16 max):
 * attempt at 0 s, retries 1-6 every 10 s (10..60 s), retries 7-16 every 60 s
 * (120..660 s), give up at 720 s.
 */

/** RegistrationPlan: the knobs of the schedule (Spark's config keys in brackets). */
export interface RegistrationPlan {
  /** base of the short interval in ms [spark.flint.worker.registrationInterval, 10 s] */
  baseIntervalMs: number;
  /** retries at the short interval [spark.worker.initialRegistrationRetries, 6] */
  initialRetries: number;
  /** retries in total before giving up [spark.worker.maxRegistrationRetries, 16] */
  maxRetries: number;
  /** the fuzz factor in [0.5, 1.5) */
  fuzz: number;
}

/** LONG_INTERVAL_FACTOR: Spark's long interval is 60 s against a 10 s short one. */
export const LONG_INTERVAL_FACTOR = 6;

/** GIVE_UP_MESSAGE: what Spark logs before exiting when no master answers. */
export const GIVE_UP_MESSAGE = 'All masters are unresponsive! Giving up.';

/** registrationFuzz maps a uniform random number in [0, 1) to Spark's fuzz factor in [0.5, 1.5). */
export function registrationFuzz(random: () => number = Math.random): number {
  const r = random();
  if (!(r >= 0 && r < 1)) throw new RangeError(`random source returned ${r}, expected a number in [0, 1)`);
  return 0.5 + r;
}

/** shortIntervalMs: round(base × fuzz). */
export function shortIntervalMs(plan: RegistrationPlan): number {
  return Math.round(plan.baseIntervalMs * plan.fuzz);
}

/** longIntervalMs: round(6 × base × fuzz). */
export function longIntervalMs(plan: RegistrationPlan): number {
  return Math.round(LONG_INTERVAL_FACTOR * plan.baseIntervalMs * plan.fuzz);
}

/** RegistrationStep: after waiting `delayMs` since the previous attempt, either retry or give up. */
export type RegistrationStep = { action: 'retry'; retry: number; delayMs: number } | { action: 'give-up'; delayMs: number };

/**
 * nextRegistrationStep: what happens after `retriesDone` retries (0 right after
 * the first attempt). The timer runs at the short interval until it has fired
 * `initialRetries` times, then at the long one; the firing after `maxRetries`
 * retries gives up.
 */
export function nextRegistrationStep(retriesDone: number, plan: RegistrationPlan): RegistrationStep {
  checkPlan(plan);
  if (!Number.isInteger(retriesDone) || retriesDone < 0) throw new RangeError(`retriesDone must be a non-negative integer, got ${retriesDone}`);
  const delayMs = retriesDone < plan.initialRetries ? shortIntervalMs(plan) : longIntervalMs(plan);
  if (retriesDone >= plan.maxRetries) return { action: 'give-up', delayMs };
  return { action: 'retry', retry: retriesDone + 1, delayMs };
}

/** registrationSchedule: every step from the first retry to giving up, in order. */
export function registrationSchedule(plan: RegistrationPlan): RegistrationStep[] {
  const steps: RegistrationStep[] = [];
  for (let done = 0; ; done++) {
    const step = nextRegistrationStep(done, plan);
    steps.push(step);
    if (step.action === 'give-up') return steps;
  }
}

function checkPlan(plan: RegistrationPlan): void {
  if (!(plan.baseIntervalMs > 0)) throw new RangeError(`registration base interval must be positive, got ${plan.baseIntervalMs}`);
  if (!(plan.fuzz >= 0.5 && plan.fuzz < 1.5)) throw new RangeError(`registration fuzz must be in [0.5, 1.5), got ${plan.fuzz}`);
  if (!Number.isInteger(plan.initialRetries) || plan.initialRetries < 1) throw new RangeError(`initialRetries must be a positive integer, got ${plan.initialRetries}`);
  if (!Number.isInteger(plan.maxRetries) || plan.maxRetries < 1) throw new RangeError(`maxRetries must be a positive integer, got ${plan.maxRetries}`);
}
