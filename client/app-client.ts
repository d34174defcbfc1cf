/**
 * AppClient: Spark's StandaloneAppClient for Flint. An application (the driver
 * side) registers with the master, asks it for executors, and follows what the
 * master does for it through its event stream.
 *
 *   start() ── RegisterApplication (ask, retried as Spark retries) ──▶ master
 *          ◀─ {appId}                                       listener.connected(appId)
 *   event loop: XREAD BLOCK on `app:<id>:events` from `lastEventId`, on a dedicated
 *   connection; each entry → raw 'event' + the listener call Spark makes for it.
 *   stop()  ── dead("Application has been stopped.") + UnregisterApplication
 *
 * Liveness (Spark finishes an app when its driver disconnects): while it runs, the
 * client renews the app's lease every leaseTimeoutMs/4 (spark.flint.app.timeout, from
 * the master's reply); a client that dies stops renewing and the master finishes the
 * app. With spark.flint.executor.heartbeat.enabled in the app's conf, the client also
 * runs the app's HeartbeatReceiver (client/heartbeat-receiver.ts): silent executors are
 * killed and replaced, and the listener hears `executorLost(id, "Executor heartbeat
 * timed out after N ms")`. In a cluster-mode driver (FLINT_DRIVER_ID in the
 * environment) the app is linked to the driver and ends when it ends.
 *
 * The cursor `lastEventId` is the id of the last entry delivered. It is kept in
 * memory across Redis reconnects (ioredis re-sends the pending XREAD with the same
 * cursor), and an application that persists it can pass it back (with the same
 * `clientId`, which makes the registration return the same app id) to resume after
 * a process restart without losing or repeating an event.
 *
 * The decisions (registration retry schedule, which listener call an event makes)
 * are pure functions exported for tests; the class only does I/O.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import {
  ApplicationDescription,
  AppEvents,
  KillExecutors,
  RegisterApplication,
  RegisteredApplication,
  RequestExecutors,
  formatIssues,
  type AppEventType,
  type Infer,
} from '../protocol/messages.ts';
import { decodeAppEvent, type RawStreamEntry } from '../protocol/streams.ts';
import { clusterKeys, fullExecutorId, DEFAULT_CLUSTER, type Keys } from '../protocol/keys.ts';
import { isExecutorFinished } from '../protocol/states.ts';
import { parseAppConf, type AppConfSettings } from '../protocol/config.ts';
import { connectRedisOrCluster, DEFAULT_REDIS_URL, type RedisConnection } from '../lib/redis.ts';
import { createLogger, type Logger } from '../lib/log.ts';
import { MasterClient, AskRejectedError } from './master-client.ts';
import { HeartbeatReceiver, LeaseKeeper } from './heartbeat-receiver.ts';

// ---------------------------------------------------------------- types

/** AppEventRecord: one entry of an application's event stream, validated, with its stream id. */
export type AppEventRecord = {
  [T in AppEventType]: { id: string; type: T; body: Infer<(typeof AppEvents)[T]> };
}[AppEventType];

/** InvalidAppEvent: an entry the client could not validate (skipped, but the cursor moves past it). */
export interface InvalidAppEvent {
  id: string;
  type: string;
  reason: string;
}

/** ExecutorDecommissionInfo: Spark's, for `executorDecommissioned`. */
export interface ExecutorDecommissionInfo {
  message: string;
  workerHost: string | undefined;
}

/**
 * AppClientListener: Spark's StandaloneAppClientListener. Every method is
 * optional. Executor ids are Spark's full ids `appId/execId`.
 */
export interface AppClientListener {
  connected?(appId: string): void;
  /** disconnected: the connection to Redis (Flint's master) dropped; at most once until it is back. */
  disconnected?(): void;
  /** dead: the application is over for this client (given up, removed by the master, or stopped); at most once. */
  dead?(reason: string): void;
  executorAdded?(fullId: string, workerId: string, hostPort: string, cores: number, memoryMB: number): void;
  /** executorRemoved: the executor reached a finished state (KILLED, FAILED, LOST, EXITED). */
  executorRemoved?(fullId: string, message: string, exitStatus: number | undefined, workerHost: string | undefined, oomKilled: boolean): void;
  executorDecommissioned?(fullId: string, info: ExecutorDecommissionInfo): void;
  /**
   * executorLost: the app's heartbeat receiver expired the executor (Spark's
   * HeartbeatReceiver → executorLost with "Executor heartbeat timed out after N ms");
   * the master killed it and places a replacement. Such an executor is reported here
   * and not through executorRemoved.
   */
  executorLost?(fullId: string, message: string, workerHost: string | undefined): void;
  workerRemoved?(workerId: string, host: string, message: string): void;
}

