/**
 * The Pi demo driver's slice ledger (infra/images/demo/pi-ledger.sh), run the way
 * busybox httpd runs it: one CGI process per request, many at once. Checks the
 * exactly-once rules on real files and real processes: concurrent claims hand
 * each slice to one executor, concurrent reports of one slice are counted once,
 * malformed reports are refused, a claim without a result is handed out again
 * once (and only once) after its timeout, and executors hear "done" only after
 * the driver finishes the ledger.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { DEMO_IMAGE_DIR } from '../../demo/image.ts';
import { makeTempDir } from '../helpers/isolation.ts';

const LEDGER = join(DEMO_IMAGE_DIR, 'pi-ledger.sh');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runLedger(args: string[], cgi: { query?: string; body?: string } = {}): Promise<Run> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  if (cgi.query !== undefined) env.QUERY_STRING = cgi.query;
  if (cgi.body !== undefined) env.CONTENT_LENGTH = String(Buffer.byteLength(cgi.body));
  const child = spawn('busybox', ['sh', LEDGER, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // a request the ledger refuses before reading its body closes the pipe early
  child.stdin.on('error', () => undefined);
  child.stdin.end(cgi.body ?? '');
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** cgi: the status and body of a CGI answer (busybox httpd turns "Status:" into the status line). */
function cgi(run: Run): { status: number; body: string } {
  assert.equal(run.code, 0, `the CGI exits 0 (stderr: ${run.stderr})`);
  const [head = '', body = ''] = run.stdout.split('\r\n\r\n');
  const status = /^Status: (\d{3})/m.exec(head)?.[1];
  assert.match(head, /Content-Type: text\/plain/);
  return { status: status ? Number(status) : 200, body: body.trim() };
}

const task = async (state: string, executor: number | string) => cgi(await runLedger(['task', state], { query: `executor=${executor}` }));
const result = async (state: string, form: string) => cgi(await runLedger(['result', state], { body: form }));

