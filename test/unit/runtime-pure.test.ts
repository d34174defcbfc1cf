/**
 * The runtimes' pure parts, without Docker or processes: task names, spec checks,
 * workDir refusal, Docker timestamps, the log cursor that makes resumed capture exact,
 * the container create request, and the supervisor's exit-code convention.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { containerConfig } from '../../workers/runtime/docker.ts';
import { FrameSplitter, INITIAL_CURSOR, LogCursor, formatSince, parseTimestampNs, splitTimestamp, type StreamId } from '../../workers/runtime/log-cursor.ts';
import { exitCodeOf } from '../../workers/runtime/task-supervisor.ts';
import { checkImageAllowed, sanitiseName, stderrHeader, taskName, validateTaskSpec } from '../../workers/runtime/task-identity.ts';
import { ImageNotAllowedError, type TaskSpec } from '../../workers/runtime/types.ts';
import { workDirProblem } from '../../workers/runtime/work-dir.ts';

const spec: TaskSpec = {
  kind: 'executor',
  taskId: 'executor:app-20240101000000-0001/3',
  workerId: 'worker-1',
  cluster: 'prod',
  appId: 'app-20240101000000-0001',
  execId: 3,
  image: 'flint-test-busybox:latest',
  command: ['java', '-cp', 'x'],
  env: { A: '1' },
  cores: 2,
  memoryMB: 1024,
  workDir: '/data/flint/work/app-20240101000000-0001/3',
  network: 'host',
  pidsLimit: 512,
};

describe('task names', () => {
  it('are deterministic, Docker-valid, and differ for ids that sanitise alike', () => {
    const name = taskName('prod', 'executor', 'executor:app-1/3');
    assert.equal(name, taskName('prod', 'executor', 'executor:app-1/3'));
    assert.match(name, /^flint-prod-executor-app-1-3-[0-9a-f]{10}$/);
    assert.match(name, /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/);
    assert.notEqual(taskName('prod', 'executor', 'executor:app-1/3'), taskName('prod', 'executor', 'executor:app-1-3'));
    assert.notEqual(taskName('prod', 'executor', 'executor:app-1/3'), taskName('test', 'executor', 'executor:app-1/3'));
    assert.match(taskName('ü/c', 'driver', 'driver:driver-1 x'), /^flint-c-driver-driver-1-x-[0-9a-f]{10}$/);
    assert.equal(sanitiseName('../../etc'), 'etc');
    assert.equal(sanitiseName('///'), 'x');
    assert.ok(taskName('c'.repeat(500), 'executor', `executor:${'a'.repeat(500)}`).length < 170);
  });
});

describe('task spec validation', () => {
  const cases: Array<[string, Partial<TaskSpec> | Record<string, unknown>, RegExp]> = [
    ['kind', { kind: 'shell' }, /kind must be executor or driver/],
    ['empty task id', { taskId: '' }, /taskId must be a non-empty string/],
    ['relative workDir', { workDir: 'work/x' }, /absolute path/],
    ['command not array', { command: 'java -jar x' }, /array of strings/],
    ['NUL in argv', { command: ['a\0b'] }, /NUL/],
    ['bad env name', { env: { 'A=B': 'x' } }, /env name/],
    ['env value not string', { env: { A: 1 } }, /must be a string/],
    ['zero cores', { cores: 0 }, /cores must be a positive number/],
    ['NaN cores', { cores: Number.NaN }, /cores must be a positive number/],
    ['tiny memory', { memoryMB: 4 }, /at least 6/],
    ['fractional memory', { memoryMB: 10.5 }, /integer/],
    ['pids', { pidsLimit: 0 }, /pidsLimit/],
    ['bridge network', { network: 'bridge' }, /host or none/],
  ];
  for (const [what, change, expected] of cases) {
    it(`refuses ${what}`, () => {
      assert.match(validateTaskSpec({ ...spec, ...change } as TaskSpec) ?? '', expected);
    });
  }
  it('accepts a good spec', () => assert.equal(validateTaskSpec(spec), undefined));
});

describe('image allow-list and stderr header', () => {
  it('allows by prefix, everything without a list', () => {
    assert.doesNotThrow(() => checkImageAllowed('anything', undefined));
    assert.doesNotThrow(() => checkImageAllowed('anything', []));
    assert.doesNotThrow(() => checkImageAllowed('flint/spark:3.5', ['other/', 'flint/']));
    assert.throws(() => checkImageAllowed('evil/flint/spark', ['flint/']), ImageNotAllowedError);
  });
  it('writes Spark\'s headers', () => {
    assert.equal(stderrHeader({ kind: 'executor', command: ['a', 'b c'] }), `Spark Executor Command: ["a","b c"]\n${'='.repeat(40)}\n\n`);
    assert.equal(stderrHeader({ kind: 'driver', command: [] }), `Launch Command: []\n${'='.repeat(40)}\n\n`);
  });
});

describe('workDir refusal', () => {
  it('refuses system paths and their trees, accepts task directories', () => {
    for (const path of ['/', '/etc', '/etc/', '/etc/flint', '/proc/1', '/var/run/docker.sock', '/var/lib/docker/volumes', '/usr/local', '/tmp', '/home', '/root', '/var']) {
      assert.ok(workDirProblem(path) !== undefined, `${path} should be refused`);
    }
    for (const path of ['/tmp/flint-1/app/0', '/home/spark/work/app-1/2', '/var/lib/flint/work/x', '/data/work', '/etcetera/work']) {
      assert.equal(workDirProblem(path), undefined, `${path} should be accepted`);
    }
    assert.match(workDirProblem('relative') ?? '', /not absolute/);
  });
});

describe('Docker timestamps', () => {
  it('parse RFC 3339 with trimmed nanoseconds and format for since', () => {
    assert.equal(parseTimestampNs('2024-05-01T12:00:00.000000001Z'), 1714564800000000001n);
    assert.equal(parseTimestampNs('2024-05-01T12:00:00.5Z'), 1714564800500000000n);
    assert.equal(parseTimestampNs('2024-05-01T12:00:00Z'), 1714564800000000000n);
    assert.equal(parseTimestampNs('2024-05-01T14:00:00.25+02:00'), 1714564800250000000n);
    assert.equal(parseTimestampNs('yesterday'), undefined);
    assert.equal(formatSince(1714564800000000001n), '1714564800.000000001');
    const frame = splitTimestamp(Buffer.from('2024-05-01T12:00:00.5Z hello world\n'));
    assert.equal(frame?.tsNs, 1714564800500000000n);
    assert.equal(frame?.payload.toString(), 'hello world\n');
    assert.equal(splitTimestamp(Buffer.from('no timestamp here')), undefined);
  });
});

describe('LogCursor', () => {
  const second = 1_000_000_000n;
  /** replay feeds entries to a cursor and returns those it accepts */
  function replay(cursor: LogCursor, entries: Array<[StreamId, bigint, string]>): string[] {
    return entries.filter(([stream, ts]) => cursor.accept(stream, ts)).map(([, , text]) => text);
  }

  it('accepts every entry once, and after a resume skips exactly what was written, even out of timestamp order', () => {
    const base = 1714564800n * second;
    const log: Array<[StreamId, bigint, string]> = [
      [1, base + 10n, 'o1\n'],
      [2, base + 5n, 'e1\n'], // stderr's stamp is older but reached the log later
      [1, base + 10n, 'o2\n'], // same nanosecond as o1
      [1, base + 20n, 'o3\n'],
      [2, base + 3n * second, 'e2\n'],
      [1, base + 3n * second + 1n, 'o4\n'],
    ];
    const first = new LogCursor(INITIAL_CURSOR);
    assert.equal(first.since(), undefined);
    assert.deepEqual(replay(first, log.slice(0, 4)), ['o1\n', 'e1\n', 'o2\n', 'o3\n']);
    const state = first.snapshot();

    // a restart: Docker replays everything since the cut (inclusive), old and new
    const resumed = new LogCursor(JSON.parse(JSON.stringify(state)));
    const since = resumed.since();
    const sinceNs = since === undefined ? 0n : BigInt(since.replace('.', ''));
    const replayed = log.filter(([, ts]) => ts >= sinceNs);
    assert.deepEqual(replay(resumed, replayed), ['e2\n', 'o4\n']);
    const after = resumed.snapshot();
    // the window has slid: entries older than two seconds before the newest are out
    assert.deepEqual(after.seen.sort(), [`1:${base + 3n * second + 1n}`, `2:${base + 3n * second}`].sort());
  });

  it('caps the remembered fingerprints by raising the cut', () => {
    const cursor = new LogCursor(INITIAL_CURSOR, 10n * second, 3);
    for (let i = 1n; i <= 6n; i++) assert.equal(cursor.accept(1, i), true);
    const state = cursor.snapshot();
    assert.deepEqual(state.seen, ['1:4', '1:5', '1:6']);
    assert.equal(state.cutNs, '4');
    const resumed = new LogCursor(state, 10n * second, 3);
    assert.equal(resumed.accept(1, 3n), false, 'older than the cut: written before');
    assert.equal(resumed.accept(1, 5n), false);
    assert.equal(resumed.accept(1, 7n), true);
  });
});

