/**
 * DockerRuntime against the real Docker engine (image flint-test-busybox:latest):
 * limits and hardening as Docker records them, log files, exit codes, OOM, missing
 * images, idempotent start, stop, and an agent restart in the middle of a task.
 * Every test uses its own cluster/worker labels and removes its containers and dirs.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { exitSummary } from '../helpers/protocol.ts';
import { randomUUID } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { DockerRuntime } from '../../workers/runtime/docker.ts';
import { selectRuntime } from '../../workers/runtime/select.ts';
import { stderrHeader } from '../../workers/runtime/task-identity.ts';
import { ImageNotAllowedError, ImageNotFoundError, type TaskExit, type TaskSpec } from '../../workers/runtime/types.ts';

const IMAGE = 'flint-test-busybox:latest';
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const clusters: string[] = [];
const dirs: string[] = [];
/** the runtimes' own records (capture state, markers): one tree for the file, tasks are told apart by cluster */
const STATE_DIR = await mkdtemp(join(tmpdir(), 'flint-rt-docker-state-'));
dirs.push(STATE_DIR);

after(async () => {
  for (const cluster of clusters) {
    const containers = await docker.listContainers({ all: true, filters: { label: [`flint.cluster=${cluster}`] } });
    await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  }
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

interface Fixture {
  cluster: string;
  workerId: string;
  root: string;
  spec(name: string, command: string[], extra?: Partial<TaskSpec>): TaskSpec;
}

async function fixture(): Promise<Fixture> {
  const cluster = `rt-docker-${randomUUID().slice(0, 8)}`;
  const workerId = `worker-${randomUUID().slice(0, 8)}`;
  clusters.push(cluster);
  const root = await mkdtemp(join(tmpdir(), 'flint-rt-docker-'));
  dirs.push(root);
  return {
    cluster,
    workerId,
    root,
    spec: (name, command, extra = {}) => ({
      kind: 'executor',
      taskId: `executor:app-${name}/0`,
      workerId,
      cluster,
      appId: `app-${name}`,
      execId: 0,
      image: IMAGE,
      command,
      env: { FLINT_TEST: 'yes' },
      cores: 1,
      memoryMB: 64,
      workDir: join(root, name),
      network: 'none',
      pidsLimit: 64,
      ...extra,
    }),
  };
}

async function withRuntime<T>(fn: (runtime: DockerRuntime) => Promise<T>, options: Partial<ConstructorParameters<typeof DockerRuntime>[0]> = {}): Promise<T> {
  const runtime = new DockerRuntime({ stateDir: STATE_DIR, relistIntervalMs: 500, ...options });
  try {
    return await fn(runtime);
  } finally {
    await runtime.close();
  }
}

async function waitForContainerExit(id: string, timeoutMs = 20_000): Promise<Docker.ContainerInspectInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await docker.getContainer(id).inspect();
    if (info.State.Status === 'exited') return info;
    if (Date.now() > deadline) throw new Error(`container ${id} still ${info.State.Status}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function waitForText(path: string, text: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await readFile(path, 'utf8').catch(() => '')).includes(text)) {
    if (Date.now() > deadline) throw new Error(`${path} never contained ${text}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('DockerRuntime', () => {
  it('creates a limited, hardened container and reports exit code 3 with both log files', async () => {
    const f = await fixture();
    const spec = f.spec('limits', ['sh', '-c', 'echo hello; echo oops >&2; echo "env=$FLINT_TEST"; exit 3'], {
      cores: 0.5,
      memoryMB: 48,
      pidsLimit: 32,
      labels: { 'team.note': 'abc' },
    });
    await withRuntime(async (runtime) => {
      const status = await runtime.start(spec);
      const info = await docker.getContainer(status.handle).inspect();
      const host = info.HostConfig;
      assert.equal(host.NanoCpus, 500_000_000);
      assert.equal(host.Memory, 48 * 1024 * 1024);
      assert.equal(host.MemorySwap, 48 * 1024 * 1024);
      assert.equal(host.PidsLimit, 32);
      assert.deepEqual(host.CapDrop, ['ALL']);
      assert.ok(host.SecurityOpt?.includes('no-new-privileges'));
      assert.equal(host.Privileged, false);
      assert.equal(host.NetworkMode, 'none');
      assert.equal(host.AutoRemove, false);
      assert.equal(host.RestartPolicy?.Name, 'no');
      assert.equal(info.Mounts.length, 1);
      assert.equal(info.Mounts[0].Source, spec.workDir);
      assert.equal(info.Mounts[0].Destination, spec.workDir);
      const labels = info.Config.Labels;
      assert.equal(labels['flint.cluster'], f.cluster);
      assert.equal(labels['flint.worker'], f.workerId);
      assert.equal(labels['flint.kind'], 'executor');
      assert.equal(labels['flint.task'], spec.taskId);
      assert.equal(labels['flint.app'], 'app-limits');
      assert.equal(labels['flint.executor'], '0');
      assert.equal(labels['team.note'], 'abc');
      assert.match(info.Name, new RegExp(`^/flint-${f.cluster}-executor-app-limits-0-[0-9a-f]{10}$`));

      const exit = await runtime.wait(spec.taskId);
      assert.deepEqual(exitSummary(exit), { exitCode: 3, oomKilled: false, stopped: false });
      assert.equal(await readFile(join(spec.workDir, 'stdout'), 'utf8'), 'hello\nenv=yes\n');
      assert.equal(await readFile(join(spec.workDir, 'stderr'), 'utf8'), `Spark Executor Command: ${JSON.stringify(spec.command)}\n${'='.repeat(40)}\n\noops\n`);
      const after = await runtime.inspect(spec.taskId);
      assert.equal(after?.running, false);
      assert.equal(after?.exitCode, 3);
    });
  });

  it('reports exit 0 without OOM, and a driver gets the Launch Command header', async () => {
    const f = await fixture();
    const spec = f.spec('zero', ['sh', '-c', 'echo done'], { kind: 'driver', taskId: `driver:driver-zero-${randomUUID().slice(0, 4)}`, driverId: 'driver-zero', appId: undefined, execId: undefined });
    await withRuntime(async (runtime) => {
      const exits: Array<[string, TaskExit]> = [];
      runtime.onExit((taskId, exit) => exits.push([taskId, exit]));
      const status = await runtime.start(spec);
      const exit = await runtime.wait(spec.taskId);
      assert.deepEqual(exitSummary(exit), { exitCode: 0, oomKilled: false, stopped: false });
      assert.deepEqual(exits, [[spec.taskId, exit]]);
      const info = await docker.getContainer(status.handle).inspect();
      assert.equal(info.State.OOMKilled, false);
      assert.equal(info.Config.Labels['flint.driver'], 'driver-zero');
      assert.equal(await readFile(join(spec.workDir, 'stderr'), 'utf8'), stderrHeader(spec));
      assert.ok((await readFile(join(spec.workDir, 'stderr'), 'utf8')).startsWith('Launch Command: ["sh","-c","echo done"]\n'));
    });
  });

  it('a burst of output right before the exit is in the files whole, in order and once (the final catch-up pass adds nothing twice)', async () => {
    const f = await fixture();
    // 3,000 numbered lines on each stream within milliseconds, then exit: the tail is what a follower can miss
    const spec = f.spec('burst', ['sh', '-c', 'i=1; while [ $i -le 3000 ]; do echo "out $i"; echo "err $i" >&2; i=$((i + 1)); done']);
    await withRuntime(async (runtime) => {
      await runtime.start(spec);
      assert.deepEqual(exitSummary(await runtime.wait(spec.taskId)), { exitCode: 0, oomKilled: false, stopped: false });
      const numbered = (text: string, stream: string) => text.split('\n').filter((line) => line.startsWith(`${stream} `));
      const expected = (stream: string) => Array.from({ length: 3000 }, (_, i) => `${stream} ${i + 1}`);
      assert.deepEqual(numbered(await readFile(join(spec.workDir, 'stdout'), 'utf8'), 'out'), expected('out'));
      assert.deepEqual(numbered(await readFile(join(spec.workDir, 'stderr'), 'utf8'), 'err'), expected('err'));
    });
  });

  it('reports oomKilled from State.OOMKilled when the kernel kills a 16 MB container', async () => {
    const f = await fixture();
    const spec = f.spec('oom', ['sh', '-c', 'head -c 200m /dev/zero | tail'], { memoryMB: 16 });
    await withRuntime(async (runtime) => {
      const status = await runtime.start(spec);
      const exit = await runtime.wait(spec.taskId);
      const info = await docker.getContainer(status.handle).inspect();
      assert.equal(info.State.OOMKilled, true);
      assert.equal(exit.oomKilled, true);
      assert.equal(exit.exitCode, info.State.ExitCode);
      assert.equal(exit.stopped, false);
    });
  });

  it('fails at once on a missing image, an image outside the allow-list, and a workDir that resolves to /etc', async () => {
    const f = await fixture();
    await withRuntime(async (runtime) => {
      const began = Date.now();
      await assert.rejects(runtime.start(f.spec('missing', ['true'], { image: `flint-no-such-image-${randomUUID().slice(0, 8)}:latest` })), (error: unknown) => {
        assert.ok(error instanceof ImageNotFoundError);
        assert.match(error.message, /not found locally \(Flint never pulls/);
        return true;
      });
      assert.ok(Date.now() - began < 3000, 'a missing image must fail fast, not try to pull');
      const link = join(f.root, 'sneaky');
      await symlink('/etc', link);
      // a link is never followed, wherever it points; a system path as written is refused before anything is created
      await assert.rejects(runtime.start(f.spec('sneaky', ['true'], { workDir: link })), /the task directory is refused: .*sneaky is a symbolic link: refused/);
      await assert.rejects(runtime.start(f.spec('system', ['true'], { workDir: '/etc/flint-task' })), /refusing task workDir \/etc\/flint-task/);
      await assert.rejects(runtime.start(f.spec('badcores', ['true'], { cores: 0 })), /cores must be a positive number/);
      const listed = await docker.listContainers({ all: true, filters: { label: [`flint.cluster=${f.cluster}`] } });
      assert.equal(listed.length, 0);
    });
    await withRuntime(
      async (runtime) => {
        await assert.rejects(runtime.start(f.spec('denied', ['true'], { image: 'busybox:latest' })), ImageNotAllowedError);
        const allowed = await runtime.start(f.spec('allowed', ['true'], { image: IMAGE }));
        assert.ok(allowed.handle.length > 0);
      },
      { imageAllowList: ['registry.example/flint/', 'flint-test-busybox:'] },
    );
    await withRuntime(async (runtime) => await assert.rejects(runtime.start(f.spec('denied2', ['true'])), ImageNotAllowedError), { imageAllowList: ['registry.example/flint/'] });
  });

  it('starts one container per task id, also for concurrent starts from two runtimes, and never restarts an exited one', async () => {
    const f = await fixture();
    const spec = f.spec('idem', ['sh', '-c', 'echo once; sleep 1; exit 7']);
    const other = new DockerRuntime({ stateDir: STATE_DIR, relistIntervalMs: 500 });
    try {
      await withRuntime(async (runtime) => {
        const statuses = await Promise.all([runtime.start(spec), runtime.start(spec), other.start(spec), runtime.start(spec)]);
        assert.equal(new Set(statuses.map((s) => s.handle)).size, 1);
        const listed = await docker.listContainers({ all: true, filters: { label: [`flint.task=${spec.taskId}`, `flint.cluster=${f.cluster}`] } });
        assert.equal(listed.length, 1);
        assert.deepEqual(exitSummary(await runtime.wait(spec.taskId)), { exitCode: 7, oomKilled: false, stopped: false });
        const before = await docker.getContainer(statuses[0].handle).inspect();
        const again = await runtime.start(spec);
        assert.equal(again.handle, statuses[0].handle);
        assert.equal(again.running, false);
        assert.equal(again.exitCode, 7);
        const afterStart = await docker.getContainer(statuses[0].handle).inspect();
        assert.equal(afterStart.State.StartedAt, before.State.StartedAt);
        assert.equal(afterStart.State.Status, 'exited');
        assert.equal(await readFile(join(spec.workDir, 'stdout'), 'utf8'), 'once\n');
      });
    } finally {
      await other.close();
    }
  });

  it('stop sends SIGTERM first, falls back to SIGKILL after the grace period, and reports stopped', async () => {
    const f = await fixture();
    // a shell that exits 0 on SIGTERM: shows the grace path
    const polite = f.spec('polite', ['sh', '-c', 'trap "echo got-term; exit 0" TERM; while true; do sleep 0.1; done']);
    // a command that ignores SIGTERM (the init passes it on; the shell ignores it): only SIGKILL ends it
    const stubborn = f.spec('stubborn', ['sh', '-c', 'trap "" TERM; while true; do sleep 0.1; done']);
    await withRuntime(async (runtime) => {
      await runtime.start(polite);
      await runtime.start(stubborn);
      await new Promise((resolve) => setTimeout(resolve, 300));
      let began = Date.now();
      await runtime.stop(polite.taskId, 5000);
      assert.ok(Date.now() - began < 4000, 'SIGTERM should end the polite task well inside its grace period');
      assert.deepEqual(exitSummary(await runtime.wait(polite.taskId)), { exitCode: 0, oomKilled: false, stopped: true });
      assert.match(await readFile(join(polite.workDir, 'stdout'), 'utf8'), /got-term/);

      began = Date.now();
      await runtime.stop(stubborn.taskId, 1000);
      const elapsed = Date.now() - began;
      assert.ok(elapsed >= 900 && elapsed < 6000, `SIGKILL after about the grace period, took ${elapsed} ms`);
      assert.deepEqual(exitSummary(await runtime.wait(stubborn.taskId)), { exitCode: 137, oomKilled: false, stopped: true });
      // stopping an exited task is a no-op
      await runtime.stop(stubborn.taskId, 1000);
      await runtime.stop('executor:never-started/9', 1000);
    });
  });

  it('survives an agent restart: the task exits while no runtime runs, and the new one reports the true code and completes the logs without duplicates', async () => {
    const f = await fixture();
    const script = 'i=0; while [ $i -lt 30 ]; do echo out-$i; echo err-$i >&2; i=$((i+1)); sleep 0.05; done; exit 5';
    const spec = f.spec('restart', ['sh', '-c', script]);
    const first = new DockerRuntime({ stateDir: STATE_DIR, relistIntervalMs: 500 });
    let handle: string;
    try {
      handle = (await first.start(spec)).handle;
      await waitForText(join(spec.workDir, 'stdout'), 'out-5');
    } finally {
      await first.close();
    }
    // simulate a crash between writing a batch and recording it: these bytes must not survive the resume
    await appendFile(join(spec.workDir, 'stdout'), 'out-half-written-');
    const exited = await waitForContainerExit(handle);
    assert.equal(exited.State.ExitCode, 5);

    await withRuntime(async (second) => {
      const found = await second.list(f.workerId, f.cluster);
      assert.equal(found.length, 1);
      assert.equal(found[0].taskId, spec.taskId);
      assert.equal(found[0].running, false);
      assert.equal(found[0].exitCode, 5);
      const exits: string[] = [];
      second.onExit((taskId) => exits.push(taskId));
      await second.recover(found[0]);
      assert.deepEqual(exitSummary(await second.wait(spec.taskId)), { exitCode: 5, oomKilled: false, stopped: false });
      assert.deepEqual(exits, [spec.taskId]);
    });
    const expected = (prefix: string): string => Array.from({ length: 30 }, (_, i) => `${prefix}-${i}\n`).join('');
    assert.equal(await readFile(join(spec.workDir, 'stdout'), 'utf8'), expected('out'));
    assert.equal(await readFile(join(spec.workDir, 'stderr'), 'utf8'), stderrHeader(spec) + expected('err'));
  });

  it('recovers a running task after a restart: capture continues without duplicates and a stop is still reported', async () => {
    const f = await fixture();
    const script = 'trap "echo term >&2; exit 9" TERM; i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.05; done';
    const spec = f.spec('live', ['sh', '-c', script]);
    const first = new DockerRuntime({ stateDir: STATE_DIR, relistIntervalMs: 500 });
    try {
      await first.start(spec);
      await waitForText(join(spec.workDir, 'stdout'), 'line-3\n');
    } finally {
      await first.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 400)); // lines written while no agent runs
    await withRuntime(async (second) => {
      const [status] = await second.list(f.workerId, f.cluster);
      assert.equal(status.running, true);
      await second.recover(status);
      await waitForText(join(spec.workDir, 'stdout'), 'line-25\n');
      await second.stop(spec.taskId, 5000);
      assert.deepEqual(exitSummary(await second.wait(spec.taskId)), { exitCode: 9, oomKilled: false, stopped: true });
    });
    const lines = (await readFile(join(spec.workDir, 'stdout'), 'utf8')).trimEnd().split('\n');
    assert.ok(lines.length > 25);
    assert.deepEqual(lines, lines.map((_, i) => `line-${i}`));
    assert.equal(await readFile(join(spec.workDir, 'stderr'), 'utf8'), `${stderrHeader(spec)}term\n`);
  });

  it('wait after a restart works without list/recover, and remove force-removes while keeping the logs', async () => {
    const f = await fixture();
    const spec = f.spec('remove', ['sh', '-c', 'echo kept; sleep 60']);
    const first = new DockerRuntime({ stateDir: STATE_DIR, relistIntervalMs: 500 });
    try {
      await first.start(spec);
      await waitForText(join(spec.workDir, 'stdout'), 'kept');
    } finally {
      await first.close();
    }
    await withRuntime(async (second) => {
      const waiting = second.wait(spec.taskId);
      assert.equal((await second.inspect(spec.taskId))?.running, true);
      await second.remove(spec.taskId);
      // removing a running task stops it first (no grace: SIGTERM, which the init passes on, then
      // SIGKILL at once; either may end it), so its waiter still learns the exit
      const exit = exitSummary(await waiting);
      assert.ok(exit.exitCode === 137 || exit.exitCode === 143, `ended by SIGTERM or SIGKILL, got ${String(exit.exitCode)}`);
      assert.deepEqual({ ...exit, exitCode: 'signal' }, { exitCode: 'signal', oomKilled: false, stopped: true });
      assert.equal(await second.inspect(spec.taskId), undefined);
      assert.deepEqual(await second.list(f.workerId, f.cluster), []);
      await assert.rejects(second.wait(spec.taskId), /unknown task/);
    });
    assert.equal(await readFile(join(spec.workDir, 'stdout'), 'utf8'), 'kept\n');
  });

  it('selectRuntime picks Docker when the socket answers, processes otherwise, and says why', async () => {
    const f = await fixture();
    const processOptions = { stateDir: join(f.root, 'state') };
    const auto = await selectRuntime('auto', { docker: { stateDir: STATE_DIR }, process: processOptions });
    try {
      assert.equal(auto.runtime.name, 'docker');
      assert.match(auto.reason, /answered ping/);
    } finally {
      await auto.runtime.close();
    }
    const missingSocket = join(f.root, 'no-docker.sock');
    const fallback = await selectRuntime('auto', { docker: { stateDir: STATE_DIR }, socketPath: missingSocket, process: processOptions });
    try {
      assert.equal(fallback.runtime.name, 'process');
      assert.match(fallback.reason, /did not answer ping/);
      assert.ok(!fallback.reason.includes('\n'));
    } finally {
      await fallback.runtime.close();
    }
    await assert.rejects(selectRuntime('docker', { docker: { stateDir: STATE_DIR }, socketPath: missingSocket, process: processOptions }), /runtime docker was configured but/);
    const forced = await selectRuntime('process', { docker: { stateDir: STATE_DIR }, process: processOptions, imageAllowList: ['x/'] });
    try {
      assert.equal(forced.runtime.name, 'process');
      await assert.rejects(forced.runtime.start(f.spec('forced', ['true'])), ImageNotAllowedError);
    } finally {
      await forced.runtime.close();
    }
    await assert.rejects(selectRuntime('podman' as never, { docker: { stateDir: STATE_DIR }, process: processOptions }), /unknown runtime kind/);
  });

  it('detects exits from Docker events alone and from the periodic relist alone', async () => {
    const f = await fixture();
    const viaEvents = f.spec('events', ['sh', '-c', 'sleep 0.3; exit 13']);
    await withRuntime(
      async (runtime) => {
        const began = Date.now();
        await runtime.start(viaEvents);
        assert.deepEqual(exitSummary(await runtime.wait(viaEvents.taskId)), { exitCode: 13, oomKilled: false, stopped: false });
        assert.ok(Date.now() - began < 5000, 'the die event, not the (one-minute) relist, reported the exit');
      },
      { relistIntervalMs: 60_000 },
    );
    const spec = f.spec('relist', ['sh', '-c', 'sleep 0.3; echo bye; exit 12']);
    await withRuntime(
      async (runtime) => {
        const began = Date.now();
        await runtime.start(spec);
        assert.deepEqual(exitSummary(await runtime.wait(spec.taskId)), { exitCode: 12, oomKilled: false, stopped: false });
        assert.ok(Date.now() - began < 5000);
        assert.equal(await readFile(join(spec.workDir, 'stdout'), 'utf8'), 'bye\n');
      },
      { useEvents: false, relistIntervalMs: 200 },
    );
  });
});
