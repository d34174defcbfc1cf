/**
 * The functions host: one `flint master` process. It consumes the master's inbound
 * queue and runs the one handler of each message; it runs the periodic duties any
 * master process may run (worker-timeout check, pending scheduling passes) under
 * short leases. Any number of hosts run at once; any may die at any moment: a job
 * whose host died is redelivered by BullMQ (its lock lapses), and every handler is
 * idempotent, so nothing is lost and nothing is applied twice.
 */
import { recordDeadLetter as recordDeadLetterIn, type DeadLetter } from '../lib/dead-letters.ts';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Worker, UnrecoverableError, type Job } from '../lib/bullmq.ts';
import { MasterInbound, parseMessage, type MasterInboundType } from '../protocol/messages.ts';
import type { FlintConfig } from '../protocol/config.ts';
import { bullConnection, checkRedisPolicy, closeBull, connectRedisOrCluster, type RedisConnection } from '../lib/redis.ts';
import { createLogger, type Logger } from '../lib/log.ts';
import { MasterStore, masterUrlFor } from './store/master-store.ts';
import { SchedulingLoop } from './scheduler.ts';
import { HANDLERS } from './handlers/index.ts';
import { HandlerRejection, type HandlerContext } from './handlers/context.ts';

export interface MasterHostOptions {
  redisUrl: string;
  config: FlintConfig;
  /** messages handled at once (default spark.flint.master.concurrency) */
  concurrency?: number;
  log?: Logger;
  /** observers for metrics */
  onMessage?: (info: { type: string; durationMs: number; outcome: 'ok' | 'rejected' | 'error' }) => void;
  onPass?: (info: { durationMs: number; executors: number; drivers: number; rejected: number }) => void;
}

export interface MasterHost {
  id: string;
  store: MasterStore;
  scheduler: SchedulingLoop;
  /** handle runs one message through validation and its handler (the queue path and the HTTP adapter share it) */
  handle(type: string, body: unknown, requestId: string): Promise<unknown>;
  /** reapOnce runs the worker-timeout and application-lease checks now (tests, and the periodic duty) */
  reapOnce(): Promise<void>;
  stop(): Promise<void>;
}

/** MASTER_JOB_LOCK_MS: how long a job stays locked to a host that stopped renewing it (it died). */
export const MASTER_JOB_LOCK_MS = 3_000;
/** MASTER_STALLED_CHECK_MS: how often hosts look for jobs whose lock lapsed. */
export const MASTER_STALLED_CHECK_MS = 1_000;

export class DeadLetterError extends UnrecoverableError {
  override name = 'DeadLetterError';
}

/** recordDeadLetter appends a rejected message to the dead-letter stream and counts it (lib/dead-letters.ts). */
export function recordDeadLetter(store: MasterStore, entry: DeadLetter): Promise<void> {
  return recordDeadLetterIn(store.redis, store.keys, entry);
}

