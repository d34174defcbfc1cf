/**
 * Flint on a real Redis Cluster: three redis-server masters in cluster mode (the
 * Debian binary the other tests use), joined by `redis-cli --cluster create`.
 * Everything connects with a `redis-cluster://` URL: master hosts (BullMQ queue
 * consumer, Lua commit scripts, the worker-timeout check), MasterClients, the
 * heartbeat script and a real worker agent running a container. Each Flint cluster
 * lives in the hash slot of its tag `{<cluster>}`; the test picks Flint cluster
 * names whose slots sit on different masters, so several Flint clusters run side by
 * side on different shards.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { startMaster, type MasterHost } from '../../functions/host.ts';
import { loadConfig } from '../../protocol/config.ts';
import { clusterKeys } from '../../protocol/keys.ts';
import { MasterClient } from '../../client/master-client.ts';
import { recordHeartbeat } from '../../lib/worker-heartbeat.ts';
import { checkRedisPolicy, connectRedisOrCluster, type RedisConnection } from '../../lib/redis.ts';
import { findRedisServer, freeLoopbackPort, startEmbeddedRedis } from '../../lib/embedded-redis.ts';
import { startAgent, type AgentHandle } from '../../workers/agent/agent.ts';
import { DockerRuntime } from '../../workers/runtime/docker.ts';
import { runtimeStateDir } from '../../workers/runtime/task-identity.ts';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { TEST_IMAGE } from '../helpers/env.ts';
import { docker, makeTempDir, removeContainersByLabel, uniqueCluster, waitFor, type TempDir } from '../helpers/isolation.ts';
import { appDescription, readAppEvents, readInbox, registerFakeWorker } from '../helpers/protocol.ts';

/** the cluster bus listens on port + 10000, so a node's port must leave room for it */
const BUS_PORT_OFFSET = 10_000;
const NODE_COUNT = 3;

interface ClusterNode {
  port: number;
  child: ChildProcess;
  exited: Promise<void>;
  /** a direct connection to this node only (CLUSTER commands, CONFIG) */
  direct: Redis;
}

let root: TempDir | undefined;
const nodes: ClusterNode[] = [];
let url = '';
let shared: RedisConnection | undefined;

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** clusterPort: a free loopback port below 55535 whose bus port (+10000) is free too. */
async function clusterPort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await freeLoopbackPort();
    if (port + BUS_PORT_OFFSET < 65536 && (await canBind(port + BUS_PORT_OFFSET))) return port;
  }
  throw new Error('no free loopback port pair (port, port + 10000) found');
}

/**
 * startNode starts one cluster-mode redis-server on a free port pair. Either port can
 * be taken between the check and redis-server binding it; then the server exits with
 * "Address already in use" (or another server answers) and another pair is tried.
 */
async function startNode(binary: string, base: string): Promise<ClusterNode> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await clusterPort();
    const dir = join(base, String(port));
    await mkdir(dir, { recursive: true });
    const child = spawn(binary, [
      '--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`),
      '--dir', dir, '--appendonly', 'yes', '--maxmemory-policy', 'noeviction', '--save', '', '--daemonize', 'no', '--loglevel', 'warning',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-16_384)));
    child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-16_384)));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const kill = async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    };
    const answeredBy = await waitFor(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return 'exited';
      const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000, commandTimeout: 1000 });
      probe.on('error', () => undefined); // not up yet: waitFor asks again
      try {
        await probe.connect();
        return Number(/^process_id:(\d+)/m.exec(await probe.info('server'))?.[1]);
      } finally {
        probe.disconnect();
      }
    }, { timeoutMs: 10_000, message: `redis-server on port ${port}` }).catch(async (error: Error) => {
      await kill();
      throw error;
    });
    if (answeredBy === child.pid) {
      const direct = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
      return { port, child, exited, direct };
    }
    // another server answers there, or ours exited: try another port pair
    await kill();
    if (!/address already in use/i.test(output) && answeredBy === 'exited') throw new Error(`cluster-mode redis-server exited at start: ${output.trim()}`);
  }
  throw new Error('cluster-mode redis-server: five free port pairs were taken before it could bind them');
}

function run(command: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

/** nodeOfSlot: the node serving `slot`, from CLUSTER SLOTS. */
async function nodeOfSlot(slot: number): Promise<ClusterNode> {
  const ranges = (await nodes[0]!.direct.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, ...unknown[]], ...unknown[]][];
  const range = ranges.find(([from, to]) => slot >= from && slot <= to);
  assert.ok(range, `slot ${slot} is served`);
  const node = nodes.find((n) => n.port === range[2][1]);
  assert.ok(node, `slot ${slot} is on one of the test's nodes`);
  return node;
}

async function slotOf(flintCluster: string): Promise<number> {
  return (await nodes[0]!.direct.call('CLUSTER', 'KEYSLOT', clusterKeys(flintCluster).stats)) as number;
}

