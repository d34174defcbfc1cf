/**
 * AgentTimers: every timer and sleep of an agent in one place, so a stop ends them all at
 * once: periodic work stops, and every sleep (a report's back-off, a driver's relaunch
 * back-off) wakes at once instead of holding the stop up.
 */
import type { Logger } from '../../lib/log.ts';
import { AgentStoppedError } from './errors.ts';

export class AgentTimers {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly sleepers = new Set<() => void>();
  private stopped = false;

  constructor(private readonly log: Logger) {}

  /** every runs `work` every `ms` (first after `ms`) until stopped; a failure is logged and the next round comes anyway. */
  every(ms: number, work: () => Promise<void>): void {
    const round = async () => {
      if (this.stopped) return;
      try {
        await work();
      } catch (error) {
        if (!this.stopped) this.log.warn({ err: error }, 'periodic work failed; retrying next round');
      }
      if (!this.stopped) this.after(ms, round);
    };
    this.after(ms, round);
  }

  private after(ms: number, fn: () => void | Promise<void>): void {
    const handle = setTimeout(() => {
      this.timers.delete(handle);
      void fn();
    }, ms);
    this.timers.add(handle);
  }

  /** sleep resolves after `ms`, or at once when stopped. */
  sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(handle);
        this.sleepers.delete(done);
        resolve();
      };
      const handle = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }

  /** sleepSeconds: Spark's sleeper (one-second naps, ending early once cancelled); throws once stopped. */
  async sleepSeconds(seconds: number, cancelled: () => boolean): Promise<void> {
    for (let i = 0; i < seconds && !cancelled() && !this.stopped; i++) await this.sleep(1000);
    if (this.stopped) throw new AgentStoppedError('agent stopped during a driver back-off');
  }

  /** stop clears every timer and wakes every sleeper. */
  stop(): void {
    this.stopped = true;
    for (const handle of this.timers) clearTimeout(handle);
    this.timers.clear();
    for (const wake of [...this.sleepers]) wake();
  }
}