/** AppClientEvents: the typed events of AppClient's EventEmitter side. */
export type AppClientEvents = {
  event: [AppEventRecord];
  invalidEvent: [InvalidAppEvent];
  connected: [string];
  dead: [string];
};

export interface AppClientOptions {
  redisUrl?: string;
  cluster?: string;
  /** ApplicationDescription input (defaults filled in by the protocol schema). */
  appDescription: unknown;
  listener?: AppClientListener;
  /** registrationRetries: attempts before giving up (Spark's REGISTRATION_RETRIES = 3). */
  registrationRetries?: number;
  /** registrationTimeoutMs: how long one attempt waits, and the spacing of attempts (Spark: 20 s). */
  registrationTimeoutMs?: number;
  /** clientId: identifies this client to the master; a repeated registration with it returns the same app. */
  clientId?: string;
  /** lastEventId: resume the event stream after this entry id (from a previous client's `lastEventId`). */
  lastEventId?: string;
  /** askTimeoutMs: reply timeout of RequestExecutors, KillExecutors, KillApplication and UnregisterApplication. */
  askTimeoutMs?: number;
  /** eventBlockMs: how long one XREAD blocks before re-checking whether the client is stopping. */
  eventBlockMs?: number;
  /**
   * heartbeatUrl: the app API executors send heartbeats to (spark.flint.executor.heartbeat.url),
   * needed when the app's conf turns executor heartbeats on and does not name one.
   */
  heartbeatUrl?: string;
  /**
   * driverId: the cluster-mode driver this app belongs to (spark.flint.driver.id); default
   * FLINT_DRIVER_ID from the environment, which a worker gives every driver. null: none.
   */
  driverId?: string | null;
  /** leaseRenewMs: how often the client lease is renewed (default: a quarter of the master's spark.flint.app.timeout). */
  leaseRenewMs?: number;
  logger?: Logger;
}

export const REGISTRATION_RETRIES = 3;
export const REGISTRATION_TIMEOUT_MS = 20_000;
export const GIVE_UP_REASON = 'All masters are unresponsive! Giving up.';
export const STOPPED_REASON = 'Application has been stopped.';

/** AppClientError: a caller's mistake (invalid input), with a message naming the field. */
export class AppClientError extends Error {
  override name = 'AppClientError';
}

/** RegistrationRefusedError: thrown by a registration attempt when the master answered "no"; retrying will not help. */
export class RegistrationRefusedError extends Error {
  override name = 'RegistrationRefusedError';
}

/** refusedReason: how `dead` words a refusal (Spark has none: its master never refuses an app). */
export function refusedReason(detail: string): string {
  return `Master refused the registration: ${detail}`;
}

// ---------------------------------------------------------------- pure: registration retries

export type RegistrationReply = Infer<typeof RegisteredApplication>;