test('init refuses bad sizes with a clear message', async (t) => {
  const dir = await makeTempDir('ledger-init');
  t.after(() => dir.cleanup());
  const zero = await runLedger(['init', join(dir.path, 's'), '0', '10', '5']);
  assert.equal(zero.code, 1);
  assert.match(zero.stderr, /pi-ledger: slices must be a positive integer, got '0'/);
  const few = await runLedger(['init', join(dir.path, 's'), '4', '3', '5']);
  assert.match(few.stderr, /intervals must be an integer of at least 4/);
  const missing = await runLedger(['count', join(dir.path, 'nothing')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /is not an initialised ledger/);
});

test('concurrent claims hand each slice to exactly one executor; concurrent reports count once; done only after finish', async (t) => {
  const dir = await makeTempDir('ledger');
  t.after(() => dir.cleanup());
  const state = join(dir.path, 'state');
  assert.equal((await runLedger(['init', state, '5', '1003', '30'])).code, 0);

  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => task(state, i)));
  const slices = answers.filter((a) => a.body.startsWith('slice ')).map((a) => a.body.split(' ').map(Number));
  assert.equal(slices.length, 5, `five slices handed out: ${JSON.stringify(answers)}`);
  assert.equal(answers.filter((a) => a.body === 'wait').length, 15);
  const ranges = slices.map(([, id, start, end, n]) => ({ id: id!, start: start!, end: end!, n: n! })).sort((a, b) => a.id - b.id);
  assert.deepEqual(ranges.map((r) => r.id), [0, 1, 2, 3, 4]);
  assert.equal(ranges[0]!.start, 0);
  assert.equal(ranges.at(-1)!.end, 1003);
  for (let i = 1; i < 5; i++) assert.equal(ranges[i]!.start, ranges[i - 1]!.end, 'contiguous');
  for (const r of ranges) assert.ok(r.end - r.start === 200 || r.end - r.start === 201);
  assert.ok(ranges.every((r) => r.n === 1003));

  // malformed or mismatched reports are refused and change nothing
  const s0 = ranges[0]!;
  assert.equal((await result(state, `slice=0&executor=1&start=${s0.start}&end=${s0.end + 1}&sum=0.5`)).status, 400);
  assert.equal((await result(state, `slice=9&executor=1&start=0&end=1&sum=0.5`)).status, 400);
  assert.equal((await result(state, `slice=0&executor=1&start=${s0.start}&end=${s0.end}&sum=1;rm`)).status, 400);
  assert.equal((await result(state, 'slice=0&executor=1')).status, 400);
  assert.equal((await result(state, `slice=0&executor=1&start=0&end=1&sum=${'1'.repeat(1100)}`)).status, 413);
  assert.equal((await runLedger(['count', state])).stdout.trim(), '0');

  // ten executors report slice 0 at once, each with its own sum: exactly one is counted
  const reports = await Promise.all(Array.from({ length: 10 }, (_, i) => result(state, `slice=0&executor=${i}&start=${s0.start}&end=${s0.end}&sum=0.${i + 1}`)));
  assert.equal(reports.filter((r) => r.body === 'accepted').length, 1, JSON.stringify(reports));
  assert.equal(reports.filter((r) => r.body === 'duplicate').length, 9);
  const winner = reports.findIndex((r) => r.body === 'accepted');
  for (const r of ranges.slice(1)) {
    assert.equal((await result(state, `slice=${r.id}&executor=7&start=${r.start}&end=${r.end}&sum=${r.id}e-1`)).body, 'accepted');
  }
  assert.equal((await runLedger(['count', state])).stdout.trim(), '5');

  // every slice is in, but executors wait until the driver finishes the ledger
  assert.equal((await task(state, 3)).body, 'wait');
  assert.equal((await runLedger(['finish', state])).code, 0);
  assert.equal((await task(state, 3)).body, 'done');

  // the total adds the counted sums in slice order, with slices per executor
  const total = (await runLedger(['total', state])).stdout.trim().split('\n');
  const expected = [0.1 * (winner + 1), 0.1, 0.2, 0.3, 0.4].reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(Number(total[0]) - expected) < 1e-12, `${total[0]} is ${expected}`);
  assert.deepEqual(total.slice(1).sort(), [`${winner} 1`, '7 4'].sort());
});

test('a claim without a result is handed out again after the timeout, to exactly one of many askers', async (t) => {
  const dir = await makeTempDir('ledger-stale');
  t.after(() => dir.cleanup());
  const state = join(dir.path, 'state');
  assert.equal((await runLedger(['init', state, '1', '100', '2'])).code, 0);
  assert.equal((await task(state, 1)).body, 'slice 0 0 100 100');
  assert.equal((await task(state, 2)).body, 'wait', 'a fresh claim is not handed out again');
  // the clock has one-second steps, so a claim is stale only once more than the timeout
  // (2 s) has passed by whole seconds: 3.1 s surely is. The reassigned claim is fresh for
  // over 2 s more, longer than ten askers take even on a loaded machine
  await new Promise((resolve) => setTimeout(resolve, 3100));
  const runs = await Promise.all(Array.from({ length: 10 }, (_, i) => runLedger(['task', state], { query: `executor=${10 + i}` })));
  const answers = runs.map(cgi);
  assert.equal(answers.filter((a) => a.body === 'slice 0 0 100 100').length, 1, JSON.stringify(answers));
  assert.equal(answers.filter((a) => a.body === 'wait').length, 9);
  const notes = runs.map((r) => r.stderr).join('');
  assert.match(notes, /^slice 0: no result from executor 1 within 2s; handed to executor 1\d\n$/);
  // the late report of the first holder still counts once; the new holder's is a duplicate
  assert.equal((await result(state, 'slice=0&executor=1&start=0&end=100&sum=3.14')).body, 'accepted');
  assert.equal((await result(state, 'slice=0&executor=12&start=0&end=100&sum=3.14')).body, 'duplicate');
  assert.equal((await task(state, 1)).status, 200);
  assert.equal((await task(state, 'x1')).status, 400, 'an executor id must be a number');
});
