/**
 * What the Pi demo's submitter reads back, without I/O: the worker UI's plain-text
 * log chunks (`/log?driverId=...`), split into whole lines across chunks, and the
 * lines the driver (infra/images/demo/pi-driver.sh) prints — `progress k/N`,
 * `Pi is roughly <value>`, and the summary of slices and executors.
 */

/** LogChunk: one answer of the worker UI's `/log`: bytes [start, end) of a file of `total` bytes. */
export interface LogChunk {
  start: number;
  end: number;
  total: number;
  text: string;
}

const LOG_HEADER = /^==== Bytes (\d+)-(\d+) of (\d+) of [^\n]* ====\n/;

/** parseLogResponse reads Spark's `/log` answer ("==== Bytes s-e of total of <file> ====" then the text); undefined if it is not one. */
export function parseLogResponse(body: string): LogChunk | undefined {
  const header = LOG_HEADER.exec(body);
  if (!header) return undefined;
  const [start, end, total] = [header[1], header[2], header[3]].map(Number) as [number, number, number];
  if (end < start || end > total) return undefined;
  return { start, end, total, text: body.slice(header[0].length) };
}

/** LineBuffer joins log text that arrives in chunks into whole lines (a chunk may end mid-line). */
export class LineBuffer {
  private partial = '';

  /** push returns the lines completed by `text`. */
  push(text: string): string[] {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    return parts;
  }

  /** flush returns the last line when the log ended without a newline. */
  flush(): string[] {
    const rest = this.partial;
    this.partial = '';
    return rest ? [rest] : [];
  }
}

export type DriverLine =
  | { kind: 'progress'; done: number; total: number; text: string }
  | { kind: 'result'; pi: number; text: string }
  | { kind: 'summary'; slices: number; intervals: number; executors: number; text: string }
  | { kind: 'note'; text: string };

const PROGRESS = /^progress (\d{1,12})\/(\d{1,12})$/;
const RESULT = /^Pi is roughly ([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)$/;
const SUMMARY = /^computed (\d{1,12}) slices of (\d{1,12}) intervals on (\d{1,12}) executors\b/;

/** parseDriverLine classifies one line of the driver's stdout. */
export function parseDriverLine(raw: string): DriverLine {
  const text = raw.replace(/\r$/, '');
  const progress = PROGRESS.exec(text);
  if (progress) {
    const done = Number(progress[1]);
    const total = Number(progress[2]);
    if (total > 0 && done <= total) return { kind: 'progress', done, total, text };
  }
  const result = RESULT.exec(text);
  if (result && Number.isFinite(Number(result[1]))) return { kind: 'result', pi: Number(result[1]), text };
  const summary = SUMMARY.exec(text);
  if (summary) return { kind: 'summary', slices: Number(summary[1]), intervals: Number(summary[2]), executors: Number(summary[3]), text };
  return { kind: 'note', text };
}

/** midpointErrorBound: the midpoint rule's error bound for 4/(1+x²) on [0,1] with n intervals: max|f''| / (24 n²), max|f''| = 8. */
export function midpointErrorBound(intervals: number): number {
  return 8 / (24 * intervals * intervals);
}

/** tailLines: the last `count` non-empty lines of a text (for showing a failed driver's stderr). */
export function tailLines(text: string, count: number): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line.trim() !== '')
    .slice(-count);
}
