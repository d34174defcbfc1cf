/**
 * HeartbeatReceiver: Spark's HeartbeatReceiver for Flint applications, shared by the
 * AppClient library and the app HTTP API (docs/app-client.md, "Executor heartbeats").
 *
 * Its state lives in Redis, so any number of receivers (an AppClient, several app API
 * replicas) serve one application and agree:
 *   - an executor is registered when it becomes RUNNING and forgotten when it finishes
 *     (the master's commits do both, atomically with the state change);
 *   - heartbeats are absorbed in batches (`ExecutorBeatBatcher`: one script call per
 *     event-loop turn, however many beats arrived);
 *   - every `tickMs` a receiver runs the expiry check (`claimSilentExecutors`), which
 *     honours each app's spark.network.timeoutInterval and claims each silent executor
 *     once across all receivers; the claimant asks the master to KillExecutors with
 *     Spark's reason, the master kills it, reports ExecutorLost in the app's event
 *     stream (so every listener hears it once, whichever receiver expired it), and the
 *     next scheduling pass places a replacement because the app still wants the cores.
 *
 * LeaseKeeper (same file) is the other half of liveness: it renews client leases.
 */
import type { RedisConnection } from '../lib/redis.ts';
import type { Logger } from '../lib/log.ts';
import type { Keys } from '../protocol/keys.ts';
import type { MasterClient } from './master-client.ts';
import {
  claimSilentExecutors,
  heartbeatTimeoutMessage,
  recordExecutorHeartbeats,
  renewAppLeases,
  type BeatOutcome,
  type ExecutorBeat,
  type SilentExecutor,
} from './receiver-scripts.ts';

/** RECEIVER_TICK_MS: how often a receiver runs the expiry check (each app is checked only when its timeoutInterval is due). */
export const RECEIVER_TICK_MS = 500;

export interface HeartbeatReceiverOptions {
  redis: () => Promise<RedisConnection>;
  keys: Keys;
  master: Pick<MasterClient, 'ask'>;
  log: Logger;
  /** check this app only (an AppClient); unset: every due app of the cluster (the app API) */
  appId?: string;
  tickMs?: number;
  /** reply timeout of the KillExecutors asks (the job stays queued past it) */
  askTimeoutMs?: number;
  /** told about each executor this receiver expired */
  onExpired?: (executor: SilentExecutor, message: string) => void;
}

export class HeartbeatReceiver {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private stopped = false;

  constructor(private readonly options: HeartbeatReceiverOptions) {}

  /** start runs the expiry check every tick (a tick is skipped while the previous one still runs). */
  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.checkOnce()
        .catch((error: unknown) => this.options.log.warn({ err: (error as Error).message }, 'executor heartbeat check failed; retrying next tick'))
        .finally(() => {
          this.running = undefined;
        });
    }, this.options.tickMs ?? RECEIVER_TICK_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /**
   * checkOnce claims the silent executors of the due apps and asks the master to kill
   * each with Spark's reason. A kill whose reply times out stays queued for the master.
   */
  async checkOnce(): Promise<SilentExecutor[]> {
    const { keys, log } = this.options;
    const claimed = await claimSilentExecutors(await this.options.redis(), keys, { appId: this.options.appId });
    await Promise.all(
      claimed.map(async (executor) => {
        const message = heartbeatTimeoutMessage(executor.silentMs);
        log.warn({ appId: executor.appId, execId: executor.execId }, `Removing executor ${executor.appId}/${executor.execId} with no recent heartbeats: ${executor.silentMs} ms exceeds timeout ${executor.timeoutMs} ms`);
        this.options.onExpired?.(executor, message);
        try {
          await this.options.master.ask('KillExecutors', { appId: executor.appId, executorIds: [String(executor.execId)], message }, this.options.askTimeoutMs ?? 10_000);
        } catch (error) {
          log.warn({ appId: executor.appId, execId: executor.execId, err: (error as Error).message }, 'the kill of an expired executor got no reply yet (it stays queued for the master)');
        }
      }),
    );
    return claimed;
  }
}

/** MAX_BEATS_PER_CALL: beats absorbed by one script call (a bigger batch is split). */
const MAX_BEATS_PER_CALL = 1000;

/**
 * ExecutorBeatBatcher: every beat that arrives during one event-loop turn goes to Redis
 * in one script call (Nagle-like, without a timer: the batch is sent on setImmediate),
 * so absorbing a beat costs a fraction of a round trip under load and one round trip
 * when idle.
 */
export class ExecutorBeatBatcher {
  private pending: { beat: ExecutorBeat; resolve: (outcome: BeatOutcome) => void; reject: (error: Error) => void }[] = [];
  private scheduled = false;

  constructor(
    private readonly redis: () => Promise<RedisConnection>,
    private readonly keys: Keys,
  ) {}

  record(beat: ExecutorBeat): Promise<BeatOutcome> {
    return new Promise((resolve, reject) => {
      this.pending.push({ beat, resolve, reject });
      if (this.pending.length >= MAX_BEATS_PER_CALL) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    this.redis()
      .then((redis) => recordExecutorHeartbeats(redis, this.keys, batch.map((p) => p.beat)))
      .then(
        (outcomes) => batch.forEach((p, i) => p.resolve(outcomes[i] ?? 'unknown')),
        (error: Error) => batch.forEach((p) => p.reject(error)),
      );
  }
}

/**
 * LeaseKeeper renews client leases. `touch(appId)` (the app API, on a request made
 * with the app's token) batches renewals per event-loop turn; `every(appId, ms)` (the
 * AppClient, the app API's open event streams) renews on a timer until released.
 */
export class LeaseKeeper {
  private touched = new Set<string>();
  private scheduled = false;
  private readonly held = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly redis: () => Promise<RedisConnection>,
    private readonly keys: Keys,
    private readonly log: Logger,
    /** how often held leases are renewed */
    private readonly periodMs = 1_000,
  ) {}

  /** touch renews `appId`'s lease soon (batched); errors are logged, never thrown. */
  touch(appId: string): void {
    if (this.stopped) return;
    this.touched.add(appId);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const ids = [...this.touched];
      this.touched.clear();
      void this.renew(ids);
    });
  }

  /** hold renews `appId`'s lease every period until the returned release is called (counted: several holders). */
  hold(appId: string): () => void {
    if (this.stopped) return () => undefined;
    this.held.set(appId, (this.held.get(appId) ?? 0) + 1);
    this.touch(appId);
    if (!this.timer) {
      this.timer = setInterval(() => void this.renew([...this.held.keys()]), this.periodMs);
      this.timer.unref();
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const count = (this.held.get(appId) ?? 1) - 1;
      if (count > 0) this.held.set(appId, count);
      else this.held.delete(appId);
      if (this.held.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  /** renew renews now; returns how many of `appIds` still hold a lease (0 on an error, which is logged). */
  async renew(appIds: readonly string[]): Promise<number> {
    if (appIds.length === 0) return 0;
    try {
      return await renewAppLeases(await this.redis(), this.keys, appIds);
    } catch (error) {
      this.log.warn({ err: (error as Error).message, apps: appIds.length }, 'renewing application leases failed');
      return 0;
    }
  }

  /** stop ends every renewal; later touches and holds do nothing (the connection they would use is closing). */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    this.held.clear();
    this.touched.clear();
  }
}
