import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressLine, renderProgressBar } from '../../cli/progress-bar.ts';

test('renderProgressBar fills in proportion and clamps', () => {
  assert.equal(renderProgressBar(0, 4, 'slices', 8), '[........] 0/4 slices');
  assert.equal(renderProgressBar(2, 4, '', 8), '[####....] 2/4');
  assert.equal(renderProgressBar(9, 4, '', 8), '[########] 4/4');
});

test('ProgressLine redraws in place on a terminal and prints only changes otherwise', () => {
  const tty: string[] = [];
  const line = new ProgressLine((t) => tty.push(t), true);
  line.update(1, 2);
  line.update(1, 2);
  line.update(2, 2);
  line.finish();
  assert.equal(tty.length, 3);
  assert.ok(tty[0]!.startsWith('\r['));
  assert.equal(tty[2], '\n');
  const log: string[] = [];
  const plain = new ProgressLine((t) => log.push(t), false);
  plain.update(0, 3);
  plain.update(0, 3);
  plain.update(3, 3);
  plain.finish();
  assert.deepEqual(log.map((l) => l.endsWith('\n')), [true, true]);
});
