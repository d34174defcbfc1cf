/**
 * The Pi demo's executor (infra/images/demo/pi-executor.sh) as Spark's executor
 * heartbeats: run as a real busybox process against a driver and an app API played
 * by small HTTP servers here. It sends {"metrics": {"slices": n}} with its token every
 * interval, exits with the work's status when the driver says done, and exits with 56
 * (Spark's ExecutorExitCode.HEARTBEAT_FAILURE) after maxFailures failed beats in a row.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DEMO_IMAGE_DIR } from '../../demo/image.ts';
import { makeTempDir } from '../helpers/isolation.ts';

const EXECUTOR = join(DEMO_IMAGE_DIR, 'pi-executor.sh');

async function serve(handler: (req: IncomingMessage, body: string) => { status: number; body: string }): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const answer = handler(req, body);
      res.writeHead(answer.status, { 'content-type': 'text/plain' }).end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function runExecutor(driverUrl: string, env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; stderr: string; elapsedMs: number }> {
  const dir = await makeTempDir('pi-executor');
  try {
    const started = Date.now();
    const child = spawn('busybox', ['sh', EXECUTOR, driverUrl, '7'], { cwd: dir.path, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    clearTimeout(timer);
    return { code, stderr, elapsedMs: Date.now() - started };
  } finally {
    await dir.cleanup();
  }
}

test('pi-executor.sh exits with 56 after maxFailures failed heartbeats in a row', async () => {
  // a driver that never has work, and an app API that refuses every beat
  const driver = await serve(() => ({ status: 200, body: 'wait' }));
  let refused = 0;
  const appApi = await serve(() => {
    refused += 1;
    return { status: 404, body: '{"error":"unknown or finished executor"}' };
  });
  try {
    const run = await runExecutor(driver.url, {
      FLINT_HEARTBEAT_URL: `${appApi.url}/v1/apps/app-1/executors/7/heartbeat`,
      FLINT_HEARTBEAT_TOKEN: `fe1.${'0'.repeat(40)}`,
      FLINT_HEARTBEAT_INTERVAL_MS: '100',
      FLINT_HEARTBEAT_MAX_FAILURES: '3',
      FLINT_HEARTBEAT_EXIT_CODE: '56',
    }, 20_000);
    assert.equal(run.code, 56, run.stderr);
    assert.equal(refused, 3, 'exactly maxFailures beats were sent');
    assert.match(run.stderr, /heartbeat 3 of 3 failed/);
    assert.match(run.stderr, /unable to send heartbeats to the driver more than 3 times/);
  } finally {
    driver.server.close();
    appApi.server.close();
  }
});

test('pi-executor.sh beats with its token and its slice count, and exits 0 when the driver says done', async () => {
  let tasks = 0;
  const driver = await serve((req) => {
    if (req.url?.startsWith('/result')) return { status: 200, body: 'ok' };
    tasks += 1;
    // three slices, then done once a few beats had time to go out
    if (tasks <= 3) return { status: 200, body: `slice ${tasks - 1} 0 10 1000` };
    return { status: 200, body: tasks > 10 ? 'done' : 'wait' };
  });
  const beats: { authorization: string | undefined; body: string }[] = [];
  const appApi = await serve((req, body) => {
    beats.push({ authorization: req.headers.authorization, body });
    return { status: 200, body: '{"ok":true,"registered":true}' };
  });
  const token = `fe1.${'ab'.repeat(20)}`;
  try {
    const run = await runExecutor(driver.url, {
      FLINT_HEARTBEAT_URL: `${appApi.url}/v1/apps/app-1/executors/7/heartbeat`,
      FLINT_HEARTBEAT_TOKEN: token,
      FLINT_HEARTBEAT_INTERVAL_MS: '100',
      FLINT_HEARTBEAT_MAX_FAILURES: '3',
    }, 30_000);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(beats.length >= 2, `it heartbeat while working (${beats.length} beats)`);
    assert.ok(beats.every((b) => b.authorization === `Bearer ${token}`));
    const counts = beats.map((b) => (JSON.parse(b.body) as { metrics: { slices: number } }).metrics.slices);
    assert.equal(counts.at(-1), 3, `the last beat carries the slices done: ${counts.join(',')}`);
  } finally {
    driver.server.close();
    appApi.server.close();
  }
});
