/**
 * Issue 11.2, "tasks are not root", against the real Docker engine and real local
 * processes: `docker inspect` of a task's container shows an unprivileged user, Docker's
 * init, no capabilities, no-new-privileges, the grant's limits, a tmpfs /tmp and a capped
 * Docker log; with the read-only option the root filesystem is read-only while the task's
 * directory and /tmp stay writable; root needs the worker's permission. The process
 * runtime (the agent is root here) runs the command as the same user, without new
 * privileges, in a directory given to that user.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { DockerRuntime } from '../../workers/runtime/docker.ts';
import { ProcessRuntime } from '../../workers/runtime/process.ts';
import type { TaskSpec } from '../../workers/runtime/types.ts';
import { workerSettings } from '../../workers/worker-main.ts';
import { DOCKER_SOCKET, TEST_IMAGE } from '../helpers/env.ts';
import { runtimeCleanup } from '../helpers/runtime-cleanup.ts';

const docker = new Docker({ socketPath: DOCKER_SOCKET });
const { clusters, dirs, runtimes } = runtimeCleanup();

/** PROBE: what the task can do, one line each. */
const PROBE = [
  'id -u; id -g',
  'touch ./in-workdir && echo workdir-writable || echo workdir-refused',
  'touch /tmp/flint-probe-$$ && rm -f /tmp/flint-probe-$$ && echo tmp-writable || echo tmp-refused',
  'touch /in-root 2>/dev/null && echo root-writable || echo root-refused',
  'grep NoNewPrivs /proc/self/status',
  'grep CapEff /proc/self/status',
  'sleep 30',
].join('; ');

async function setup(name: string) {
  const cluster = `harden-${name}-${randomUUID().slice(0, 8)}`;
  clusters.push(cluster);
  const root = await mkdtemp(join(tmpdir(), 'flint-harden-'));
  dirs.push(root);
  const workerId = 'worker-1';
  const spec = (task: string, extra: Partial<TaskSpec> = {}): TaskSpec => ({
    kind: 'executor',
    taskId: `executor:app-${task}/0`,
    workerId,
    cluster,
    appId: `app-${task}`,
    execId: 0,
    image: TEST_IMAGE,
    command: ['sh', '-c', PROBE],
    env: {},
    cores: 0.5,
    memoryMB: 48,
    workDir: join(root, `app-${task}`, '0'),
    workRoot: root,
    network: 'none',
    pidsLimit: 32,
    ...extra,
  });
  return { cluster, workerId, root, stateDir: join(root, '.flint-runtime', cluster), spec };
}