export interface RegistrationClock {
  now(): number;
  /** sleep resolves after `ms`, or early when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface RegistrationPolicy {
  retries: number;
  timeoutMs: number;
}

export type RegistrationOutcome =
  | { ok: true; reply: RegistrationReply; attempts: number }
  | { ok: false; reason: string; attempts: number; errors: string[] };

export const systemClock: RegistrationClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted || ms <= 0) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    }),
};

/**
 * registerWithRetries: Spark's `tryRegisterAllMasters` schedule. Attempt `i`
 * starts at `start + i × timeoutMs` (Spark's fixed-rate registration thread), so an
 * attempt that fails fast (Redis refused the connection) still waits for its slot
 * instead of hammering; an attempt that times out takes its whole slot. After
 * `retries` attempts without a reply the outcome is Spark's give-up reason.
 * A refusal (the attempt throws RegistrationRefusedError, or the reply is
 * `{error}`) ends at once: the master answered, and asking again gets the same
 * answer. A reply that does not match RegisteredApplication counts as a failed
 * attempt. Retrying is safe because the master answers a repeated clientId with
 * the same app.
 */
export async function registerWithRetries(
  attempt: (timeoutMs: number) => Promise<unknown>,
  policy: RegistrationPolicy,
  clock: RegistrationClock = systemClock,
  signal?: AbortSignal,
): Promise<RegistrationOutcome> {
  const errors: string[] = [];
  const start = clock.now();
  for (let i = 0; i < policy.retries; i += 1) {
    if (signal?.aborted) return { ok: false, reason: STOPPED_REASON, attempts: i, errors };
    const slot = start + i * policy.timeoutMs;
    const wait = slot - clock.now();
    if (wait > 0) await clock.sleep(wait, signal);
    if (signal?.aborted) return { ok: false, reason: STOPPED_REASON, attempts: i, errors };
    let raw: unknown;
    try {
      raw = await attempt(policy.timeoutMs);
    } catch (error) {
      const message = (error as Error).message ?? String(error);
      errors.push(message);
      if (error instanceof RegistrationRefusedError) return { ok: false, reason: refusedReason(message), attempts: i + 1, errors };
      continue;
    }
    const reply = RegisteredApplication.safeParse(raw);
    if (reply.success) return { ok: true, reply: reply.data, attempts: i + 1 };
    if (raw && typeof raw === 'object' && typeof (raw as { error?: unknown }).error === 'string') {
      const message = (raw as { error: string }).error;
      errors.push(message);
      return { ok: false, reason: refusedReason(message), attempts: i + 1, errors };
    }
    errors.push(`unexpected reply: ${formatIssues(reply.error)}`);
  }
  if (signal?.aborted) return { ok: false, reason: STOPPED_REASON, attempts: policy.retries, errors };
  return { ok: false, reason: GIVE_UP_REASON, attempts: policy.retries, errors };
}

// ---------------------------------------------------------------- pure: event → listener call

/** ListenerCall: what the listener is told about one event, as data. */
export type ListenerCall =
  | { kind: 'executorAdded'; fullId: string; workerId: string; hostPort: string; cores: number; memoryMB: number }
  | { kind: 'executorRemoved'; fullId: string; message: string; exitStatus: number | undefined; workerHost: string | undefined; oomKilled: boolean }
  | { kind: 'executorDecommissioned'; fullId: string; message: string; workerHost: string | undefined }
  | { kind: 'executorLost'; fullId: string; message: string; workerHost: string | undefined }
  | { kind: 'workerRemoved'; workerId: string; host: string; message: string }
  | { kind: 'dead'; reason: string };

/**
 * listenerCallFor: Spark's ClientEndpoint.receive for one app event. A finished
 * executor state becomes `executorRemoved`, DECOMMISSIONED `executorDecommissioned`,
 * other states (LAUNCHING, RUNNING) nothing (Spark only logs them).
 * RegisteredApplication in the stream makes no call: `connected` comes from the
 * registration reply, exactly once per start.
 */
export function listenerCallFor(appId: string, event: AppEventRecord): ListenerCall | undefined {
  switch (event.type) {
    case 'ExecutorAdded': {
      const { id, workerId, hostPort, cores, memoryMB } = event.body;
      return { kind: 'executorAdded', fullId: fullExecutorId(appId, id), workerId, hostPort, cores, memoryMB };
    }
    case 'ExecutorUpdated': {
      const { id, state, message, exitStatus, workerHost, oomKilled } = event.body;
      const fullId = fullExecutorId(appId, id);
      if (isExecutorFinished(state)) {
        return { kind: 'executorRemoved', fullId, message: message ?? '', exitStatus, workerHost, oomKilled: oomKilled ?? false };
      }
      if (state === 'DECOMMISSIONED') return { kind: 'executorDecommissioned', fullId, message: message ?? '', workerHost };
      return undefined;
    }
    case 'ExecutorLost':
      return { kind: 'executorLost', fullId: fullExecutorId(appId, event.body.id), message: event.body.message, workerHost: event.body.workerHost || undefined };
    case 'WorkerRemoved':
      return { kind: 'workerRemoved', workerId: event.body.id, host: event.body.host, message: event.body.message };
    case 'ApplicationRemoved':
      return { kind: 'dead', reason: `Master removed our application: ${event.body.message}` };
    case 'RegisteredApplication':
      return undefined;
  }
}

/** invokeListener makes one (non-dead) call on the listener; `dead` goes through the client's at-most-once guard. */
export function invokeListener(listener: AppClientListener, call: Exclude<ListenerCall, { kind: 'dead' }>): void {
  switch (call.kind) {
    case 'executorAdded':
      listener.executorAdded?.(call.fullId, call.workerId, call.hostPort, call.cores, call.memoryMB);
      return;
    case 'executorRemoved':
      listener.executorRemoved?.(call.fullId, call.message, call.exitStatus, call.workerHost, call.oomKilled);
      return;
    case 'executorDecommissioned':
      listener.executorDecommissioned?.(call.fullId, { message: call.message, workerHost: call.workerHost });
      return;
    case 'executorLost':
      listener.executorLost?.(call.fullId, call.message, call.workerHost);
      return;
    case 'workerRemoved':
      listener.workerRemoved?.(call.workerId, call.host, call.message);
      return;
  }
}

// ---------------------------------------------------------------- stream reading (shared with the HTTP API)

const STREAM_ID = /^(0|\d{1,20}-\d{1,20}|\d{1,20})$/;

/** isStreamId: a Redis stream id a client may resume after (`0`, `<ms>` or `<ms>-<seq>`). */
export function isStreamId(value: string): boolean {
  return STREAM_ID.test(value);
}

/** compareStreamIds orders two stream ids numerically (`<ms>-<seq>`; a bare `<ms>` means seq 0). */
export function compareStreamIds(a: string, b: string): number {
  const [aMs = '0', aSeq = '0'] = a.split('-');
  const [bMs = '0', bSeq = '0'] = b.split('-');
  const byMs = BigInt(aMs) - BigInt(bMs);
  if (byMs !== 0n) return byMs < 0n ? -1 : 1;
  const bySeq = BigInt(aSeq) - BigInt(bSeq);
  return bySeq === 0n ? 0 : bySeq < 0n ? -1 : 1;
}

/** decodeAppEventEntry: one raw stream entry → a validated record or the reason it is invalid. */
export function decodeAppEventEntry(entry: RawStreamEntry): { ok: true; event: AppEventRecord } | { ok: false; invalid: InvalidAppEvent } {
  const decoded = decodeAppEvent(entry);
  if (!decoded.parsed.ok) return { ok: false, invalid: { id: decoded.id, type: decoded.type, reason: decoded.parsed.reason } };
  const { type, body } = decoded.parsed.value;
  return { ok: true, event: { id: decoded.id, type, body } as AppEventRecord };
}

/**
 * readAppEventEntries: one XREAD of an app's stream after `afterId`; empty when
 * nothing arrived within `blockMs` (0 = do not block). Blocking reads need a
 * connection of their own.
 */
export async function readAppEventEntries(
  redis: RedisConnection,
  streamKey: string,
  afterId: string,
  options: { count?: number; blockMs?: number } = {},
): Promise<RawStreamEntry[]> {
  const count = options.count ?? 100;
  const reply = (options.blockMs && options.blockMs > 0
    ? await redis.xread('COUNT', count, 'BLOCK', options.blockMs, 'STREAMS', streamKey, afterId)
    : await redis.xread('COUNT', count, 'STREAMS', streamKey, afterId)) as [string, RawStreamEntry[]][] | null;
  return reply?.[0]?.[1] ?? [];
}

// ---------------------------------------------------------------- the client

/** parseAppDescription validates an ApplicationDescription input, with an error naming each bad field. */
export function parseAppDescription(input: unknown): ApplicationDescription {
  const parsed = ApplicationDescription.safeParse(input);
  if (!parsed.success) throw new AppClientError(`invalid application description: ${formatIssues(parsed.error)}`);
  return parsed.data;
}

/**
 * withClientConf completes an app's conf as the client knows it: the driver link
 * (unless the conf has one) and, for an app with executor heartbeats on, the heartbeat
 * URL (unless the conf has one); it checks the conf the way the master will (an
 * invalid value names its key).
 */
export function withClientConf(desc: ApplicationDescription, extra: { driverId?: string; heartbeatUrl?: string }): { desc: ApplicationDescription; settings: AppConfSettings } {
  const conf = { ...(desc.conf ?? {}) };
  if (extra.driverId && conf['spark.flint.driver.id'] === undefined) conf['spark.flint.driver.id'] = extra.driverId;
  const parse = () => {
    try {
      return parseAppConf(conf);
    } catch (error) {
      throw new AppClientError(`invalid application description: ${(error as Error).message}`);
    }
  };
  let settings: AppConfSettings = parse();
  if (settings.heartbeat && !settings.heartbeat.url && extra.heartbeatUrl) {
    conf['spark.flint.executor.heartbeat.url'] = extra.heartbeatUrl;
    settings = parse();
  }
  if (settings.heartbeat && !settings.heartbeat.url) {
    throw new AppClientError('invalid application description: spark.flint.executor.heartbeat.enabled needs spark.flint.executor.heartbeat.url (or the heartbeatUrl option): the app API your executors send heartbeats to');
  }
  return { desc: Object.keys(conf).length > 0 ? { ...desc, conf } : desc, settings };
}

/**
 * AppClient: register, follow events, request and kill executors, stop.
 * Use either the `listener` (Spark's callbacks), `on('event')`, or `for await
 * (const e of client)`; all three see every event once, in stream order.
 */
export class AppClient extends EventEmitter<AppClientEvents> {
  readonly clientId: string;
  readonly appDescription: ApplicationDescription;
  readonly keys: Keys;
  private readonly redisUrl: string;
  private readonly listener: AppClientListener;
  private readonly policy: RegistrationPolicy;
  private readonly askTimeoutMs: number;
  private readonly eventBlockMs: number;
  private readonly log: Logger;
  private readonly clock: RegistrationClock;
  private readonly master: MasterClient;
  private readonly settings: AppConfSettings;
  private readonly leaseRenewMs?: number;
  private readonly stopSignal = new AbortController();
  private reader?: RedisConnection;
  private commands?: Promise<RedisConnection>;
  private lease?: LeaseKeeper;
  private releaseLease?: () => void;
  private receiver?: HeartbeatReceiver;
  private readLoop?: Promise<void>;
  private registration?: Promise<RegistrationOutcome>;
  private cursor: string;
  private currentAppId?: string;
  private deadReasonValue?: string;
  private removedByMaster = false;
  private detached = false;
  private disconnectReported = false;
  private started = false;
  private stopping?: Promise<void>;
  private readonly iterators = new Set<AppEventQueue>();

