/**
 * SliceLedger: the Pi demo driver's bookkeeping, without I/O. The n intervals of
 * the midpoint rule are cut into slices; executors ask for a slice, compute it
 * and report its partial sum. The ledger makes sure every slice is counted
 * exactly once: a slice is handed to one executor at a time, a report is
 * accepted only for the slice's exact range and only once, and the slices of an
 * executor that was lost go back to the queue for another executor.
 */

export interface Slice {
  id: number;
  start: number;
  end: number;
}

export type Task = { kind: 'slice'; slice: Slice; intervals: number } | { kind: 'wait' } | { kind: 'done' };

export interface SliceReport {
  slice: number;
  executor: number;
  start: number;
  end: number;
  sum: number;
}

export type ReportOutcome = 'accepted' | 'duplicate' | 'invalid';

/** splitIntervals cuts [0, intervals) into `slices` contiguous ranges whose sizes differ by at most one. */
export function splitIntervals(intervals: number, slices: number): Slice[] {
  if (!Number.isInteger(intervals) || intervals < 1) throw new RangeError(`intervals must be a positive integer, got ${intervals}`);
  if (!Number.isInteger(slices) || slices < 1 || slices > intervals) throw new RangeError(`slices must be an integer from 1 to ${intervals}, got ${slices}`);
  const base = Math.floor(intervals / slices);
  const extra = intervals % slices;
  const out: Slice[] = [];
  let start = 0;
  for (let id = 0; id < slices; id++) {
    const end = start + base + (id < extra ? 1 : 0);
    out.push({ id, start, end });
    start = end;
  }
  return out;
}

export class SliceLedger {
  readonly slices: readonly Slice[];
  private readonly pending: number[];
  private readonly inFlight = new Map<number, number>(); // slice id → executor id
  private readonly results = new Map<number, { sum: number; executor: number }>();

  constructor(readonly intervals: number, sliceCount: number) {
    this.slices = splitIntervals(intervals, sliceCount);
    this.pending = this.slices.map((s) => s.id);
  }

  /** next hands the next pending slice to `executor`; 'wait' while others still compute; 'done' once all are in. */
  next(executor: number): Task {
    if (this.complete) return { kind: 'done' };
    const id = this.pending.shift();
    if (id === undefined) return { kind: 'wait' };
    this.inFlight.set(id, executor);
    return { kind: 'slice', slice: this.slices[id]!, intervals: this.intervals };
  }

  /** record accepts the first report of a slice whose range matches exactly. */
  record(report: SliceReport): ReportOutcome {
    const slice = this.slices[report.slice];
    if (!slice || slice.start !== report.start || slice.end !== report.end || !Number.isFinite(report.sum)) return 'invalid';
    if (this.results.has(slice.id)) return 'duplicate';
    this.results.set(slice.id, { sum: report.sum, executor: report.executor });
    this.inFlight.delete(slice.id);
    const queued = this.pending.indexOf(slice.id);
    if (queued >= 0) this.pending.splice(queued, 1); // a lost executor's slice came in after all
    return 'accepted';
  }

  /** release puts back the slices `executor` held without reporting (it was lost); returns them. */
  release(executor: number): number[] {
    const released: number[] = [];
    for (const [id, holder] of this.inFlight) {
      if (holder === executor) released.push(id);
    }
    for (const id of released) {
      this.inFlight.delete(id);
      this.pending.unshift(id);
    }
    return released;
  }

  get done(): number {
    return this.results.size;
  }

  get complete(): boolean {
    return this.results.size === this.slices.length;
  }

  /** missing: slice ids without a result. */
  missing(): number[] {
    return this.slices.filter((s) => !this.results.has(s.id)).map((s) => s.id);
  }

  /** total adds the partial sums in slice order (deterministic rounding); throws until complete. */
  total(): number {
    if (!this.complete) throw new Error(`slices ${this.missing().join(', ')} have no result yet`);
    let sum = 0;
    for (const slice of this.slices) sum += this.results.get(slice.id)!.sum;
    return sum;
  }

  /** slicesByExecutor: how many slices each executor computed. */
  slicesByExecutor(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const { executor } of this.results.values()) out[executor] = (out[executor] ?? 0) + 1;
    return out;
  }
}

/** midpointError: the midpoint rule's error bound for 4/(1+x²) on [0,1] with n intervals: max|f''| / (24 n²), max|f''| = 8. */
export function midpointErrorBound(intervals: number): number {
  return 8 / (24 * intervals * intervals);
}
