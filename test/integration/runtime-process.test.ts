/**
 * ProcessRuntime with real local processes under real detached supervisors: exit
 * codes, the two log files with Spark's header, idempotent start, stop (SIGTERM then
 * SIGKILL to the process group), and an agent restart while a task runs and exits.
 * Each test has its own cluster/worker, stateDir and workDirs, removed afterwards;
 * any task still running is killed by its process group.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { exitSummary } from '../helpers/protocol.ts';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectCgroups, type TaskCgroups } from '../../workers/runtime/cgroups.ts';
import { removeClusterCgroups } from '../helpers/cgroup-cleanup.ts';
import { ProcessRuntime, isProcessAlive } from '../../workers/runtime/process.ts';
import { privateTaskDir, stderrHeader, taskName } from '../../workers/runtime/task-identity.ts';
import { ImageNotAllowedError, type TaskExit, type TaskSpec } from '../../workers/runtime/types.ts';

const dirs: string[] = [];
/** the runtimes' own directories of the tasks started here (task.json, exit.json) */
const privateDirs: string[] = [];
const clusters: string[] = [];
after(async () => {
  // kill only tasks of ours that are still running: a recorded pid whose exit file exists may belong to someone else now
  for (const privateDir of privateDirs) {
    const task = await readFile(join(privateDir, 'task.json'), 'utf8').catch(() => undefined);
    const exited = await readFile(join(privateDir, 'exit.json'), 'utf8').catch(() => undefined);
    if (task === undefined || exited !== undefined) continue;
    try {
      process.kill(-JSON.parse(task).pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  await removeClusterCgroups(clusters);
});

interface Fixture {
  cluster: string;
  workerId: string;
  root: string;
  stateDir: string;
  /** a directory every task may write in (tasks run as 65534:65534) */
  shared: string;
  spec(name: string, command: string[], extra?: Partial<TaskSpec>): TaskSpec;
}

async function fixture(): Promise<Fixture> {
  const cluster = `rt-process-${randomUUID().slice(0, 8)}`;
  const workerId = `worker-${randomUUID().slice(0, 8)}`;
  const root = await mkdtemp(join(tmpdir(), 'flint-rt-process-'));
  dirs.push(root);
  clusters.push(cluster);
  const shared = join(root, 'shared');
  await mkdir(shared);
  await chmod(shared, 0o777);
  return {
    cluster,
    workerId,
    root,
    shared,
    stateDir: join(root, '.flint-process-runtime', cluster, workerId),
    spec: (name, command, extra = {}) => {
      privateDirs.push(privateTaskDir(join(root, '.flint-process-runtime', cluster, workerId), cluster, extra.kind ?? 'executor', extra.taskId ?? `executor:app-${name}/1`));
      return {
        kind: 'executor',
        taskId: `executor:app-${name}/1`,
        workerId,
        cluster,
        appId: `app-${name}`,
        execId: 1,
        image: 'flint-test-busybox:latest',
        command,
        env: { FLINT_TEST: 'yes' },
        cores: 1,
        memoryMB: 64,
        workDir: join(root, name),
        network: 'host',
        pidsLimit: 64,
        ...extra,
      };
    },
  };
}

/** privateFile: one of the runtime's records of a task (in its own directory, never the task's). */
function privateFile(f: Fixture, spec: TaskSpec, name: 'task.json' | 'exit.json'): string {
  return join(privateTaskDir(f.stateDir, f.cluster, spec.kind, spec.taskId), name);
}

function pidOf(handle: string): number {
  return Number(handle.replace(/^pid:/, ''));
}

async function waitUntil(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('ProcessRuntime', () => {
  it('runs argv without a shell in the workDir, writes stdout/stderr with the header, and reports exit code 3', async () => {
    const f = await fixture();
    // the odd argument would be split or expanded if a shell ever saw the argv
    const spec = f.spec('exit3', ['sh', '-c', 'echo "out:$1:$FLINT_TEST:$(pwd)"; echo oops >&2; exit 3', 'argv0', 'a b;$(echo no)']);
    const runtime = new ProcessRuntime({ stateDir: f.stateDir, pollIntervalMs: 50 });
    try {
      const exits: Array<[string, TaskExit]> = [];
      runtime.onExit((taskId, exit) => exits.push([taskId, exit]));
      const status = await runtime.start(spec);
      pidOf(status.handle);
      assert.match(status.handle, /^pid:\d+$/);
      assert.equal(status.labels['flint.task'], spec.taskId);
      const exit = await runtime.wait(spec.taskId);
      assert.deepEqual(exitSummary(exit), { exitCode: 3, oomKilled: false, stopped: false });
      assert.deepEqual(exits, [[spec.taskId, exit]]);
      assert.equal(await readFile(join(spec.workDir, 'stdout'), 'utf8'), `out:a b;$(echo no):yes:${spec.workDir}\n`);
      assert.equal(await readFile(join(spec.workDir, 'stderr'), 'utf8'), `${stderrHeader(spec)}oops\n`);
      const task = JSON.parse(await readFile(privateFile(f, spec, 'task.json'), 'utf8'));
      assert.equal(task.taskId, spec.taskId);
      assert.equal(`pid:${task.pid}`, status.handle);
      assert.notEqual(task.supervisorPid, process.pid);
      const recorded = JSON.parse(await readFile(privateFile(f, spec, 'exit.json'), 'utf8'));
      assert.equal(recorded.exitCode, 3);
      const inspected = await runtime.inspect(spec.taskId);
      assert.equal(inspected?.running, false);
      assert.equal(inspected?.exitCode, 3);
      assert.equal(inspected?.oomKilled, false);
    } finally {
      await runtime.close();
    }
  });

  it("a task's loader variables (LD_*) reach the task after the user switch and never a stage that still runs as root", async () => {
    // LD_DEBUG_OUTPUT makes every dynamically linked program that sees it write ld.<pid> as its user:
    // a file owned by root would be a root stage (cgroup wrapper, setpriv) that LD_PRELOAD could take over
    const f = await fixture();
    const debugDir = join(f.shared, 'ld-debug');
    await mkdir(debugDir);
    await chmod(debugDir, 0o777);
    const spec = f.spec('loader', ['sh', '-c', 'echo "debug=$LD_DEBUG"'], { env: { LD_DEBUG: 'files', LD_DEBUG_OUTPUT: join(debugDir, 'ld') } });
    const runtime = new ProcessRuntime({ stateDir: f.stateDir, pollIntervalMs: 50 });
    try {
      await runtime.start(spec);
      assert.equal((await runtime.wait(spec.taskId)).exitCode, 0);
      assert.equal(await readFile(join(spec.workDir, 'stdout'), 'utf8'), 'debug=files\n');
      const written = await readdir(debugDir);
      assert.ok(written.length > 0, 'the task itself saw the loader variables');
      const owners = await Promise.all(written.map(async (name) => (await stat(join(debugDir, name))).uid));
      assert.deepEqual([...new Set(owners)], [65534], `ld.<pid> files by owner: ${JSON.stringify(written.map((name, i) => [name, owners[i]]))}`);
    } finally {
      await runtime.close();
    }
  });

  it('reports exit 0, a missing program as 127, and refuses bad specs and images outside the allow-list', async () => {
    const f = await fixture();
    const runtime = new ProcessRuntime({ stateDir: f.stateDir, pollIntervalMs: 50, imageAllowList: ['flint-test-'] });
    try {
      const ok = f.spec('zero', ['true'], { kind: 'driver', taskId: 'driver:driver-zero', driverId: 'driver-zero' });
      await runtime.start(ok);
      assert.deepEqual(exitSummary(await runtime.wait(ok.taskId)), { exitCode: 0, oomKilled: false, stopped: false });
      assert.equal(await readFile(join(ok.workDir, 'stderr'), 'utf8'), 'Launch Command: ["true"]\n========================================\n\n');

      const missing = f.spec('missing', [`/nonexistent/flint-${randomUUID()}`]);
      const status = await runtime.start(missing);
      assert.equal(status.running, false);
      assert.equal(status.exitCode, 127);
      assert.match(status.error ?? '', /^cannot run "\/nonexistent\/flint-[^"]+": No such file or directory$/);
      const missingExit = await runtime.wait(missing.taskId);
      assert.equal(missingExit.exitCode, 127);
      assert.equal(missingExit.launchError, status.error, 'the exit says the command never ran');

      await assert.rejects(runtime.start(f.spec('denied', ['true'], { image: 'other:latest' })), ImageNotAllowedError);
      await assert.rejects(runtime.start(f.spec('empty', [])), /needs a command/);
      await assert.rejects(runtime.start(f.spec('relative', ['true'], { workDir: 'relative/dir' })), /absolute path/);
      const link = join(f.root, 'sneaky');
      await symlink('/etc', link);
      // a link is never followed, wherever it points; a system path as written is refused before anything is created
      await assert.rejects(runtime.start(f.spec('sneaky', ['true'], { workDir: link })), /the task directory is refused: .*sneaky is a symbolic link: refused/);
      await assert.rejects(runtime.start(f.spec('system', ['true'], { workDir: '/etc/flint-task' })), /refusing task workDir \/etc\/flint-task/);
      assert.deepEqual((await runtime.list(f.workerId, f.cluster)).map((s) => s.taskId).sort(), [missing.taskId, ok.taskId].sort());
    } finally {
      await runtime.close();
    }
  });

  it('starts one process per task id, also for concurrent starts from two runtimes, and never reruns an exited one', async () => {
    const f = await fixture();
    const marker = join(f.shared, 'runs');
    const spec = f.spec('idem', ['sh', '-c', `echo run >> ${marker}; sleep 0.5; exit 4`]);
    const first = new ProcessRuntime({ stateDir: f.stateDir, pollIntervalMs: 50 });
    const second = new ProcessRuntime({ stateDir: f.stateDir, pollIntervalMs: 50 });
    try {
      const statuses = await Promise.all([first.start(spec), first.start(spec), second.start(spec)]);
      assert.equal(new Set(statuses.map((s) => s.handle)).size, 1);
      pidOf(statuses[0].handle);
      assert.deepEqual(exitSummary(await first.wait(spec.taskId)), { exitCode: 4, oomKilled: false, stopped: false });
      assert.deepEqual(exitSummary(await second.wait(spec.taskId)), { exitCode: 4, oomKilled: false, stopped: false });
      const again = await first.start(spec);
      assert.equal(again.handle, statuses[0].handle);
      assert.equal(again.exitCode, 4);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(await readFile(marker, 'utf8'), 'run\n');
    } finally {
      await first.close();
      await second.close();
    }
  });

  it('stop sends SIGTERM to the process group, SIGKILL after the grace period, and reports stopped', async () => {
    const f = await fixture();
    const polite = f.spec('polite', ['sh', '-c', 'trap "echo got-term; exit 0" TERM; while true; do sleep 0.1; done']);
    // ignores SIGTERM, and has a child in its group that must die with it
    const stubborn = f.spec('stubborn', ['sh', '-c', 'trap "" TERM; sleep 300 & echo $! > child.pid; while true; do sleep 0.1; done']);
    const runtime = new ProcessRuntime({ stateDir: f.stateDir, pollIntervalMs: 50 });
    try {
      pidOf((await runtime.start(polite)).handle);
      pidOf((await runtime.start(stubborn)).handle);
      await waitUntil(async () => (await readFile(join(stubborn.workDir, 'child.pid'), 'utf8').catch(() => '')).trim().length > 0, 'the background child');
      await new Promise((resolve) => setTimeout(resolve, 200));
      let began = Date.now();
      await runtime.stop(polite.taskId, 5000);
      assert.ok(Date.now() - began < 4000);
      assert.deepEqual(exitSummary(await runtime.wait(polite.taskId)), { exitCode: 0, oomKilled: false, stopped: true });
      assert.match(await readFile(join(polite.workDir, 'stdout'), 'utf8'), /got-term/);

      began = Date.now();
      await runtime.stop(stubborn.taskId, 800);
      const elapsed = Date.now() - began;
      assert.ok(elapsed >= 750 && elapsed < 5000, `SIGKILL after about the grace period, took ${elapsed} ms`);
      assert.deepEqual(exitSummary(await runtime.wait(stubborn.taskId)), { exitCode: 137, oomKilled: false, stopped: true });
      const childPid = Number((await readFile(join(stubborn.workDir, 'child.pid'), 'utf8')).trim());
      await waitUntil(() => !isProcessAlive(childPid), 'the group child to die');
      await runtime.stop(stubborn.taskId, 100); // no-op once exited
      await runtime.stop('executor:unknown/0', 100); // no-op when unknown
    } finally {
      await runtime.close();
    }
  });

  it('survives an agent restart: a new runtime lists and recovers running and exited tasks and reads their true exit codes', async () => {
    const f = await fixture();
    const release = join(f.root, 'release');
    const quick = f.spec('quick', ['sh', '-c', 'echo quick; exit 6']);
    const slow = f.spec('slow', ['sh', '-c', `i=0; while [ ! -e ${release} ]; do echo tick-$i; i=$((i+1)); sleep 0.05; done; echo released >&2; exit 11`]);
    const stopped = f.spec('stopped', ['sh', '-c', 'trap "exit 2" TERM; echo ready; while true; do sleep 0.1; done']);
    const first = new ProcessRuntime({ stateDir: f.stateDir, pollIntervalMs: 50 });
    let slowHandle: string;
    try {
      await first.start(quick);
      slowHandle = (await first.start(slow)).handle;
      pidOf(slowHandle);
      pidOf((await first.start(stopped)).handle);
      await waitUntil(async () => (await readFile(join(slow.workDir, 'stdout'), 'utf8')).includes('tick-2'), 'slow to print');
      // its trap is set: a stop that comes earlier would end it by the signal itself (143), under load too
      await waitUntil(async () => (await readFile(join(stopped.workDir, 'stdout'), 'utf8')).includes('ready'), 'stopped to set its trap');
    } finally {
      await first.close(); // the agent goes away; the tasks do not
    }
    assert.equal(isProcessAlive(pidOf(slowHandle)), true);
    // quick exits while no runtime exists
    await waitUntil(async () => (await readFile(privateFile(f, quick, 'exit.json'), 'utf8').catch(() => '')).length > 0, 'quick to exit');

    const second = new ProcessRuntime({ stateDir: f.stateDir, pollIntervalMs: 50 });
    try {
      const listed = await second.list(f.workerId, f.cluster);
      const byTask = new Map(listed.map((s) => [s.taskId, s]));
      assert.equal(listed.length, 3);
      assert.deepEqual([byTask.get(quick.taskId)?.running, byTask.get(quick.taskId)?.exitCode], [false, 6]);
      assert.equal(byTask.get(slow.taskId)?.running, true);
      assert.equal(byTask.get(slow.taskId)?.handle, slowHandle);
      assert.deepEqual(await second.list(f.workerId, 'some-other-cluster'), []);
      const exits: string[] = [];
      second.onExit((taskId) => exits.push(taskId));
      for (const status of listed) await second.recover(status);
      assert.deepEqual(exitSummary(await second.wait(quick.taskId)), { exitCode: 6, oomKilled: false, stopped: false });
      await second.stop(stopped.taskId, 5000);
      assert.deepEqual(exitSummary(await second.wait(stopped.taskId)), { exitCode: 2, oomKilled: false, stopped: true });
      const slowExit = second.wait(slow.taskId);
      const { writeFile } = await import('node:fs/promises');
      await writeFile(release, '');
      assert.deepEqual(exitSummary(await slowExit), { exitCode: 11, oomKilled: false, stopped: false });
      assert.deepEqual(exits.sort(), [quick.taskId, slow.taskId, stopped.taskId].sort());
      const ticks = (await readFile(join(slow.workDir, 'stdout'), 'utf8')).trimEnd().split('\n');
      assert.deepEqual(ticks, ticks.map((_, i) => `tick-${i}`));
      assert.equal(await readFile(join(slow.workDir, 'stderr'), 'utf8'), `${stderrHeader(slow)}released\n`);

      await second.remove(quick.taskId);
      assert.equal(await second.inspect(quick.taskId), undefined);
      assert.equal(await readFile(join(quick.workDir, 'stdout'), 'utf8'), 'quick\n');
      await assert.rejects(second.wait(quick.taskId), /unknown task/);
      // after remove the task id can run again, as a new process
      await second.start(quick);
      assert.deepEqual(exitSummary(await second.wait(quick.taskId)), { exitCode: 6, oomKilled: false, stopped: false });
    } finally {
      await second.close();
    }
  });

  it('with addressSpaceLimit, a task that allocates past memoryMB fails its allocation (best effort, no OOM flag)', async () => {
    const f = await fixture();
    const runtime = new ProcessRuntime({ stateDir: f.stateDir, pollIntervalMs: 50, addressSpaceLimit: true });
    try {
      const hog = f.spec('hog', ['sh', '-c', 'head -c 300m /dev/zero | tail >/dev/null'], { memoryMB: 64 });
      await runtime.start(hog);
      const exit = await runtime.wait(hog.taskId);
      assert.notEqual(exit.exitCode, 0);
      assert.equal(exit.oomKilled, false);
      const fine = f.spec('fine', ['sh', '-c', 'head -c 1m /dev/zero | tail >/dev/null'], { memoryMB: 64 });
      await runtime.start(fine);
      assert.equal((await runtime.wait(fine.taskId)).exitCode, 0);
    } finally {
      await runtime.close();
    }
  });
});


/** cpuSeconds: utime + stime of a process, in seconds (clock ticks of 1/100 s on Linux). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const detected = await detectCgroups();
const cgroups: TaskCgroups | undefined = detected.cgroups;

describe('ProcessRuntime with cgroups', { skip: cgroups === undefined ? `cgroups unavailable: ${detected.support.enforced ? '' : detected.support.why}` : false }, () => {
  const taskCgroupDirs = (f: Fixture, spec: TaskSpec): string[] => (cgroups as TaskCgroups).locate(join('flint', f.cluster, f.workerId, taskName(spec.cluster, spec.kind, spec.taskId))).dirs;

  it('writes the grant into the task cgroup, confines the process from its start, finds it again after a restart, and removes it', async () => {
    const f = await fixture();
    const runtime = new ProcessRuntime({ stateDir: f.stateDir, pollIntervalMs: 50 });
    const spec = f.spec('limits', ['sleep', '30'], { cores: 0.5, memoryMB: 32, pidsLimit: 16 });
    const dirsOfTask = taskCgroupDirs(f, spec);
    try {
      const status = await runtime.start(spec);
      const pid = pidOf(status.handle);
      if (cgroups?.version === 'v1') {
        assert.deepEqual(dirsOfTask, ['cpu', 'memory', 'pids'].map((controller) => join('/sys/fs/cgroup', controller, 'flint', f.cluster, f.workerId, taskName(f.cluster, 'executor', spec.taskId))));
        const [cpu, memory, pids] = dirsOfTask as [string, string, string];
        assert.equal((await readFile(join(cpu, 'cpu.cfs_period_us'), 'utf8')).trim(), '100000');
        assert.equal((await readFile(join(cpu, 'cpu.cfs_quota_us'), 'utf8')).trim(), '50000');
        assert.equal((await readFile(join(memory, 'memory.limit_in_bytes'), 'utf8')).trim(), String(32 * 1024 * 1024));
        if (existsSync(join(memory, 'memory.memsw.limit_in_bytes'))) assert.equal((await readFile(join(memory, 'memory.memsw.limit_in_bytes'), 'utf8')).trim(), String(32 * 1024 * 1024));
        assert.equal((await readFile(join(pids, 'pids.max'), 'utf8')).trim(), '16');
      } else {
        const [dir] = dirsOfTask as [string];
        assert.equal((await readFile(join(dir, 'cpu.max'), 'utf8')).trim(), '50000 100000');
        assert.equal((await readFile(join(dir, 'memory.max'), 'utf8')).trim(), String(32 * 1024 * 1024));
        assert.equal((await readFile(join(dir, 'pids.max'), 'utf8')).trim(), '16');
      }
      // the task's own pid (the wrapper exec'd into sleep) sits in every task cgroup
      for (const dir of dirsOfTask) assert.deepEqual((await readFile(join(dir, 'cgroup.procs'), 'utf8')).trim().split('\n'), [String(pid)]);
      assert.match(await readFile(`/proc/${pid}/cmdline`, 'utf8'), /sleep\0+30/);

      // an agent restart: a new runtime adopts the task and removes its cgroup by name
      await runtime.close();
      const second = new ProcessRuntime({ stateDir: f.stateDir, pollIntervalMs: 50 });
      try {
        assert.deepEqual((await second.list(f.workerId, f.cluster)).map((task) => task.running), [true]);
        for (const dir of dirsOfTask) assert.ok(existsSync(dir), `${dir} survives list() while its task is registered`);
        await second.remove(spec.taskId);
        assert.equal(isProcessAlive(pid), false);
        for (const dir of dirsOfTask) {
          assert.equal(existsSync(dir), false, `${dir} is removed`);
          assert.equal(existsSync(join(dir, '..', '..')), false, 'the empty cluster parent is removed too');
        }
      } finally {
        await second.close();
      }
    } finally {
      await runtime.close();
    }
  });

  it('reports a task the kernel OOM-kills at memoryMB 32 as oomKilled, also to a restarted runtime', async () => {
    const f = await fixture();
    const runtime = new ProcessRuntime({ stateDir: f.stateDir, pollIntervalMs: 50 });
    // the shell doubles a string until it holds far more than 32 MB of real memory
    const hog = f.spec('oom', ['sh', '-c', 'x=0123456789abcdef; while :; do x=$x$x; done'], { memoryMB: 32 });
    try {
      await runtime.start(hog);
      assert.deepEqual(exitSummary(await runtime.wait(hog.taskId)), { exitCode: 137, oomKilled: true, stopped: false });
      assert.equal((await runtime.inspect(hog.taskId))?.oomKilled, true);
      const second = new ProcessRuntime({ stateDir: f.stateDir, pollIntervalMs: 50 });
      try {
        assert.deepEqual(exitSummary(await second.wait(hog.taskId)), { exitCode: 137, oomKilled: true, stopped: false });
      } finally {
        await second.close();
      }
      await runtime.remove(hog.taskId);
      for (const dir of taskCgroupDirs(f, hog)) assert.equal(existsSync(dir), false);
    } finally {
      await runtime.close();
    }
  });

  it('holds a busy loop at cores 0.5 to about half a CPU', async () => {
    const f = await fixture();
    const runtime = new ProcessRuntime({ stateDir: f.stateDir, pollIntervalMs: 50 });
    const busy = f.spec('busy', ['sh', '-c', 'while :; do :; done'], { cores: 0.5 });
    try {
      const pid = pidOf((await runtime.start(busy)).handle);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const before = await cpuSeconds(pid);
      const startedAt = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const used = (await cpuSeconds(pid)) - before;
      const perSecond = used / ((Date.now() - startedAt) / 1000);
      assert.ok(perSecond <= 0.6, `used ${perSecond.toFixed(2)} CPU-seconds per second, more than 0.5 cores allow`);
      // only that the loop ran: on a loaded machine it may get well under its half core
      assert.ok(perSecond >= 0.05, `used only ${perSecond.toFixed(2)} CPU-seconds per second: is the loop running?`);
      await runtime.remove(busy.taskId);
      for (const dir of taskCgroupDirs(f, busy)) assert.equal(existsSync(dir), false);
    } finally {
      await runtime.close();
    }
  });

  it('stops a loop of 100 sleep children at pidsLimit 16: the forks fail', async () => {
    const f = await fixture();
    const runtime = new ProcessRuntime({ stateDir: f.stateDir, pollIntervalMs: 50 });
    const forker = f.spec('forks', ['sh', '-c', 'for i in $(seq 100); do sleep 30 & done; echo all-started'], { pidsLimit: 16 });
    try {
      await runtime.start(forker);
      const exit = await runtime.wait(forker.taskId);
      assert.notEqual(exit.exitCode, 0);
      assert.equal(await readFile(join(forker.workDir, 'stdout'), 'utf8'), '');
      assert.match(await readFile(join(forker.workDir, 'stderr'), 'utf8'), /fork/i);
      const pidsDir = taskCgroupDirs(f, forker).at(-1) as string;
      const alive = Number((await readFile(join(pidsDir, 'pids.current'), 'utf8')).trim());
      assert.ok(alive > 0 && alive <= 16, `${alive} sleeps live in the cgroup`);
      // remove() kills the sleeps that left with the shell gone, then removes the cgroup
      await runtime.remove(forker.taskId);
      for (const dir of taskCgroupDirs(f, forker)) assert.equal(existsSync(dir), false);
    } finally {
      await runtime.close();
    }
  });

  it('removes leftover cgroups of this worker that no task is registered for, on list()', async () => {
    const f = await fixture();
    const leftover = join('flint', f.cluster, f.workerId, 'flint-gone-task');
    await (cgroups as TaskCgroups).create(leftover, { cpuPeriodUs: 100_000, cpuQuotaUs: 100_000, memoryBytes: 64 << 20, pidsMax: 8 });
    const runtime = new ProcessRuntime({ stateDir: f.stateDir, pollIntervalMs: 50 });
    try {
      assert.deepEqual(await runtime.list(f.workerId, f.cluster), []);
      for (const dir of (cgroups as TaskCgroups).locate(leftover).dirs) assert.equal(existsSync(dir), false);
    } finally {
      await runtime.close();
    }
  });

  it('with requireLimits and cgroups turned off, prepareLimits and start fail with a clear message', async () => {
    const f = await fixture();
    const runtime = new ProcessRuntime({ stateDir: f.stateDir, cgroups: false, requireLimits: true });
    try {
      await assert.rejects(runtime.prepareLimits(), /requireLimits is true but cgroups cannot be used/);
      await assert.rejects(runtime.start(f.spec('refused', ['true'])), /requireLimits/);
    } finally {
      await runtime.close();
    }
  });
});
