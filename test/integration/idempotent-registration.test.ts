/**
 * Idempotent retries (issue 12, acceptance 6) against the real Redis and a real
 * master: a client whose request timed out because no master was running retries
 * with the same Idempotency-Key; once a master starts, every retry gets the first
 * answer and exactly one application (or driver) exists. Without the key, each
 * retry would have drawn a fresh clientId (or request id) and registered another.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { startMaster, type MasterHost } from '../../functions/host.ts';
import { startAppHttpServer, type RunningAppHttpServer } from '../../functions/http/app-api.ts';
import { createRestApp, startRestServer, type RunningRestServer } from '../../functions/http/rest/server.ts';
import { MasterGateway } from '../../functions/http/rest/gateway.ts';
import { buildCreateSubmissionRequest } from '../../client/rest-client.ts';
import { toSparkJson } from '../../protocol/rest.ts';
import { loadConfig } from '../../protocol/config.ts';
import { clusterKeys } from '../../protocol/keys.ts';
import { signToken } from '../../lib/http/auth.ts';
import { bullConnection, closeBull } from '../../lib/redis.ts';
import { REDIS_URL } from '../helpers/env.ts';
import { cleanupCluster, uniqueCluster } from '../helpers/isolation.ts';
import { appDescription } from '../helpers/protocol.ts';

const SECRET = 'idempotency-test-secret-0123456789abcdefghij';
const redis = new Redis(REDIS_URL);
const cleanups: (() => Promise<unknown>)[] = [];

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  redis.disconnect();
});

function clusterFixture(name: string) {
  const cluster = uniqueCluster(name);
  const config = loadConfig({ env: {}, overrides: { 'spark.flint.cluster': cluster, 'spark.flint.auth.secret': SECRET } });
  cleanups.push(() => cleanupCluster(redis, cluster));
  let master: MasterHost | undefined;
  cleanups.push(() => master?.stop() ?? Promise.resolve());
  return {
    cluster,
    keys: clusterKeys(cluster),
    startMaster: async () => (master = await startMaster({ redisUrl: REDIS_URL, config, concurrency: 4 })),
    /** jobs of `type` the master's queue ever held (completed ones are kept for removeOnComplete's age) */
    jobsOf: async (type: string) => {
      const queue = new Queue(clusterKeys(cluster).masterQueue, { connection: bullConnection(REDIS_URL, { name: 'idem-probe' }), prefix: clusterKeys(cluster).bullPrefix });
      try {
        const jobs = await queue.getJobs(['completed', 'failed', 'waiting', 'active', 'delayed']);
        return jobs.filter((job) => job.name === type).length;
      } finally {
        await closeBull(queue);
      }
    },
  };
}