/** flintClustersOnShards: one fresh Flint cluster name per node, each hashing to that node's slots. */
async function flintClustersOnShards(): Promise<Map<number, string>> {
  const byPort = new Map<number, string>();
  for (let attempt = 0; byPort.size < NODE_COUNT && attempt < 200; attempt++) {
    const name = uniqueCluster('rcluster');
    const node = await nodeOfSlot(await slotOf(name));
    if (!byPort.has(node.port)) byPort.set(node.port, name);
  }
  assert.equal(byPort.size, NODE_COUNT, 'a Flint cluster name for every shard');
  return byPort;
}

before(async () => {
  const binary = findRedisServer();
  assert.ok(binary, 'redis-server is installed by infra/setup.sh');
  root = await makeTempDir('redis-cluster');
  for (let i = 0; i < NODE_COUNT; i++) nodes.push(await startNode(binary!, root.path));
  const created = await run(join(dirname(binary!), 'redis-cli'), [
    '--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes',
  ]);
  assert.equal(created.code, 0, `redis-cli --cluster create failed: ${created.output}`);
  await waitFor(async () => {
    const infos = await Promise.all(nodes.map((n) => n.direct.call('CLUSTER', 'INFO') as Promise<string>));
    return infos.every((info) => /^cluster_state:ok/m.test(info));
  }, { timeoutMs: 20_000, message: 'cluster_state:ok on every node' });
  url = `redis-cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
  shared = await connectRedisOrCluster(url, { name: 'flint-test-cluster' });
});

after(async () => {
  shared?.disconnect();
  for (const node of nodes) {
    node.direct.disconnect();
    if (node.child.exitCode === null && node.child.signalCode === null) node.child.kill('SIGKILL');
    await node.exited;
  }
  await root?.cleanup();
});

test('a redis-cluster:// URL reaches every shard; checkRedisPolicy checks every master', async () => {
  assert.ok(shared);
  assert.deepEqual(await checkRedisPolicy(shared), [], 'noeviction and AOF on every master');
  const odd = nodes[2]!;
  await odd.direct.config('SET', 'maxmemory-policy', 'allkeys-lru');
  try {
    const warnings = await checkRedisPolicy(shared);
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, new RegExp(`node 127\\.0\\.0\\.1:${odd.port} maxmemory-policy is 'allkeys-lru'`));
  } finally {
    await odd.direct.config('SET', 'maxmemory-policy', 'noeviction');
  }
});

test('a cluster URL naming a Redis without cluster mode fails with the reason', async () => {
  const plain = await startEmbeddedRedis();
  try {
    // with its password (an embedded Redis requires one), so that what fails is the cluster mode itself
    const password = new URL(plain.adminUrl).password;
    await assert.rejects(connectRedisOrCluster(`redis-cluster://:${password}@127.0.0.1:${plain.port}`), (error: Error) => {
      assert.match(error.message, new RegExp(`^cannot connect to Redis Cluster at redis-cluster://:\\*\\*\\*@127\\.0\\.0\\.1:${plain.port}: .*cluster support disabled`), "the reason, and the password hidden");
      return true;
    });
  } finally {
    await plain.stop();
  }
});

