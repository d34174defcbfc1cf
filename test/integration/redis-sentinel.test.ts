/**
 * Flint through Redis Sentinel: a real redis-server in sentinel mode watches the
 * test Redis, and a master host, a MasterClient (BullMQ) and the heartbeat script
 * all connect with a `sentinel://` URL, discovering the primary from the sentinel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startMaster } from '../../functions/host.ts';
import { loadConfig } from '../../protocol/config.ts';
import { clusterKeys } from '../../protocol/keys.ts';
import { MasterClient } from '../../client/master-client.ts';
import { recordHeartbeat } from '../../lib/worker-heartbeat.ts';
import { connectRedis } from '../../lib/redis.ts';
import { freeLoopbackPort, findRedisServer } from '../../lib/embedded-redis.ts';
import { REDIS_URL } from '../helpers/env.ts';
import { cleanupCluster, makeTempDir, uniqueCluster, waitFor } from '../helpers/isolation.ts';
import { registerFakeWorker } from '../helpers/protocol.ts';

test('master, client and heartbeats work through a sentinel:// URL listing two sentinels', async () => {
  const binary = findRedisServer();
  assert.ok(binary, 'redis-server is installed by infra/setup.sh');
  const primary = new URL(REDIS_URL);
  const dir = await makeTempDir('sentinel');
  const port = await freeLoopbackPort();
  const name = `flint-${port}`;
  const conf = join(dir.path, 'sentinel.conf');
  // sentinel rewrites its own configuration file, so it lives in the test's directory
  // a primary that requires a password (infra/setup.sh's): the sentinel authenticates to it too
  const password = decodeURIComponent(primary.password);
  const auth = password ? [`sentinel auth-pass ${name} ${password}`] : [];
  await writeFile(conf, [`port ${port}`, 'bind 127.0.0.1', `dir ${dir.path}`, `sentinel monitor ${name} ${primary.hostname} ${primary.port || 6379} 1`, ...auth, `sentinel down-after-milliseconds ${name} 60000`, ''].join('\n'), { mode: 0o600 });
  const sentinel = spawn(binary!, [conf, '--sentinel'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => sentinel.once('exit', resolve));
  const cluster = uniqueCluster('sentinel');
  const direct = new Redis(REDIS_URL);
  // two sentinels listed, the first with nothing behind it: the client moves on to the next
  const url = `sentinel://${password ? `:${encodeURIComponent(password)}@` : ''}127.0.0.1:${await freeLoopbackPort()},127.0.0.1:${port}/${name}`;
  let master: Awaited<ReturnType<typeof startMaster>> | undefined;
  let client: MasterClient | undefined;
  let viaSentinel: Redis | undefined;
  try {
    await waitFor(async () => {
      const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined); // not up yet: waitFor asks again
      try {
        await probe.connect();
        const address = (await probe.call('SENTINEL', 'get-master-addr-by-name', name)) as string[] | null;
        return address !== null;
      } finally {
        probe.disconnect();
      }
    }, { timeoutMs: 10_000, message: 'the sentinel knows the primary' });

    const config = loadConfig({ env: {}, overrides: { 'spark.flint.cluster': cluster } });
    master = await startMaster({ redisUrl: url, config, concurrency: 4 });
    client = new MasterClient(url, cluster);
    const epoch = await registerFakeWorker(client, { id: 'w-sentinel', cores: 2, memoryMB: 1024 });
    viaSentinel = await connectRedis(url, { name: 'flint-test-sentinel' });
    assert.equal(await recordHeartbeat(viaSentinel, cluster, 'w-sentinel', epoch), 'ok');
    // the same state is visible on the primary itself
    assert.equal(await direct.hget(clusterKeys(cluster).worker('w-sentinel'), 'state'), 'ALIVE');
    assert.equal(await direct.zscore(clusterKeys(cluster).heartbeats, 'w-sentinel') !== null, true);
  } finally {
    viaSentinel?.disconnect();
    await client?.close();
    await master?.stop();
    sentinel.kill('SIGTERM');
    await exited;
    await cleanupCluster(direct, cluster);
    direct.disconnect();
    await dir.cleanup();
  }
});
