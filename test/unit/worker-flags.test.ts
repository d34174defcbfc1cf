/**
 * `flint worker` flags and host defaults: resolution against configuration, the
 * repeatable flags, and the worker id kept in the work dir.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { workerSettings } from '../../workers/worker-main.ts';
import { defaultMemoryMb, formatWorkerId, loadOrCreateWorkerId, parseLabelFlags, parseResourceFlags, WORKER_ID_FILE } from '../../workers/host-defaults.ts';
import { makeTempDir } from '../helpers/isolation.ts';

test('defaultMemoryMb is max(total − 1 GB, 512 MB)', () => {
  assert.equal(defaultMemoryMb(8 * 1024 ** 3), 7 * 1024);
  assert.equal(defaultMemoryMb(1024 ** 3), 512);
  assert.equal(defaultMemoryMb(1200 * 1024 ** 2), 512);
});

test('resource and label flags', () => {
  assert.deepEqual(parseResourceFlags(['gpu=0,1', 'fpga=a', 'gpu=2']), { gpu: ['0', '1', '2'], fpga: ['a'] });
  assert.throws(() => parseResourceFlags(['gpu']), /must be key=value/);
  assert.throws(() => parseResourceFlags(['gpu=']), /lists no addresses/);
  assert.throws(() => parseResourceFlags(['gpu=0,0']), /given twice/);
  assert.deepEqual(parseLabelFlags(['zone=a', 'rack=r1']), { zone: 'a', rack: 'r1' });
  assert.throws(() => parseLabelFlags(['zone=a', 'zone=b']), /given twice/);
  assert.throws(() => parseLabelFlags(['bad key=1']), /may contain only/);
});

test('workerSettings: flags win over configuration, configuration over defaults', () => {
  const env = { FLINT_SPARK_WORKER_CORES: '3', FLINT_SPARK_FLINT_CLUSTER: 'from-env' };
  const defaults = workerSettings({}, env, '/home/u');
  assert.equal(defaults.cores, 3);
  assert.equal(defaults.cluster, 'from-env');
  assert.equal(defaults.workDir, '/home/u/work');
  assert.equal(defaults.port, 8081);
  assert.equal(defaults.host, '127.0.0.1');
  assert.equal(defaults.runtime, 'auto');
  assert.equal(defaults.network, 'host');
  assert.equal(defaults.redisUrl, 'redis://127.0.0.1:6379');
  assert.equal(defaults.killOnExit, false);
  const flags = workerSettings(
    {
      cores: '2', memory: '4g', workDir: 'w', cluster: 'c2', port: '0', runtime: 'process', network: 'none', killOnExit: true,
      redis: 'redis://127.0.0.1:6380', resource: ['gpu=0'], label: ['a=b'], conf: ['spark.flint.worker.imageAllowList=flint-test-,local/'], id: 'w1',
    },
    env,
    '/x',
  );
  assert.equal(flags.cores, 2);
  assert.equal(flags.memoryMB, 4096);
  assert.equal(flags.workDir, '/x/w');
  assert.equal(flags.cluster, 'c2');
  assert.equal(flags.port, 0);
  assert.equal(flags.runtime, 'process');
  assert.equal(flags.network, 'none');
  assert.equal(flags.redisUrl, 'redis://127.0.0.1:6380');
  assert.deepEqual(flags.resources, { gpu: ['0'] });
  assert.deepEqual(flags.labels, { a: 'b' });
  assert.deepEqual(flags.imageAllowList, ['flint-test-', 'local/']);
  assert.equal(flags.id, 'w1');
});

test('workerSettings: bad flags are one clear error', () => {
  assert.throws(() => workerSettings({ cores: 'two' }, {}), /--cores 'two' must be a positive integer/);
  assert.throws(() => workerSettings({ cores: '0' }, {}), /--cores/);
  assert.throws(() => workerSettings({ memory: 'lots' }, {}), /--memory 'lots' is not a memory size/);
  assert.throws(() => workerSettings({ runtime: 'vm' }, {}), /spark.flint.worker.runtime/);
  assert.throws(() => workerSettings({ network: 'bridge' }, {}), /spark.flint.worker.network/);
  assert.throws(() => workerSettings({ port: '70000' }, {}), /spark.worker.ui.port/);
  assert.throws(() => workerSettings({ cluster: 'bad name' }, {}), /spark.flint.cluster/);
});

test('the worker id is made once per work dir and kept across restarts; --id overrides and is kept', async () => {
  const dir = await makeTempDir('worker-id');
  try {
    const id = formatWorkerId('worker-%s-%s-%d', new Date(2026, 0, 2, 3, 4, 5).getTime(), '127.0.0.1', 8081);
    assert.equal(id, 'worker-20260102030405-127.0.0.1-8081');
    assert.equal(await loadOrCreateWorkerId(dir.path, () => id), id);
    assert.equal(await loadOrCreateWorkerId(dir.path, () => 'another'), id, 'a restart keeps the first id');
    assert.deepEqual(JSON.parse(await readFile(join(dir.path, WORKER_ID_FILE), 'utf8')), { id });
    assert.equal(await loadOrCreateWorkerId(dir.path, () => 'another', 'explicit-1'), 'explicit-1');
    assert.equal(await loadOrCreateWorkerId(dir.path, () => 'another'), 'explicit-1');
    await assert.rejects(loadOrCreateWorkerId(dir.path, () => 'x', 'bad id!'), /is invalid/);
    await writeFile(join(dir.path, WORKER_ID_FILE), '{oops');
    await assert.rejects(loadOrCreateWorkerId(dir.path, () => 'x'), /not valid JSON/);
    await writeFile(join(dir.path, WORKER_ID_FILE), '{"id": 3}');
    await assert.rejects(loadOrCreateWorkerId(dir.path, () => 'x'), /no valid "id"/);
  } finally {
    await dir.cleanup();
  }
});
