/**
 * `flint worker` as a real process (cli/main.ts) against a master in this process:
 * it registers and runs an executor; SIGTERM exits 0 and leaves the container for
 * the next agent; a bad flag is one line on stderr and a non-zero exit.
 */
import { runFlint } from '../helpers/flint-process.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { encodeEntry, INBOX_GROUP } from '../../protocol/streams.ts';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { docker, waitFor } from '../helpers/isolation.ts';
import { agentFixture } from '../helpers/agent-fixture.ts';
import { REDIS_ARGV_URL, TEST_IMAGE } from '../helpers/env.ts';


test('flint worker registers, runs an executor, and exits 0 on SIGTERM leaving it running', { timeout: 120_000 }, async () => {
  const f = await agentFixture('agent-cli');
  let proc: ReturnType<typeof runFlint> | undefined;
  try {
    const workDir = await f.workDir();
    proc = runFlint([
      'worker', '--redis', REDIS_ARGV_URL, '--cluster', f.cluster, '--work-dir', workDir, '--port', '0', '--cores', '1', '--memory', '512m',
      '--runtime', 'docker', '--network', 'none', '--label', 'zone=a', '--conf', 'spark.flint.worker.registrationInterval=300ms',
      // the launch below goes straight into the inbox, for an app the master never placed: the master's
      // periodic reconciliation would rightly kill it
      '--conf', 'spark.flint.worker.reconcileInterval=0',
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

test('flint worker decommissions itself on SIGPWR: DECOMMISSIONED at the master, running executor kept, new launches refused, exits 0 on SIGTERM, and stays decommissioned after a restart', { timeout: 120_000 }, async () => {
  const f = await agentFixture('agent-pwr', { conf: { 'spark.decommission.enabled': 'true' } });
  let proc: ReturnType<typeof runFlint> | undefined;
  try {
    const workDir = await f.workDir();
    const args = ['worker', '--redis', REDIS_ARGV_URL, '--cluster', f.cluster, '--work-dir', workDir, '--port', '0', '--cores', '2', '--memory', '512m', '--runtime', 'docker', '--network', 'none',
      '--conf', 'spark.flint.worker.registrationInterval=300ms', '--conf', 'spark.decommission.enabled=true',
      // launches go straight into the inbox, for an app the master never placed (see above)
      '--conf', 'spark.flint.worker.reconcileInterval=0'];
    proc = runFlint(args, { FLINT_LOG_LEVEL: 'warn' });
    const [, workerId, epochText] = await waitFor(() => /flint worker (\S+) registered \(epoch (\d+)\)/.exec(proc!.stdout()), { timeoutMs: 60_000, message: 'registration line' });
    const appId = `app-pwr-${randomUUID().slice(0, 8)}`;
    const launch = (execId: number) =>
      f.redis.xadd(f.keys.workerInbox(workerId!), '*', ...encodeEntry('LaunchExecutor', { masterUrl: 'x', appId, execId, cores: 1, memoryMB: 32, epoch: Number(epochText), appDesc: { name: 'pwr', image: TEST_IMAGE, command: ['sleep', '300'] } }));
    await launch(0);
    const [running] = await waitFor(async () => {
      const list = await f.containers([`${LABEL.app}=${appId}`]);
      return list.length === 1 && list[0]!.State === 'running' ? list : undefined;
    }, { timeoutMs: 30_000, message: 'executor 0 running' });

    proc.child.kill('SIGPWR');
    await waitFor(async () => (await f.redis.hget(f.keys.worker(workerId!), 'state')) === 'DECOMMISSIONED', { timeoutMs: 15_000, message: 'the master marks the worker DECOMMISSIONED' });
    await waitFor(() => proc!.stdout().includes(`flint worker ${workerId}: decommissioned on SIGPWR`), { timeoutMs: 5_000, message: 'the worker says it is decommissioned' });
    assert.equal(proc.child.exitCode, null, 'the worker keeps running');
    assert.equal((await docker().getContainer(running!.Id).inspect()).State.Running, true, 'its running executor keeps running');

    // a launch that still reaches it is read, acknowledged and refused
    const refused = (await launch(1))!;
    proc.child.kill('SIGPWR'); // a second signal changes nothing
    await waitFor(
      async () => {
        const groups = (await f.redis.xinfo('GROUPS', f.keys.workerInbox(workerId!))) as unknown[][];
        const group = groups.map((fields) => Object.fromEntries(fields.flatMap((v, i) => (i % 2 === 0 ? [[String(v), fields[i + 1]]] : [])))).find((g) => g.name === INBOX_GROUP);
        return group?.['last-delivered-id'] === refused && group.pending === 0;
      },
      { timeoutMs: 15_000, message: 'the agent read and acknowledged the launch' },
    );
    await waitFor(() => /ignoring LaunchExecutor/.test(proc!.stdout() + proc!.stderr()), { timeoutMs: 5_000, message: 'the agent says it ignores the launch' });
    assert.deepEqual((await f.containers([`${LABEL.app}=${appId}`])).map((c) => c.Labels[LABEL.executor]), ['0'], 'no container for the refused launch');

    proc.child.kill('SIGTERM');
    assert.equal(await proc.exit, 0);

    // the master forgets the worker (as it culls one long dead); restarted on the same work
    // dir, the agent registers as new and decommissions itself again at once
    const beforeRestart = Number(await f.redis.hget(f.keys.worker(workerId!), 'epoch'));
    await f.redis.del(f.keys.worker(workerId!));
    proc = runFlint(args, { FLINT_LOG_LEVEL: 'warn' });
    const [, againId, againEpoch] = await waitFor(() => /flint worker (\S+) registered \(epoch (\d+)\)/.exec(proc!.stdout()), { timeoutMs: 60_000, message: 'registration line after the restart' });
    assert.equal(againId, workerId);
    assert.ok(Number(againEpoch) > beforeRestart, 'a new registration');
    await waitFor(async () => (await f.redis.hget(f.keys.worker(workerId!), 'state')) === 'DECOMMISSIONED', { timeoutMs: 15_000, message: 'DECOMMISSIONED again after the restart' });
    proc.child.kill('SIGTERM');
    assert.equal(await proc.exit, 0);
  } finally {
    if (proc && proc.child.exitCode === null) proc.child.kill('SIGKILL');
    await f.cleanup();
  }
});

test('flint worker refuses bad flags with one line and a non-zero exit', { timeout: 60_000 }, async () => {
  for (const args of [['--cores', 'two'], ['--memory', 'lots'], ['--network', 'bridge'], ['--resource', 'gpu'], ['--conf', 'spark.decommission.enabled=true', '--conf', 'spark.worker.decommission.signal=NOPE']]) {
    const proc = runFlint(['worker', '--redis', REDIS_ARGV_URL, '--work-dir', '/tmp/flint-never-created', ...args], { FLINT_LOG_LEVEL: 'warn' });
    const code = await proc.exit;
    assert.notEqual(code, 0, `${args.join(' ')} must fail`);
    const lines = proc.stderr().trim().split('\n');
    assert.equal(lines.length, 1, `one line for ${args.join(' ')}: ${proc.stderr()}`);
    assert.match(lines[0]!, /^flint: /);
  }
});
