/**
 * The Pi demo's submitter side without I/O: reading the worker UI's `/log`
 * chunks, whole lines across chunks, the driver's lines, the size checks, and
 * the submission (checked through the REST server's own validation and
 * request → driver mapping, so it is what the server will run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineBuffer, midpointErrorBound, parseDriverLine, parseLogResponse, tailLines } from '../../demo/driver-output.ts';
import { DemoError, buildPiSubmission, checkDemoSize, type PiSubmissionInput } from '../../demo/pi-demo.ts';
import { validateCreateSubmissionRequest } from '../../protocol/rest.ts';
import { buildDriverDescription } from '../../functions/http/rest/driver-mapping.ts';

test('parseLogResponse reads the byte range and the text of a /log answer', () => {
  assert.deepEqual(parseLogResponse('==== Bytes 10-25 of 40 of driver-1/stdout ====\nprogress 1/8\nabc'), { start: 10, end: 25, total: 40, text: 'progress 1/8\nabc' });
  assert.deepEqual(parseLogResponse('==== Bytes 0-0 of 0 of driver-1/stdout ====\n'), { start: 0, end: 0, total: 0, text: '' });
  assert.equal(parseLogResponse('Error: no log driver-1/stdout'), undefined);
  assert.equal(parseLogResponse('==== Bytes 9-3 of 40 of x ====\n'), undefined, 'end before start');
  assert.equal(parseLogResponse('==== Bytes 0-50 of 40 of x ====\n'), undefined, 'end beyond the file');
});

test('LineBuffer completes lines split across chunks and keeps the partial one', () => {
  const buffer = new LineBuffer();
  assert.deepEqual(buffer.push('progress 1/'), []);
  assert.deepEqual(buffer.push('8\nprogress 2/8\nPi is'), ['progress 1/8', 'progress 2/8']);
  assert.deepEqual(buffer.push(' roughly 3.14\n'), ['Pi is roughly 3.14']);
  assert.deepEqual(buffer.push('tail without newline'), []);
  assert.deepEqual(buffer.flush(), ['tail without newline']);
  assert.deepEqual(buffer.flush(), []);
});

test('parseDriverLine knows progress, the result and the summary; anything else is a note', () => {
  assert.deepEqual(parseDriverLine('progress 3/16'), { kind: 'progress', done: 3, total: 16, text: 'progress 3/16' });
  assert.deepEqual(parseDriverLine('progress 0/1\r'), { kind: 'progress', done: 0, total: 1, text: 'progress 0/1' });
  assert.equal(parseDriverLine('progress 17/16').kind, 'note', 'more done than slices is not progress');
  assert.equal(parseDriverLine('progress 0/0').kind, 'note');
  assert.deepEqual(parseDriverLine('Pi is roughly 3.141592653589806'), { kind: 'result', pi: 3.141592653589806, text: 'Pi is roughly 3.141592653589806' });
  assert.equal(parseDriverLine('Pi is roughly 3.1e0').kind, 'result');
  assert.equal(parseDriverLine('Pi is roughly nan').kind, 'note');
  assert.equal(parseDriverLine('Pi is roughly 3.14 or so').kind, 'note');
  assert.deepEqual(parseDriverLine('computed 8 slices of 2000000 intervals on 3 executors (slices per executor: 0:3 1:3 2:2)'), {
    kind: 'summary',
    slices: 8,
    intervals: 2_000_000,
    executors: 3,
    text: 'computed 8 slices of 2000000 intervals on 3 executors (slices per executor: 0:3 1:3 2:2)',
  });
  assert.deepEqual(parseDriverLine('registered application app-1'), { kind: 'note', text: 'registered application app-1' });
});

test('tailLines keeps the last non-empty lines; midpointErrorBound is 1/(3n²)', () => {
  assert.deepEqual(tailLines('a\n\nb\r\nc\n\n', 2), ['b', 'c']);
  assert.deepEqual(tailLines('', 3), []);
  assert.ok(Math.abs(midpointErrorBound(1000) - 1 / 3e6) < 1e-20);
});

test('checkDemoSize fills in defaults and refuses what the driver would refuse', () => {
  assert.deepEqual(checkDemoSize({}), { slices: 16, executors: 4, intervals: 2_000_000 });
  assert.deepEqual(checkDemoSize({ slices: 2 }), { slices: 2, executors: 2, intervals: 2_000_000 });
  assert.throws(() => checkDemoSize({ slices: 1.5 }), (e: Error) => e instanceof DemoError && /slices must be a positive integer, got 1.5/.test(e.message));
  assert.throws(() => checkDemoSize({ slices: 4, executors: -1 }), /executors must be a positive integer, got -1/);
  assert.throws(() => checkDemoSize({ slices: 10, intervals: 9 }), /intervals must be an integer of at least slices \(10\), got 9/);
});

const base: PiSubmissionInput = {
  runtime: 'docker',
  restUrl: 'http://127.0.0.1:6066',
  appApiUrl: 'http://127.0.0.1:7001',
  driverToken: 'tok',
  slices: 8,
  executors: 3,
  intervals: 1000,
  driverTimeoutSeconds: 60,
};

test('buildPiSubmission (Docker): the request flint submit would send, which the server maps to a flint-demo driver', () => {
  const request = buildPiSubmission({ ...base, claimTimeoutSeconds: 5 });
  validateCreateSubmissionRequest(request);
  assert.equal(request.appResource, 'docker://flint-demo:latest');
  assert.deepEqual(request.appArgs, ['/bin/busybox', 'sh', '/demo/pi-driver.sh', '8', '3', '1000']);
  assert.equal(request.sparkProperties['spark.app.name'], 'Flint Pi');
  assert.equal(request.sparkProperties['spark.submit.deployMode'], 'cluster');
  assert.equal(request.sparkProperties['spark.driver.memory'], '128m');
  assert.deepEqual(request.environmentVariables, {
    FLINT_APP_API: 'http://127.0.0.1:7001',
    FLINT_TOKEN: 'tok',
    FLINT_DEMO_IMAGE: 'flint-demo:latest',
    FLINT_DEMO_TIMEOUT: '60',
    FLINT_DEMO_CLAIM_TIMEOUT: '5',
  });
  const driver = buildDriverDescription(request, { masterUrl: 'spark://127.0.0.1:7077', serverEnv: {} });
  assert.equal(driver.image, 'flint-demo:latest');
  assert.deepEqual(driver.command, ['/bin/busybox', 'sh', '/demo/pi-driver.sh', '8', '3', '1000']);
  assert.equal(driver.memoryMB, 128);
  assert.equal(driver.cores, 1);
  assert.equal(driver.env.FLINT_APP_API, 'http://127.0.0.1:7001');
});

test('buildPiSubmission (process runtime): host paths of busybox and the scripts, for the driver and its executors', () => {
  const request = buildPiSubmission({ ...base, runtime: 'process', hostBusybox: '/usr/bin/busybox', hostDemoDir: '/repo/infra/images/demo' });
  assert.deepEqual(request.appArgs, ['/usr/bin/busybox', 'sh', '/repo/infra/images/demo/pi-driver.sh', '8', '3', '1000']);
  assert.equal(request.environmentVariables.FLINT_DEMO_DIR, '/repo/infra/images/demo');
  assert.equal(request.environmentVariables.FLINT_DEMO_BUSYBOX, '/usr/bin/busybox');
  assert.equal(request.environmentVariables.FLINT_DEMO_CLAIM_TIMEOUT, undefined);
  assert.throws(() => buildPiSubmission({ ...base, runtime: 'process' }), /needs the host paths of busybox and the demo scripts/);
});