test('POST /v1/apps retried three times with one Idempotency-Key while no master runs, answered once one starts: exactly one application', async () => {
  const c = clusterFixture('idem-app');
  const server: RunningAppHttpServer = await startAppHttpServer({ redisUrl: REDIS_URL, cluster: c.cluster, port: 0, askTimeoutMs: 400, auth: { secret: SECRET } });
  cleanups.push(() => server.close());
  const submitA = signToken(SECRET, { scope: 'submit', ttlSeconds: 600, subject: 'tenant-a' });
  const submitB = signToken(SECRET, { scope: 'submit', ttlSeconds: 600, subject: 'tenant-b' });
  const register = (token: string, key: string) =>
    fetch(`${server.url}/v1/apps`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'idempotency-key': key },
      body: JSON.stringify(appDescription({ name: 'idempotent' })),
    });

  for (let attempt = 1; attempt <= 3; attempt++) {
    const response = await register(submitA, 'job-42');
    assert.equal(response.status, 503, `attempt ${attempt} times out: no master`);
    assert.match(((await response.json()) as { error: string }).error, /no reply to RegisterApplication/);
  }
  await c.startMaster();
  const answered = await register(submitA, 'job-42');
  assert.equal(answered.status, 201);
  const first = (await answered.json()) as { appId: string; appToken: string; clientId: string };
  const again = (await (await register(submitA, 'job-42')).json()) as typeof first;
  assert.deepEqual(again, first, 'a later retry gets the first answer, token included');

  assert.equal(await redis.zcard(c.keys.appsWaiting), 1, 'exactly one application');
  assert.equal(await redis.get(c.keys.appSeq), '1', 'one application id was ever drawn');
  assert.equal(await c.jobsOf('RegisterApplication'), 1, 'the retries joined the first queued request');

  // the key is the caller's: another tenant with the same key registers its own application
  const other = (await (await register(submitB, 'job-42')).json()) as typeof first;
  assert.notEqual(other.appId, first.appId);
  assert.equal(await redis.zcard(c.keys.appsWaiting), 2);
  // and a clientId registered by one credential does not hand its app's token to another, nor renew its lease
  const leaseBefore = await redis.zscore(c.keys.appLeases, first.appId);
  await new Promise((resolve) => setTimeout(resolve, 20));
  const taken = await fetch(`${server.url}/v1/apps`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${submitB}` },
    body: JSON.stringify({ ...appDescription({ name: 'hijack' }), clientId: first.clientId }),
  });
  assert.equal(taken.status, 409);
  assert.match(((await taken.json()) as { error: string }).error, /belongs to an application registered with another credential/);
  assert.equal(await redis.zcard(c.keys.appsWaiting), 2, 'nothing new registered');
  assert.equal(await redis.zscore(c.keys.appLeases, first.appId), leaseBefore, "another credential's attempt did not renew the lease");
});

test('REST create retried three times with one Idempotency-Key while no master runs, answered once one starts: exactly one driver', async () => {
  const c = clusterFixture('idem-rest');
  const gateway = MasterGateway.connect({ redisUrl: REDIS_URL, cluster: c.cluster, askTimeoutMs: 400 });
  cleanups.push(() => gateway.close());
  const rest: RunningRestServer = await startRestServer(
    createRestApp({ gateway, auth: { secret: SECRET }, serverSparkVersion: '4.0.0', masterUrl: 'spark://127.0.0.1:7077', serverEnv: {} }),
    { host: '127.0.0.1', port: 0, secret: SECRET },
  );
  cleanups.push(() => rest.close());
  const token = signToken(SECRET, { scope: 'submit', ttlSeconds: 600 });
  const body = toSparkJson(
    buildCreateSubmissionRequest({
      appResource: 'docker://flint-test-busybox:latest',
      appArgs: ['sleep', '1'],
      sparkProperties: { 'spark.app.name': 'idempotent', 'spark.driver.memory': '64g', 'spark.driver.cores': '1' },
    }),
  );
  const create = (key: string) =>
    fetch(`${rest.url}/v1/submissions/create`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'idempotency-key': key }, body });

  for (let attempt = 1; attempt <= 3; attempt++) {
    const response = await create('submit-7');
    assert.equal(response.status, 503, `attempt ${attempt} times out: no master`);
  }
  await c.startMaster();
  const answered = await create('submit-7');
  assert.equal(answered.status, 200);
  const first = (await answered.json()) as { success: boolean; submissionId: string };
  assert.equal(first.success, true);
  assert.equal(((await (await create('submit-7')).json()) as typeof first).submissionId, first.submissionId, 'a later retry gets the same submissionId');
  assert.deepEqual(await redis.smembers(c.keys.driversActive), [first.submissionId], 'exactly one driver');
  assert.equal(await redis.get(c.keys.driverSeq), '1');
  assert.equal(await c.jobsOf('RequestSubmitDriver'), 1);

  const bad = await create('has space');
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { message: string }).message, /invalid Idempotency-Key/);
  const fresh = (await (await create('submit-8')).json()) as typeof first;
  assert.notEqual(fresh.submissionId, first.submissionId, 'another key is another submission');
});
