/**
 * Issue 11.5, disk: Spark's spark.executor.logs.rolling.* roll executor and driver logs for
 * both runtimes, so a task that prints without end cannot fill the worker's disk. A task
 * writing 200 MiB to stdout with rolling at 10 MiB × 3 retained files leaves at most about
 * 40 MiB of logs (the active file and three rolled copies, each at most 10 MiB), and for
 * Docker its own copy of the output stays within its 2 × 2 MiB buffer. The worker UI reads
 * the rolled copies and the active file as one log. Real Docker engine, real processes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { DockerRuntime } from '../../workers/runtime/docker.ts';
import { ProcessRuntime } from '../../workers/runtime/process.ts';
import { RollingLogFile, isRolledName, rollingSuffix, sortedRolledNames, type LogRolling } from '../../workers/runtime/log-rolling.ts';
import { DirHandle, UnsafeFileError } from '../../workers/runtime/safe-fs.ts';
import { stderrHeader } from '../../workers/runtime/task-identity.ts';
import type { TaskSpec } from '../../workers/runtime/types.ts';
import { parseLogQuery, readLog } from '../../workers/worker-ui.ts';
import { DOCKER_SOCKET, TEST_IMAGE } from '../helpers/env.ts';
import { runtimeCleanup } from '../helpers/runtime-cleanup.ts';

const docker = new Docker({ socketPath: DOCKER_SOCKET });
const { clusters, dirs, runtimes } = runtimeCleanup();

const MiB = 1024 * 1024;
/** 200 MiB of 94-byte lines as fast as the task can print them (the last one cut short), then a line that says the output got through */
const LINE = '0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijk\n';
const FLOOD_BYTES = 200 * 1024 * 1024;
const FLOOD = `yes ${LINE.trim()} | head -c ${FLOOD_BYTES}; echo the-end`;

/** floodTail: the last `count` bytes the flood prints. */
function floodTail(count: number): string {
  const end = 'the-end\n';
  let text = '';
  for (let at = FLOOD_BYTES - (count - end.length); at < FLOOD_BYTES; at++) text += LINE[at % LINE.length];
  return text + end;
}

async function setup(kind: 'docker' | 'process', rolling: LogRolling) {
  const cluster = `rolling-${kind}-${randomUUID().slice(0, 8)}`;
  clusters.push(cluster);
  const root = await mkdtemp(join(tmpdir(), 'flint-rolling-'));
  dirs.push(root);
  const stateDir = join(root, `.flint-${kind}-runtime`, cluster);
  const runtime =
    kind === 'docker'
      ? // Docker's buffer large enough for the whole flood, and the exit waits for the capture to have written all of it:
        // what is measured is the rolling, not how fast Docker's follower is under load
        new DockerRuntime({ stateDir, cluster, workerId: 'worker-1', logRolling: rolling, logBufferBytes: 512 * 1024 * 1024, logDrainTimeoutMs: 240_000 })
      : new ProcessRuntime({ stateDir, pollIntervalMs: 100, logRolling: rolling });
  runtimes.push(runtime);
  const spec = (command: string[]): TaskSpec => ({
    kind: 'executor',
    taskId: 'executor:app-rolling/0',
    workerId: 'worker-1',
    cluster,
    appId: 'app-rolling',
    execId: 0,
    image: TEST_IMAGE,
    command,
    env: {},
    cores: 1,
    memoryMB: 64,
    workDir: join(root, 'app-rolling', '0'),
    workRoot: root,
    network: 'none',
    pidsLimit: 64,
  });
  return { root, runtime, spec };
}

/** logFiles: a task's log files, each log's rolled copies oldest first and then its active file. */
async function logFiles(dir: string): Promise<Array<{ name: string; size: number }>> {
  const all = await readdir(dir);
  const names = ['stdout', 'stderr'].flatMap((base) => [...sortedRolledNames(base, all), ...(all.includes(base) ? [base] : [])]);
  return Promise.all(names.map(async (name) => ({ name, size: (await stat(join(dir, name))).size })));
}

