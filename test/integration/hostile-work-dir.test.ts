/**
 * Issue 11.1, "the work dir is hostile ground", against the real Docker engine and real
 * local processes: every attack a task (or anything else with a hand in a task's directory)
 * can make on the files the agent writes leaves the host untouched and is reported.
 *
 * The targets of every planted link are fresh paths in a directory only root may write
 * (so a task running as 65534 could not create them itself): each test asserts they were
 * never created, and that an existing host file a link or hard link points at is unchanged.
 * Both runtimes run every case that applies to them; each test uses its own cluster and
 * directories and removes its containers and processes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, link, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Docker from 'dockerode';
import { DockerRuntime } from '../../workers/runtime/docker.ts';
import { ProcessRuntime } from '../../workers/runtime/process.ts';
import { privateTaskDir } from '../../workers/runtime/task-identity.ts';
import type { Runtime, TaskSpec } from '../../workers/runtime/types.ts';
import { DOCKER_SOCKET, TEST_IMAGE } from '../helpers/env.ts';
import { runtimeCleanup } from '../helpers/runtime-cleanup.ts';
import { encodeEntry } from '../../protocol/streams.ts';
import { agentFixture } from '../helpers/agent-fixture.ts';
import { tracedClient } from '../helpers/acceptance.ts';
import { waitFor } from '../helpers/isolation.ts';
import { appDescription } from '../helpers/protocol.ts';

const docker = new Docker({ socketPath: DOCKER_SOCKET });
const privateDirs: string[] = [];
const { clusters, dirs, runtimes } = runtimeCleanup(async () => {
  // a process task still running (a failed test) is killed by its group
  for (const dir of privateDirs) {
    const task = await readFile(join(dir, 'task.json'), 'utf8').catch(() => undefined);
    if (task === undefined || existsSync(join(dir, 'exit.json'))) continue;
    const { pid, supervisorPid } = JSON.parse(task) as { pid: number; supervisorPid: number };
    for (const group of [pid, supervisorPid]) {
      try {
        process.kill(-group, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
});

type Kind = 'docker' | 'process';

interface Fixture {
  kind: Kind;
  cluster: string;
  workerId: string;
  /** the worker's work dir */
  root: string;
  stateDir: string;
  /** host paths only root may create: a planted link's targets */
  host: string;
  /** an existing host file that must never change */
  victim: string;
  runtime(options?: Record<string, unknown>): Runtime;
  /** an executor's spec, or with `driver` a driver's (whose directory a relaunch reuses, planted files and all) */
  spec(name: string, command: string[], kind?: 'executor' | 'driver'): TaskSpec;
}

const VICTIM_TEXT = 'host file: must never change\n';

async function fixture(kind: Kind): Promise<Fixture> {
  const cluster = `hostile-${kind}-${randomUUID().slice(0, 8)}`;
  const workerId = `worker-${randomUUID().slice(0, 8)}`;
  clusters.push(cluster);
  const root = await mkdtemp(join(tmpdir(), 'flint-hostile-work-'));
  const host = await mkdtemp(join(tmpdir(), 'flint-hostile-host-'));
  dirs.push(root, host);
  await chmod(host, 0o700);
  const victim = join(host, 'victim');
  await writeFile(victim, VICTIM_TEXT);
  const stateDir = join(root, `.flint-${kind}-runtime`, cluster, workerId);
  return {
    kind,
    cluster,
    workerId,
    root,
    stateDir,
    host,
    victim,
    runtime(options = {}) {
      const runtime =
        kind === 'docker'
          ? new DockerRuntime({ stateDir, cluster, workerId, relistIntervalMs: 300, ...options })
          : new ProcessRuntime({ stateDir, pollIntervalMs: 50, ...options });
      runtimes.push(runtime);
      return runtime;
    },
    spec(name, command, kind = 'executor') {
      const taskId = kind === 'executor' ? `executor:app-${name}/0` : `driver:driver-${name}`;
      privateDirs.push(privateTaskDir(stateDir, cluster, kind, taskId));
      return {
        kind,
        taskId,
        workerId,
        cluster,
        ...(kind === 'executor' ? { appId: `app-${name}`, execId: 0 } : { driverId: `driver-${name}` }),
        image: TEST_IMAGE,
        command,
        env: {},
        cores: 1,
        memoryMB: 64,
        workDir: kind === 'executor' ? join(root, `app-${name}`, '0') : join(root, `driver-${name}`),
        workRoot: root,
        network: 'none',
        pidsLimit: 64,
      };
    },
  };
}

/** hostUntouched: the fresh targets were never created and the victim file is as it was. */
async function assertHostUntouched(f: Fixture, freshTargets: string[]): Promise<void> {
  for (const target of freshTargets) assert.equal(existsSync(target), false, `${target} must never be created`);
  assert.equal(await readFile(f.victim, 'utf8'), VICTIM_TEXT, 'the host file is unchanged');
}

