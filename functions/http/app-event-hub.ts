/**
 * AppEventHub: one blocking Redis reader per app API process for every open event
 * stream (GET /v1/apps/:id/events), instead of a connection per stream, and the cap on
 * how many streams a process serves (spark.flint.appApi.maxStreams; past it, 429).
 *
 * A stream first catches up on the shared non-blocking connection (its cursor may be
 * far behind), then joins the hub. The hub's loop issues one XREAD BLOCK over the
 * event streams of every joined app, each from the oldest cursor among that app's
 * subscribers, and hands each subscriber the entries after its own cursor. A stream
 * that joins while an XREAD is blocked is included in the next one (within `blockMs`);
 * nothing is lost meanwhile, because reads are by cursor. Every key of a cluster
 * shares one hash tag, so the multi-key XREAD is valid on Redis Cluster too.
 */
import type { RedisConnection } from '../../lib/redis.ts';
import type { Logger } from '../../lib/log.ts';
import type { RawStreamEntry } from '../../protocol/streams.ts';
import { compareStreamIds } from '../../client/app-client.ts';

/** HUB_READ_COUNT: entries per stream per XREAD. */
const HUB_READ_COUNT = 100;

export interface AppEventHubOptions {
  /** opens the hub's blocking connection (once, on the first join) */
  connect: () => Promise<RedisConnection>;
  /** how long one XREAD blocks (bounds how late a newly joined stream is first read) */
  blockMs: number;
  /** streams served at once (spark.flint.appApi.maxStreams) */
  maxStreams: number;
  log: Logger;
}

/** HubSubscription: one open event stream's view of the hub. */
export class HubSubscription {
  private buffer: RawStreamEntry[] = [];
  private wake?: () => void;
  closed = false;

  constructor(
    readonly streamKey: string,
    /** the id of the last entry handed to this subscriber */
    public cursor: string,
    private readonly onClose: (subscription: HubSubscription) => void,
  ) {}

  /** push: entries read by the hub; only those after this subscriber's cursor are kept. */
  push(entries: readonly RawStreamEntry[]): void {
    for (const entry of entries) {
      if (compareStreamIds(entry[0], this.cursor) <= 0) continue;
      this.buffer.push(entry);
      this.cursor = entry[0];
    }
    if (this.buffer.length > 0) this.notify();
  }

  /** next: the buffered entries, waiting up to `ms` for some; [] on timeout or close. */
  async next(ms: number): Promise<RawStreamEntry[]> {
    if (this.buffer.length === 0 && !this.closed) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        timer = setTimeout(resolve, ms);
      });
      clearTimeout(timer);
      this.wake = undefined;
    }
    const out = this.buffer;
    this.buffer = [];
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.notify();
    this.onClose(this);
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/** MAX_STREAMS_PER_APP: event streams one application may hold open in one process (its client and a few watchers need far fewer). */
export const MAX_STREAMS_PER_APP = 16;

export class AppEventHub {
  private readonly byKey = new Map<string, Set<HubSubscription>>();
  private reserved = 0;
  private readonly perApp = new Map<string, number>();
  private reader?: Promise<RedisConnection>;
  private loop?: Promise<void>;
  private closed = false;

  constructor(private readonly options: AppEventHubOptions) {}

  /** streams: how many streams hold a place (catching up or joined). */
  get streams(): number {
    return this.reserved;
  }

  /**
   * reserve takes a place for a new stream of `appId`; 'full' when maxStreams are open,
   * 'app-full' when that application already has MAX_STREAMS_PER_APP (one tenant cannot take
   * every place). Give it back with `unreserve(appId)`.
   */
  reserve(appId: string): 'ok' | 'full' | 'app-full' {
    if (this.closed || this.reserved >= this.options.maxStreams) return 'full';
    const ofApp = this.perApp.get(appId) ?? 0;
    if (ofApp >= MAX_STREAMS_PER_APP) return 'app-full';
    this.perApp.set(appId, ofApp + 1);
    this.reserved += 1;
    return 'ok';
  }

  unreserve(appId: string): void {
    const ofApp = (this.perApp.get(appId) ?? 1) - 1;
    if (ofApp > 0) this.perApp.set(appId, ofApp);
    else this.perApp.delete(appId);
    this.reserved = Math.max(0, this.reserved - 1);
  }

  /** join: follow `streamKey` after `cursor` (the stream already caught up to it). */
  join(streamKey: string, cursor: string): HubSubscription {
    const subscription = new HubSubscription(streamKey, cursor, (s) => this.leave(s));
    let set = this.byKey.get(streamKey);
    if (!set) this.byKey.set(streamKey, (set = new Set()));
    set.add(subscription);
    this.loop ??= this.run().finally(() => {
      this.loop = undefined;
      // a join that raced with the loop's end starts a new one
      if (this.byKey.size > 0 && !this.closed) this.loop = this.run().finally(() => (this.loop = undefined));
    });
    return subscription;
  }

  /** close ends every subscription and the hub's connection. */
  async close(): Promise<void> {
    this.closed = true;
    for (const set of this.byKey.values()) for (const s of [...set]) s.close();
    this.byKey.clear();
    const reader = this.reader;
    this.reader = undefined;
    if (reader) await reader.then((r) => r.disconnect()).catch(() => undefined);
    await this.loop?.catch(() => undefined);
  }

  private leave(subscription: HubSubscription): void {
    const set = this.byKey.get(subscription.streamKey);
    if (!set) return;
    set.delete(subscription);
    if (set.size === 0) this.byKey.delete(subscription.streamKey);
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.closed && this.byKey.size > 0) {
      const keys = [...this.byKey.keys()];
      const cursors = keys.map((key) => oldestCursor(this.byKey.get(key)!));
      let reply: [string, RawStreamEntry[]][] | null;
      try {
        const reader = await (this.reader ??= this.options.connect());
        reply = (await reader.xread('COUNT', HUB_READ_COUNT, 'BLOCK', this.options.blockMs, 'STREAMS', ...keys, ...cursors)) as [string, RawStreamEntry[]][] | null;
        failures = 0;
      } catch (error) {
        if (this.closed) return;
        failures += 1;
        this.options.log.warn({ err: (error as Error).message, streams: keys.length }, 'reading event streams failed; retrying from the same cursors');
        if (failures > 2) {
          // a broken connection is replaced rather than retried forever
          const broken = this.reader;
          this.reader = undefined;
          void broken?.then((r) => r.disconnect()).catch(() => undefined);
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** Math.min(failures, 5), 3_000)));
        continue;
      }
      for (const [key, entries] of reply ?? []) {
        for (const subscription of [...(this.byKey.get(key) ?? [])]) subscription.push(entries);
      }
    }
  }
}

function oldestCursor(subscriptions: Set<HubSubscription>): string {
  let oldest: string | undefined;
  for (const s of subscriptions) if (oldest === undefined || compareStreamIds(s.cursor, oldest) < 0) oldest = s.cursor;
  return oldest ?? '0';
}