async function outputOf(spec: TaskSpec, lines: number): Promise<string[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const text = await readFile(join(spec.workDir, 'stdout'), 'utf8').catch(() => '');
    const got = text.split('\n').filter(Boolean);
    if (got.length >= lines) return got;
    if (Date.now() > deadline) throw new Error(`stdout of ${spec.taskId} has ${got.length} lines: ${text}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('tasks are not root (Docker)', () => {
  it('docker inspect: user 65534, Init, CapDrop ALL, no-new-privileges, the limits, tmpfs /tmp, a capped log; the task can write only its directory and /tmp', async () => {
    const s = await setup('inspect');
    const runtime = new DockerRuntime({ stateDir: s.stateDir, cluster: s.cluster, workerId: s.workerId });
    runtimes.push(runtime);
    const spec = s.spec('inspect');
    const status = await runtime.start(spec);
    const info = await docker.getContainer(status.handle).inspect();
    assert.equal(info.Config.User, '65534:65534');
    const host = info.HostConfig as Docker.HostConfig & { Init?: boolean; Tmpfs?: Record<string, string> };
    assert.equal(host.Init, true);
    assert.deepEqual(host.CapDrop, ['ALL']);
    assert.equal(host.CapAdd ?? null, null);
    assert.ok(host.SecurityOpt?.includes('no-new-privileges'), `SecurityOpt ${JSON.stringify(host.SecurityOpt)}`);
    assert.equal(host.Privileged, false);
    assert.equal(host.NanoCpus, 500_000_000);
    assert.equal(host.Memory, 48 * 1024 * 1024);
    assert.equal(host.MemorySwap, 48 * 1024 * 1024);
    assert.equal(host.PidsLimit, 32);
    assert.equal(host.ReadonlyRootfs, false);
    assert.match(host.Tmpfs?.['/tmp'] ?? '', /^rw,nosuid,nodev,mode=1777,size=48m$/);
    assert.deepEqual(host.LogConfig, { Type: 'json-file', Config: { 'max-size': '8192k', 'max-file': '2' } }, 'Docker keeps at most 16 MiB (the capture\'s buffer)');
    assert.equal(info.Mounts.length, 1);
    // the kernel's view from inside
    const lines = await outputOf(spec, 7);
    assert.deepEqual(lines.slice(0, 5), ['65534', '65534', 'workdir-writable', 'tmp-writable', 'root-refused']);
    assert.match(lines[5]!, /^NoNewPrivs:\s+1$/);
    assert.match(lines[6]!, /^CapEff:\s+0+$/);
    // the directory is the task user's; the agent's log files are the agent's
    const dir = await stat(spec.workDir);
    assert.deepEqual([dir.uid, dir.gid, dir.mode & 0o777], [65534, 65534, 0o750]);
    assert.equal((await stat(join(spec.workDir, 'stdout'))).uid, 0);
    assert.equal((await stat(join(spec.workDir, 'in-workdir'))).uid, 65534);
  });

  it('with readOnlyRootFilesystem the root filesystem is read-only (even for a root task the worker allows), the directory and /tmp are not', async () => {
    const s = await setup('readonly');
    assert.throws(() => new DockerRuntime({ stateDir: s.stateDir, user: { uid: 0, gid: 0 } }), /tasks may not run as root .*spark\.flint\.worker\.allowRootTasks/);
    assert.throws(() => new DockerRuntime({ stateDir: s.stateDir, user: { uid: 1000, gid: 0 } }), /may not run as root/);
    const runtime = new DockerRuntime({ stateDir: s.stateDir, cluster: s.cluster, workerId: s.workerId, readonlyRootfs: true, user: { uid: 0, gid: 0 }, allowRootTasks: true });
    runtimes.push(runtime);
    const spec = s.spec('readonly');
    const status = await runtime.start(spec);
    const info = await docker.getContainer(status.handle).inspect();
    assert.equal(info.HostConfig.ReadonlyRootfs, true);
    assert.equal(info.Config.User, '0:0');
    const lines = await outputOf(spec, 7);
    assert.deepEqual(lines.slice(0, 5), ['0', '0', 'workdir-writable', 'tmp-writable', 'root-refused'], 'root, and still no write to /');
    assert.match(lines[6]!, /^CapEff:\s+0+$/, 'root without capabilities');
  });

  it('a worker refuses to start with a root task user unless allowed, with one line naming both keys', () => {
    assert.throws(
      () => workerSettings({ conf: ['spark.flint.executor.user=0:0'] }, {}),
      /tasks may not run as root \(spark\.flint\.executor\.user=0:0\): set spark\.flint\.worker\.allowRootTasks=true/,
    );
    assert.throws(() => workerSettings({ conf: ['spark.flint.executor.user=nobody'] }, {}), /spark\.flint\.executor\.user="nobody".*uid:gid/);
    const allowed = workerSettings({ conf: ['spark.flint.executor.user=0:0', 'spark.flint.worker.allowRootTasks=true'] }, {});
    assert.deepEqual(allowed.taskUser, { uid: 0, gid: 0 });
    assert.deepEqual(workerSettings({}, {}).taskUser, { uid: 65534, gid: 65534 });
  });
});

describe('tasks are not root (process runtime, agent as root)', () => {
  it('runs the command as 65534:65534 without new privileges or capabilities, in a directory given to that user', async () => {
    assert.equal(process.geteuid?.(), 0, 'this test runs as root, as the worker does');
    const s = await setup('process');
    const runtime = new ProcessRuntime({ stateDir: s.stateDir, pollIntervalMs: 50 });
    runtimes.push(runtime);
    const spec = s.spec('process');
    const status = await runtime.start(spec);
    const lines = await outputOf(spec, 7);
    assert.deepEqual(lines.slice(0, 4), ['65534', '65534', 'workdir-writable', 'tmp-writable']);
    assert.match(lines[5]!, /^NoNewPrivs:\s+1$/);
    assert.match(lines[6]!, /^CapEff:\s+0+$/);
    const pid = Number(status.handle.replace('pid:', ''));
    const procStatus = await readFile(`/proc/${pid}/status`, 'utf8');
    assert.match(procStatus, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
    assert.match(procStatus, /^Groups:\s*$/m, 'no supplementary groups');
    const dir = await stat(spec.workDir);
    assert.deepEqual([dir.uid, dir.gid, dir.mode & 0o777], [65534, 65534, 0o750]);
    await runtime.stop(spec.taskId, 1000);
    assert.equal((await runtime.wait(spec.taskId)).stopped, true);
    assert.throws(() => new ProcessRuntime({ stateDir: s.stateDir, user: { uid: 0, gid: 0 } }), /may not run as root/);
  });
});