  constructor(options: AppClientOptions, deps: { clock?: RegistrationClock; master?: MasterClient } = {}) {
    super();
    const driverId = options.driverId === null ? undefined : (options.driverId ?? process.env.FLINT_DRIVER_ID ?? undefined);
    const completed = withClientConf(parseAppDescription(options.appDescription), { driverId: driverId || undefined, heartbeatUrl: options.heartbeatUrl });
    this.appDescription = completed.desc;
    this.settings = completed.settings;
    if (options.leaseRenewMs !== undefined && !(Number.isFinite(options.leaseRenewMs) && options.leaseRenewMs > 0)) {
      throw new AppClientError(`leaseRenewMs must be > 0, got ${options.leaseRenewMs}`);
    }
    this.leaseRenewMs = options.leaseRenewMs;
    const clientId = options.clientId ?? randomUUID();
    const clientIdCheck = RegisterApplication.shape.clientId.safeParse(clientId);
    if (!clientIdCheck.success) throw new AppClientError(`invalid clientId '${clientId}': ${formatIssues(clientIdCheck.error)}`);
    this.clientId = clientId;
    if (options.lastEventId !== undefined && !isStreamId(options.lastEventId)) {
      throw new AppClientError(`invalid lastEventId '${options.lastEventId}': expected a stream id such as 1700000000000-0`);
    }
    this.cursor = options.lastEventId ?? '0';
    const retries = options.registrationRetries ?? REGISTRATION_RETRIES;
    const timeoutMs = options.registrationTimeoutMs ?? REGISTRATION_TIMEOUT_MS;
    if (!Number.isInteger(retries) || retries < 1) throw new AppClientError(`registrationRetries must be an integer ≥ 1, got ${retries}`);
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new AppClientError(`registrationTimeoutMs must be > 0, got ${timeoutMs}`);
    this.policy = { retries, timeoutMs };
    this.askTimeoutMs = options.askTimeoutMs ?? 10_000;
    this.eventBlockMs = options.eventBlockMs ?? 5_000;
    this.redisUrl = options.redisUrl ?? DEFAULT_REDIS_URL;
    this.keys = clusterKeys(options.cluster ?? DEFAULT_CLUSTER);
    this.listener = options.listener ?? {};
    this.log = options.logger ?? createLogger('app-client', { clientId });
    this.clock = deps.clock ?? systemClock;
    this.master = deps.master ?? new MasterClient(this.redisUrl, this.keys.cluster, `flint-app-client-${clientId}`.slice(0, 100));
  }

