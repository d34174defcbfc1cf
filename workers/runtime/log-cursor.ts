/**
 * The pure half of Docker log capture (log-capture.ts): Docker's multiplexed log frames,
 * their timestamps, and the cursor that decides, entry by entry, what is new, so that a
 * capture resumed after an agent restart neither duplicates nor loses a line.
 *
 * Docker's logs API has no offsets, only `since` (a timestamp, and inclusive), and its
 * timestamps are taken per stream before the entries are serialised, so stdout and stderr
 * entries can reach the log a few microseconds out of timestamp order. The cursor keeps a
 * cut timestamp and the fingerprints (stream + nanosecond timestamp) of every entry written
 * whose timestamp is at or after the cut (a sliding window of a few seconds, capped in
 * count). On resume the capture asks Docker for entries `since` the cut and skips those
 * whose fingerprint it has already written.
 * Example: entries out(t=5.000001), err(t=5.000000) written, window 2 s → the state keeps
 * cut 3.000001 and both fingerprints; after a restart Docker replays both and both are
 * skipped, and out(t=5.2) that arrived during the restart is appended.
 */

/** StreamId: Docker's multiplexing ids for stdout and stderr. */
export type StreamId = 1 | 2;

/** parseTimestampNs turns Docker's RFC 3339 timestamp (nanoseconds, trailing zeros trimmed) into nanoseconds since the epoch. */
export function parseTimestampNs(text: string): bigint | undefined {
  const match = TIMESTAMP.exec(text);
  if (match === null) return undefined;
  // consecutive entries share their second: the date is parsed once per second of output, not per line
  const second = `${match[1]}${match[3]}`;
  if (second !== lastSecond.text) {
    const ms = Date.parse(second);
    if (Number.isNaN(ms)) return undefined;
    lastSecond.text = second;
    lastSecond.ns = BigInt(ms) * 1_000_000n;
  }
  return lastSecond.ns + BigInt((match[2] ?? '').padEnd(9, '0'));
}

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;
const lastSecond = { text: '', ns: 0n };

/** formatSince renders nanoseconds as the `seconds.nanoseconds` text Docker's `since` parameter takes. */
export function formatSince(ns: bigint): string {
  return `${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`;
}

/** splitTimestamp separates one timestamped log frame into its timestamp and payload. */
export function splitTimestamp(frame: Buffer): { tsNs: bigint; payload: Buffer } | undefined {
  const space = frame.indexOf(0x20);
  if (space <= 0 || space > 40) return undefined;
  const tsNs = parseTimestampNs(frame.subarray(0, space).toString('latin1'));
  if (tsNs === undefined) return undefined;
  return { tsNs, payload: frame.subarray(space + 1) };
}

/**
 * FrameSplitter cuts Docker's multiplexed log body into frames: an 8-byte header
 * (stream id, three zero bytes, big-endian payload length) and the payload, which
 * may span chunks. Iterative, so a body of any size is fine.
 */
export class FrameSplitter {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (streamId: StreamId, frame: Buffer) => void) {}

  push(chunk: Buffer): void {
    let buffer = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let offset = 0;
    while (buffer.length - offset >= 8) {
      const length = buffer.readUInt32BE(offset + 4);
      if (buffer.length - offset - 8 < length) break;
      const streamId = buffer[offset];
      const frame = buffer.subarray(offset + 8, offset + 8 + length);
      offset += 8 + length;
      // 1 stdout, 2 stderr; 0 (stdin) never carries output
      if (streamId === 1 || streamId === 2) this.onFrame(streamId, frame);
    }
    buffer = buffer.subarray(offset);
    // keep a copy of a partial frame only: the chunk's memory is not ours to hold
    this.pending = buffer.length === 0 ? Buffer.alloc(0) : Buffer.from(buffer);
  }
}

/** CursorState: what a LogCursor needs to resume exactly (kept in the capture's state file). */
export interface CursorState {
  /** nanoseconds since the epoch, as a decimal string */
  cutNs: string;
  /** `<stream>:<ns>` of every written entry with timestamp >= cutNs (repeats allowed) */
  seen: string[];
}

/** INITIAL_CURSOR: a capture that has written nothing from Docker yet. */
export const INITIAL_CURSOR: CursorState = { cutNs: '0', seen: [] };

/**
 * LogCursor decides, entry by entry, what is new and keeps the state that makes
 * resuming exact. Pure: the capture feeds it entries and asks for snapshots.
 */
export class LogCursor {
  private cutNs: bigint;
  private maxNs: bigint;
  /** written entries with timestamp >= cutNs */
  private recent: Array<{ fingerprint: string; tsNs: bigint }>;
  /** entries recorded in the state we resumed from, still to be skipped when Docker replays them */
  private readonly toSkip = new Map<string, number>();

  constructor(
    state: CursorState,
    private readonly windowNs: bigint = 2_000_000_000n,
    private readonly maxSeen = 4096,
  ) {
    this.cutNs = BigInt(state.cutNs);
    this.recent = state.seen.map((fingerprint) => ({ fingerprint, tsNs: BigInt(fingerprint.slice(2)) }));
    this.maxNs = this.recent.reduce((max, entry) => (entry.tsNs > max ? entry.tsNs : max), this.cutNs);
    for (const { fingerprint } of this.recent) this.toSkip.set(fingerprint, (this.toSkip.get(fingerprint) ?? 0) + 1);
  }

  /** since is the `since` parameter to resume from, or undefined to read the whole log. */
  since(): string | undefined {
    return this.cutNs === 0n ? undefined : formatSince(this.cutNs);
  }

  /** accept returns true when the entry is new (and records it as written), false when it was written before. */
  accept(stream: StreamId, tsNs: bigint): boolean {
    if (tsNs < this.cutNs) return false;
    const fingerprint = `${stream}:${tsNs}`;
    const skips = this.toSkip.get(fingerprint) ?? 0;
    if (skips > 0) {
      if (skips === 1) this.toSkip.delete(fingerprint);
      else this.toSkip.set(fingerprint, skips - 1);
      return false;
    }
    this.recent.push({ fingerprint, tsNs });
    if (tsNs > this.maxNs) this.maxNs = tsNs;
    return true;
  }

  /** snapshot prunes the window and returns the state to persist once everything accepted so far is written. */
  snapshot(): CursorState {
    let cut = this.maxNs - this.windowNs;
    if (this.recent.length > this.maxSeen) {
      const newestFirst = this.recent.map((entry) => entry.tsNs).sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
      const capCut = newestFirst[this.maxSeen - 1];
      if (capCut > cut) cut = capCut;
    }
    if (cut > this.cutNs) {
      this.cutNs = cut;
      this.recent = this.recent.filter((entry) => entry.tsNs >= cut);
    }
    return {
      cutNs: String(this.cutNs),
      seen: this.recent.map((entry) => entry.fingerprint),
    };
  }
}

