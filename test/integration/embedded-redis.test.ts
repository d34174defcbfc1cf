/**
 * EmbeddedRedis starts a real redis-server with Flint's production settings on a
 * free loopback port, and leaves no process or directory behind when stopped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { freeLoopbackPort, startEmbeddedRedis, RedisNotInstalledError } from '../../lib/embedded-redis.ts';
import { REDIS_URL } from '../helpers/env.ts';
import { checkRedisPolicy } from '../../lib/redis.ts';

test('embedded Redis: AOF on, noeviction, loopback only, a password required and on no command line, cleaned up on stop', async () => {
  const embedded = await startEmbeddedRedis();
  const redis = new Redis(embedded.adminUrl);
  try {
    assert.match(embedded.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
    const password = decodeURIComponent(new URL(embedded.adminUrl).password);
    assert.ok(password.length >= 40, 'a generated password');
    // the server loads it as a SHA-256 from an owner-only file, never from its arguments
    assert.equal(statSync(embedded.dataDir).mode & 0o777, 0o700);
    assert.equal(statSync(embedded.aclFile).mode & 0o777, 0o600);
    assert.doesNotMatch(readFileSync(embedded.aclFile, 'utf8'), new RegExp(password));
    const pid = Number(/^process_id:(\d+)/m.exec(await redis.info('server'))![1]);
    assert.doesNotMatch(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), new RegExp(password));
    const anonymous = new Redis(embedded.url, { protocol: 2, enableReadyCheck: false, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    anonymous.on('error', () => undefined);
    await anonymous.connect();
    await assert.rejects(anonymous.get('k'), /NOAUTH/);
    anonymous.disconnect();
    assert.deepEqual(await checkRedisPolicy(redis), []);
    assert.deepEqual(await redis.config('GET', 'bind'), ['bind', '127.0.0.1']);
    await redis.set('k', 'v');
    assert.equal(await redis.get('k'), 'v');
  } finally {
    redis.disconnect();
    await embedded.stop();
  }
  assert.equal(existsSync(embedded.dataDir), false, 'data directory removed');
  const probe = new Redis(embedded.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  await assert.rejects(probe.connect());
  probe.disconnect();
});

test('a missing redis-server binary is a clear error saying how to install it', async () => {
  await assert.rejects(startEmbeddedRedis({ searchPath: '/nonexistent-dir' }), (error: Error) => {
    assert.ok(error instanceof RedisNotInstalledError);
    assert.match(error.message, /redis-server is not installed: run `bash infra\/setup.sh`/);
    return true;
  });
});

test('a port taken between picking and binding is skipped: by a plain listener, and by another Redis (which is never mistaken for ours)', async () => {
  const listener = createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const held = (listener.address() as { port: number }).port;
  const sharedPort = Number(new URL(REDIS_URL).port || 6379);
  const offered: number[] = [];
  const candidates = [held, sharedPort];
  const embedded = await startEmbeddedRedis({
    pickPort: async () => {
      const port = candidates.shift() ?? (await freeLoopbackPort());
      offered.push(port);
      return port;
    },
  });
  const redis = new Redis(embedded.adminUrl);
  try {
    assert.deepEqual(offered.slice(0, 2), [held, sharedPort]);
    assert.equal(offered.length, 3, `three ports offered (${offered.join(', ')})`);
    assert.equal(embedded.port, offered[2]);
    // it is our own server: AOF and noeviction as configured, which the shared test Redis need not have
    assert.deepEqual(await checkRedisPolicy(redis), []);
    assert.deepEqual(await redis.config('GET', 'dir'), ['dir', embedded.dataDir]);
  } finally {
    redis.disconnect();
    await embedded.stop();
    listener.close();
  }
});

test('when every offered port is taken, the error says so', async () => {
  const listener = createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const held = (listener.address() as { port: number }).port;
  try {
    await assert.rejects(startEmbeddedRedis({ pickPort: async () => held }), /embedded redis-server: 5 free loopback ports were taken before it could bind them/);
  } finally {
    listener.close();
  }
});

test('a redis-server that cannot be executed is a clear error, not a crash', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flint-bad-redis-'));
  try {
    // found on the PATH and executable, but its interpreter does not exist: spawn fails
    await writeFile(join(dir, 'redis-server'), '#!/nonexistent/interpreter\n', { mode: 0o755 });
    await assert.rejects(startEmbeddedRedis({ searchPath: dir }), /^Error: cannot start .*redis-server: spawn .*ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