  /** appId: set once the master replied to RegisterApplication. */
  get appId(): string | undefined {
    return this.currentAppId;
  }

  /** lastEventId: the id of the last event delivered; pass it back (with the same clientId) to resume. */
  get lastEventId(): string {
    return this.cursor;
  }

  /** deadReason: why the client is dead, once it is. */
  get deadReason(): string | undefined {
    return this.deadReasonValue;
  }

  get isRegistered(): boolean {
    return this.currentAppId !== undefined && !this.isOver;
  }

  /**
   * start registers (retried per Spark) and starts following the app's events.
   * Resolves with the app id, or with undefined when registration gave up (the
   * listener's `dead` got the reason, also in `deadReason`).
   */
  async start(): Promise<string | undefined> {
    if (this.started) throw new AppClientError('start() was already called on this AppClient');
    this.started = true;
    const body = { clientId: this.clientId, appDescription: this.appDescription };
    this.registration = registerWithRetries(
      async (timeoutMs) => {
        try {
          return await this.master.ask('RegisterApplication', body, timeoutMs);
        } catch (error) {
          if (error instanceof AskRejectedError) throw new RegistrationRefusedError((error as Error).message, { cause: error });
          throw error;
        }
      },
      this.policy,
      this.clock,
      this.stopSignal.signal,
    );
    const outcome = await this.registration;
    if (!outcome.ok) {
      if (this.detached) return undefined;
      if (outcome.errors.length) this.log.warn({ attempts: outcome.attempts, errors: outcome.errors }, 'registration failed');
      this.markDead(outcome.reason);
      return undefined;
    }
    if (this.detached) return outcome.reply.appId;
    if (this.stopSignal.signal.aborted) return undefined;
    const appId = outcome.reply.appId;
    this.currentAppId = appId;
    try {
      this.reader = await connectRedisOrCluster(this.redisUrl, { name: `flint-app-events-${this.clientId}-${appId}`.slice(0, 100), blocking: true });
    } catch (error) {
      this.markDead(`cannot read the application's events: ${(error as Error).message}`);
      return undefined;
    }
    if (this.isOver) {
      // stop() or close() ran while the connection was opening.
      this.reader.disconnect();
      return undefined;
    }
    this.watchConnection(this.reader);
    this.startLiveness(appId, outcome.reply.leaseTimeoutMs);
    this.log.info({ appId, attempts: outcome.attempts }, 'registered');
    this.safely(() => this.listener.connected?.(appId));
    this.emit('connected', appId);
    this.readLoop = this.followEvents(this.reader, this.keys.appEvents(appId));
    return appId;
  }

