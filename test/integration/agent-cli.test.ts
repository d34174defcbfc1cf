/**
 * `flint worker` as a real process (cli/main.ts) against a master in this process:
 * it registers and runs an executor; SIGTERM exits 0 and leaves the container for
 * the next agent; a bad flag is one line on stderr and a non-zero exit.
 */
import { runFlint } from '../helpers/flint-process.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { encodeEntry } from '../../protocol/streams.ts';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { docker, waitFor } from '../helpers/isolation.ts';
import { agentFixture } from '../helpers/agent-fixture.ts';
import { REDIS_URL, TEST_IMAGE } from '../helpers/env.ts';


test('flint worker registers, runs an executor, and exits 0 on SIGTERM leaving it running', { timeout: 120_000 }, async () => {
  const f = await agentFixture('agent-cli');
  let proc: ReturnType<typeof runFlint> | undefined;
  try {
    const workDir = await f.workDir();
    proc = runFlint([
      'worker', '--redis', REDIS_URL, '--cluster', f.cluster, '--work-dir', workDir, '--port', '0', '--cores', '1', '--memory', '512m',
      '--runtime', 'docker', '--network', 'none', '--label', 'zone=a', '--conf', 'spark.flint.worker.registrationInterval=300ms',
    ], { FLINT_LOG_LEVEL: 'warn' });
    const line = await waitFor(() => /flint worker (\S+) registered \(epoch (\d+)\)/.exec(proc!.stdout()), { timeoutMs: 60_000, message: `registration line (stderr: ${proc.stderr()})` });
    const [, workerId, epochText] = line;
    assert.equal(await f.redis.hget(f.keys.worker(workerId!), 'labels'), JSON.stringify({ zone: 'a' }));
    const appId = `app-cli-${randomUUID().slice(0, 8)}`;
    await f.redis.xadd(
      f.keys.workerInbox(workerId!),
      '*',
      ...encodeEntry('LaunchExecutor', { masterUrl: 'x', appId, execId: 0, cores: 1, memoryMB: 32, epoch: Number(epochText), appDesc: { name: 'cli', image: TEST_IMAGE, command: ['sleep', '300'] } }),
    );
    const [container] = await waitFor(async () => {
      const list = await f.containers([`${LABEL.app}=${appId}`]);
      return list.length === 1 && list[0]!.State === 'running' ? list : undefined;
    }, { timeoutMs: 30_000, message: 'executor container running' });
    assert.equal((await docker().getContainer(container!.Id).inspect()).HostConfig.NetworkMode, 'none');
    proc.child.kill('SIGTERM');
    assert.equal(await proc.exit, 0);
    assert.equal((await docker().getContainer(container!.Id).inspect()).State.Running, true, 'left for re-adoption');
  } finally {
    if (proc && proc.child.exitCode === null) proc.child.kill('SIGKILL');
    await f.cleanup();
  }
});

test('flint worker refuses bad flags with one line and a non-zero exit', { timeout: 60_000 }, async () => {
  for (const args of [['--cores', 'two'], ['--memory', 'lots'], ['--network', 'bridge'], ['--resource', 'gpu']]) {
    const proc = runFlint(['worker', '--redis', REDIS_URL, '--work-dir', '/tmp/flint-never-created', ...args], { FLINT_LOG_LEVEL: 'warn' });
    const code = await proc.exit;
    assert.notEqual(code, 0, `${args.join(' ')} must fail`);
    const lines = proc.stderr().trim().split('\n');
    assert.equal(lines.length, 1, `one line for ${args.join(' ')}: ${proc.stderr()}`);
    assert.match(lines[0]!, /^flint: /);
  }
});
