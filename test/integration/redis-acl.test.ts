/**
 * Redis ACL users per role (lib/redis-acl.ts) on a real redis-server that requires
 * authentication (the embedded one `flint up` starts): a real worker agent running as
 * its own worker user registers, heartbeats, runs an executor (process runtime) and
 * reports its states through the master queue, with the master handlers running as
 * the master user and the application registered as the client user; and with the
 * same worker credential, writing another worker's inbox or any application key is
 * refused (NOPERM at top level, "can't access" inside a script), as are the commands
 * that would reach beyond the cluster (SCAN, KEYS, FLUSHALL, CONFIG SET).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startEmbeddedRedis } from '../../lib/embedded-redis.ts';
import { clusterAclUsers, aclUserName } from '../../lib/redis-acl.ts';
import { applyAclUsers, writeCredentials, type UserCredential } from '../../lib/redis-acl-apply.ts';
import { withCredentials } from '../../lib/redis-credentials.ts';
import { connectRedis } from '../../lib/redis.ts';
import { startMaster } from '../../functions/host.ts';
import { startMasterServices } from '../../functions/http/master-services.ts';
import { signToken } from '../../lib/http/auth.ts';
import { MasterClient } from '../../client/master-client.ts';
import { loadConfig } from '../../protocol/config.ts';
import { clusterKeys } from '../../protocol/keys.ts';
import { INBOX_GROUP } from '../../protocol/streams.ts';
import { startAgent } from '../../workers/agent/agent.ts';
import { ProcessRuntime } from '../../workers/runtime/process.ts';
import { acknowledgeInboxEntries } from '../../workers/inbox/acknowledge.ts';
import { recordDeadLetter } from '../../lib/dead-letters.ts';
import { claimSilentExecutors, recordExecutorHeartbeats } from '../../client/receiver-scripts.ts';
import { FAST_CONF } from '../helpers/agent-fixture.ts';
import { docker, makeTempDir, removeContainersByLabel, waitFor } from '../helpers/isolation.ts';
import { removeClusterCgroups } from '../helpers/cgroup-cleanup.ts';
import { TEST_IMAGE } from '../helpers/env.ts';
import { appDescription, readAppEvents } from '../helpers/protocol.ts';

const CLUSTER = 'acl-test';

/** connectAs: a connection authenticated as one generated user. */
function connectAs(baseUrl: string, credential: UserCredential): Redis {
  const redis = new Redis(withCredentials(baseUrl, credential.user.name, credential.password), { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  return redis;
}

test('the embedded Redis answers NOAUTH to a client without credentials', async () => {
  const embedded = await startEmbeddedRedis();
  const anonymous = new Redis(embedded.url, { protocol: 2, enableReadyCheck: false, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  anonymous.on('error', () => undefined);
  try {
    await anonymous.connect();
    await assert.rejects(anonymous.get('flint{default}:stats'), /NOAUTH Authentication required/);
    await assert.rejects(anonymous.call('AUTH', 'guessed'), /WRONGPASS/);
    // a Flint process without the password says what is missing
    await assert.rejects(connectRedis(embedded.url), /^Error: cannot connect to Redis at redis:\/\/127\.0\.0\.1:\d+: NOAUTH .*give the password in spark\.flint\.redis\.passwordFile/);
    await assert.rejects(connectRedis(withCredentials(embedded.url, undefined, 'guessed')), /redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: WRONGPASS/);
  } finally {
    anonymous.disconnect();
    await embedded.stop();
  }
});

test('a task container on the host network gets NOAUTH from the embedded Redis', { timeout: 60_000 }, async () => {
  const embedded = await startEmbeddedRedis();
  const label = `acl-noauth-${process.pid}-${Date.now()}`;
  try {
    // what task code would try: speak to Redis's port from inside a container sharing the host's network
    const container = await docker().createContainer({
      Image: TEST_IMAGE,
      Cmd: ['sh', '-c', `printf 'GET flint{default}:stats\\r\\nCONFIG GET requirepass\\r\\n' | nc -w 2 127.0.0.1 ${embedded.port}`],
      Labels: { 'flint.test': label },
      HostConfig: { NetworkMode: 'host', AutoRemove: false },
    });
    await container.start();
    await container.wait();
    const output = (await container.logs({ stdout: true, stderr: true })).toString('utf8');
    assert.match(output, /-NOAUTH Authentication required\./);
    assert.doesNotMatch(output, /\$-1|requirepass\r\n\$/, 'nothing was answered but NOAUTH');
  } finally {
    await removeContainersByLabel('flint.test', label);
    await embedded.stop();
  }
});

test('a worker agent under its own ACL user does everything an agent does, and nothing more', { timeout: 120_000 }, async () => {
  // the agent's own environment names its Redis credentials, as a worker's may: none of it reaches a task
  const saved = { ...process.env };
  process.env.FLINT_SPARK_FLINT_REDIS_PASSWORDFILE = '/nonexistent/redis.password';
  process.env.FLINT_SPARK_FLINT_REDIS_URL = 'redis://flint:visible@127.0.0.1:1';
  const embedded = await startEmbeddedRedis();
  const dir = await makeTempDir('redis-acl');
  const keys = clusterKeys(CLUSTER);
  const admin = new Redis(embedded.adminUrl);
  const config = loadConfig({ env: {}, overrides: { 'spark.flint.cluster': CLUSTER, ...FAST_CONF } });
  const closers: (() => Promise<unknown>)[] = [];
  try {
    const credentials = await writeCredentials(join(dir.path, 'acl'), clusterAclUsers(CLUSTER, ['w-a', 'w-b']));
    await applyAclUsers(admin, credentials);
    const byName = (name: string) => credentials.find((c) => c.user.name === name)!;
    const urlOf = (name: string) => withCredentials(embedded.url, name, byName(name).password);

    const master = await startMaster({ redisUrl: urlOf(aclUserName(CLUSTER, 'master')), config, concurrency: 4 });
    closers.push(() => master.stop());
    const client = new MasterClient(urlOf(aclUserName(CLUSTER, 'client')), CLUSTER, 'acl-test-client');
    closers.push(() => client.close());
    const agent = await startAgent({
      redisUrl: urlOf(aclUserName(CLUSTER, 'worker', 'w-a')),
      config,
      id: 'w-a',
      cores: 1,
      memoryMB: 512,
      port: 0,
      workDir: join(dir.path, 'work'),
      runtime: new ProcessRuntime({ stateDir: join(dir.path, 'process-runtime'), pollIntervalMs: 100 }),
      onFatal: (message) => assert.fail(`the agent stopped: ${message}`),
      reportBackoffMs: 200,
    });
    closers.push(() => agent.stop({ abrupt: true }));

    // registered through the master queue, heartbeating into the zset
    assert.equal(await admin.hget(keys.worker('w-a'), 'state'), 'ALIVE');
    await waitFor(async () => (await admin.zscore(keys.heartbeats, 'w-a')) !== null, { message: 'a heartbeat of w-a' });

    // an executor launched from its inbox runs, and its states reach the application through the master
    const { appId } = await client.ask<{ appId: string }>(
      'RegisterApplication',
      { clientId: 'acl-test-app', appDescription: appDescription({ command: ['sh', '-c', 'env > env.txt; sleep 30'], maxCores: 1, coresPerExecutor: 1, memoryPerExecutorMB: 64 }) },
      30_000,
    );
    await waitFor(async () => (await readAppEvents(admin, keys, appId)).some((e) => e.type === 'ExecutorUpdated' && e.body.state === 'RUNNING'), {
      timeoutMs: 30_000,
      message: 'the executor is reported RUNNING',
    });
    // the task got no Redis credential: not the agent's URL, user, password or its variables
    const taskEnv = await waitFor(() => readFile(join(agent.view().executors[0]!.workDir, 'env.txt'), 'utf8').catch(() => undefined), { message: "the task's environment" });
    assert.match(taskEnv, /FLINT_APP_ID=/);
    assert.doesNotMatch(taskEnv, /^[^=\n]*REDIS[^=\n]*=/im, 'no Redis variable');
    assert.doesNotMatch(taskEnv, /flint:visible|redis\.password/);
    for (const { password } of credentials) assert.ok(!taskEnv.includes(password), 'no Redis password in the task environment');
    await client.ask('KillApplication', { appId }, 30_000);
    await waitFor(async () => agent.view().executors.length === 0 && agent.view().finishedExecutors.length === 1, { timeoutMs: 30_000, message: 'the agent killed the executor' });
    // every inbox entry was read and acknowledged under the worker user
    await waitFor(async () => ((await admin.xpending(keys.workerInbox('w-a'), INBOX_GROUP)) as [number])[0] === 0, { message: 'no pending inbox entry' });
    // LaunchExecutor and KillExecutor went through the inbox, and the agent deleted them once handled
    const inboxInfo = (await admin.xinfo('STREAM', keys.workerInbox('w-a'))) as unknown[];
    assert.ok(Number(inboxInfo[inboxInfo.indexOf('entries-added') + 1]) >= 2, 'entries were written to the inbox');
    assert.equal(await admin.xlen(keys.workerInbox('w-a')), 0, 'handled entries are deleted');
    // the HTTP services as the client user: REST (its readiness asks BullMQ for the queue's consumers), UI, application API
    const secret = 'acl-test-secret-0123456789abcdef0123456789abcdef';
    const services = await startMasterServices({
      redisUrl: urlOf(aclUserName(CLUSTER, 'client')),
      config: loadConfig({
        env: {},
        overrides: {
          ...FAST_CONF,
          'spark.flint.cluster': CLUSTER,
          'spark.flint.auth.secret': secret,
          'spark.master.rest.enabled': 'true',
          'spark.master.rest.port': '0',
          'spark.flint.master.ui.enabled': 'true',
          'spark.master.ui.port': '0',
          'spark.flint.master.appApi.enabled': 'true',
          'spark.flint.master.appApi.port': '0',
        },
      }),
    });
    closers.push(() => services.close());
    const bearer = { authorization: `Bearer ${signToken(secret, { scope: ['admin'], ttlSeconds: 600, subject: 'acl-test' })}` };
    assert.equal((await fetch(`${services.restUrl}/v1/submissions/readyz`)).status, 200, 'REST readiness');
    for (const path of ['/json', '/', '/metrics', '/metrics/master/prometheus', '/metrics/applications/prometheus']) {
      assert.equal((await fetch(`${services.uiUrl}${path}`, { headers: bearer })).status, 200, `UI ${path}`);
    }
    assert.equal((await fetch(`${services.appApiUrl}/v1/apps/${appId}`, { headers: bearer })).status, 200, 'application API read');
    // an application registered through the application API: its token is checked against its secret, its client lease renewed
    const viaApi = await fetch(`${services.appApiUrl}/v1/apps`, {
      method: 'POST',
      headers: { ...bearer, 'content-type': 'application/json' },
      body: JSON.stringify(appDescription({ name: 'acl-api-app', command: ['sleep', '30'], maxCores: 1, memoryPerExecutorMB: 64 })),
    });
    assert.equal(viaApi.status, 201, await viaApi.clone().text());
    const registered = (await viaApi.json()) as { appId: string; token?: string };
    await waitFor(async () => (await admin.zscore(keys.appLeases, registered.appId)) !== null, { message: 'its lease, renewed by the client user' });
    if (registered.token) {
      assert.equal((await fetch(`${services.appApiUrl}/v1/apps/${registered.appId}`, { headers: { authorization: `Bearer ${registered.token}` } })).status, 200, 'read with the application token');
    }
    // the heartbeat receiver's scripts, as the client user: a beat (with metrics) for a live executor, and the expiry check
    const submitterScripts = connectAs(embedded.url, byName(aclUserName(CLUSTER, 'client')));
    closers.push(async () => submitterScripts.disconnect());
    await admin.zadd(keys.appExecutorBeats(registered.appId), 1, '0');
    assert.deepEqual(await recordExecutorHeartbeats(submitterScripts, keys, [{ appId: registered.appId, execId: 0, metrics: '{"cpu":1}' }]), ['recorded']);
    assert.match((await admin.hget(keys.appExecutorMetrics(registered.appId), '0')) ?? '', /"cpu":1/);
    assert.ok(Array.isArray(await claimSilentExecutors(submitterScripts, keys)));
    await new Promise((resolve) => setTimeout(resolve, 1500));

    // and nothing any of them did was refused (Redis logs every ACL denial)
    const denials = (await admin.call('ACL', 'LOG')) as unknown[][];
    assert.deepEqual(denials.map((entry) => entry.join(' ')), [], 'no ACL denial while the agent, the master and the client worked');

    // the same credential cannot touch another worker or any application
    const worker = connectAs(embedded.url, byName(aclUserName(CLUSTER, 'worker', 'w-a')));
    closers.push(async () => worker.disconnect());
    const refused = /NOPERM/;
    await assert.rejects(worker.xadd(keys.workerInbox('w-b'), '*', 'type', 'LaunchExecutor', 'body', '{}'), refused, "another worker's inbox");
    await assert.rejects(worker.xreadgroup('GROUP', INBOX_GROUP, 'w-a', 'COUNT', 1, 'STREAMS', keys.workerInbox('w-b'), '0'), refused, "reading another worker's inbox");
    await assert.rejects(worker.hset(keys.app(appId), 'state', 'RUNNING'), refused, 'an application hash');
    await assert.rejects(worker.hgetall(keys.app(appId)), refused, "reading an application's description");
    await assert.rejects(worker.hset(keys.appExecutors(appId), '0', '{}'), refused, "an application's executors");
    await assert.rejects(worker.xadd(keys.appEvents(appId), '*', 'type', 'ApplicationRemoved', 'body', '{}'), refused, "an application's events");
    await assert.rejects(worker.hset(keys.worker('w-a'), 'coresUsed', '0'), refused, 'its own worker hash (the master keeps it)');
    await assert.rejects(worker.zrem(keys.heartbeats, 'w-b'), refused, "removing another worker's heartbeat");
    await assert.rejects(worker.hset(keys.schedulable, 'w-a', '{}'), refused, 'the scheduling snapshot');
    await assert.rejects(worker.set(keys.scheduleLease, 'x'), refused, 'the scheduling lease');
    // inside a script every command is checked too
    await assert.rejects(worker.eval(`return redis.call('XADD', '${keys.workerInbox('w-b')}', '*', 'type', 'x')`, 0), /can't access at least one of the keys/);
    await assert.rejects(worker.eval(`return redis.call('HSET', KEYS[1], 'state', 'x')`, 1, keys.worker('w-a')), /The user executing the script can't/);
    // nothing beyond the cluster
    await assert.rejects(worker.scan('0'), refused);
    await assert.rejects(worker.keys('*'), refused);
    await assert.rejects(worker.flushall(), refused);
    await assert.rejects(worker.config('SET', 'maxmemory', '1'), refused);
    await assert.rejects(worker.call('ACL', 'LIST'), refused);
    // and what the agent needs still works for it (the agent stopped, so the entry below is this connection's to read):
    // acknowledging and deleting its own entries (workers/inbox/acknowledge.ts)
    await agent.stop();
    await admin.xadd(keys.workerInbox('w-a'), '*', 'type', 'ApplicationFinished', 'body', JSON.stringify({ id: 'app-none' }));
    const delivered = (await worker.xreadgroup('GROUP', INBOX_GROUP, 'w-a', 'COUNT', 10, 'STREAMS', keys.workerInbox('w-a'), '>')) as [string, [string, string[]][]][];
    const handled = delivered[0]![1].map(([id]) => id);
    assert.equal(handled.length, 1);
    assert.equal(await acknowledgeInboxEntries(worker, keys.workerInbox('w-a'), INBOX_GROUP, handled), 1);
    assert.equal(await worker.xlen(keys.workerInbox('w-a')), 0);
    // and a refused entry is dead-lettered and counted, as the agent's inbox reader does
    await recordDeadLetter(worker, keys, { type: 'LaunchExecutor', reason: 'test refusal', raw: '{}', source: 'worker w-a inbox' });
    await assert.rejects(acknowledgeInboxEntries(worker, keys.workerInbox('w-b'), INBOX_GROUP, ['0-1']), refused);

    // the client (submission side) reads state and enqueues, but writes no state key
    const submitter = connectAs(embedded.url, byName(aclUserName(CLUSTER, 'client')));
    closers.push(async () => submitter.disconnect());
    assert.equal(await submitter.hget(keys.app(appId), 'state'), 'KILLED');
    await assert.rejects(submitter.hset(keys.app(appId), 'state', 'RUNNING'), refused);
    await assert.rejects(submitter.xadd(keys.workerInbox('w-a'), '*', 'type', 'KillExecutor', 'body', '{}'), refused);
    // the reader reads and writes nothing, not even to the queue, and never an application's secret
    const reader = connectAs(embedded.url, byName(aclUserName(CLUSTER, 'reader')));
    closers.push(async () => reader.disconnect());
    assert.equal(await reader.hget(keys.worker('w-a'), 'state'), 'ALIVE');
    assert.equal(await admin.exists(keys.appSecret(appId)), 1, 'the application has a secret');
    await assert.rejects(reader.hgetall(keys.appSecret(appId)), refused, "an application's secret");
    await assert.rejects(worker.hgetall(keys.appSecret(appId)), refused, "an application's secret (worker)");
    await assert.rejects(reader.lpush(`${keys.bullPrefix}:${keys.masterQueue}:wait`, 'x'), refused);
    // no user of this cluster reaches another cluster's keys
    await assert.rejects(submitter.get('flint{other}:stats'), refused);
    await assert.rejects(reader.hgetall('flint{other}:app:x'), refused);
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    process.env.FLINT_SPARK_FLINT_REDIS_PASSWORDFILE = saved.FLINT_SPARK_FLINT_REDIS_PASSWORDFILE;
    process.env.FLINT_SPARK_FLINT_REDIS_URL = saved.FLINT_SPARK_FLINT_REDIS_URL;
    if (saved.FLINT_SPARK_FLINT_REDIS_PASSWORDFILE === undefined) delete process.env.FLINT_SPARK_FLINT_REDIS_PASSWORDFILE;
    if (saved.FLINT_SPARK_FLINT_REDIS_URL === undefined) delete process.env.FLINT_SPARK_FLINT_REDIS_URL;
    admin.disconnect();
    await embedded.stop();
    // the agent's task (`sleep 30`) outlives the agent; its cgroup is the host's
    await removeClusterCgroups([CLUSTER]);
    await dir.cleanup();
  }
});
