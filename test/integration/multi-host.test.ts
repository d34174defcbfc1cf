/**
 * Flint on two hosts, for real: Redis in the root network namespace, and two
 * "hosts" A and B as network namespaces this test creates (test/helpers/netns.ts:
 * veth pairs, addresses only from 198.51.100.0/24), each running one `flint master`
 * (REST server, web UI and application API bound to its own address) and one
 * `flint worker --runtime process` registered with that address. The processes
 * know Redis only (its URL, with a password, comes in the environment, not argv).
 *
 *  1. A driver submitted through A's REST server runs on B's worker (only B has the
 *     memory it asks for), and B's web UI shows it running there.
 *  2. An application registered through A's application API gets one executor on
 *     each worker.
 *  3. Every process of host A is SIGKILLed (masters, agent, tasks). B keeps serving
 *     (REST, UI, /json), A's worker is declared DEAD within spark.worker.timeout, its
 *     executor is LOST and replaced on B; the driver keeps running on B.
 *
 * The namespaces, links, processes, Redis and work dirs are removed whatever happens
 * (the helper also removes them at exit). CI runs this as root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { signToken } from '../../lib/http/auth.ts';
import { RestSubmissionClient, buildCreateSubmissionRequest } from '../../client/rest-client.ts';
import { FAST_CONF } from '../helpers/agent-fixture.ts';
import { makeTempDir, uniqueCluster, waitFor, type TempDir } from '../helpers/isolation.ts';
import { appDescription } from '../helpers/protocol.ts';
import { printedWorkerUi, removeClusterCgroups, spawnFlint, stopFlint, waitForMasterUrls, type FlintChild } from '../helpers/flint-cluster.ts';
import { createNetnsHosts, type NetnsHost, type NetnsHosts } from '../helpers/netns.ts';

const SECRET = 'multi-host-secret-0123456789abcdef0123456789abcdef';

interface MasterJson {
  workers: { id: string; host: string; state: string }[];
  activeapps: { id: string; cores: number }[];
  activedrivers: { id: string; state: string; worker: string }[];
}

interface WorkerJson {
  id: string;
  executors: { appid: string; id: number }[];
}

/** freePort: a port free on `address` (only this test binds addresses of its block). */
async function freePort(address: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** startRedis runs a redis-server bound to the root namespace's address, with a password, until stopped. */
async function startRedis(address: string, dir: TempDir): Promise<{ url: string; child: ChildProcess }> {
  const password = randomBytes(16).toString('hex');
  const port = await freePort(address);
  const conf = join(dir.path, 'redis.conf');
  await writeFile(conf, [`port ${port}`, `bind ${address}`, `requirepass ${password}`, 'protected-mode yes', `dir ${dir.path}`, 'save ""', 'appendonly no', 'maxmemory-policy noeviction', 'daemonize no', 'loglevel warning', ''].join('\n'));
  const child = spawn('redis-server', [conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  const url = `redis://:${password}@${address}:${port}`;
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  try {
    await waitFor(async () => (await probe.connect().then(() => probe.ping()).catch(() => undefined)) === 'PONG', { timeoutMs: 10_000, message: 'the test Redis answers' });
  } finally {
    probe.disconnect();
  }
  return { url, child };
}

test('two hosts in network namespaces: submit on A runs on B, B shows it; A dies, B keeps serving and A\'s work is replaced', { timeout: 240_000 }, async () => {
  const cluster = uniqueCluster('multi-host');
  const dirs: TempDir[] = [];
  const procs: FlintChild[] = [];
  let net: NetnsHosts | undefined;
  let redisChild: ChildProcess | undefined;
  let redis: Redis | undefined;
  try {
    net = createNetnsHosts(['a', 'b']);
    const [hostA, hostB] = net.hosts as [NetnsHost, NetnsHost];
    const redisDir = await makeTempDir('multi-host-redis');
    dirs.push(redisDir);
    const started = await startRedis(net.rootAddress, redisDir);
    redisChild = started.child;
    redis = new Redis(started.url);

    // every process reads Redis's URL (with its password) and the shared settings from the environment
    const env = {
      FLINT_SPARK_FLINT_REDIS_URL: started.url,
      FLINT_SPARK_FLINT_CLUSTER: cluster,
      FLINT_SPARK_FLINT_AUTH_SECRET: SECRET,
      FLINT_SPARK_WORKER_TIMEOUT: '6s',
      // the test is the application's client and does not renew its lease; A's app API dies with A
      FLINT_SPARK_FLINT_APP_TIMEOUT: '600s',
      ...Object.fromEntries(Object.entries(FAST_CONF).map(([key, value]) => [`FLINT_${key.replace(/[.-]/g, '_').toUpperCase()}`, value])),
    };
    const startHost = async (host: NetnsHost, worker: { cores: string; memory: string }) => {
      const master = spawnFlint(['master', '--host', host.address, '--webui-port', '0', '--conf', 'spark.master.rest.port=0', '--conf', 'spark.flint.master.appApi.enabled=true', '--conf', 'spark.flint.master.appApi.port=0'], {
        wrapper: host.exec,
        env,
        label: `master-${host.name}`,
      });
      procs.push(master);
      const urls = await waitForMasterUrls(master, ['rest', 'ui', 'appApi']);
      const workDir = await makeTempDir(`multi-host-${host.name}`);
      dirs.push(workDir);
      const agent = spawnFlint(['worker', '--host', host.address, '--port', '0', '--runtime', 'process', '--cores', worker.cores, '--memory', worker.memory, '--work-dir', workDir.path, '--kill-on-exit'], {
        wrapper: host.exec,
        env,
        label: `worker-${host.name}`,
      });
      procs.push(agent);
      const workerUi = await waitFor(
        () => {
          if (agent.child.exitCode !== null) throw new Error(`worker on ${host.name} exited: ${agent.output()}`);
          return printedWorkerUi(agent.output());
        },
        { timeoutMs: 30_000, message: `worker on ${host.name} registered` },
      );
      return { master, agent, urls, workerUi };
    };
    // A: 1 core, 128 MB; B: 3 cores, 1 GB — a 512 MB driver fits only on B
    const a = await startHost(hostA, { cores: '1', memory: '128m' });
    const b = await startHost(hostB, { cores: '3', memory: '1g' });
    for (const url of [a.urls.rest, a.urls.ui, a.urls.appApi]) assert.equal(new URL(url).hostname, hostA.address, 'A serves on its own address');
    assert.equal(new URL(b.urls.ui).hostname, hostB.address);

    // a worker UI with the cluster's secret shows /json to admin tokens only
    const viewer = signToken(SECRET, { scope: 'admin', ttlSeconds: 600 });
    const jsonOf = async <T>(url: string): Promise<T> => (await (await fetch(url, { headers: { authorization: `Bearer ${viewer}` }, signal: AbortSignal.timeout(5_000) })).json()) as T;
    const workerIdOf = async (workerUi: string) => (await jsonOf<WorkerJson>(`${workerUi}/json`)).id;
    const workerA = await workerIdOf(a.workerUi);
    const workerB = await workerIdOf(b.workerUi);
    const registered = await jsonOf<MasterJson>(`${b.urls.ui}/json`);
    assert.deepEqual(
      registered.workers.map((w) => [w.id, w.host, w.state]).sort(),
      [
        [workerA, hostA.address, 'ALIVE'],
        [workerB, hostB.address, 'ALIVE'],
      ].sort(),
      'both workers registered with their namespace addresses',
    );

    // 1. a driver through A's REST server runs on B's worker; B's UI shows it
    const admin = signToken(SECRET, { scope: 'admin', ttlSeconds: 600 });
    const restA = new RestSubmissionClient(a.urls.rest, { token: admin });
    const created = await restA.createSubmission(
      buildCreateSubmissionRequest({
        appResource: 'docker://flint-test-busybox:latest',
        appArgs: ['sh', '-c', 'sleep 300'],
        sparkProperties: { 'spark.app.name': 'multi-host-driver', 'spark.driver.memory': '512m', 'spark.driver.cores': '1' },
      }),
    );
    assert.equal(created.status, 200);
    const driverId = (created.body as { submissionId: string }).submissionId;
    await waitFor(
      async () => {
        const status = (await restA.requestSubmissionStatus(driverId)).body as { driverState?: string; workerId?: string };
        return status.driverState === 'RUNNING' && status.workerId === workerB;
      },
      { timeoutMs: 30_000, message: 'the driver RUNNING on B, as A\'s REST server reports' },
    );
    const shownOnB = await jsonOf<MasterJson>(`${b.urls.ui}/json`);
    assert.deepEqual(
      shownOnB.activedrivers.filter((d) => d.id === driverId).map((d) => [d.state, d.worker]),
      [['RUNNING', workerB]],
      'B\'s UI shows the driver running on B',
    );
    assert.match(await (await fetch(`${b.urls.ui}/`)).text(), new RegExp(driverId), 'and its page lists it');

    // 2. an application through A's application API: one executor on each worker
    const submit = signToken(SECRET, { scope: 'submit', ttlSeconds: 600 });
    const appResponse = await fetch(`${a.urls.appApi}/v1/apps`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${submit}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(appDescription({ name: 'multi-host-app', command: ['sh', '-c', 'sleep 300'], maxCores: 2, coresPerExecutor: 1, memoryPerExecutorMB: 64 })),
    });
    assert.equal(appResponse.status, 201, await appResponse.clone().text());
    const { appId } = (await appResponse.json()) as { appId: string };
    const executorsOn = async (workerUi: string) => (await jsonOf<WorkerJson>(`${workerUi}/json`)).executors.filter((e) => e.appid === appId).length;
    await waitFor(async () => (await executorsOn(a.workerUi)) === 1 && (await executorsOn(b.workerUi)) === 1, { timeoutMs: 30_000, message: 'one executor on each host' });
    await waitFor(() => net!.commands(hostA).some((command) => /^sleep 300/.test(command)), { timeoutMs: 20_000, message: 'A\'s executor process runs in A\'s namespace' });

    // 3. SIGKILL every process of host A
    const killed = net.killAll(hostA);
    const of = (pattern: RegExp) => killed.filter((line) => pattern.test(line)).length;
    assert.ok(of(/bin\/flint\.js master/) === 1 && of(/bin\/flint\.js worker/) === 1 && of(/sleep 300/) >= 1, `A's master, worker and executor were killed:\n${killed.join('\n')}`);
    assert.deepEqual(net.pids(hostA), [], 'nothing of A runs any more');

    // B keeps serving, and A's worker is declared DEAD once silent for spark.worker.timeout (6 s)
    const declaredDead = await waitFor(
      async () => {
        const json = await jsonOf<MasterJson>(`${b.urls.ui}/json`);
        return json.workers.find((w) => w.id === workerA)?.state === 'DEAD' ? json : undefined;
      },
      { timeoutMs: 20_000, message: 'B\'s UI shows A\'s worker DEAD' },
    );
    assert.equal(declaredDead.workers.find((w) => w.id === workerB)?.state, 'ALIVE');
    // A's executor was LOST; its replacement runs on B, and the app holds its 2 cores again
    await waitFor(async () => (await executorsOn(b.workerUi)) === 2, { timeoutMs: 30_000, message: 'the lost executor replaced on B' });
    await waitFor(async () => (await jsonOf<MasterJson>(`${b.urls.ui}/json`)).activeapps.find((app) => app.id === appId)?.cores === 2, {
      timeoutMs: 10_000,
      message: 'the app holds 2 cores again',
    });
    // B's REST server answers, and the driver still runs on B
    const restB = new RestSubmissionClient(b.urls.rest, { token: admin });
    assert.equal((await restB.readyz()).status, 200);
    const status = (await restB.requestSubmissionStatus(driverId)).body as { driverState?: string; workerId?: string };
    assert.deepEqual([status.driverState, status.workerId], ['RUNNING', workerB]);
    assert.equal((await restB.killSubmission(driverId)).status, 200);
  } finally {
    await Promise.all(procs.map((proc) => stopFlint(proc, 10_000).catch(() => undefined)));
    net?.remove();
    await removeClusterCgroups(cluster);
    redis?.disconnect();
    redisChild?.kill('SIGKILL');
    for (const dir of dirs) await dir.cleanup();
  }
});
