/**
 * MasterClient: how agents, app clients, the REST server and the CLI talk to the
 * master. A message is a BullMQ job on the `master` queue (job name = message
 * type). `send` is Spark's one-way `send`; `ask` is Spark's `ask`: it waits for
 * the job's return value, which is the handler's reply.
 *
 * The body is validated here too, so a caller's bug fails at the caller with a
 * clear reason instead of becoming a dead letter.
 */
import { randomUUID } from 'node:crypto';
import { Job, Queue, QueueEvents, type JobsOptions } from '../lib/bullmq.ts';
import { MasterInbound, parseMessage, type MasterInboundType, type MasterInboundMessage } from '../protocol/messages.ts';
import { clusterKeys, type Keys } from '../protocol/keys.ts';
import { bullConnection, closeBull } from '../lib/redis.ts';

/**
 * Defaults for inbound jobs: transient handler failures (e.g. Redis blips) are retried
 * with backoff. Handled jobs are kept only as long as an asker may still read its reply
 * from them (the reply normally arrives through the queue's event stream at once): the
 * last 2,000, so Redis holds a bounded number whatever the launch rate (about 1 KB each;
 * 20,000 were about 22 MB, the largest share of Redis under launch churn). Failed jobs
 * (refused messages; the dead-letter stream keeps why) likewise: the last 1,000, a week at most.
 */
export const MASTER_JOB_OPTIONS: JobsOptions = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 100 },
  removeOnComplete: { age: 600, count: 2000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 1000 },
};

export class AskTimeoutError extends Error {
  override name = 'AskTimeoutError';
}

/** AskRejectedError: the master handled the message and refused it (its job failed); asking again will not help. */
export class AskRejectedError extends Error {
  override name = 'AskRejectedError';
}

export class MasterClient {
  readonly keys: Keys;
  private readonly queue: Queue;
  private events?: QueueEvents;
  private eventsReady?: Promise<void>;

  constructor(
    private readonly redisUrl: string,
    cluster: string,
    private readonly connectionName = 'flint-client',
  ) {
    this.keys = clusterKeys(cluster);
    this.queue = new Queue(this.keys.masterQueue, {
      connection: bullConnection(redisUrl, { name: connectionName }),
      prefix: this.keys.bullPrefix,
    });
    // many concurrent asks each add a short-lived listener; that is expected, not a leak
    this.queue.setMaxListeners(0);
  }

  /** send enqueues a one-way message; returns the job id. */
  async send<T extends MasterInboundType>(type: T, body: MasterInboundMessage<T>, options: JobsOptions = {}): Promise<string> {
    const parsed = parseMessage(MasterInbound, type, body);
    if (!parsed.ok) throw new Error(`refusing to send an invalid message: ${parsed.reason}`);
    const job = await this.queue.add(type, parsed.value.body, { ...MASTER_JOB_OPTIONS, ...options });
    return job.id!;
  }

