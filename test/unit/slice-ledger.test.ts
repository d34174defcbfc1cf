/**
 * SliceLedger (the Pi demo driver's bookkeeping): slices cover the intervals
 * exactly once, reports are accepted once and only for the exact range, a lost
 * executor's slices go back to the queue, and the total is the midpoint rule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SliceLedger, midpointErrorBound, splitIntervals } from '../../demo/slice-ledger.ts';

function midpointSum(start: number, end: number, n: number): number {
  let t = 0;
  for (let i = start; i < end; i++) {
    const x = (i + 0.5) / n;
    t += 4 / (1 + x * x);
  }
  return t / n;
}

test('splitIntervals covers [0, n) exactly once with sizes differing by at most one', () => {
  for (const [n, k] of [[10, 3], [7, 7], [1_000_000, 16], [5, 1]] as const) {
    const slices = splitIntervals(n, k);
    assert.equal(slices.length, k);
    assert.equal(slices[0]!.start, 0);
    assert.equal(slices.at(-1)!.end, n);
    for (let i = 1; i < slices.length; i++) assert.equal(slices[i]!.start, slices[i - 1]!.end);
    const sizes = slices.map((s) => s.end - s.start);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
  }
  assert.throws(() => splitIntervals(10, 0), /slices must be an integer from 1 to 10/);
  assert.throws(() => splitIntervals(3, 4), /slices must be an integer from 1 to 3/);
  assert.throws(() => splitIntervals(0, 1), /intervals must be a positive integer/);
});

test('tasks go out once; wait while others compute; done when all are in; the total is pi', () => {
  const n = 20_000;
  const ledger = new SliceLedger(n, 4);
  const a = ledger.next(0);
  const b = ledger.next(1);
  const c = ledger.next(0);
  const d = ledger.next(2);
  assert.deepEqual([a, b, c, d].map((t) => (t.kind === 'slice' ? t.slice.id : t.kind)), [0, 1, 2, 3]);
  assert.deepEqual(ledger.next(3), { kind: 'wait' });
  assert.throws(() => ledger.total(), /slices 0, 1, 2, 3 have no result yet/);
  for (const [task, executor] of [[a, 0], [b, 1], [c, 0], [d, 2]] as const) {
    assert.equal(task.kind, 'slice');
    if (task.kind !== 'slice') continue;
    const { id, start, end } = task.slice;
    assert.equal(ledger.record({ slice: id, executor, start, end, sum: midpointSum(start, end, n) }), 'accepted');
  }
  assert.deepEqual(ledger.next(3), { kind: 'done' });
  assert.ok(Math.abs(ledger.total() - Math.PI) <= midpointErrorBound(n) + 1e-12);
  assert.deepEqual(ledger.slicesByExecutor(), { 0: 2, 1: 1, 2: 1 });
});

test('a duplicate or mismatched report is not counted', () => {
  const ledger = new SliceLedger(100, 2);
  ledger.next(0);
  assert.equal(ledger.record({ slice: 0, executor: 0, start: 0, end: 49, sum: 1 }), 'invalid');
  assert.equal(ledger.record({ slice: 5, executor: 0, start: 0, end: 50, sum: 1 }), 'invalid');
  assert.equal(ledger.record({ slice: 0, executor: 0, start: 0, end: 50, sum: NaN }), 'invalid');
  assert.equal(ledger.record({ slice: 0, executor: 0, start: 0, end: 50, sum: 1.5 }), 'accepted');
  assert.equal(ledger.record({ slice: 0, executor: 7, start: 0, end: 50, sum: 99 }), 'duplicate');
  assert.equal(ledger.done, 1);
  assert.deepEqual(ledger.missing(), [1]);
});

test('a lost executor\'s slice goes to another executor; a late report of it still counts once', () => {
  const ledger = new SliceLedger(100, 2);
  const first = ledger.next(0);
  const second = ledger.next(1);
  assert.equal(first.kind === 'slice' && first.slice.id, 0);
  assert.deepEqual(ledger.release(0), [0]);
  assert.deepEqual(ledger.release(0), []);
  const again = ledger.next(2);
  assert.equal(again.kind === 'slice' && again.slice.id, 0, 'slice 0 handed out again');
  assert.equal(ledger.record({ slice: 0, executor: 2, start: 0, end: 50, sum: 2 }), 'accepted');
  assert.equal(ledger.record({ slice: 0, executor: 0, start: 0, end: 50, sum: 2 }), 'duplicate');
  // executor 1 was lost after all, but its slice arrived in the meantime: it is not handed out again
  assert.equal(second.kind === 'slice' && second.slice.id, 1);
  ledger.release(1);
  assert.equal(ledger.record({ slice: 1, executor: 1, start: 50, end: 100, sum: 1 }), 'accepted');
  assert.deepEqual(ledger.next(3), { kind: 'done' });
  assert.equal(ledger.total(), 3);
});
