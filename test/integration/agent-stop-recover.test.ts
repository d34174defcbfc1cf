/**
 * Two ways an agent could hold a task nobody watches or leave one behind, against the real
 * Docker engine, Redis and an in-process master:
 *   - a graceful stop with killOnExit takes no new command first, then kills everything:
 *     the master re-placing the killed executors on this (still ALIVE) worker cannot start
 *     a container after the agent is gone;
 *   - a re-adoption whose recover fails (a Docker error under load) is retried by the next
 *     relist, so the task's exit still comes and is reported.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentFixture } from '../helpers/agent-fixture.ts';
import { tracedClient } from '../helpers/acceptance.ts';
import { appDescription } from '../helpers/protocol.ts';
import { docker, waitFor } from '../helpers/isolation.ts';
import { TEST_IMAGE } from '../helpers/env.ts';
import { DockerRuntime } from '../../workers/runtime/docker.ts';
import { LABEL, runtimeStateDir } from '../../workers/runtime/task-identity.ts';
import type { Runtime } from '../../workers/runtime/types.ts';

test('a graceful stop with killOnExit leaves no container, even though the master places the killed executors again', { timeout: 90_000 }, async () => {
  const f = await agentFixture('stop-kill');
  const traced = tracedClient(f.cluster, appDescription({ name: 'killed-on-exit', image: TEST_IMAGE, command: ['sleep', '300'], coresPerExecutor: 1, maxCores: 2, memoryPerExecutorMB: 32 }));
  try {
    const agent = await f.startAgent({ workDir: await f.workDir(), cores: 2, memoryMB: 512, killOnExit: true });
    const appId = (await traced.client.start())!;
    await waitFor(async () => (await f.containers([`${LABEL.app}=${appId}`])).filter((c) => c.State === 'running').length === 2, { timeoutMs: 30_000, message: 'two executors running' });
    await agent.stop();
    const left = () => docker().listContainers({ all: true, filters: { label: [`${LABEL.cluster}=${f.cluster}`] } });
    assert.deepEqual(await left(), [], 'nothing left when stop() returns');
    const executors = Object.values(await f.redis.hgetall(f.keys.appExecutors(appId))).map((raw) => JSON.parse(raw) as { id: number; state: string });
    assert.deepEqual(executors.filter((e) => e.id < 2).map((e) => e.state), ['KILLED', 'KILLED']);
    // the master places the app's cores again on the worker it still holds ALIVE: nothing may start
    await waitFor(async () => (await f.redis.hlen(f.keys.appExecutors(appId))) > 2, { timeoutMs: 10_000, message: 'the master placed replacements' });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.deepEqual(await left(), [], 'no container started after the agent stopped');
  } finally {
    await traced.client.stop();
    await f.cleanup();
  }
});

test('a re-adoption whose recover fails is retried by the relist: the task\'s exit is still reported', { timeout: 90_000 }, async () => {
  const f = await agentFixture('recover-retry');
  const traced = tracedClient(f.cluster, appDescription({ name: 'recover', image: TEST_IMAGE, command: ['sh', '-c', 'sleep 5; exit 7'], coresPerExecutor: 1, maxCores: 1, memoryPerExecutorMB: 32 }));
  try {
    const workDir = await f.workDir();
    const first = await f.startAgent({ workDir, cores: 1, memoryMB: 256 });
    const appId = (await traced.client.start())!;
    await waitFor(async () => JSON.parse((await f.redis.hget(f.keys.appExecutors(appId), '0')) ?? '{}').state === 'RUNNING', { timeoutMs: 30_000, message: 'executor 0 RUNNING' });
    await first.stop({ abrupt: true });

    let recoverFailures = 0;
    await f.startAgent({
      workDir,
      cores: 1,
      memoryMB: 256,
      runtime: (worker) => {
        const real = new DockerRuntime({ stateDir: runtimeStateDir(worker, 'docker'), cluster: worker.cluster, workerId: worker.workerId, relistIntervalMs: 300 });
        // the first recover fails, as a Docker inspect that times out under load would
        return new Proxy(real, {
          get(target, property, receiver) {
            if (property === 'recover') {
              return async (...args: Parameters<Runtime['recover']>) => {
                if (recoverFailures === 0) {
                  recoverFailures += 1;
                  throw new Error('docker inspect did not finish within 30000 ms');
                }
                return target.recover(...args);
              };
            }
            const value = Reflect.get(target, property, receiver) as unknown;
            return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
          },
        });
      },
    });
    assert.equal(recoverFailures, 1, 'the re-adoption hit the failure');
    const ended = await waitFor(async () => {
      const e = JSON.parse((await f.redis.hget(f.keys.appExecutors(appId), '0')) ?? '{}') as { state?: string; exitStatus?: number };
      return e.state === 'EXITED' ? e : undefined;
    }, { timeoutMs: 20_000, message: 'executor 0 EXITED on the master' });
    assert.equal(ended.exitStatus, 7);
  } finally {
    await traced.client.stop();
    await f.cleanup();
  }
});