test('Flint clusters on different shards: registration, executors, heartbeats and the worker-timeout check', { timeout: 120_000 }, async () => {
  assert.ok(shared);
  const redis = shared;
  const byPort = await flintClustersOnShards();
  const names = [...byPort.values()].slice(0, 2);
  const masters: MasterHost[] = [];
  const clients: MasterClient[] = [];
  const beats: NodeJS.Timeout[] = [];
  try {
    await Promise.all(names.map(async (name) => {
      const keys = clusterKeys(name);
      const config = loadConfig({ env: {}, overrides: { 'spark.flint.cluster': name, 'spark.flint.reaper.interval': '100ms', 'spark.worker.timeout': '1s' } });
      const master = await startMaster({ redisUrl: url, config, concurrency: 4 });
      masters.push(master);
      const client = new MasterClient(url, name, 'flint-test-cluster-client');
      clients.push(client);

      // a live worker heartbeats through the cluster connection; a silent one never does
      const liveEpoch = await registerFakeWorker(client, { id: 'w-live', cores: 2, memoryMB: 2048 });
      assert.equal(await recordHeartbeat(redis, name, 'w-live', liveEpoch), 'ok');
      beats.push(setInterval(() => void recordHeartbeat(redis, name, 'w-live', liveEpoch).catch(() => undefined), 200));

      const { appId } = await client.ask<{ appId: string }>('RegisterApplication', {
        clientId: `client-${randomUUID()}`,
        appDescription: appDescription({ maxCores: 2, coresPerExecutor: 1, memoryPerExecutorMB: 256 }),
      });
      const launches = await waitFor(async () => {
        const launched = (await readInbox(redis, keys, 'w-live')).filter((e) => e.type === 'LaunchExecutor');
        return launched.length === 2 ? launched : undefined;
      }, { timeoutMs: 15_000, message: `two LaunchExecutor in ${name}'s worker inbox` });
      assert.deepEqual(launches.map((l) => [l.body.appId, l.body.execId, l.body.epoch]), [[appId, 0, liveEpoch], [appId, 1, liveEpoch]]);
      const added = (await readAppEvents(redis, keys, appId)).filter((e) => e.type === 'ExecutorAdded');
      assert.deepEqual(added.map((e) => [e.body.id, e.body.workerId]), [[0, 'w-live'], [1, 'w-live']]);

      const silentEpoch = await registerFakeWorker(client, { id: 'w-silent', cores: 1, memoryMB: 1024 });
      await waitFor(async () => (await redis.hget(keys.worker('w-silent'), 'state')) === 'DEAD', { timeoutMs: 10_000, message: `w-silent DEAD in ${name}` });
      assert.equal(await redis.hget(keys.worker('w-live'), 'state'), 'ALIVE', 'the heartbeating worker stays alive');
      assert.equal(await recordHeartbeat(redis, name, 'w-silent', silentEpoch), 'reconnect', 'a DEAD worker is told to reconnect');
      assert.ok((await readInbox(redis, keys, 'w-silent')).some((e) => e.type === 'ReconnectWorker'));
    }));

    // each Flint cluster's state and BullMQ queue sit in its one slot, on its own shard
    const owners = await Promise.all(names.map(async (name) => {
      const slot = await slotOf(name);
      const owner = await nodeOfSlot(slot);
      const keys = clusterKeys(name);
      assert.ok(((await owner.direct.call('CLUSTER', 'COUNTKEYSINSLOT', slot)) as number) > 10, `${name}'s keys are in slot ${slot}`);
      assert.equal(await owner.direct.exists(keys.worker('w-live'), keys.heartbeats, `${keys.bullPrefix}:${keys.masterQueue}:meta`), 3, `state and queue of ${name} on its node`);
      return owner.port;
    }));
    assert.notEqual(owners[0], owners[1], 'the two Flint clusters are on different shards');
  } finally {
    for (const beat of beats) clearInterval(beat);
    await Promise.allSettled(clients.map((client) => client.close()));
    await Promise.allSettled(masters.map((master) => master.stop()));
  }
});

test('a worker agent runs an executor container through the redis-cluster:// URL', { timeout: 120_000 }, async () => {
  assert.ok(shared);
  const redis = shared;
  const name = [...(await flintClustersOnShards()).values()][2]!;
  const keys = clusterKeys(name);
  const config = loadConfig({ env: {}, overrides: { 'spark.flint.cluster': name, 'spark.flint.reaper.interval': '200ms', 'spark.flint.worker.pidsLimit': '64' } });
  const workDir = await makeTempDir('redis-cluster-agent');
  let master: MasterHost | undefined;
  let client: MasterClient | undefined;
  let agent: AgentHandle | undefined;
  const fatal: string[] = [];
  try {
    master = await startMaster({ redisUrl: url, config, concurrency: 4 });
    client = new MasterClient(url, name, 'flint-test-cluster-agent');
    agent = await startAgent({
      redisUrl: url,
      config,
      cores: 1,
      memoryMB: 512,
      port: 0,
      workDir: workDir.path,
      runtime: (worker) => new DockerRuntime({ stateDir: runtimeStateDir(worker, 'docker'), cluster: worker.cluster, workerId: worker.workerId, relistIntervalMs: 300 }),
      onFatal: (message) => fatal.push(message),
      reportBackoffMs: 200,
    });
    const { appId } = await client.ask<{ appId: string }>('RegisterApplication', {
      clientId: `client-${randomUUID()}`,
      appDescription: appDescription({ image: TEST_IMAGE, command: ['sh', '-c', 'sleep 30'], maxCores: 1, coresPerExecutor: 1, memoryPerExecutorMB: 64 }),
    }, 30_000);
    const [container] = await waitFor(async () => {
      const list = await docker().listContainers({ all: true, filters: { label: [`${LABEL.cluster}=${name}`, `${LABEL.app}=${appId}`] } });
      return list.length === 1 && list[0]!.State === 'running' ? list : undefined;
    }, { timeoutMs: 30_000, message: 'the executor container running' });
    assert.equal(container!.Labels[LABEL.worker], agent.workerId);
    await waitFor(async () => (await readAppEvents(redis, keys, appId)).some((e) => e.type === 'ExecutorUpdated' && e.body.state === 'RUNNING'), {
      timeoutMs: 15_000,
      message: 'RUNNING reported through the cluster',
    });
    assert.equal(await redis.hget(keys.worker(agent.workerId), 'coresUsed'), '1');
    assert.deepEqual(fatal, []);
  } finally {
    await agent?.stop({ abrupt: true }).catch(() => undefined);
    await removeContainersByLabel(LABEL.cluster, name).catch(() => undefined);
    // a create already sent to Docker when the agent stopped may land a moment later
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await removeContainersByLabel(LABEL.cluster, name).catch(() => undefined);
    await client?.close();
    await master?.stop();
    await workDir.cleanup();
  }
});