async function waitUntil(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function isLink(path: string): Promise<boolean> {
  return (await lstat(path).catch(() => undefined))?.isSymbolicLink() === true;
}

for (const kind of ['docker', 'process'] as const) {
  describe(`hostile work dir (${kind} runtime)`, () => {
    it("an executor's directory left by an earlier run of its id (an app id used again) is moved aside: the new run starts empty and nothing planted there is followed", async () => {
      const f = await fixture(kind);
      const runtime = f.runtime();
      const target = join(f.host, 'earlier-target');
      const spec = f.spec('reused', ['sh', '-c', 'ls -A; echo done']);
      await mkdir(spec.workDir, { recursive: true });
      await writeFile(join(spec.workDir, 'tenant-a-secret'), 'secret of the earlier run');
      await symlink(target, join(spec.workDir, 'stdout'));
      await runtime.start(spec);
      const exit = await runtime.wait(spec.taskId);
      assert.equal(exit.exitCode, 0);
      // the new run saw only its own two logs; the earlier content is kept aside for the cleanup
      assert.equal(await readFile(join(spec.workDir, 'stdout'), 'utf8'), 'stderr\nstdout\ndone\n');
      const aside = (await readdir(dirname(spec.workDir))).filter((name) => name.startsWith('0.replaced-'));
      assert.equal(aside.length, 1, 'the earlier directory, moved aside');
      assert.equal(await readFile(join(dirname(spec.workDir), aside[0]!, 'tenant-a-secret'), 'utf8'), 'secret of the earlier run');
      await assertHostUntouched(f, [target]);
      await runtime.remove(spec.taskId);
    });

    it("refuses to start over a link, FIFO, device or hard link in place of stdout or stderr of a driver's reused directory, and touches nothing", async () => {
      const f = await fixture(kind);
      const runtime = f.runtime();
      const target = join(f.host, 'planted-target');
      const plants: Array<[string, (path: string) => Promise<void>, RegExp]> = [
        ['link', (path) => symlink(target, path), /stdout is a symbolic link: refused/],
        ['fifo', async (path) => void execFileSync('mkfifo', [path]), /stdout is a FIFO: refused/],
        ['device', async (path) => void execFileSync('mknod', [path, 'c', '1', '3']), /stdout is a character device: refused/],
        ['hardlink', (path) => link(f.victim, path), /stdout has 2 hard links: refused/],
        ['stderr-link', (path) => symlink(target, path.replace(/stdout$/, 'stderr')), /stderr is a symbolic link: refused/],
      ];
      for (const [name, plant, refusal] of plants) {
        const spec = f.spec(name, ['sh', '-c', 'echo must-not-run'], 'driver');
        await mkdir(spec.workDir, { recursive: true });
        await plant(join(spec.workDir, 'stdout'));
        await assert.rejects(runtime.start(spec), (error: Error) => {
          assert.equal(error.name, 'TaskStartError');
          assert.match(error.message, refusal);
          return true;
        });
      }
      await assertHostUntouched(f, [target]);
      // nothing ran, nothing is left: no container, no registered process
      if (kind === 'docker') assert.equal((await docker.listContainers({ all: true, filters: { label: [`flint.cluster=${f.cluster}`] } })).length, 0);
      assert.deepEqual(await runtime.list(f.workerId, f.cluster), []);
    });

    it('ends a task that swaps stdout for a link to a host path, and reports why; the host path is never created', async () => {
      const f = await fixture(kind);
      const runtime = f.runtime();
      const target = join(f.host, 'stdout-target');
      const spec = f.spec('swap', ['sh', '-c', `echo before; sleep 0.3; rm -f stdout; ln -s ${target} stdout; i=0; while [ $i -lt 600 ]; do echo line-$i; i=$((i+1)); sleep 0.05; done`]);
      const began = Date.now();
      await runtime.start(spec);
      const exit = await runtime.wait(spec.taskId);
      assert.match(exit.refused ?? '', /stdout was replaced by a symbolic link: refused/);
      assert.equal(exit.stopped, false);
      assert.ok(Date.now() - began < 15_000, 'ended well before its 30 s of output');
      assert.equal(await readlink(join(spec.workDir, 'stdout')), target, 'the link is left as the task made it');
      await assertHostUntouched(f, [target]);
    });

    it('ends a task that swaps stdout for a link and then prints nothing more', async () => {
      const f = await fixture(kind);
      const runtime = f.runtime();
      const target = join(f.host, 'silent-target');
      const spec = f.spec('silent', ['sh', '-c', `echo before; sleep 0.3; rm -f stdout; ln -s ${target} stdout; sleep 60`]);
      const began = Date.now();
      await runtime.start(spec);
      const exit = await runtime.wait(spec.taskId);
      assert.match(exit.refused ?? '', /stdout was replaced by a symbolic link: refused/);
      assert.ok(Date.now() - began < 20_000, `found within seconds, not at its exit (${Date.now() - began} ms)`);
      await assertHostUntouched(f, [target]);
    });

    it('ends a task that puts a FIFO in place of stderr (a writer would block on it), and reports why', async () => {
      const f = await fixture(kind);
      const runtime = f.runtime();
      const spec = f.spec('fifo', ['sh', '-c', 'echo before >&2; sleep 0.3; rm -f stderr; mkfifo stderr; i=0; while [ $i -lt 600 ]; do echo line-$i >&2; i=$((i+1)); sleep 0.05; done']);
      await runtime.start(spec);
      const exit = await runtime.wait(spec.taskId);
      assert.match(exit.refused ?? '', /stderr was replaced by a FIFO: refused/);
      await assertHostUntouched(f, []);
    });

    it('refuses a link put in place of stderr while the agent was down, once a new agent takes the task over', async () => {
      const f = await fixture(kind);
      const first = f.runtime();
      const target = join(f.host, 'stderr-target');
      const spec = f.spec('restart', ['sh', '-c', 'i=0; while true; do echo tick-$i >&2; i=$((i+1)); sleep 0.05; done']);
      await first.start(spec);
      await waitUntil(async () => (await readFile(join(spec.workDir, 'stderr'), 'utf8')).includes('tick-3'), 'the first output');
      await first.close(); // the agent goes away; the task does not
      // while no agent runs, the file is replaced (a task in a container does this with `ln -s`)
      await rm(join(spec.workDir, 'stderr'));
      await symlink(target, join(spec.workDir, 'stderr'));
      const second = f.runtime();
      const [status] = await second.list(f.workerId, f.cluster);
      assert.ok(status !== undefined, 'the new agent finds the task');
      // Docker: the task still runs and the new agent's capture meets the link; process: the supervisor, which outlives agents, may have ended it already
      if (kind === 'docker') assert.equal(status.running, true);
      await second.recover(status);
      const exit = await second.wait(spec.taskId);
      assert.match(exit.refused ?? '', /stderr (is|was replaced by) a symbolic link/);
      assert.equal(await isLink(join(spec.workDir, 'stderr')), true);
      await assertHostUntouched(f, [target]);
    });

    it('refuses the task directory replaced by a link: nothing is written into the link target', async () => {
      const f = await fixture(kind);
      const first = f.runtime();
      const targetDir = join(f.host, 'dir-target');
      await mkdir(targetDir);
      const spec = f.spec('dirswap', ['sh', '-c', 'i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.05; done']);
      await first.start(spec);
      await waitUntil(async () => (await readFile(join(spec.workDir, 'stdout'), 'utf8')).includes('tick-3'), 'the first output');
      let runtime = first;
      if (kind === 'docker') {
        await first.close(); // the agent goes away; the directory is swapped while it is down
        runtime = f.runtime();
      }
      await rename(spec.workDir, `${spec.workDir}.moved`);
      await symlink(targetDir, spec.workDir);
      if (kind === 'docker') {
        const [status] = await runtime.list(f.workerId, f.cluster);
        await runtime.recover(status!);
      }
      const exit = await runtime.wait(spec.taskId);
      assert.match(exit.refused ?? '', /the task directory was replaced: .*dirswap\/0 is a symbolic link: refused/);
      assert.deepEqual(execFileSync('ls', ['-A', targetDir]).toString(), '', 'nothing was created in the link target');
      await assertHostUntouched(f, [join(targetDir, 'stdout'), join(targetDir, 'stderr')]);
    });

    it('keeps its own records outside the task directory: links planted under their old names are never followed', async () => {
      const f = await fixture(kind);
      const runtime = f.runtime({ logRolling: { strategy: 'size', maxBytes: 81_920, maxRetainedFiles: 1 } });
      const spec = f.spec('records', ['sh', '-c', 'trap "exit 9" TERM; i=0; while [ $i -lt 4000 ]; do echo "line $i of some output that fills the log"; i=$((i+1)); done; while true; do sleep 0.1; done'], 'driver');
      await mkdir(spec.workDir, { recursive: true });
      const oldNames = ['.flint-log-state.json', '.flint-stop-requested', '.flint-task.json', '.flint-exit.json', '.flint-launch.json'];
      const targets = oldNames.map((name) => join(f.host, `target${name}`));
      for (const [index, name] of oldNames.entries()) await symlink(targets[index]!, join(spec.workDir, name));
      // links with the shape of rolled copies, oldest first: retention removes them, never what they point at
      await symlink(f.victim, join(spec.workDir, 'stdout--2000-01-01--00-00-00--0000'));
      await symlink(f.victim, join(spec.workDir, 'stdout--2000-01-01--00-00-00--0001'));
      await runtime.start(spec);
      await waitUntil(async () => (await readFile(join(spec.workDir, 'stdout'), 'utf8').catch(() => '')).includes('line 3999'), 'the output, rolled', 30_000);
      await runtime.stop(spec.taskId, 2000);
      const exit = await runtime.wait(spec.taskId);
      assert.equal(exit.stopped, true);
      assert.equal(exit.refused, undefined);
      assert.equal(exit.exitCode, 9);
      for (const name of oldNames) assert.equal(await isLink(join(spec.workDir, name)), true, `${name} is left as planted`);
      assert.equal(existsSync(join(spec.workDir, 'stdout--2000-01-01--00-00-00--0000')), false, 'the old-looking link was removed by retention');
      // the runtime's records are in its own directory
      const privateDir = privateTaskDir(f.stateDir, f.cluster, spec.kind, spec.taskId);
      assert.ok(existsSync(join(privateDir, 'stop-requested')), 'the stop is recorded in the agent\'s own directory');
      await assertHostUntouched(f, targets);
      await runtime.remove(spec.taskId);
      assert.equal(existsSync(privateDir), false, 'remove() deletes the runtime\'s records of the task');
    });
  });
}

describe('hostile work dir, as the master hears of it (agent, Docker)', () => {
  it('an executor that swaps stdout for a link ends FAILED with the reason and its cores come back; a driver doing it ends ERROR and is not relaunched', { timeout: 90_000 }, async () => {
    // reconciliation off after registration: the driver below goes straight into the inbox, and the master, which never placed it, would kill it
    const f = await agentFixture('hostile-report', { conf: { 'spark.deploy.maxExecutorRetries': '1', 'spark.flint.worker.reconcileInterval': '0' } });
    const client = tracedClient(f.cluster, appDescription({ name: 'swapper', image: TEST_IMAGE, command: ['sh', '-c', 'echo hi; sleep 0.3; rm -f stdout; ln -s /etc/flint-hostile-test stdout; while true; do echo x; sleep 0.05; done'], maxCores: 1, coresPerExecutor: 1, memoryPerExecutorMB: 32 }));
    try {
      const workDir = await f.workDir();
      const agent = await f.startAgent({ workDir, cores: 1, memoryMB: 512 });
      const appId = (await client.client.start())!;
      const [execId, failed] = await waitFor(
        async () => Object.entries(await f.redis.hgetall(f.keys.appExecutors(appId))).map(([id, text]) => [id, JSON.parse(text) as { state: string; message?: string }] as const).find(([, e]) => e.state === 'FAILED'),
        { timeoutMs: 30_000, message: 'the executor FAILED' },
      );
      assert.equal(failed.message, 'the worker ended the executor: stdout was replaced by a symbolic link: refused (nothing was written through it)');
      assert.equal(existsSync('/etc/flint-hostile-test'), false);
      // resources given back: the agent holds it as finished and its container is gone
      await waitFor(
        async () => agent.view().finishedExecutors.some((e) => e.appId === appId && String(e.execId) === execId && e.state === 'FAILED') && (await f.containers([`flint.app=${appId}`, `flint.executor=${execId}`])).length === 0,
        { timeoutMs: 10_000, message: 'the executor finished on the agent and its container removed' },
      );
      await client.client.stop();

      // a driver, straight into the inbox: ERROR with the reason, never relaunched although supervised
      await f.redis.xadd(f.keys.workerInbox(agent.workerId), '*', ...encodeEntry('LaunchDriver', {
        driverId: 'driver-20260101000000-0001',
        epoch: agent.epoch()!,
        driverDesc: { name: 'swapper', image: TEST_IMAGE, command: ['sh', '-c', 'sleep 0.3; rm -f stderr; ln -s /etc/flint-hostile-test stderr; while true; do echo x >&2; sleep 0.05; done'], cores: 1, memoryMB: 32, supervise: true, appResource: 'docker://x' },
      }));
      const driver = await waitFor(() => agent.view().finishedDrivers.find((d) => d.driverId === 'driver-20260101000000-0001'), { timeoutMs: 30_000, message: 'the driver ended' });
      assert.equal(driver.state, 'ERROR');
      assert.equal(driver.exception, 'the worker ended the driver: stderr was replaced by a symbolic link: refused (nothing was written through it)');
      assert.equal(driver.relaunches, 0);
      assert.equal(existsSync('/etc/flint-hostile-test'), false);
      assert.deepEqual(f.fatal, []);
    } finally {
      await client.client.stop().catch(() => undefined);
      await f.cleanup();
    }
  });
});
