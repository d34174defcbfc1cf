/**
 * Issue 11's acceptance 6 (descriptions): an oversized description (a 1 MiB env) is
 * refused at every way in, with a message naming the field, and nothing is stored:
 *   - the application HTTP API: 400 naming `env`, no key of the cluster written;
 *   - the REST submission server (Spark's protocol): 400 naming `env`, no driver;
 *   - the master itself, for a message put on its queue without the client's check
 *     (anyone with queue access): dead-lettered naming `env`, no application stored,
 *     and the dead letter keeps only a bounded prefix of the body.
 * Against the real Redis and a real master.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { startMaster } from '../../functions/host.ts';
import { signToken } from '../../lib/http/auth.ts';
import { createRestApp } from '../../functions/http/rest/server.ts';
import { MasterGateway } from '../../functions/http/rest/gateway.ts';
import { toSparkJson } from '../../protocol/rest.ts';
import { buildCreateSubmissionRequest } from '../../client/rest-client.ts';
import { createAppHttpApp } from '../../functions/http/app-api.ts';
import { MasterClient } from '../../client/master-client.ts';
import { bullConnection, closeBull } from '../../lib/redis.ts';
import { loadConfig } from '../../protocol/config.ts';
import { clusterKeyPattern, clusterKeys } from '../../protocol/keys.ts';
import { DEAD_LETTER_RAW_BYTES } from '../../protocol/limits.ts';
import { REDIS_URL } from '../helpers/env.ts';
import { cleanupCluster, uniqueCluster, waitFor } from '../helpers/isolation.ts';
import { appDescription } from '../helpers/protocol.ts';

const SECRET = 'limits-secret-0123456789abcdef0123456789abcdef';
const MIB = 1024 * 1024;

/** stateKeys: the cluster's keys other than the master queue's (what a stored application would add). */
async function stateKeys(redis: Redis, cluster: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', clusterKeyPattern(cluster), 'COUNT', 1000);
    found.push(...keys.filter((key) => !key.startsWith(`flint{${cluster}}:master:`) && !key.endsWith(':masters') && !key.includes(':schedule:') && !key.includes(':reaper:')));
    cursor = next;
  } while (cursor !== '0');
  return found.sort();
}

test('a 1 MiB env is refused by the app API, the REST server and the master, naming the field, and nothing is stored', { timeout: 120_000 }, async () => {
  const cluster = uniqueCluster('limits');
  const keys = clusterKeys(cluster);
  const config = loadConfig({ env: {}, overrides: { 'spark.flint.cluster': cluster } });
  const redis = new Redis(REDIS_URL);
  const master = await startMaster({ redisUrl: REDIS_URL, config, concurrency: 2 });
  const api = createAppHttpApp({ redisUrl: REDIS_URL, cluster, auth: { secret: SECRET } });
  const gateway = MasterGateway.connect({ redisUrl: REDIS_URL, cluster });
  const queue = new Queue(keys.masterQueue, { connection: bullConnection(REDIS_URL), prefix: keys.bullPrefix });
  const client = new MasterClient(REDIS_URL, cluster, 'limits-test');
  const token = signToken(SECRET, { scope: ['submit'], ttlSeconds: 600, subject: 'limits' });
  try {
    const before = await stateKeys(redis, cluster);

    // the application HTTP API
    const hugeEnv = { BIG: 'x'.repeat(MIB) };
    const viaApi = await api.app.request('/v1/apps', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(appDescription({ env: hugeEnv })),
    });
    assert.equal(viaApi.status, 400);
    const apiError = ((await viaApi.json()) as { error: string }).error;
    assert.match(apiError, /^invalid request body: env\.BIG: must be at most 16,384 bytes/);
    // spread over many variables, the total is what is refused
    const manyVars = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`V${i}`, 'y'.repeat(2000)]));
    const viaApiMany = await api.app.request('/v1/apps', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(appDescription({ env: manyVars })),
    });
    assert.equal(viaApiMany.status, 400);
    assert.match(((await viaApiMany.json()) as { error: string }).error, /^invalid request body: env: the description is [\d,]+ bytes as JSON, more than the limit of 65,536; env takes [\d,]+/);

    // the REST submission server
    const rest = createRestApp({ gateway, auth: { secret: SECRET }, serverSparkVersion: '4.0.0', masterUrl: 'spark://127.0.0.1:7077' });
    const request = buildCreateSubmissionRequest({
      appResource: 'docker://flint-test-busybox:latest',
      appArgs: ['echo', 'hello'],
      sparkProperties: { 'spark.app.name': 'limits', 'spark.driver.memory': '256m', 'spark.driver.cores': '1' },
      environmentVariables: hugeEnv,
    });
    const viaRest = await rest.request('/v1/submissions/create', {
      method: 'POST',
      headers: { authorization: `Bearer ${signToken(SECRET, { scope: 'admin', ttlSeconds: 600, subject: 'limits' })}`, 'content-type': 'application/json' },
      body: toSparkJson(request),
    });
    assert.equal(viaRest.status, 400);
    const restBody = (await viaRest.json()) as { action: string; message: string };
    assert.equal(restBody.action, 'ErrorResponse');
    assert.match(restBody.message, /^Malformed request: The request does not make a valid driver: env\.BIG: must be at most 16,384 bytes/);

    // the client library refuses before anything is sent
    await assert.rejects(
      client.ask('RegisterApplication', { clientId: 'limits-client', appDescription: appDescription({ env: hugeEnv }) as never }),
      /refusing to send an invalid message: RegisterApplication: appDescription\.env\.BIG: must be at most 16,384 bytes/,
    );

    // the master, for a message that skipped every client (written straight to its queue)
    const job = await queue.add('RegisterApplication', { clientId: 'limits-raw', appDescription: appDescription({ env: hugeEnv }) }, { removeOnFail: true });
    const letter = await waitFor(async () => {
      const entries = (await redis.xrange(keys.deadLetters, '-', '+')) as [string, string[]][];
      return entries.map(([, fields]) => Object.fromEntries(fields.flatMap((f, i) => (i % 2 === 0 ? [[f, fields[i + 1]!]] : [])))).find((e) => e.type === 'RegisterApplication');
    }, { timeoutMs: 30_000, message: `job ${job.id} dead-lettered` });
    assert.match(letter.reason!, /^RegisterApplication: appDescription\.env\.BIG: must be at most 16,384 bytes/);
    assert.ok(letter.raw!.length <= DEAD_LETTER_RAW_BYTES + 64, `the dead letter keeps a bounded prefix (${letter.raw!.length} characters)`);

    // nothing was stored: no application, driver or sequence
    const after = (await stateKeys(redis, cluster)).filter((key) => key !== keys.deadLetters && key !== keys.stats);
    assert.deepEqual(after, before.filter((key) => key !== keys.deadLetters && key !== keys.stats));
    assert.equal(await redis.exists(keys.appSeq, keys.driverSeq), 0, 'no application or driver number was taken');
  } finally {
    await client.close();
    await closeBull(queue);
    await gateway.close();
    await api.close();
    await master.stop();
    await cleanupCluster(redis, cluster);
    redis.disconnect();
  }
});