describe('FrameSplitter', () => {
  const frame = (streamId: number, text: string) => {
    const payload = Buffer.from(text);
    const header = Buffer.alloc(8);
    header[0] = streamId;
    header.writeUInt32BE(payload.length, 4);
    return Buffer.concat([header, payload]);
  };

  it('cuts frames that span chunks at any byte, in order, and skips stream 0', () => {
    const body = Buffer.concat([frame(1, 'out one\n'), frame(2, 'err one\n'), frame(0, 'stdin?'), frame(1, ''), frame(1, 'out two\n')]);
    for (const size of [1, 3, 8, 9, body.length]) {
      const got: Array<[StreamId, string]> = [];
      const splitter = new FrameSplitter((id, f) => got.push([id, f.toString()]));
      for (let at = 0; at < body.length; at += size) splitter.push(body.subarray(at, at + size));
      assert.deepEqual(got, [[1, 'out one\n'], [2, 'err one\n'], [1, ''], [1, 'out two\n']], `chunks of ${size}`);
    }
  });

  it('takes a 200,000-frame body in one chunk without recursion', () => {
    const body = Buffer.concat(Array.from({ length: 200_000 }, (_, i) => frame(1 + (i % 2), `${i}\n`)));
    let count = 0;
    let last = '';
    new FrameSplitter((_, f) => {
      count++;
      last = f.toString();
    }).push(body);
    assert.equal(count, 200_000);
    assert.equal(last, '199999\n');
  });
});

