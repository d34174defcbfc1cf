/**
 * lib/bullmq.ts: the queue Flint uses works without BullMQ's PostgreSQL backend, its
 * other Redis clients or cron-parser (with luxon) having run, and each of them
 * still works when first used: a job scheduler with a cron pattern loads cron-parser, a
 * PostgreSQL export loads the backend. Each case runs in a fresh Node process, so the
 * module cache starts empty as in a master or an agent; the queue is a real one on the
 * test Redis, under a prefix of its own that the case deletes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { runModuleScript } from '../helpers/flint-process.ts';
import { REDIS_URL } from '../helpers/env.ts';

/** DEFERRED: a file of each deferred module (or package), as a part of its path. */
const DEFERRED = ['/bullmq/dist/cjs/postgres/postgres-queue-backend.js', '/bullmq/dist/cjs/classes/node-redis-client.js', '/bullmq/dist/cjs/classes/bun-redis-client.js', '/bullmq/dist/cjs/classes/valkey-glide-client.js', '/node_modules/cron-parser/', '/node_modules/luxon/'];

/** inFreshProcess runs an ES module body (with lib/bullmq.ts imported as `bullmq`) and returns what it printed as JSON, `ran` listing the deferred modules that ran. */
function inFreshProcess(body: string): { ran: string[]; [key: string]: unknown } {
  const prefix = `flint-test-bullmq-${randomUUID()}`;
  const script = `
    import { createRequire } from 'node:module';
    import { Redis } from 'ioredis';
    import * as bullmq from './lib/bullmq.ts';
    const require = createRequire(import.meta.url);
    // a module that ran was loaded by require, which gives it its search paths; a stand-in is built without them
    const ran = () => ${JSON.stringify(DEFERRED)}.filter((part) => Object.entries(require.cache).some(([path, module]) => path.includes(part) && module.loaded && Array.isArray(module.paths)));
    const connection = { url: ${JSON.stringify(REDIS_URL)}, maxRetriesPerRequest: null };
    const prefix = ${JSON.stringify(prefix)};
    const result = {};
    const redis = new Redis(${JSON.stringify(REDIS_URL)});
    try {
      ${body}
    } finally {
      const keys = await redis.keys(prefix + ':*');
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
    process.stdout.write(JSON.stringify({ ...result, ran: ran() }));
  `;
  const run = runModuleScript(script);
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as { ran: string[] };
}

test('a queue adds, counts and reads jobs with none of the deferred modules having run', () => {
  const result = inFreshProcess(`
    const queue = new bullmq.Queue('deferrals', { connection, prefix });
    await queue.add('m', { n: 1 });
    result.counts = await queue.getJobCounts('waiting');
    result.name = (await queue.getJobs(['waiting']))[0]?.name;
    await queue.close();
  `);
  assert.deepEqual(result.counts, { waiting: 1 });
  assert.equal(result.name, 'm');
  assert.deepEqual(result.ran, []);
});

test('a job scheduler with a cron pattern loads cron-parser when it is used, and its next run is computed', () => {
  const result = inFreshProcess(`
    result.before = ran();
    const queue = new bullmq.Queue('deferrals', { connection, prefix });
    const before = Date.now();
    await queue.upsertJobScheduler('every-minute', { pattern: '0 * * * * *' }, { name: 'tick' });
    const [scheduler] = await queue.getJobSchedulers();
    result.pattern = scheduler?.pattern;
    result.nextInMs = scheduler?.next - before;
    result.nextOnMinute = scheduler?.next % 60000 === 0;
    await queue.close();
  `);
  assert.deepEqual(result.before, []);
  assert.equal(result.pattern, '0 * * * * *');
  assert.ok(typeof result.nextInMs === 'number' && result.nextInMs > 0 && result.nextInMs <= 60_000, `the next minute after the call: ${String(result.nextInMs)} ms`);
  assert.equal(result.nextOnMinute, true, 'on a whole minute, as the pattern says');
  assert.ok(result.ran.includes('/node_modules/cron-parser/'), `cron-parser ran once used: ${JSON.stringify(result.ran)}`);
  assert.ok(result.ran.includes('/node_modules/luxon/'), `luxon too: ${JSON.stringify(result.ran)}`);
});

test('each stand-in offers exactly the names of the module it stands for', () => {
  const result = inFreshProcess(`
    const { dirname, join } = await import('node:path');
    const root = dirname(require.resolve('bullmq'));
    const files = ['postgres/index.js', 'classes/node-redis-client.js', 'classes/bun-redis-client.js', 'classes/valkey-glide-client.js'];
    result.names = files.map((file) => {
      const path = join(root, file);
      const standIn = Object.keys(require.cache[path].exports).sort();
      void require.cache[path].exports[standIn[0]]; // loads the real module
      return { file, standIn, real: Object.keys(require.cache[path].exports).sort() };
    });
    const cronPath = require.resolve('cron-parser', { paths: [join(root, 'classes')] });
    result.cronKeys = Object.keys(require.cache[cronPath].exports).sort();
  `);
  const names = result.names as Array<{ file: string; standIn: string[]; real: string[] }>;
  assert.equal(names.length, 4);
  for (const { file, standIn, real } of names) {
    assert.ok(standIn.length > 0, file);
    assert.deepEqual(standIn, real, file);
  }
  assert.ok((result.cronKeys as string[]).includes('CronExpressionParser'), 'listing the cron-parser stand-in lists the real exports');
});

test("BullMQ's own exports of a deferred module load it when read", () => {
  const result = inFreshProcess(`
    const require2 = createRequire(import.meta.url);
    result.before = ran();
    const index = require2('bullmq');
    result.postgres = typeof index.createPostgresBackend;
    result.nodeRedis = typeof index.createNodeRedisClient;
  `);
  assert.deepEqual(result.before, []);
  assert.equal(result.postgres, 'function');
  assert.equal(result.nodeRedis, 'function');
  assert.ok(result.ran.includes('/bullmq/dist/cjs/postgres/postgres-queue-backend.js'), JSON.stringify(result.ran));
});