  /** requestTotalExecutors: Spark's; false before registration or for an app the master does not know. */
  async requestTotalExecutors(requestedTotal: number): Promise<boolean> {
    const check = RequestExecutors.shape.requestedTotal.safeParse(requestedTotal);
    if (!check.success) throw new AppClientError(`requestedTotal must be an integer ≥ 0, got ${String(requestedTotal)}`);
    if (!this.isRegistered) return false;
    return (await this.master.ask<boolean>('RequestExecutors', { appId: this.currentAppId!, requestedTotal }, this.askTimeoutMs)) === true;
  }

  /**
   * killExecutors: Spark's; ids are executor numbers ("3" or 3). Ids that do not
   * parse as integers are dropped by the master, as in Spark. False before registration.
   */
  async killExecutors(executorIds: ReadonlyArray<string | number>): Promise<boolean> {
    if (!Array.isArray(executorIds)) throw new AppClientError('executorIds must be an array of executor ids');
    const ids = executorIds.map((id) => String(id));
    const check = KillExecutors.shape.executorIds.safeParse(ids);
    if (!check.success) throw new AppClientError(`invalid executorIds: ${formatIssues(check.error)}`);
    if (!this.isRegistered) return false;
    return (await this.master.ask<boolean>('KillExecutors', { appId: this.currentAppId!, executorIds: ids }, this.askTimeoutMs)) === true;
  }

