/**
 * Issue 11.1, ids that become path parts: an app id taken from the app's name
 * (spark.master.useAppNameAsAppId.enabled), and app and driver ids in launch commands, can
 * never leave the worker's work dir. Against a real master, a real agent (Docker) and the
 * real Redis: names such as `../../x` are refused at registration with a clear message and
 * nothing is stored; launches that name such ids anyway (written straight into the inbox)
 * are dead-lettered; nothing appears outside the work dir. A plain name still works.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeEntry } from '../../protocol/streams.ts';
import { agentFixture } from '../helpers/agent-fixture.ts';
import { waitFor } from '../helpers/isolation.ts';
import { appDescription } from '../helpers/protocol.ts';
import { TEST_IMAGE } from '../helpers/env.ts';

test('app names and launch ids that would leave the work dir are refused; nothing is created outside it', { timeout: 90_000 }, async () => {
  const f = await agentFixture('path-ids', { conf: { 'spark.master.useAppNameAsAppId.enabled': 'true', 'spark.flint.worker.reconcileInterval': '0' } });
  try {
    // the work dir sits two levels down, so `../../x` from it lands inside the test's own directory, where we can look
    const base = await f.workDir();
    const workDir = join(base, 'a', 'work');
    await mkdir(workDir, { recursive: true });
    const agent = await f.startAgent({ workDir, cores: 2, memoryMB: 512 });
    const outside = () => [join(base, 'x'), join(base, 'a', 'x'), join(base, 'evil'), join(base, 'a', 'evil')].filter((path) => existsSync(path));

    const register = (name: string) =>
      f.masterClient.ask<{ appId: string }>('RegisterApplication', {
        clientId: `client-${randomUUID()}`,
        appDescription: appDescription({ name, image: TEST_IMAGE, command: ['sh', '-c', 'echo hello from $FLINT_APP_ID; sleep 30'], maxCores: 1, coresPerExecutor: 1, memoryPerExecutorMB: 32 }),
      }, 15_000);
    for (const [name, reason] of [
      ['../../x', /application name "\.\.\/\.\.\/x" cannot be used as an app id \(spark\.master\.useAppNameAsAppId\.enabled\): the id "\.\.\/\.\.\/x" must start with a letter or digit .*no "\/", no "\.\."/],
      ['a/../../x', /no "\/", no "\.\."/],
      ['..', /must start with a letter or digit/],
      ['.flint-agent-state.json', /must start with a letter or digit/],
      ['x\0y', /must start with a letter or digit|contain only/],
      ['driver-20260101120000-0001', /has the shape of a driver id/],
    ] as const) {
      await assert.rejects(register(name), (error: Error) => {
        assert.match(error.message, reason, `name ${JSON.stringify(name)}`);
        return true;
      });
    }
    assert.deepEqual(await f.redis.keys(`flint{${f.cluster}}:app:*`), [], 'nothing stored for a refused name');

    // a launch that names such ids anyway (a forged inbox entry) is dead-lettered, never started
    const epoch = agent.epoch()!;
    const before = agent.view().inbox.deadLettered;
    await f.redis.xadd(f.keys.workerInbox(agent.workerId), '*', ...encodeEntry('LaunchExecutor', {
      masterUrl: 'flint://test', appId: '../../x', execId: 0, cores: 1, memoryMB: 32, epoch, appDesc: { name: 'forged', image: TEST_IMAGE, command: ['true'] },
    }));
    await f.redis.xadd(f.keys.workerInbox(agent.workerId), '*', ...encodeEntry('LaunchDriver', {
      driverId: '../evil', epoch, driverDesc: { name: 'forged', image: TEST_IMAGE, command: ['true'], cores: 1, memoryMB: 32, supervise: false, appResource: 'docker://x' },
    }));
    await waitFor(() => agent.view().inbox.deadLettered === before + 2, { timeoutMs: 10_000, message: 'both forged launches dead-lettered' });
    assert.equal((await f.containers()).length, 0, 'no container for a forged launch');

    // a plain name is its own id, and its executor lives in <work>/<id>/<n>
    const { appId } = await register('My App');
    assert.equal(appId, 'myapp');
    await waitFor(async () => existsSync(join(workDir, 'myapp', '0', 'stdout')), { timeoutMs: 20_000, message: 'the executor of myapp' });
    assert.deepEqual(outside(), [], 'nothing outside the work dir');
    assert.deepEqual((await readdir(base)).sort(), ['a']);
    assert.deepEqual((await readdir(join(base, 'a'))).sort(), ['work']);
  } finally {
    await f.cleanup();
  }
});
