/**
 * `flint master` as a real process: it handles messages, serves its own /metrics
 * (handler latencies observed in this process) and the HTTP invocation adapter
 * with --http, refuses an invalid configuration with one clear line, and stops
 * cleanly on SIGTERM.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import { REDIS_ARGV_URL, REDIS_URL } from '../helpers/env.ts';
import { cleanupCluster, uniqueCluster, waitFor } from '../helpers/isolation.ts';
import { clusterKeys } from '../../protocol/keys.ts';

const FLINT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'flint.js');
const redis = new Redis(REDIS_URL);
const clusters: string[] = [];
after(async () => {
  for (const c of clusters) await cleanupCluster(redis, c);
  redis.disconnect();
});

test('flint master --http serves /metrics and /invoke, and exits 0 on SIGTERM', async () => {
  const cluster = uniqueCluster('mcli');
  clusters.push(cluster);
  // port 0: the kernel picks the port as the server binds it, and the master prints where it listens
  const child = spawn(process.execPath, [FLINT, 'master', '--redis', REDIS_ARGV_URL, '--cluster', cluster, '--http', '127.0.0.1:0', '--webui-port', '0', '--conf', 'spark.master.rest.port=0'], {
    env: { ...process.env, FLINT_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await waitFor(async () => (await redis.hlen(clusterKeys(cluster).masters)) === 1, { timeoutMs: 20_000, message: 'master registered' });
    const base = await waitFor(() => /\/metrics and \/invoke on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1], { timeoutMs: 10_000, message: `the master printed its URL (${stdout})` });
    await waitFor(async () => (await fetch(`${base}/metrics`)).ok, { timeoutMs: 10_000, message: '/metrics up' });
    const invoked = await fetch(`${base}/invoke/RegisterWorker`, {
      method: 'POST',
      body: JSON.stringify({ id: 'w1', host: '127.0.0.1', port: 7100, cores: 2, memoryMB: 1024 }),
    });
    assert.equal(invoked.status, 200);
    const reply = (await invoked.json()) as { ok: boolean; reply: { type: string } };
    assert.equal(reply.reply.type, 'RegisteredWorker');
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(text, /flint_handler_duration_seconds_count\{message="RegisterWorker",outcome="ok"\} 1/);
    assert.match(text, /flint_workers\{state="ALIVE"\} 1/);
    // the web UI serves the same process's metrics (one registry), and the REST server answers
    const ui = /: web UI on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1];
    const rest = /: REST submission server on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1];
    assert.ok(ui && rest, stdout);
    assert.notEqual(new URL(ui).port, '8080', 'port 0 binds a free port');
    assert.match(await (await fetch(`${ui}/metrics`)).text(), /flint_handler_duration_seconds_count\{message="RegisterWorker",outcome="ok"\} 1/);
    assert.equal((await fetch(`${rest}/v1/submissions/readyz`)).status, 200);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0);
  assert.equal(await redis.hlen(clusterKeys(cluster).masters), 0, 'the process deregisters on SIGTERM');
});

test('flint master refuses an invalid configuration with one clear line', () => {
  const result = spawnSync(process.execPath, [FLINT, 'master', '--redis', REDIS_ARGV_URL, '--conf', 'spark.deploy.maxExecutorRetries=lots'], { encoding: 'utf8' });
  assert.equal(result.status, 1);
  assert.match(result.stderr, /^flint: invalid configuration:\n {2}spark\.deploy\.maxExecutorRetries="lots" \(from flag\): 'lots' is not an integer\n$/);
});

test('flint master refuses to serve a public address without a secret, before it takes any message', () => {
  const cluster = uniqueCluster('mcli-public');
  clusters.push(cluster);
  const result = spawnSync(process.execPath, [FLINT, 'master', '--redis', REDIS_ARGV_URL, '--cluster', cluster, '--host', '0.0.0.0', '--webui-port', '0', '--conf', 'spark.master.rest.port=0'], {
    encoding: 'utf8',
    env: { ...process.env, FLINT_LOG_LEVEL: 'error' },
    timeout: 30_000,
  });
  assert.equal(result.status, 1);
  assert.match(result.stderr, /^flint: refusing to listen on 0\.0\.0\.0 without spark\.flint\.auth\.secret/);
});

test('flint master with a port in use says which service could not listen, in one line', async () => {
  const cluster = uniqueCluster('mcli-busy');
  clusters.push(cluster);
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as AddressInfo).port;
  try {
    const result = spawnSync(process.execPath, [FLINT, 'master', '--redis', REDIS_ARGV_URL, '--cluster', cluster, '--webui-port', String(port), '--conf', 'spark.master.rest.enabled=false'], {
      encoding: 'utf8',
      env: { ...process.env, FLINT_LOG_LEVEL: 'error' },
      timeout: 30_000,
    });
    assert.equal(result.status, 1);
    assert.match(result.stderr, new RegExp(`^flint: master web UI cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE`));
    assert.equal(await redis.hlen(clusterKeys(cluster).masters), 0, 'the handlers never started');
  } finally {
    blocker.close();
  }
});
