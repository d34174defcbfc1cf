/**
 * The runners' sequencing (workers/task-runner.ts, executor-runner.ts, driver-runner.ts):
 * one exit source, never a dropped exit, never a runner holding a run nobody watches. The
 * runtime here is a scripted stand-in for the runtime contract (no Docker is claimed: the
 * runtimes themselves are tested against the real engine in test/integration/runtime-*.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { DriverRunner, type DriverReport } from '../../workers/driver-runner.ts';
import { ExecutorRunner, type ExecutorReport } from '../../workers/executor-runner.ts';
import type { Runtime, TaskExit, TaskSpec, TaskStatus } from '../../workers/runtime/types.ts';

const log = pino({ level: 'silent' });

/** ScriptedRuntime: starts hand out handles run-1, run-2, ...; a test decides when runs end and which calls fail. */
class ScriptedRuntime implements Runtime {
  readonly name = 'process' as const;
  starts = 0;
  removes = 0;
  failRemoves = 0;
  private readonly listeners = new Set<(taskId: string, exit: TaskExit) => void>();

  async start(spec: TaskSpec): Promise<TaskStatus> {
    this.starts += 1;
    return { taskId: spec.taskId, handle: `run-${this.starts}`, running: true, labels: {}, startedAt: Date.now() };
  }
  /** end reports the end of a run, as a runtime's exit watcher would */
  end(taskId: string, handle: string, exitCode: number): void {
    for (const listener of this.listeners) listener(taskId, { exitCode, oomKilled: false, stopped: false, handle });
  }
  async stop(): Promise<void> {}
  async inspect(): Promise<TaskStatus | undefined> {
    return undefined;
  }
  async list(): Promise<TaskStatus[]> {
    return [];
  }
  async recover(): Promise<void> {}
  async remove(): Promise<void> {
    this.removes += 1;
    if (this.failRemoves > 0) {
      this.failRemoves -= 1;
      throw new Error('docker remove did not finish within 90000 ms');
    }
  }
  watches(): boolean {
    return true;
  }
  async wait(): Promise<TaskExit> {
    throw new Error('not used');
  }
  onExit(listener: (taskId: string, exit: TaskExit) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  async close(): Promise<void> {}
}

function driverSpec(driverId: string): TaskSpec {
  return { kind: 'driver', taskId: `driver:${driverId}`, workerId: 'w', cluster: 'c', driverId, image: 'i', command: ['x'], env: {}, cores: 1, memoryMB: 64, workDir: '/tmp/x', network: 'none', pidsLimit: 16 };
}

function supervisedDriver(runtime: ScriptedRuntime, reports: DriverReport[]): DriverRunner {
  const driverId = 'driver-1';
  const runner = new DriverRunner(
    { driverId, epoch: 1, resources: {}, driverDesc: { name: 'd', appResource: '', mainClass: '', image: 'i', command: ['x'], env: {}, memoryMB: 64, cores: 1, supervise: true, resourceReqs: [], sparkProperties: {} } },
    driverSpec(driverId),
    {
      runtime,
      log,
      stopGraceMs: 10,
      now: () => Date.now(),
      report: async (_runner, report) => void reports.push(report),
      finished: async () => undefined,
      sleepSeconds: async () => undefined, // no real back-off in a unit test
    },
  );
  runtime.onExit((taskId, exit) => {
    if (taskId === runner.taskId) runner.exitArrived(exit);
  });
  return runner;
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test('a relaunched run that ends while the previous turn is still handled is handled right after, never dropped', async () => {
  const runtime = new ScriptedRuntime();
  const reports: DriverReport[] = [];
  const runner = supervisedDriver(runtime, reports);
  // the relaunch's start answers only after its run has already ended: its exit comes mid-turn
  const start = runtime.start.bind(runtime);
  runtime.start = async (spec) => {
    const status = await start(spec);
    if (runtime.starts === 2) runtime.end(spec.taskId, status.handle, 0);
    return status;
  };
  await runner.launch();
  runtime.end(runner.taskId, 'run-1', 1); // the first run fails: relaunch
  await until(() => runner.isFinished, 'the driver to finish');
  assert.equal(runtime.starts, 2);
  assert.deepEqual(reports, [{ driverId: 'driver-1', state: 'FINISHED', exitStatus: 0 }]);
});

test('an exit of an older run is never taken for the current one', async () => {
  const runtime = new ScriptedRuntime();
  const reports: DriverReport[] = [];
  const runner = supervisedDriver(runtime, reports);
  await runner.launch();
  runtime.end(runner.taskId, 'run-1', 1);
  await until(() => runtime.starts === 2, 'the relaunch');
  await until(() => runner.handle === 'run-2', 'the second run to be watched');
  runtime.end(runner.taskId, 'run-1', 0); // a late duplicate of the first run's exit
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(runner.isFinished, false, 'still supervising run-2');
  runtime.end(runner.taskId, 'run-2', 0);
  await until(() => runner.isFinished, 'the driver to finish');
  assert.deepEqual(reports.map((r) => r.state), ['FINISHED']);
});

test('a supervised driver whose previous run cannot be removed ends ERROR, never waits on a run nobody watches', async () => {
  const runtime = new ScriptedRuntime();
  runtime.failRemoves = 2;
  const reports: DriverReport[] = [];
  const runner = supervisedDriver(runtime, reports);
  await runner.launch();
  runtime.end(runner.taskId, 'run-1', 3);
  await until(() => runner.isFinished, 'the driver to end');
  assert.equal(runtime.removes, 2, 'tried twice');
  assert.equal(runtime.starts, 1, 'no second run without the first removed');
  assert.equal(reports.length, 1);
  assert.equal(reports[0]!.state, 'ERROR');
  assert.match(reports[0]!.exception!, /^cannot relaunch: the previous run could not be removed \(Error: docker remove did not finish within 90000 ms\)$/);
});

test('one removal failure is retried: the driver is relaunched', async () => {
  const runtime = new ScriptedRuntime();
  runtime.failRemoves = 1;
  const runner = supervisedDriver(runtime, []);
  await runner.launch();
  runtime.end(runner.taskId, 'run-1', 3);
  await until(() => runtime.starts === 2, 'the relaunch');
  assert.equal(runner.isFinished, false);
});

test('an executor exit that arrives before its launch returned is reported after RUNNING, once', async () => {
  const runtime = new ScriptedRuntime();
  const reports: ExecutorReport[] = [];
  const runner = new ExecutorRunner(
    { appId: 'app-1', execId: 0, cores: 1, memoryMB: 64, workDir: '/tmp/x' },
    {
      runtime,
      log,
      stopGraceMs: 10,
      now: () => Date.now(),
      report: async (_runner, report) => void reports.push(report),
      finished: async () => undefined,
    },
  );
  runtime.onExit((taskId, exit) => {
    if (taskId === runner.taskId) runner.exitArrived(exit);
  });
  const start = runtime.start.bind(runtime);
  runtime.start = async (spec) => {
    const status = await start(spec);
    runtime.end(spec.taskId, status.handle, 4); // ended before start() returned
    runtime.end(spec.taskId, status.handle, 4); // and reported twice
    return status;
  };
  await runner.launch({ ...driverSpec('x'), kind: 'executor', taskId: runner.taskId });
  await until(() => reports.length === 2, 'two reports');
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(reports.map((r) => r.state), ['RUNNING', 'EXITED']);
  assert.equal(reports[1]!.exitStatus, 4);
});