  /**
   * ask enqueues a message and waits for the handler's reply (the job's return value).
   * The job id is chosen before the job exists so the completion listeners are in place
   * before it can finish. The event reader can still miss the reply: its XREAD starts at
   * the stream's end (`$`) when it reaches Redis, which for a new reader (on Redis
   * Cluster, after opening a node connection first) can be after a fast handler
   * finished. So the job's state is also read now and then (right away, then backing
   * off from 250 ms to 2 s) until the ask settles. A refusal (the job failed for good)
   * raises AskRejectedError; no reply in time raises AskTimeoutError.
   * `requestId` makes the ask idempotent (Idempotency-Key): see below.
   */
  async ask<R, T extends MasterInboundType = MasterInboundType>(
    type: T,
    body: MasterInboundMessage<T>,
    timeoutMs = 10_000,
    options: { requestId?: string } = {},
  ): Promise<R> {
    const parsed = parseMessage(MasterInbound, type, body);
    if (!parsed.ok) throw new Error(`refusing to send an invalid message: ${parsed.reason}`);
    if (options.requestId !== undefined && !/^[A-Za-z0-9_-]{1,100}$/.test(options.requestId)) {
      throw new Error(`invalid request id '${options.requestId}': use 1-100 letters, digits, '-' or '_'`);
    }
    const events = await this.queueEvents();
    // a request id makes the ask idempotent: a retry joins the first job (still queued, or
    // done and kept for removeOnComplete's age) instead of adding a second one, and the
    // handler sees the same ctx.requestId (e.g. submit-driver.lua remembers its answer a day)
    const jobId = options.requestId !== undefined ? `req-${options.requestId}` : `ask-${randomUUID()}`;
    let settled = false;
    let settle!: (outcome: { ok: true; value: unknown } | { ok: false; error: Error }) => void;
    const outcome = new Promise<{ ok: true; value: unknown } | { ok: false; error: Error }>((resolve) => {
      settle = (result) => {
        settled = true;
        resolve(result);
      };
    });
    const onCompleted = (args: { returnvalue: unknown }) => settle({ ok: true, value: args.returnvalue });
    const onFailed = (args: { failedReason: string }) => settle({ ok: false, error: new AskRejectedError(args.failedReason) });
    events.on(`completed:${jobId}` as 'completed', onCompleted as never);
    events.on(`failed:${jobId}` as 'failed', onFailed as never);
    const timer = setTimeout(
      () => settle({ ok: false, error: new AskTimeoutError(`no reply to ${type} within ${timeoutMs} ms: is a master (flint master) running on this Redis and cluster?`) }),
      timeoutMs,
    );
    try {
      const job = await this.queue.add(type, parsed.value.body, { ...MASTER_JOB_OPTIONS, jobId });
      void this.pollFinished(job.id!, () => settled, settle);
      const result = await outcome;
      if (!result.ok) throw result.error;
      return result.value as R;
    } finally {
      clearTimeout(timer);
      events.off(`completed:${jobId}` as 'completed', onCompleted as never);
      events.off(`failed:${jobId}` as 'failed', onFailed as never);
    }
  }

  /** pollFinished reads the job's state until it is final or `isSettled` (never throws). */
  private async pollFinished(
    jobId: string,
    isSettled: () => boolean,
    settle: (outcome: { ok: true; value: unknown } | { ok: false; error: Error }) => void,
  ): Promise<void> {
    for (let delayMs = 0; !isSettled(); delayMs = Math.min(Math.max(delayMs * 2, 250), 2_000)) {
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
      if (isSettled()) return;
      const done = await this.checkFinished(jobId);
      if (done) return settle(done);
    }
  }

  /** checkFinished reads a job's final state once (never throws). */
  private async checkFinished(jobId: string): Promise<{ ok: true; value: unknown } | { ok: false; error: Error } | undefined> {
    try {
      // the state first: a job read before it finished would carry no return value yet
      const state = await this.queue.getJobState(jobId);
      if (state !== 'completed' && state !== 'failed') return undefined;
      const job = await Job.fromId(this.queue, jobId);
      if (!job) return undefined;
      if (state === 'completed') return { ok: true, value: job.returnvalue };
      return { ok: false, error: new AskRejectedError(job.failedReason) };
    } catch {
      // the listeners will tell, or the timeout
    }
    return undefined;
  }

  private async queueEvents(): Promise<QueueEvents> {
    if (!this.events) {
      this.events = new QueueEvents(this.keys.masterQueue, {
        connection: bullConnection(this.redisUrl, { name: `${this.connectionName}-events`, blocking: true }),
        prefix: this.keys.bullPrefix,
      });
      this.eventsReady = this.events.waitUntilReady().then(() => undefined);
    }
    await this.eventsReady;
    return this.events;
  }

  async close(): Promise<void> {
    await Promise.allSettled([closeBull(this.queue), this.events && closeBull(this.events)]);
  }
}