describe('container create request', () => {
  it('sets limits, hardening, labels and the single bind mount', () => {
    const config = containerConfig({ ...spec, labels: { 'flint.task': 'spoofed', extra: 'y' } }, '/data/real/work', { containerWorkDir: '/flint/work' });
    const host = config.HostConfig!;
    assert.equal(host.NanoCpus, 2e9);
    assert.equal(host.Memory, 1024 * 1024 * 1024);
    assert.equal(host.MemorySwap, host.Memory);
    assert.equal(host.PidsLimit, 512);
    assert.deepEqual(host.CapDrop, ['ALL']);
    assert.deepEqual(host.SecurityOpt, ['no-new-privileges']);
    assert.equal(host.Privileged, false);
    assert.equal(host.NetworkMode, 'host');
    assert.equal(host.AutoRemove, false);
    assert.deepEqual(host.RestartPolicy, { Name: 'no' });
    assert.deepEqual(host.Mounts, [{ Type: 'bind', Source: '/data/real/work', Target: '/flint/work', ReadOnly: false }]);
    assert.equal(config.WorkingDir, '/flint/work');
    assert.deepEqual(config.Cmd, ['java', '-cp', 'x']);
    assert.deepEqual(config.Env, ['A=1']);
    assert.equal(config.Labels!['flint.task'], spec.taskId, 'spec labels cannot override identity');
    assert.equal(config.Labels!.extra, 'y');
    assert.equal(config.Labels!['flint.workdir'], '/data/real/work');
    assert.equal(containerConfig({ ...spec, command: [] }, '/w/x', {}).Cmd, undefined);
    assert.equal(containerConfig({ ...spec, cores: 0.25 }, '/w/x', {}).HostConfig!.NanoCpus, 250_000_000);
  });
});

describe('supervisor exit codes', () => {
  it('keeps codes and maps signals to 128 + n', () => {
    assert.equal(exitCodeOf(3, null), 3);
    assert.equal(exitCodeOf(null, 'SIGKILL'), 137);
    assert.equal(exitCodeOf(null, 'SIGTERM'), 143);
  });
});
