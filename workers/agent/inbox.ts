/**
 * Inbox: the agent's side of its inbox stream (consumer group `agent`, consumer = worker
 * id). First the entries a previous run of this agent took but never finished (its
 * pending entries), then new ones, each admitted in stream order:
 *
 *   - an entry whose fields are gone (XREADGROUP returns a pending id with no fields when
 *     the entry was trimmed or deleted) is acknowledged and logged;
 *   - an entry that does not decode is sent to the dead-letter stream with its reason and
 *     counted (lib/dead-letters.ts), then acknowledged;
 *   - a command waits while the agent (re-)registers, so a command of the coming epoch is
 *     not refused; a command of any other epoch is refused (that is how commands for an
 *     older incarnation of the worker are dropped);
 *   - every other command goes to its handler in the typed handler table, which mirrors the
 *     master's HANDLERS: a command without a handler does not compile.
 *
 * An entry is acknowledged and deleted (workers/inbox/acknowledge.ts) once its handler is
 * done, failed or not; after a crash the pending ones are handled again (handlers are
 * idempotent). At most `maxInFlight` commands are handled at once; each gives its slot back
 * when it ends, whatever happens (every runtime call under a handler is bounded). Nothing in
 * an entry can stop the reader: the agent never exits because of what is in its inbox.
 *
 * `seenThrough` is the last entry taken in, for WorkerLatestState: the master ends a task
 * it holds here only if its launch entry is at or before it and the agent does not hold it.
 */
import { WorkerInbound, parseMessage, type WorkerInboundMessage, type WorkerInboundType } from '../../protocol/messages.ts';
import { INBOX_GROUP, fieldsToObject } from '../../protocol/streams.ts';
import type { Keys } from '../../protocol/keys.ts';
import { recordDeadLetter } from '../../lib/dead-letters.ts';
import type { RedisConnection } from '../../lib/redis.ts';
import type { Logger } from '../../lib/log.ts';
import { acknowledgeInboxEntries } from '../inbox/acknowledge.ts';
import { AgentStoppedError } from './errors.ts';
import type { InboxStats } from './types.ts';

/** InboxHandlers: one handler per command a worker receives. */
export type InboxHandlers = { [T in WorkerInboundType]: (body: WorkerInboundMessage<T>) => Promise<void> };

/** RawEntry: what XREADGROUP returns for one entry; fields are null for an entry that is gone. */
type RawEntry = [string, string[] | null];

export interface InboxDeps {
  /** connection for the blocking reads (its own) */
  blocking: RedisConnection;
  /** connection for acknowledgements and dead letters */
  redis: RedisConnection;
  keys: Keys;
  workerId: string;
  log: Logger;
  handlers: InboxHandlers;
  whenRegistered(): Promise<void>;
  epoch(): number | undefined;
  isStopping(): boolean;
  sleep(ms: number): Promise<void>;
  /** most commands handled at once (default 64) */
  maxInFlight?: number;
}

const READ_COUNT = '64';
const BLOCK_MS = '2000';

export class Inbox {
  /** the last entry taken in, in stream order (undefined until the first is, or the replay is done) */
  seenThrough: string | undefined;
  private readonly stats = { handled: 0, refusedEpoch: 0, deadLettered: 0, trimmed: 0 };
  private readonly inFlight = new Set<Promise<void>>();
  private readonly inFlightIds = new Set<string>();
  private readonly stream: string;
  private closed = false;

  constructor(private readonly deps: InboxDeps) {
    this.stream = deps.keys.workerInbox(deps.workerId);
  }

  view(): InboxStats {
    return { ...this.stats, inFlight: this.inFlight.size };
  }

  /** drained: every command being handled has ended. */
  drained(): Promise<void> {
    return Promise.allSettled([...this.inFlight]).then(() => undefined);
  }

  /** close stops reading (commands already taken in go on, and are acknowledged when done). */
  close(): void {
    this.closed = true;
  }

  private done(): boolean {
    return this.closed || this.deps.isStopping();
  }