export async function startMaster(options: MasterHostOptions): Promise<MasterHost> {
  const { config, redisUrl } = options;
  const id = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const log = options.log ?? createLogger('master', { masterId: id, cluster: config.cluster });
  const redis: RedisConnection = await connectRedisOrCluster(redisUrl, { name: `flint-master-${id}` });
  for (const warning of await checkRedisPolicy(redis)) log.warn(warning);
  const store = new MasterStore(redis, config);
  const masterUrl = masterUrlFor(config);
  const scheduler = new SchedulingLoop({ store, config, log, onPass: options.onPass });

  async function handle(type: string, body: unknown, requestId: string): Promise<unknown> {
    const started = performance.now();
    const parsed = parseMessage(MasterInbound, type, body);
    if (!parsed.ok) {
      await recordDeadLetter(store, { type, reason: parsed.reason, raw: body, source: 'master' });
      log.warn({ type, reason: parsed.reason }, 'malformed message dead-lettered');
      options.onMessage?.({ type, durationMs: performance.now() - started, outcome: 'rejected' });
      throw new DeadLetterError(parsed.reason);
    }
    const ctx: HandlerContext = {
      store,
      config,
      log,
      now: Date.now(),
      requestId,
      masterUrl,
      kickScheduler: () => scheduler.kick(),
    };
    const handler = HANDLERS[parsed.value.type as MasterInboundType] as (c: HandlerContext, m: unknown) => Promise<unknown>;
    try {
      const reply = await handler(ctx, parsed.value.body);
      options.onMessage?.({ type, durationMs: performance.now() - started, outcome: 'ok' });
      return reply ?? null;
    } catch (error) {
      if (error instanceof HandlerRejection) {
        await recordDeadLetter(store, { type, reason: error.message, raw: body, source: 'master' });
        options.onMessage?.({ type, durationMs: performance.now() - started, outcome: 'rejected' });
        throw new DeadLetterError(error.message);
      }
      options.onMessage?.({ type, durationMs: performance.now() - started, outcome: 'error' });
      throw error;
    }
  }

  const worker = new Worker(store.keys.masterQueue, (job: Job) => handle(job.name, job.data, job.id ?? ''), {
    connection: bullConnection(redisUrl, { name: `flint-master-${id}-queue`, blocking: true }),
    prefix: store.keys.bullPrefix,
    concurrency: options.concurrency ?? config.get<number>('spark.flint.master.concurrency'),
    // a dead host's jobs are redelivered once their lock lapses: short, because handlers are
    // short (a live host renews its locks every lockDuration / 2)
    lockDuration: MASTER_JOB_LOCK_MS,
    stalledInterval: MASTER_STALLED_CHECK_MS,
    maxStalledCount: 5,
  });
  worker.on('error', (error) => log.warn({ err: error }, 'master queue consumer error'));
  worker.on('failed', (job, error) => {
    if (job && !(error instanceof UnrecoverableError) && job.attemptsMade >= (job.opts.attempts ?? 1)) {
      void recordDeadLetter(store, { type: job.name, reason: `handler failed ${job.attemptsMade} times: ${error.message}`, raw: job.data, source: 'master' }).catch(() => undefined);
    }
  });
  await worker.waitUntilReady();

  async function reapOnce(): Promise<void> {
    const token = randomBytes(8).toString('hex');
    const leaseMs = Math.max(config.reaperIntervalMs * 3, 1000);
    if ((await redis.set(store.keys.reaperLease, token, 'PX', leaseMs, 'NX')) !== 'OK') return;
    try {
      // after a long gap (every master down, or a Redis failover) the fleet gets a fresh grace period
      const graceGapMs = Math.max(config.workerTimeoutMs / 2, config.reaperIntervalMs * 5);
      let result = await store.reapWorkers(Date.now(), { graceGapMs });
      if (result.graced) log.warn({ workers: result.graced }, 'worker-timeout check resumed after a gap: live workers get a fresh grace period');
      for (;;) {
        for (const workerId of result.removed) log.warn({ workerId }, `Removing worker ${workerId}: no heartbeat for ${config.workerTimeoutMs} ms`);
        if (result.removed.length) scheduler.kick();
        if (!result.more) break;
        result = await store.reapWorkers(Date.now(), { graceGapMs });
      }
      await expireAppLeases();
    } finally {
      await redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", 1, store.keys.reaperLease, token);
    }
  }

  /**
   * expireAppLeases: the app side of the same check (Spark's onDisconnected →
   * finishApplication): every app whose client lease lapsed is finished.
   */
  async function expireAppLeases(): Promise<void> {
    const graceGapMs = Math.max(config.appTimeoutMs / 2, config.reaperIntervalMs * 5);
    for (;;) {
      const result = await store.expireAppLeases(Date.now(), { graceGapMs });
      if (result.graced) log.warn({ apps: result.graced }, 'application-lease check resumed after a gap: every application gets a fresh lease');
      for (const appId of result.expired) log.warn({ appId }, `Finishing application ${appId}: its client did not renew its lease for ${config.appTimeoutMs} ms`);
      if (result.expired.length) scheduler.kick();
      if (!result.more) return;
    }
  }

  let stopped = false;
  const announce = () =>
    redis.hset(store.keys.masters, id, JSON.stringify({ id, pid: process.pid, host: hostname(), startedAt, lastSeen: Date.now() }));
  const startedAt = Date.now();
  await announce();
  const periodic = setInterval(() => {
    if (stopped) return;
    void Promise.all([reapOnce(), scheduler.tick(), announce()]).catch((error) => log.warn({ err: error }, 'periodic duty failed; retrying next tick'));
  }, config.reaperIntervalMs);
  periodic.unref();
  scheduler.kick();
  log.info({ masterUrl, concurrency: options.concurrency }, 'master handlers started');

  return {
    id,
    store,
    scheduler,
    handle,
    reapOnce,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(periodic);
      await closeBull(worker);
      await scheduler.stop();
      await redis.hdel(store.keys.masters, id).catch(() => undefined);
      redis.disconnect();
      log.info('master handlers stopped');
    },
  };
}
