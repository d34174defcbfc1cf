/**
 * SchedulingLoop: coalesced, level-triggered scheduling passes that any master
 * process may run (no leader).
 *
 * Commits that may let the scheduler do more bump `schedule:dirty`. A process that
 * wants a pass takes the short `schedule:lease` (SET NX PX); the holder reads the
 * dirty generation g, loads the snapshot, plans with the pure core, commits with
 * `commitPlacements` (which re-checks every placement), and then calls
 * `finishSchedulePass(g)`, which releases the lease only if `dirty` is still g.
 * So many triggers make one pass, and a trigger during a pass makes exactly one
 * more. The lease is an optimisation only: two passes at once cannot over-commit,
 * because every placement is re-checked inside the commit script.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../lib/log.ts';
import type { FlintConfig } from '../protocol/config.ts';
import { planSchedulingPass } from './core/plan-pass.ts';
import type { MasterStore } from './store/master-store.ts';
import { loadSchedulingSnapshot } from './store/scheduling-snapshot.ts';
import type { DriverPlacement, ExecutorPlacement } from './core/types.ts';

/** COMMIT_BATCH bounds one commit script's work so Redis is never blocked for long. */
const COMMIT_BATCH = 256;

export interface PassStats {
  passes: number;
  executorsPlaced: number;
  driversPlaced: number;
  rejected: number;
  lastPassMs: number;
}

/** PassReport: what one pass did and where its time went. */
export interface PassReport {
  generation: string;
  durationMs: number;
  snapshotMs: number;
  planMs: number;
  commitMs: number;
  executors: number;
  drivers: number;
  rejected: number;
}

export interface SchedulingLoopOptions {
  store: MasterStore;
  config: FlintConfig;
  log: Logger;
  now?: () => number;
  random?: () => number;
  onPass?: (info: PassReport) => void;
}

export class SchedulingLoop {
  readonly stats: PassStats = { passes: 0, executorsPlaced: 0, driversPlaced: 0, rejected: 0, lastPassMs: 0 };
  private running?: Promise<void>;
  private rerun = false;
  private stopped = false;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly leaseTtlMs: number;
  private readonly maxCommitRetries: number;

  constructor(private readonly options: SchedulingLoopOptions) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.leaseTtlMs = options.config.get<number>('spark.flint.scheduler.leaseTtl');
    this.maxCommitRetries = options.config.get<number>('spark.flint.scheduler.maxCommitRetries');
  }

  /** kick asks for a pass; it never waits for it. Concurrent kicks in one process coalesce. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.rerun = true;
      return;
    }
    this.running = this.runUntilClean()
      .catch((error) => this.options.log.warn({ err: error }, 'scheduling pass failed; the next tick retries'))
      .finally(() => {
        this.running = undefined;
        if (this.rerun && !this.stopped) {
          this.rerun = false;
          this.kick();
        }
      });
  }

  /** tick runs a pass when a trigger is pending and nobody holds the lease (covers a holder that died). */
  async tick(): Promise<void> {
    const { redis, keys } = this.options.store;
    const [dirty, done] = await redis.mget(keys.scheduleDirty, keys.scheduleDone);
    if ((dirty ?? '0') !== (done ?? '0')) this.kick();
  }

  /** idle resolves when no pass is running in this process. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.idle();
  }

  /** renewLease extends the lease only while this process still holds it (another may have taken it over). */
  private async renewLease(token: string): Promise<void> {
    const { store } = this.options;
    await store.redis.eval(
      "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0",
      1,
      store.keys.scheduleLease,
      token,
      this.leaseTtlMs,
    );
  }

  private async runUntilClean(): Promise<void> {
    const { store } = this.options;
    const token = randomBytes(8).toString('hex');
    const acquired = await store.redis.set(store.keys.scheduleLease, token, 'PX', this.leaseTtlMs, 'NX');
    if (acquired !== 'OK') return; // another process runs passes; it will see our trigger
    let retries = 0;
    for (;;) {
      if (this.stopped) {
        await store.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", 1, store.keys.scheduleLease, token);
        return;
      }
      const { generation, rejected } = await this.runPassOnce();
      if (rejected > 0 && retries < this.maxCommitRetries) {
        retries++;
        await this.renewLease(token);
        continue; // re-plan on fresh state (Nomad: bounded plan retries)
      }
      retries = 0;
      const outcome = await store.finishSchedulePass(token, generation, this.now());
      if (outcome !== 'again') return;
      await this.renewLease(token);
    }
  }

  /**
   * runPassOnce runs one pass now, without the lease (passes are coalesced by
   * runUntilClean; calling this directly is safe because every placement is
   * re-checked by the commit script) and reports where its time went.
   */
  async runPassOnce(): Promise<PassReport> {
    const { store, config } = this.options;
    const started = performance.now();
    const snapshot = await loadSchedulingSnapshot(store.redis, store.keys, { needDriverCores: config.driverCoresFraction < 1 });
    const snapshotDone = performance.now();
    const plan = planSchedulingPass({
      workers: snapshot.workers,
      apps: snapshot.apps,
      drivers: snapshot.drivers,
      runningDrivers: snapshot.runningDrivers,
      driverCoresInUse: snapshot.driverCoresInUse,
      config: {
        spreadOut: config.spreadOut,
        spreadOutDrivers: config.spreadOutDrivers,
        workerSelectionPolicy: config.workerSelectionPolicy,
        maxDrivers: config.maxDrivers,
        driverCoresFraction: config.driverCoresFraction,
      },
      random: this.random,
    });
    const planDone = performance.now();
    for (const warning of plan.warnings) this.options.log.warn(warning);
    let rejected = 0;
    let executors = 0;
    let drivers = 0;
    // drivers first, as Spark: they take precedence over executors
    for (const batch of chunk<DriverPlacement>(plan.drivers, COMMIT_BATCH)) {
      const result = await store.commitPlacements(batch, [], this.now());
      drivers += result.drivers[0];
      rejected += result.drivers[1];
    }
    for (const batch of chunk<ExecutorPlacement>(plan.executors, COMMIT_BATCH)) {
      const result = await store.commitPlacements([], batch, this.now());
      executors += result.executors[0];
      rejected += result.executors[1];
    }
    const finished = performance.now();
    const report: PassReport = {
      generation: snapshot.generation,
      durationMs: finished - started,
      snapshotMs: snapshotDone - started,
      planMs: planDone - snapshotDone,
      commitMs: finished - planDone,
      executors,
      drivers,
      rejected,
    };
    this.stats.passes++;
    this.stats.executorsPlaced += executors;
    this.stats.driversPlaced += drivers;
    this.stats.rejected += rejected;
    this.stats.lastPassMs = report.durationMs;
    this.options.onPass?.(report);
    return report;
  }
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
