/**
 * Tasks get no Redis credential (issue 11.3): whatever the agent's own environment
 * holds (its Redis URL, user, password file), an executor's or driver's TaskSpec and
 * the Docker container made from it carry only the task's own variables and Flint's
 * non-secret ones. (The process runtime's allow-list is checked with a real agent in
 * test/integration/redis-acl.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LaunchDriver, LaunchExecutor } from '../../protocol/messages.ts';
import { buildExecutorSpec, workerUrlFor, type WorkerContext } from '../../workers/executor-runner.ts';
import { buildDriverSpec } from '../../workers/driver-runner.ts';
import { containerConfig } from '../../workers/runtime/docker.ts';

const worker: WorkerContext = {
  workerId: 'w1',
  cluster: 'c1',
  host: '127.0.0.1',
  webUiUrl: 'http://127.0.0.1:8081',
  workerUrl: workerUrlFor('c1', 'w1'),
  workDir: '/srv/flint/work',
  network: 'host',
  pidsLimit: 64,
};

const AGENT_SECRETS: Record<string, string> = {
  FLINT_SPARK_FLINT_REDIS_URL: 'redis://flint:agent-password@127.0.0.1:6379',
  FLINT_SPARK_FLINT_REDIS_USER: 'flint-c1-worker-w1',
  FLINT_SPARK_FLINT_REDIS_PASSWORDFILE: '/etc/flint/acl/c1/flint-c1-worker-w1.password',
  FLINT_SPARK_FLINT_AUTH_SECRET: 'agent-token-secret',
  REDISCLI_AUTH: 'agent-password',
};

test('executor and driver containers carry no variable of the agent, Redis credentials least of all', () => {
  const saved = { ...process.env };
  Object.assign(process.env, AGENT_SECRETS);
  try {
    const executor = buildExecutorSpec(
      LaunchExecutor.parse({ masterUrl: 'flint://c1', appId: 'app-1', execId: 0, cores: 1, memoryMB: 64, epoch: 1, appDesc: { name: 'a', image: 'img', command: ['true'], env: { MINE: '1' } } }),
      worker,
    );
    const driver = buildDriverSpec(LaunchDriver.parse({ driverId: 'driver-1', epoch: 1, driverDesc: { name: 'd', image: 'img', command: ['true'], env: { MINE: '2' } } }), worker);
    for (const spec of [executor, driver]) {
      const env = containerConfig(spec, '/srv/flint/work/x', {}).Env ?? [];
      assert.ok(env.includes(`MINE=${spec === executor ? '1' : '2'}`), 'the task\'s own variables are there');
      for (const entry of env) {
        const name = entry.slice(0, entry.indexOf('='));
        assert.ok(!(name in AGENT_SECRETS), `${name} of the agent reached the task`);
        assert.doesNotMatch(entry, /agent-password|agent-token-secret|REDIS/i, entry);
      }
      assert.deepEqual(Object.keys(spec.env).filter((name) => /REDIS|AUTH|PASSWORD|SECRET/i.test(name)), []);
    }
  } finally {
    for (const name of Object.keys(AGENT_SECRETS)) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  }
});
