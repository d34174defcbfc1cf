/**
 * A work dir whose worker identity changed (another --id) leaves no task of the former
 * identity running: against the real Docker engine, Redis and an in-process master, the
 * agent started under the new id removes the old id's container before it registers, and
 * the master, once the old worker times out, places the executor again on the new worker,
 * so the task never runs twice. The process runtime's tasks are removed the same way (a
 * real `sleep` process started under the old identity).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { agentFixture } from '../helpers/agent-fixture.ts';
import { tracedClient } from '../helpers/acceptance.ts';
import { appDescription } from '../helpers/protocol.ts';
import { makeTempDir, waitFor } from '../helpers/isolation.ts';
import { removeClusterCgroups } from '../helpers/cgroup-cleanup.ts';
import { TEST_IMAGE } from '../helpers/env.ts';
import { createLogger } from '../../lib/log.ts';
import { ProcessRuntime, isProcessAlive } from '../../workers/runtime/process.ts';
import { LABEL, runtimeStateDir } from '../../workers/runtime/task-identity.ts';
import { formerIdentities, removeFormerIdentityTasks } from '../../workers/agent/former-identities.ts';

test('an agent started on a work dir under a new worker id removes the container of the former id; the master places the executor again, once', { timeout: 120_000 }, async () => {
  const f = await agentFixture('former-id', { conf: { 'spark.worker.timeout': '2s' } });
  const traced = tracedClient(f.cluster, appDescription({ name: 'former', image: TEST_IMAGE, command: ['sleep', '300'], coresPerExecutor: 1, maxCores: 1, memoryPerExecutorMB: 32 }));
  try {
    const workDir = await f.workDir();
    const suffix = randomUUID().slice(0, 8);
    const first = await f.startAgent({ workDir, id: `w-old-${suffix}`, cores: 1, memoryMB: 256 });
    const appId = (await traced.client.start())!;
    await waitFor(async () => (await f.containers([`${LABEL.app}=${appId}`, `${LABEL.worker}=${first.workerId}`])).some((c) => c.State === 'running'), { timeoutMs: 30_000, message: 'the executor runs under the old id' });
    await first.stop({ abrupt: true });
    const oldStateDir = runtimeStateDir({ workDir, cluster: f.cluster, workerId: first.workerId }, 'docker');
    assert.ok(existsSync(oldStateDir), 'the old identity has its runtime directory');

    const second = await f.startAgent({ workDir, id: `w-new-${suffix}`, cores: 1, memoryMB: 256 });
    // removed during start-up, before the new worker registered
    assert.deepEqual(await f.containers([`${LABEL.worker}=${first.workerId}`]), [], 'no container of the old id is left');
    assert.equal(existsSync(oldStateDir), false, "the old identity's runtime directory is gone");

    // the master gives the old worker up and the application's executor runs again, on the new worker only
    await waitFor(async () => (await f.containers([`${LABEL.app}=${appId}`, `${LABEL.worker}=${second.workerId}`])).some((c) => c.State === 'running'), { timeoutMs: 30_000, message: 'the executor placed again on the new worker' });
    const running = (await f.containers([`${LABEL.app}=${appId}`])).filter((c) => c.State === 'running');
    assert.equal(running.length, 1, 'one running container for the application');
    assert.equal(await f.redis.hget(f.keys.worker(first.workerId), 'state'), 'DEAD');
  } finally {
    await traced.client.stop();
    await f.cleanup();
  }
});

test("the process runtime's tasks of a former identity are stopped and their records deleted; the current identity's are untouched", { timeout: 60_000 }, async () => {
  const dir = await makeTempDir('former-id-process');
  const cluster = `former-${randomUUID().slice(0, 8)}`;
  const runtimes: ProcessRuntime[] = [];
  const pids: number[] = [];
  const open = (worker: { workerId: string; cluster: string; workDir: string }): ProcessRuntime => {
    const runtime = new ProcessRuntime({ stateDir: runtimeStateDir(worker, 'process'), pollIntervalMs: 50 });
    runtimes.push(runtime);
    return runtime;
  };
  try {
    const workDir = dir.path;
    const shared = join(workDir, 'tasks');
    await mkdir(shared);
    await chmod(shared, 0o777);
    const startSleep = async (workerId: string): Promise<number> => {
      const status = await open({ workerId, cluster, workDir }).start({
        kind: 'executor',
        taskId: `executor:app-${workerId}/0`,
        workerId,
        cluster,
        appId: `app-${workerId}`,
        execId: 0,
        image: TEST_IMAGE,
        command: ['sleep', '300'],
        env: {},
        cores: 1,
        memoryMB: 64,
        workDir: join(shared, workerId),
        network: 'host',
        pidsLimit: 64,
      });
      const pid = Number(status.handle.replace(/^pid:/, ''));
      pids.push(pid);
      return pid;
    };
    const oldPid = await startSleep('w-old');
    const currentPid = await startSleep('w-current');
    assert.deepEqual(await formerIdentities(workDir, { cluster, workerId: 'w-current' }), [{ cluster, workerId: 'w-old' }]);

    const removed = await removeFormerIdentityTasks({ workDir, current: { cluster, workerId: 'w-current' }, runtime: open, log: createLogger('test') });
    assert.equal(removed, 1);
    await waitFor(() => !isProcessAlive(oldPid), { timeoutMs: 10_000, message: "the former identity's process ended" });
    assert.equal(existsSync(runtimeStateDir({ workDir, cluster, workerId: 'w-old' }, 'process')), false);
    assert.ok(isProcessAlive(currentPid), "the current identity's task still runs");
    assert.deepEqual(await formerIdentities(workDir, { cluster, workerId: 'w-current' }), []);
    await open({ workerId: 'w-current', cluster, workDir }).remove(`executor:app-w-current/0`);
    await waitFor(() => !isProcessAlive(currentPid), { timeoutMs: 10_000, message: 'the current task removed at the end' });
  } finally {
    await Promise.allSettled(runtimes.map((runtime) => runtime.close()));
    for (const pid of pids.filter(isProcessAlive)) process.kill(-pid, 'SIGKILL'); // after a failure only
    await removeClusterCgroups([cluster]);
    await dir.cleanup();
  }
});
