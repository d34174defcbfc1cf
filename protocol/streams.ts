/**
 * How messages sit in Redis Streams: every entry has the fields `type` (the
 * message name) and `body` (its JSON). Master → worker commands go to the
 * worker's inbox stream (consumer group `agent`, consumer = worker id); events
 * to an application go to its event stream (read with XREAD from the last id
 * seen, so a client resumes after a reconnect without losing or repeating).
 * The Lua commit scripts write entries in exactly this shape.
 */
import { parseMessage, WorkerInbound, AppEvents, type ParseResult } from './messages.ts';

export const INBOX_GROUP = 'agent';

/** StreamEntry as ioredis returns it: [id, [field, value, field, value, ...]]. */
export type RawStreamEntry = [string, string[]];

export interface DecodedEntry<T> {
  id: string;
  type: string;
  parsed: ParseResult<T>;
  raw: Record<string, string>;
}

export function fieldsToObject(fields: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!;
  return out;
}

/** encodeEntry: the XADD field list for a message. */
export function encodeEntry(type: string, body: unknown): string[] {
  return ['type', type, 'body', JSON.stringify(body)];
}

/** decodeInboxEntry validates one worker-inbox entry. */
export function decodeInboxEntry([id, fields]: RawStreamEntry) {
  const raw = fieldsToObject(fields);
  return { id, type: raw.type ?? '', raw, parsed: parseMessage(WorkerInbound, raw.type ?? '', raw.body ?? '') };
}

/** decodeAppEvent validates one application-event entry. */
export function decodeAppEvent([id, fields]: RawStreamEntry) {
  const raw = fieldsToObject(fields);
  return { id, type: raw.type ?? '', raw, parsed: parseMessage(AppEvents, raw.type ?? '', raw.body ?? '') };
}
