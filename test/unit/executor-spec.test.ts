/**
 * The pure part of the executor and driver runners: placeholder substitution,
 * the task spec built from LaunchExecutor / LaunchDriver, and the final state of
 * an exit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LaunchDriver, LaunchExecutor } from '../../protocol/messages.ts';
import {
  buildExecutorSpec,
  executorExitReport,
  executorTaskId,
  launchFailureReport,
  launchFailureText,
  substitutePlaceholders,
  workerUrlFor,
  type WorkerContext,
} from '../../workers/executor-runner.ts';
import { buildDriverSpec, driverTaskId } from '../../workers/driver-runner.ts';
import { ImageNotFoundError, TaskStartError } from '../../workers/runtime/types.ts';
import { validateTaskSpec } from '../../workers/runtime/task-identity.ts';

const worker: WorkerContext = {
  workerId: 'worker-20260101000000-127.0.0.1-8081',
  cluster: 'c1',
  host: '127.0.0.1',
  webUiUrl: 'http://127.0.0.1:8081',
  workerUrl: workerUrlFor('c1', 'worker-20260101000000-127.0.0.1-8081'),
  workDir: '/srv/flint/work',
  network: 'none',
  pidsLimit: 256,
};

test('substitutePlaceholders replaces every occurrence in every argument and leaves unknown ones', () => {
  assert.deepEqual(
    substitutePlaceholders(['--id', '{{EXECUTOR_ID}}', '{{APP_ID}}/{{EXECUTOR_ID}}-{{EXECUTOR_ID}}', '{{UNKNOWN}}', 'plain', '{{cores}}'], {
      EXECUTOR_ID: '7',
      APP_ID: 'app-1',
    }),
    ['--id', '7', 'app-1/7-7', '{{UNKNOWN}}', 'plain', '{{cores}}'],
  );
  // a value that looks like a placeholder is not substituted again
  assert.deepEqual(substitutePlaceholders(['{{A}}'], { A: '{{B}}', B: 'x' }), ['{{B}}']);
  assert.deepEqual(substitutePlaceholders([], { A: 'x' }), []);
});

function launchExecutor(overrides: Record<string, unknown> = {}) {
  const parsed = LaunchExecutor.parse({
    masterUrl: 'flint://c1',
    appId: 'app-20260101000000-0003',
    execId: 4,
    rpId: 2,
    cores: 2,
    memoryMB: 512,
    epoch: 9,
    appDesc: {
      name: 'pi',
      image: 'flint-test-busybox:latest',
      command: ['sh', '-c', 'echo {{APP_ID}} {{EXECUTOR_ID}} {{CORES}} {{WORKER_URL}} {{HOSTNAME}} {{RESOURCE_PROFILE_ID}}'],
      env: { USER_VAR: 'u', FLINT_EXECUTOR_ID: 'forged', SPARK_LAUNCH_WITH_SCALA: '1' },
      labels: { team: 'data' },
    },
    ...overrides,
  });
  return parsed;
}

test('buildExecutorSpec: identity, limits, substituted argv, Spark and Flint environment over the app\'s', () => {
  const spec = buildExecutorSpec(launchExecutor(), worker);
  assert.equal(spec.kind, 'executor');
  assert.equal(spec.taskId, 'executor:app-20260101000000-0003/4');
  assert.equal(spec.taskId, executorTaskId('app-20260101000000-0003', 4));
  assert.equal(spec.workDir, '/srv/flint/work/app-20260101000000-0003/4');
  assert.equal(spec.cores, 2);
  assert.equal(spec.memoryMB, 512);
  assert.equal(spec.network, 'none');
  assert.equal(spec.pidsLimit, 256);
  assert.equal(spec.cluster, 'c1');
  assert.equal(spec.workerId, worker.workerId);
  assert.equal(spec.appId, 'app-20260101000000-0003');
  assert.equal(spec.execId, 4);
  assert.deepEqual(spec.command, [
    'sh',
    '-c',
    `echo app-20260101000000-0003 4 2 flint://c1/worker/${worker.workerId} 127.0.0.1 2`,
  ]);
  assert.equal(spec.env.USER_VAR, 'u');
  assert.equal(spec.env.FLINT_EXECUTOR_ID, '4', 'the app cannot fake its executor id');
  assert.equal(spec.env.SPARK_LAUNCH_WITH_SCALA, '0');
  assert.equal(spec.env.SPARK_EXECUTOR_DIRS, spec.workDir);
  assert.equal(spec.env.SPARK_LOG_URL_STDOUT, 'http://127.0.0.1:8081/logPage/?appId=app-20260101000000-0003&executorId=4&logType=stdout');
  assert.equal(spec.env.SPARK_LOG_URL_STDERR, 'http://127.0.0.1:8081/logPage/?appId=app-20260101000000-0003&executorId=4&logType=stderr');
  assert.equal(spec.env.FLINT_APP_ID, 'app-20260101000000-0003');
  assert.equal(spec.env.FLINT_CORES, '2');
  assert.equal(spec.env.FLINT_MEMORY_MB, '512');
  assert.equal(spec.env.FLINT_WORKER_ID, worker.workerId);
  assert.equal(spec.env.FLINT_RESOURCES, undefined);
  assert.equal(spec.labels?.team, 'data');
  assert.equal(spec.labels?.['flint.cores'], '2');
  assert.equal(spec.labels?.['flint.memory-mb'], '512');
  assert.equal(validateTaskSpec(spec), undefined);
});

test('buildExecutorSpec: heartbeat URL and token for this executor only, over whatever the app put in its env', () => {
  const token = `fe1.${'ab'.repeat(20)}`;
  const spec = buildExecutorSpec(
    launchExecutor({
      appDesc: { ...launchExecutor().appDesc, env: { FLINT_HEARTBEAT_TOKEN: 'forged', FLINT_HEARTBEAT_URL: 'http://evil.example/' } },
      heartbeat: { url: 'http://127.0.0.1:7077/', token, intervalMs: 500, maxFailures: 3 },
    }),
    worker,
  );
  assert.equal(spec.env.FLINT_HEARTBEAT_URL, 'http://127.0.0.1:7077/v1/apps/app-20260101000000-0003/executors/4/heartbeat');
  assert.equal(spec.env.FLINT_HEARTBEAT_TOKEN, token);
  assert.equal(spec.env.FLINT_HEARTBEAT_INTERVAL_MS, '500');
  assert.equal(spec.env.FLINT_HEARTBEAT_MAX_FAILURES, '3');
  assert.equal(spec.env.FLINT_HEARTBEAT_EXIT_CODE, '56', "Spark's ExecutorExitCode.HEARTBEAT_FAILURE");
  const plain = buildExecutorSpec(launchExecutor(), worker);
  assert.deepEqual(Object.keys(plain.env).filter((k) => k.startsWith('FLINT_HEARTBEAT')), [], 'no heartbeat variables without heartbeats');
  const odd = buildExecutorSpec(launchExecutor({ appId: 'team.a:b@c', heartbeat: { url: 'http://h', token, intervalMs: 1, maxFailures: 1 } }), worker);
  assert.equal(odd.env.FLINT_HEARTBEAT_URL, 'http://h/v1/apps/team.a%3Ab%40c/executors/4/heartbeat', 'the app id is one path segment (ids never hold a "/": PATH_SAFE_ID)');
});

test('buildExecutorSpec passes assigned resources in the environment', () => {
  const spec = buildExecutorSpec(launchExecutor({ resources: { gpu: ['0', '1'] } }), worker);
  assert.deepEqual(JSON.parse(spec.env.FLINT_RESOURCES!), { gpu: ['0', '1'] });
});

test('buildDriverSpec: driver dir, {{WORKER_URL}} and {{USER_JAR}}, driver log URLs, supervise label', () => {
  const launch = LaunchDriver.parse({
    driverId: 'driver-20260101000000-0001',
    epoch: 3,
    driverDesc: {
      name: 'd',
      appResource: 'docker://flint-test-busybox:latest',
      image: 'flint-test-busybox:latest',
      command: ['run', '{{WORKER_URL}}', '{{USER_JAR}}', '{{EXECUTOR_ID}}'],
      cores: 1,
      memoryMB: 128,
      supervise: true,
    },
  });
  const spec = buildDriverSpec(launch, worker);
  assert.equal(spec.kind, 'driver');
  assert.equal(spec.taskId, driverTaskId('driver-20260101000000-0001'));
  assert.equal(spec.workDir, '/srv/flint/work/driver-20260101000000-0001');
  assert.deepEqual(spec.command, ['run', `flint://c1/worker/${worker.workerId}`, 'docker://flint-test-busybox:latest', '{{EXECUTOR_ID}}']);
  assert.equal(spec.env.SPARK_DRIVER_LOG_URL_STDOUT, 'http://127.0.0.1:8081/logPage/?driverId=driver-20260101000000-0001&logType=stdout');
  assert.equal(spec.env.SPARK_DRIVER_LOG_URL_STDERR, 'http://127.0.0.1:8081/logPage/?driverId=driver-20260101000000-0001&logType=stderr');
  assert.equal(spec.labels?.['flint.supervise'], 'true');
  assert.equal(spec.memoryMB, 128);
  assert.equal(validateTaskSpec(spec), undefined);
});

test('executorExitReport: EXITED with the code; OOM only when the runtime says so; a stop is KILLED', () => {
  assert.deepEqual(executorExitReport('a', 1, { exitCode: 3, oomKilled: false, stopped: false, handle: 'c1' }, false), {
    appId: 'a', execId: 1, state: 'EXITED', message: 'Command exited with code 3', exitStatus: 3,
  });
  // 137 without OOMKilled is a plain exit, never guessed to be an OOM
  assert.equal(executorExitReport('a', 1, { exitCode: 137, oomKilled: false, stopped: false, handle: 'c1' }, false).state, 'EXITED');
  const oom = executorExitReport('a', 1, { exitCode: 137, oomKilled: true, stopped: false, handle: 'c1' }, false);
  assert.equal(oom.state, 'FAILED');
  assert.equal(oom.oomKilled, true);
  assert.equal(oom.exitStatus, 137);
  assert.match(oom.message!, /OOMKilled/);
  const killed = executorExitReport('a', 1, { exitCode: 143, oomKilled: false, stopped: false, handle: 'c1' }, true);
  assert.deepEqual(killed, { appId: 'a', execId: 1, state: 'KILLED', message: 'Runner thread for executor a/1 interrupted', exitStatus: 143 });
  // a stop recorded by the runtime (e.g. before an agent restart) is a kill too
  assert.equal(executorExitReport('a', 1, { exitCode: 137, oomKilled: false, stopped: true, handle: 'c1' }, false).state, 'KILLED');
});

test('executorExitReport: a command that never ran is FAILED with the reason, as Spark reports a process that could not start; a vanished task is FAILED', () => {
  assert.deepEqual(executorExitReport('a', 1, { exitCode: 127, oomKilled: false, stopped: false, handle: 'c1', launchError: 'cannot run "/x": No such file or directory' }, false), {
    appId: 'a', execId: 1, state: 'FAILED', message: 'cannot run "/x": No such file or directory',
  });
  const vanished = executorExitReport('a', 1, { exitCode: -1, oomKilled: false, stopped: false, handle: 'c1', vanished: 'the container was removed outside Flint' }, false);
  assert.equal(vanished.state, 'FAILED');
  assert.match(vanished.message!, /removed outside Flint/);
  // a kill wins over either
  assert.equal(executorExitReport('a', 1, { exitCode: -1, oomKilled: false, stopped: true, handle: 'c1', vanished: 'gone' }, false).state, 'KILLED');
});

test('launchFailureText: one line, `Class: message`, never several lines or a stack', () => {
  assert.equal(launchFailureText(new TaskStartError('cannot run "/x": No such file or directory')), 'TaskStartError: cannot run "/x": No such file or directory');
  assert.equal(launchFailureText(new TypeError('bad\nspec')), 'TypeError: bad spec');
  assert.equal(launchFailureText('x'.repeat(5000)).length, 1000);
});

test('launchFailureReport carries the error name and text', () => {
  const report = launchFailureReport('a', 2, new ImageNotFoundError('image nope:1 is not present locally'));
  assert.equal(report.state, 'FAILED');
  assert.equal(report.message, 'ImageNotFoundError: image nope:1 is not present locally');
  assert.equal(launchFailureReport('a', 2, 'boom').message, 'boom');
});