  /** kill: the UI's "kill" (KillApplication); the master then removes the app as KILLED. */
  async kill(): Promise<boolean> {
    if (!this.isRegistered) return false;
    return (await this.master.ask<boolean>('KillApplication', { appId: this.currentAppId! }, this.askTimeoutMs)) === true;
  }

  /**
   * stop: Spark's StopAppClient: dead("Application has been stopped."), then
   * UnregisterApplication (unless the master already removed the app), then close
   * every connection. Safe to call more than once and during registration.
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  /**
   * close detaches without unregistering: the app stays registered and its events
   * keep accumulating. For a process about to exit that will resume later with the
   * same `clientId` and its saved `lastEventId`. The listener hears no `dead`;
   * iterators end. After close (or stop), the other one does nothing.
   */
  close(): Promise<void> {
    this.stopping ??= this.doClose();
    return this.stopping;
  }

  private async doClose(): Promise<void> {
    this.detached = true;
    this.stopSignal.abort();
    this.endIterators();
    await this.registration;
    await this.stopLiveness();
    this.reader?.disconnect();
    await this.readLoop;
    await this.master.close();
  }

  private async doStop(): Promise<void> {
    this.stopSignal.abort();
    this.markDead(STOPPED_REASON);
    // An attempt already in flight may still register the app (it is bounded by
    // registrationTimeoutMs); wait for it so the app is unregistered, not leaked.
    const outcome = await this.registration;
    const appId = this.currentAppId ?? (outcome?.ok ? outcome.reply.appId : undefined);
    await this.stopLiveness();
    if (appId && !this.removedByMaster) {
      try {
        await this.master.ask('UnregisterApplication', { appId }, this.askTimeoutMs);
      } catch (error) {
        this.log.warn({ appId, err: (error as Error).message }, 'UnregisterApplication got no reply');
      }
    }
    this.reader?.disconnect();
    await this.readLoop;
    await this.master.close();
  }

