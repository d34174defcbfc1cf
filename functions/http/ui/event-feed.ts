/**
 * ClusterEventFeed: tails the cluster event stream (`keys.clusterEvents`, written
 * by every commit script) on one dedicated blocking connection per UI process and
 * fans each batch out to subscribers: the `/events` server-sent-event streams of
 * open pages, and the metrics that count from events. One XREAD BLOCK loop serves
 * any number of browsers, so a page left open costs no Redis connection.
 *
 * The loop starts from the stream's last entry at start-up (read with XREVRANGE,
 * not `$`, so no entry written between two blocking reads is missed) and resumes
 * after a connection error from the last id it delivered.
 */
import { connectRedisOrCluster, type RedisConnection } from '../../../lib/redis.ts';
import { fieldsToObject, type RawStreamEntry } from '../../../protocol/streams.ts';
import type { Logger } from '../../../lib/log.ts';

/** ClusterEvent: one entry of the cluster event stream. */
export interface ClusterEvent {
  id: string;
  type: string;
  /** the JSON body as written by the commit script (parsed; {} when unreadable) */
  body: Record<string, unknown>;
  /** ms timestamp of the commit */
  at: number;
}

export type ClusterEventListener = (events: ClusterEvent[]) => void | Promise<void>;

export interface ClusterEventFeedOptions {
  redisUrl: string;
  streamKey: string;
  log?: Logger;
  /** how long one XREAD blocks (default 5 s); bounds how long stop() waits */
  blockMs?: number;
  /** entries read per call (default 500) */
  batch?: number;
}

/** decodeClusterEvent: one raw stream entry → ClusterEvent. */
export function decodeClusterEvent([id, fields]: RawStreamEntry): ClusterEvent {
  const raw = fieldsToObject(fields);
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(raw.body ?? '{}');
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
  } catch {
    // an unreadable body still signals "something changed"
  }
  return { id, type: raw.type ?? '', body, at: Number(raw.at ?? 0) };
}

export class ClusterEventFeed {
  private readonly listeners = new Set<ClusterEventListener>();
  private redis?: RedisConnection;
  private loop?: Promise<void>;
  private stopped = false;
  private lastId = '0-0';

  constructor(private readonly options: ClusterEventFeedOptions) {}

  /** start connects and begins tailing; resolves once the starting position is known. */
  async start(): Promise<void> {
    if (this.loop) return;
    this.redis = await connectRedisOrCluster(this.options.redisUrl, { name: 'flint-ui-events', blocking: true });
    const last = (await this.redis.xrevrange(this.options.streamKey, '+', '-', 'COUNT', 1)) as RawStreamEntry[];
    this.lastId = last[0]?.[0] ?? '0-0';
    this.loop = this.run();
  }

  /** subscribe adds a listener for every later batch; returns the function that removes it. */
  subscribe(listener: ClusterEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get subscriberCount(): number {
    return this.listeners.size;
  }

  private async run(): Promise<void> {
    const blockMs = this.options.blockMs ?? 5000;
    const batch = this.options.batch ?? 500;
    while (!this.stopped) {
      try {
        const reply = (await this.redis!.xread('COUNT', batch, 'BLOCK', blockMs, 'STREAMS', this.options.streamKey, this.lastId)) as
          | [string, RawStreamEntry[]][]
          | null;
        if (!reply || this.stopped) continue;
        const entries = reply[0]?.[1] ?? [];
        if (entries.length === 0) continue;
        this.lastId = entries[entries.length - 1]![0];
        const events = entries.map(decodeClusterEvent);
        for (const listener of [...this.listeners]) {
          try {
            await listener(events);
          } catch (error) {
            this.options.log?.warn({ err: error }, 'cluster event listener failed');
          }
        }
      } catch (error) {
        if (this.stopped) break;
        this.options.log?.warn({ err: error }, 'reading the cluster event stream failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  /** stop ends the loop and closes the connection (a pending XREAD is cut by the disconnect). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.listeners.clear();
    this.redis?.disconnect();
    await this.loop?.catch(() => undefined);
  }
}
