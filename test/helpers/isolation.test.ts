/**
 * Tests of the isolation helpers against the real Redis and Docker engine:
 * cleanupCluster must delete exactly one cluster's keys (never a neighbour whose
 * name starts the same, never non-Flint keys), and the other helpers must clean
 * up what they promise to.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { connectRedis } from '../../lib/redis.ts';
import { assertClusterName, clusterKeyPattern, clusterKeys } from '../../protocol/keys.ts';
import { REDIS_URL, TEST_IMAGE } from './env.ts';
import { cleanupCluster, docker, makeTempDir, removeContainersByLabel, uniqueCluster, waitFor } from './isolation.ts';

async function countKeys(redis: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let count = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    count += keys.length;
  } while (cursor !== '0');
  return count;
}

/** fillCluster writes `n` workers' hashes plus one key of every other type Flint uses. Returns the key count. */
async function fillCluster(redis: Redis, cluster: string, n: number): Promise<number> {
  const keys = clusterKeys(cluster);
  const pipeline = redis.pipeline();
  for (let i = 0; i < n; i++) pipeline.hset(keys.worker(`w${i}`), 'state', 'ALIVE');
  pipeline.zadd(keys.heartbeats, 1, 'w0');
  pipeline.xadd(keys.clusterEvents, '*', 'type', 'WorkerAdded');
  pipeline.set(keys.scheduleDirty, '1');
  pipeline.rpush(keys.appsCompleted, 'app-1');
  pipeline.sadd(keys.workersAll, 'w0');
  // A BullMQ queue key under the cluster's prefix.
  pipeline.set(`${keys.bullPrefix}:${keys.masterQueue}:id`, '7');
  await pipeline.exec();
  return n + 6;
}

test('uniqueCluster gives distinct names that protocol/keys.ts accepts', () => {
  const names = new Set(Array.from({ length: 200 }, () => uniqueCluster('iso')));
  assert.equal(names.size, 200);
  for (const name of names) {
    assert.match(name, /^t-iso-[0-9a-f]{12}$/);
    assert.equal(assertClusterName(name), name);
  }
  // A prefix with characters a cluster name may not hold, or far too long, still gives a valid name.
  assert.doesNotThrow(() => assertClusterName(uniqueCluster('a test: with spaces/and.dots')));
  assert.ok(uniqueCluster('x'.repeat(200)).length <= 64);
});

test('cleanupCluster removes every key of its cluster and nothing else', async (t) => {
  const redis = await connectRedis(REDIS_URL, { name: 'test-isolation' });
  const target = uniqueCluster('iso-target');
  // Same leading characters as the target: a sloppy pattern would catch it.
  const lookalike = `${target}x`;
  const neighbour = uniqueCluster('iso-neighbour');
  const plainKey = `flint-test-plain:${target}`;
  t.after(async () => {
    await cleanupCluster(redis, lookalike);
    await cleanupCluster(redis, neighbour);
    await redis.unlink(plainKey);
    await redis.quit();
  });

  // More keys than one SCAN page holds, so the cursor loop is exercised.
  const written = await fillCluster(redis, target, 2500);
  const lookalikeCount = await fillCluster(redis, lookalike, 10);
  const neighbourCount = await fillCluster(redis, neighbour, 10);
  await redis.set(plainKey, 'keep');
  assert.equal(await countKeys(redis, clusterKeyPattern(target)), written);

  const deleted = await cleanupCluster(redis, target);

  assert.equal(deleted, written);
  assert.equal(await countKeys(redis, clusterKeyPattern(target)), 0);
  assert.equal(await countKeys(redis, clusterKeyPattern(lookalike)), lookalikeCount);
  assert.equal(await countKeys(redis, clusterKeyPattern(neighbour)), neighbourCount);
  assert.equal(await redis.get(plainKey), 'keep');
  // A second cleanup finds nothing left.
  assert.equal(await cleanupCluster(redis, target), 0);
});

test('cleanupCluster refuses an invalid cluster name instead of matching too much', async (t) => {
  const redis = await connectRedis(REDIS_URL, { name: 'test-isolation' });
  t.after(() => redis.quit());
  await assert.rejects(cleanupCluster(redis, '*'), /invalid cluster name/);
  await assert.rejects(cleanupCluster(redis, ''), /invalid cluster name/);
});

test('removeContainersByLabel force-removes running and stopped containers with that label only', async (t) => {
  const engine = docker();
  const label = 'flint.test.isolation';
  const value = uniqueCluster('containers');
  const otherValue = `${value}-other`;
  t.after(async () => {
    await removeContainersByLabel(label, value);
    await removeContainersByLabel(label, otherValue);
  });
  const create = (labelValue: string) =>
    engine.createContainer({
      Image: TEST_IMAGE,
      Cmd: ['sleep', '30'],
      Labels: { [label]: labelValue },
      HostConfig: { NetworkMode: 'none' },
    });
  const running = await create(value);
  await running.start();
  await create(value); // created, never started
  const survivor = await create(otherValue);

  assert.equal(await removeContainersByLabel(label, value), 2);

  const left = await engine.listContainers({ all: true, filters: { label: [`${label}=${value}`] } });
  assert.deepEqual(left, []);
  const other = await engine.listContainers({ all: true, filters: { label: [`${label}=${otherValue}`] } });
  assert.deepEqual(other.map((c) => c.Id), [survivor.id]);
  assert.equal(await removeContainersByLabel(label, value), 0);
});

test('makeTempDir gives a private directory that cleanup removes, twice safely', async () => {
  const dir = await makeTempDir('iso/temp dir');
  assert.match(dir.path, /flint-test-iso-temp-dir-/);
  await writeFile(join(dir.path, 'file.txt'), 'x');
  assert.ok((await stat(dir.path)).isDirectory());
  await dir.cleanup();
  await assert.rejects(stat(dir.path), { code: 'ENOENT' });
  await dir.cleanup();
});

test('waitFor returns the first truthy value and polls until then', async () => {
  let calls = 0;
  const value = await waitFor(
    () => {
      calls += 1;
      if (calls === 1) throw new Error('not ready');
      return calls >= 3 ? { calls } : null;
    },
    { timeoutMs: 2000, intervalMs: 5 },
  );
  assert.deepEqual(value, { calls: 3 });
});

test('waitFor fails with the message and the last value or error', async () => {
  const started = Date.now();
  await assert.rejects(
    waitFor(() => 0, { timeoutMs: 100, intervalMs: 10, message: 'worker w1 to be ALIVE' }),
    /waitFor timed out after 100 ms: worker w1 to be ALIVE \(last value: 0\)/,
  );
  assert.ok(Date.now() - started >= 100);
  await assert.rejects(
    waitFor(
      async () => {
        throw new Error('connection refused');
      },
      { timeoutMs: 50, intervalMs: 10, message: 'Redis' },
    ),
    /Redis \(last error: connection refused\)/,
  );
});
