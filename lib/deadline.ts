/**
 * withDeadline: every wait in Flint has a bound. It resolves or rejects as `promise`
 * does, or rejects with a DeadlineError naming what took too long once `ms` have passed
 * (the work itself is not cancelled: callers fall back, e.g. to a forced removal).
 */

/** DeadlineError: a bounded wait ran out. */
export class DeadlineError extends Error {
  override name = 'DeadlineError';
}

export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * napUntilWoken waits `ms`, or less when woken: `setWaker` receives the function that wakes
 * it (and undefined once the nap is over, so a late wake does nothing).
 */
export async function napUntilWoken(ms: number, setWaker: (wake: (() => void) | undefined) => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve) => {
    setWaker(resolve);
    timer = setTimeout(resolve, ms);
  });
  clearTimeout(timer);
  setWaker(undefined);
}
