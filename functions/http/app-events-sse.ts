/**
 * followAppEvents: one event stream of the app API (GET /v1/apps/:id/events) as
 * server-sent events: catch-up reads first, then live entries from the shared
 * reader (app-event-hub.ts), until the application is over.
 */
import { isApplicationFinished, type ApplicationState } from '../../protocol/states.ts';
import type { RawStreamEntry } from '../../protocol/streams.ts';
import { decodeAppEventEntry } from '../../client/app-client.ts';

export interface FollowAppEventsOptions {
  after: string;
  pollMs: number;
  keepAliveMs: number;
  isDone(): boolean;
  /** readNow: one non-blocking read after `cursor` */
  readNow(cursor: string): Promise<RawStreamEntry[]>;
  /** follow: live entries after `cursor` (the shared reader), waiting up to `ms` each time */
  follow(cursor: string): { next(ms: number): Promise<RawStreamEntry[]>; close(): void };
  appState(): Promise<ApplicationState | null>;
  send(event: { id: string; event: string; data: string }): Promise<void>;
  comment(text: string): Promise<void>;
}

/**
 * followAppEvents: the SSE loop. Catches up with non-blocking reads; if the app is
 * then finished (or gone), ends; otherwise follows live entries through the shared
 * reader, re-checking the app every `pollMs` and writing a keep-alive comment after
 * `keepAliveMs` of silence. It ends right after ApplicationRemoved, or once the app
 * is finished and its stream drained. Returns the last id sent.
 */
export async function followAppEvents(options: FollowAppEventsOptions): Promise<string> {
  let cursor = options.after;
  let removed = false;
  const deliver = async (entries: RawStreamEntry[]) => {
    for (const entry of entries) {
      cursor = entry[0];
      const decoded = decodeAppEventEntry(entry);
      if (!decoded.ok) {
        await options.send({ id: cursor, event: 'invalid', data: JSON.stringify(decoded.invalid) });
        continue;
      }
      await options.send({ id: cursor, event: decoded.event.type, data: JSON.stringify(decoded.event.body) });
      if (decoded.event.type === 'ApplicationRemoved') {
        removed = true;
        return;
      }
    }
  };
  /** drain: non-blocking reads until nothing is left (or the stream ended). */
  const drain = async () => {
    for (;;) {
      const entries = await options.readNow(cursor);
      if (entries.length === 0 || options.isDone()) return;
      await deliver(entries);
      if (removed) return;
    }
  };
  const isOver = (state: ApplicationState | null) => state === null || isApplicationFinished(state);

  await drain();
  if (removed || options.isDone()) return cursor;
  if (isOver(await options.appState())) {
    await drain(); // events written with the final state
    return cursor;
  }
  const live = options.follow(cursor);
  let lastWrite = Date.now();
  try {
    while (!options.isDone()) {
      const entries = await live.next(options.pollMs);
      if (entries.length > 0) {
        await deliver(entries);
        if (removed) return cursor;
        lastWrite = Date.now();
        continue;
      }
      if (options.isDone()) break;
      if (isOver(await options.appState())) {
        await drain();
        return cursor;
      }
      if (Date.now() - lastWrite >= options.keepAliveMs) {
        await options.comment('keep-alive');
        lastWrite = Date.now();
      }
    }
  } finally {
    live.close();
  }
  return cursor;
}