  /** events: an async iterator of every event from now on; ends when the client is dead. */
  events(): AsyncIterableIterator<AppEventRecord> {
    const queue = new AppEventQueue(() => this.iterators.delete(queue));
    if (this.isOver) queue.end();
    else this.iterators.add(queue);
    return queue;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<AppEventRecord> {
    return this.events();
  }

  // ---- internals

  /**
   * startLiveness: renew the app's lease every quarter of the master's timeout (so
   * three renewals may fail before the master gives up on this client), and run the
   * app's heartbeat receiver when its conf turns executor heartbeats on.
   */
  private startLiveness(appId: string, leaseTimeoutMs: number | undefined): void {
    const commands = (this.commands ??= connectRedisOrCluster(this.redisUrl, { name: `flint-app-client-${this.clientId}-lease`.slice(0, 100) }));
    commands.catch(() => undefined); // each use reports its own failure
    const redis = () => commands;
    const period = this.leaseRenewMs ?? Math.max(Math.floor((leaseTimeoutMs ?? 60_000) / 4), 50);
    this.lease = new LeaseKeeper(redis, this.keys, this.log, period);
    this.releaseLease = this.lease.hold(appId);
    if (this.settings.heartbeat) {
      this.receiver = new HeartbeatReceiver({ redis, keys: this.keys, master: this.master, log: this.log, appId, askTimeoutMs: this.askTimeoutMs });
      this.receiver.start();
    }
  }

  private async stopLiveness(): Promise<void> {
    this.releaseLease?.();
    this.lease?.stop();
    await this.receiver?.stop();
    if (this.commands) {
      const commands = this.commands;
      this.commands = undefined;
      await commands.then((redis) => redis.quit()).catch(() => undefined);
    }
  }

  /**
   * followEvents: the event loop. The cursor moves before the event is handed out,
   * so a listener that saves `lastEventId` saves the id of the event it is handling.
   * A failed XREAD (Redis gone longer than ioredis' own retries) is retried from
   * the same cursor after a short pause.
   */
  private async followEvents(reader: RedisConnection, streamKey: string): Promise<void> {
    let failures = 0;
    while (!this.isOver) {
      let entries: RawStreamEntry[];
      try {
        entries = await readAppEventEntries(reader, streamKey, this.cursor, { blockMs: this.eventBlockMs });
        failures = 0;
      } catch (error) {
        if (this.isOver) break;
        failures += 1;
        this.log.warn({ appId: this.currentAppId, err: (error as Error).message }, 'reading events failed; retrying from the same cursor');
        await this.clock.sleep(Math.min(100 * 2 ** Math.min(failures, 6), 5_000), this.stopSignal.signal);
        continue;
      }
      for (const entry of entries) {
        if (this.isOver) break;
        this.cursor = entry[0];
        this.deliver(entry);
      }
    }
    // Dead (removed by the master, stopped) or closed: nothing more to read on this connection.
    reader.disconnect();
  }

  private deliver(entry: RawStreamEntry): void {
    const decoded = decodeAppEventEntry(entry);
    if (!decoded.ok) {
      this.log.error({ appId: this.currentAppId, ...decoded.invalid }, 'invalid app event skipped');
      this.emit('invalidEvent', decoded.invalid);
      return;
    }
    const event = decoded.event;
    this.safely(() => this.emit('event', event));
    for (const queue of this.iterators) queue.push(event);
    const call = listenerCallFor(this.currentAppId!, event);
    if (!call) return;
    if (call.kind === 'dead') {
      this.removedByMaster = true;
      this.markDead(call.reason);
      void this.stopLiveness();
      return;
    }
    this.safely(() => invokeListener(this.listener, call));
  }

  /** markDead: Spark's; the listener hears it at most once, and iterators end. */
  private markDead(reason: string): void {
    if (this.deadReasonValue !== undefined) return;
    this.deadReasonValue = reason;
    this.safely(() => this.listener.dead?.(reason));
    this.safely(() => this.emit('dead', reason));
    this.endIterators();
  }

  private endIterators(): void {
    for (const queue of this.iterators) queue.end();
    this.iterators.clear();
  }

  /** isOver: dead or closed; the event loop ends. */
  private get isOver(): boolean {
    return this.deadReasonValue !== undefined || this.detached;
  }

  /** watchConnection: `disconnected` at most once per drop, re-armed when the connection is ready again. */
  private watchConnection(reader: RedisConnection): void {
    reader.on('error', (error: Error) => this.log.debug({ err: error.message }, 'event connection error'));
    reader.on('close', () => {
      if (this.isOver || this.disconnectReported) return;
      this.disconnectReported = true;
      this.safely(() => this.listener.disconnected?.());
    });
    reader.on('ready', () => {
      this.disconnectReported = false;
    });
  }

  /** safely: a listener's exception is logged, never allowed to stop the event loop. */
  private safely(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.log.error({ appId: this.currentAppId, err: (error as Error).message }, 'listener threw');
    }
  }
}

/** AppEventQueue: one async iterator's buffer (unbounded: the consumer decides the pace). */
class AppEventQueue implements AsyncIterableIterator<AppEventRecord> {
  private readonly buffer: AppEventRecord[] = [];
  private waiting?: (result: IteratorResult<AppEventRecord>) => void;
  private ended = false;

  constructor(private readonly onClose: () => void) {}

  push(event: AppEventRecord): void {
    if (this.ended) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value: event, done: false });
    } else {
      this.buffer.push(event);
    }
  }

  end(): void {
    this.ended = true;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<AppEventRecord>> {
    const event = this.buffer.shift();
    if (event) return Promise.resolve({ value: event, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<AppEventRecord>> {
    this.buffer.length = 0;
    this.end();
    this.onClose();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<AppEventRecord> {
    return this;
  }
}