for (const kind of ['docker', 'process'] as const) {
  describe(`rolling logs (${kind} runtime)`, () => {
    it('200 MiB to stdout with rolling at 10 MiB × 3 files leaves at most about 40 MiB of logs, ending with the last line', { timeout: 300_000 }, async () => {
      const rolling: LogRolling = { strategy: 'size', maxBytes: 10 * MiB, maxRetainedFiles: 3 };
      const { runtime, spec } = await setup(kind, rolling);
      const task = spec(['sh', '-c', FLOOD]);
      const status = await runtime.start(task);
      const dockerLog = kind === 'docker' ? (await docker.getContainer(status.handle).inspect()).LogPath : undefined;
      const exit = await runtime.wait(task.taskId);
      assert.equal(exit.exitCode, 0);
      assert.equal(exit.refused, undefined);
      const files = await logFiles(task.workDir);
      const stdoutFiles = files.filter((file) => file.name === 'stdout' || isRolledName('stdout', file.name));
      assert.equal(stdoutFiles.filter((file) => file.name !== 'stdout').length, 3, `three rolled copies: ${JSON.stringify(files)}`);
      for (const file of stdoutFiles) assert.ok(file.size <= 10 * MiB, `${file.name} is ${file.size} bytes, more than maxSize`);
      const total = files.reduce((sum, file) => sum + file.size, 0);
      assert.ok(total <= 40 * MiB + 4096, `${total} bytes of logs (files: ${JSON.stringify(files)})`);
      assert.ok(total >= 30 * MiB, `the retained logs hold the last 30-40 MiB (${total} bytes)`);
      // the output's end is at the end of the log, whole (the active file may hold only its last bytes)
      const active = await readFile(join(task.workDir, 'stdout'), 'utf8');
      const lastRolled = await readFile(join(task.workDir, stdoutFiles.at(-2)!.name), 'utf8');
      assert.equal(`${lastRolled.slice(-500)}${active}`.slice(-500), floodTail(500));
      assert.equal(await readFile(join(task.workDir, 'stderr'), 'utf8'), stderrHeader(task));
      if (dockerLog !== undefined) {
        // Docker's own copy, the capture's buffer, goes with the container (its cap is checked in runtime-hardening.test.ts)
        await runtime.remove(task.taskId);
        assert.equal(existsSync(dockerLog), false, 'Docker\'s copy goes with the container');
      }
      // the worker UI reads the retained copies and the active file as one log, oldest first
      const target = parseLogQuery({ appId: 'app-rolling', executorId: '0', logType: 'stdout', offset: '0', byteLength: String(200) });
      const head = await readLog(join(task.workDir, '..', '..'), target);
      assert.equal(head.total, stdoutFiles.reduce((sum, file) => sum + file.size, 0));
      const oldest = await readFile(join(task.workDir, stdoutFiles[0]!.name), 'utf8');
      assert.equal(head.text, oldest.slice(0, 200));
      const tail = await readLog(join(task.workDir, '..', '..'), parseLogQuery({ appId: 'app-rolling', executorId: '0', logType: 'stdout', byteLength: '100' }));
      assert.equal(tail.end, tail.total);
      assert.equal(tail.text, `${lastRolled}${active}`.slice(-100), "the tail, across the last roll when the active file is short");
      // a range across a roll boundary is contiguous
      const boundary = stdoutFiles[0]!.size;
      const across = await readLog(join(task.workDir, '..', '..'), parseLogQuery({ appId: 'app-rolling', executorId: '0', logType: 'stdout', offset: String(boundary - 50), byteLength: '100' }));
      const next = await readFile(join(task.workDir, stdoutFiles[1]!.name), 'utf8');
      assert.equal(across.text, oldest.slice(-50) + next.slice(0, 50));
    });
  });
}

describe('rolled names squatted by the task', () => {
  it('a task that takes the next rolled names is refused (UnsafeFileError), not looped over nor silently dropped', async () => {
    const root = await mkdtemp(join(tmpdir(), 'flint-rolling-squat-'));
    dirs.push(root);
    const rolling: LogRolling = { strategy: 'size', maxBytes: 81_920, maxRetainedFiles: 2 };
    const now = Date.UTC(2026, 0, 2, 3, 4, 5, 6);
    const dir = await DirHandle.openRoot(root);
    try {
      const file = await RollingLogFile.create(dir, 'stdout', rolling, Buffer.alloc(0), () => now);
      const base = `stdout${rollingSuffix(rolling, now)}`;
      await writeFile(join(root, base), '');
      for (let n = 0; n < 100; n++) await writeFile(join(root, `${base}--${String(n).padStart(4, '0')}`), '');
      await file.write(Buffer.alloc(81_920, 'a'));
      await assert.rejects(file.write(Buffer.from('one byte past the limit rolls')), (error: Error) => {
        assert.ok(error instanceof UnsafeFileError);
        assert.match(error.message, /stdout: the next 100 rolled names are taken by files the task made: refused/);
        return true;
      });
      await file.close();
    } finally {
      await dir.close();
    }
  });
});