  /** run reads until closed: pending entries of this consumer first (a previous run died before acking), then new ones. */
  async run(): Promise<void> {
    await this.ensureGroup();
    if (!(await this.replayPending())) return;
    // everything up to the group's position was either just replayed or handled by an earlier run
    const delivered = await this.lastDelivered();
    if (delivered !== undefined && (this.seenThrough === undefined || compareStreamIds(delivered, this.seenThrough) > 0)) this.seenThrough = delivered;
    while (!this.done()) {
      const entries = await this.read(['COUNT', READ_COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', this.stream, '>']);
      if (entries === undefined) {
        // a read that failed may have been delivered (the group moved) with its reply lost: those entries
        // are pending for this consumer now, and are taken from there
        if (!this.done()) await this.replayPending();
        continue;
      }
      for (const entry of entries) {
        if (this.done()) return;
        await this.take(entry);
      }
    }
  }

  /** replayPending takes this consumer's pending entries that are not being handled already; false once closed. */
  private async replayPending(): Promise<boolean> {
    let cursor = '0';
    while (!this.done()) {
      const entries = await this.read(['COUNT', READ_COUNT, 'STREAMS', this.stream, cursor]);
      if (entries === undefined) continue;
      if (entries.length === 0) return true;
      for (const entry of entries) {
        if (this.done()) return false;
        if (!this.inFlightIds.has(entry[0])) await this.take(entry);
        cursor = entry[0];
      }
    }
    return false;
  }

  /** take admits one entry and starts its work, waiting for a free slot first. */
  private async take(entry: RawEntry): Promise<void> {
    const max = this.deps.maxInFlight ?? 64;
    while (this.inFlight.size >= max) await Promise.race(this.inFlight);
    let work: Promise<void>;
    try {
      ({ work } = await this.admit(entry));
    } catch (error) {
      if (error instanceof AgentStoppedError || this.deps.isStopping()) return; // left pending for the next agent
      this.deps.log.error({ err: error, entryId: entry[0] }, 'inbox entry could not be admitted; acknowledging it');
      work = Promise.resolve();
    }
    this.seenThrough = entry[0];
    const id = entry[0];
    this.inFlightIds.add(id);
    const slot = this.ackAfter(id, work).finally(() => {
      this.inFlight.delete(slot);
      this.inFlightIds.delete(id);
    });
    this.inFlight.add(slot);
  }

  /** admit decodes and checks one entry, and starts its handler; resolves with the handler's work (boxed: a promise must not be flattened here). */
  private async admit([id, fields]: RawEntry): Promise<{ work: Promise<void> }> {
    const done = { work: Promise.resolve() };
    if (fields === null || fields.length === 0) {
      this.stats.trimmed += 1;
      this.deps.log.warn({ entryId: id }, 'inbox entry has no fields (trimmed or deleted before it was handled): acknowledging it');
      return done;
    }
    const raw = fieldsToObject(fields);
    const parsed = parseMessage(WorkerInbound, raw.type ?? '', raw.body ?? '');
    if (!parsed.ok) {
      this.stats.deadLettered += 1;
      this.deps.log.error({ entryId: id, type: raw.type, reason: parsed.reason }, 'undecodable inbox entry: dead-lettered');
      await recordDeadLetter(this.deps.redis, this.deps.keys, { type: raw.type ?? '', reason: parsed.reason, raw: raw.body ?? '', source: `worker ${this.deps.workerId} inbox ${id}` }).catch(
        (error: unknown) => this.deps.log.warn({ err: error, entryId: id }, 'could not record the dead letter'),
      );
      return done;
    }
    await this.deps.whenRegistered();
    const { type, body } = parsed.value;
    const commandEpoch = (body as { epoch?: number }).epoch;
    if (commandEpoch !== undefined && commandEpoch !== this.deps.epoch()) {
      this.stats.refusedEpoch += 1;
      this.deps.log.warn({ entryId: id, type, commandEpoch, epoch: this.deps.epoch() }, 'refusing a command for another registration epoch of this worker');
      return done;
    }
    const handler = this.deps.handlers[type] as (body: unknown) => Promise<void>;
    try {
      return { work: handler(body) };
    } catch (error) {
      return { work: Promise.reject(error as Error) };
    }
  }

  /** ackAfter acknowledges (and deletes) the entry once its work is done; a stop leaves it pending. */
  private async ackAfter(id: string, work: Promise<void>): Promise<void> {
    try {
      await work;
    } catch (error) {
      if (this.deps.isStopping() || error instanceof AgentStoppedError) return; // not acked: the next agent handles it again
      this.deps.log.error({ err: error, entryId: id }, 'inbox command failed');
    }
    if (this.deps.isStopping()) return;
    try {
      await acknowledgeInboxEntries(this.deps.redis, this.stream, INBOX_GROUP, [id]);
      this.stats.handled += 1;
    } catch (error) {
      this.deps.log.warn({ err: error, entryId: id }, 'could not acknowledge an inbox entry (it will be handled again, idempotently)');
    }
  }

  private async ensureGroup(): Promise<void> {
    try {
      await this.deps.redis.xgroup('CREATE', this.stream, INBOX_GROUP, '0', 'MKSTREAM');
    } catch (error) {
      if (!/BUSYGROUP/.test((error as Error).message)) throw error;
    }
  }

  /** lastDelivered: the group's last-delivered-id (XINFO GROUPS). */
  private async lastDelivered(): Promise<string | undefined> {
    try {
      const groups = (await this.deps.redis.xinfo('GROUPS', this.stream)) as unknown[][];
      for (const group of groups) {
        const info = fieldsToObject(group.map(String));
        if (info.name === INBOX_GROUP) return info['last-delivered-id'];
      }
    } catch (error) {
      this.deps.log.warn({ err: error }, 'could not read the inbox group position');
    }
    return undefined;
  }

  /** read: one XREADGROUP; undefined after a transient error (logged, retried after a pause). */
  private async read(tail: string[]): Promise<RawEntry[] | undefined> {
    try {
      // the typed command, not `call`: ioredis normalises the reply shape only there
      const xreadgroup = this.deps.blocking.xreadgroup.bind(this.deps.blocking) as unknown as (...args: string[]) => Promise<[string, RawEntry[]][] | null>;
      const result = await xreadgroup('GROUP', INBOX_GROUP, this.deps.workerId, ...tail);
      const entries = result?.[0]?.[1] ?? [];
      if (!Array.isArray(entries)) throw new Error(`unexpected XREADGROUP reply: ${JSON.stringify(result).slice(0, 200)}`);
      return entries;
    } catch (error) {
      if (this.done()) return undefined;
      const message = (error as Error).message;
      if (/NOGROUP/.test(message)) {
        this.deps.log.warn('inbox consumer group missing (stream deleted?); creating it again');
        await this.ensureGroup().catch(() => undefined);
      } else {
        this.deps.log.warn({ error: message }, 'inbox read failed; retrying');
      }
      await this.deps.sleep(500);
      return undefined;
    }
  }
}

/** compareStreamIds: <0, 0, >0 as stream id a is before, equal to or after b. */
export function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am !== bm ? am - bm : as - bs;
}
