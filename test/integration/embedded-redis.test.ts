/**
 * EmbeddedRedis starts a real redis-server with Flint's production settings on a
 * free loopback port, and leaves no process or directory behind when stopped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { startEmbeddedRedis, RedisNotInstalledError } from '../../lib/embedded-redis.ts';
import { checkRedisPolicy } from '../../lib/redis.ts';

test('embedded Redis: AOF on, noeviction, loopback only, cleaned up on stop', async () => {
  const embedded = await startEmbeddedRedis();
  const redis = new Redis(embedded.url);
  try {
    assert.match(embedded.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
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
