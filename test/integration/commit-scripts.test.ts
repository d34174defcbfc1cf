/**
 * functions/store/scripts.ts: the master runs its commit scripts by SHA1 and sends a
 * script's source only when Redis lacks it (NOSCRIPT), which also caches it again. On a
 * Redis of its own (embedded redis-server), because SCRIPT FLUSH empties the cache of
 * every client of a server and the suite's clusters share one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { startEmbeddedRedis } from '../../lib/embedded-redis.ts';
import { MasterStore, scriptConfigFrom } from '../../functions/store/master-store.ts';
import { callScript, scriptSha, scriptSource, SCRIPT_NAMES } from '../../functions/store/scripts.ts';
import { clusterKeys } from '../../protocol/keys.ts';
import { loadConfig } from '../../protocol/config.ts';

/** evalCalls: how many EVAL and EVALSHA commands the server has run (INFO commandstats). */
async function evalCalls(redis: Redis): Promise<{ eval: number; evalsha: number }> {
  const stats = await redis.info('commandstats');
  const calls = (name: string) => Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
  return { eval: calls('eval'), evalsha: calls('evalsha') };
}

/** onOwnRedis runs `body` with a client of a fresh embedded redis-server, stopped afterwards whatever happens. */
async function onOwnRedis(body: (redis: Redis) => Promise<void>): Promise<void> {
  const embedded = await startEmbeddedRedis();
  const redis = new Redis(embedded.adminUrl, { maxRetriesPerRequest: 2 });
  try {
    await body(redis);
  } finally {
    redis.disconnect();
    await embedded.stop();
  }
}

test('commit scripts run by SHA1; after SCRIPT FLUSH the next call sends the source once and Redis caches it again', () =>
  onOwnRedis(async (redis) => {
    const store = new MasterStore(redis, loadConfig({ env: {}, overrides: { 'spark.flint.cluster': 'scripts' } }));
    const sha = createHash('sha1').update(scriptSource('clear-completed')).digest('hex');

    assert.equal(await store.clearCompleted(Date.now()), 0);
    assert.deepEqual(await evalCalls(redis), { eval: 1, evalsha: 1 }, 'the first call finds no script: EVALSHA, then EVAL');
    assert.deepEqual(await redis.script('EXISTS', sha), [1]);

    assert.equal(await store.clearCompleted(Date.now()), 0);
    assert.deepEqual(await evalCalls(redis), { eval: 1, evalsha: 2 }, 'cached: EVALSHA only');

    await redis.script('FLUSH');
    assert.deepEqual(await redis.script('EXISTS', sha), [0]);
    assert.equal(await store.clearCompleted(Date.now()), 0);
    assert.deepEqual(await evalCalls(redis), { eval: 2, evalsha: 3 });
    assert.deepEqual(await redis.script('EXISTS', sha), [1]);
  }),
);

test('a script error other than NOSCRIPT reaches the caller as it is, without a further attempt', () =>
  onOwnRedis(async (redis) => {
    const config = loadConfig({ env: {}, overrides: { 'spark.flint.cluster': 'scripts' } });
    const run = () => callScript(redis, clusterKeys(config.cluster), scriptConfigFrom(config), 'register-worker', Date.now(), ['not JSON']);
    await assert.rejects(run(), /ERR .*(JSON|Expected value)/i);
    assert.deepEqual(await evalCalls(redis), { eval: 1, evalsha: 1 }, 'EVALSHA (NOSCRIPT), then EVAL, which fails: no third call');
    await assert.rejects(run(), /ERR .*(JSON|Expected value)/i);
    assert.deepEqual(await evalCalls(redis), { eval: 1, evalsha: 2 }, 'the source was cached by the failed EVAL: EVALSHA alone');
  }),
);

test('every commit script is valid Lua, and the SHA1 the master runs it by is the one Redis gives its source', () =>
  onOwnRedis(async (redis) => {
    for (const name of SCRIPT_NAMES) {
      assert.equal(await redis.script('LOAD', scriptSource(name)), scriptSha(name), name);
    }
  }),
);
