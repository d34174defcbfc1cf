/**
 * `flint up` as a real process, twice:
 *   - `flint up --demo` (embedded Redis): it submits the Pi demo in cluster mode,
 *     prints pi and the time taken, exits 0, and leaves nothing behind — no process
 *     it started (masters, workers, redis-server), no container of its cluster, no
 *     temporary directory;
 *   - issue 5's acceptance path: `flint up` on the test Redis, wait until it says
 *     the cluster is running, run the demo against the URLs it printed, send SIGINT,
 *     and check that no process, container or Redis key of the run is left.
 * Processes are followed through /proc (pid + start time, so a reused pid is not
 * mistaken for a survivor); containers through Docker's create events by label.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { signToken } from '../../lib/http/auth.ts';
import { clusterKeyPattern } from '../../protocol/keys.ts';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { DEMO_IMAGE } from '../../demo/image.ts';
import { runPiDemo } from '../../demo/pi-demo.ts';
import { REDIS_ARGV_URL, REDIS_URL } from '../helpers/env.ts';
import { cleanupCluster, docker, recordContainerEvents, removeContainersByLabel, uniqueCluster, waitFor } from '../helpers/isolation.ts';

const FLINT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'flint.js');

/** procStart: a process's start time (clock ticks since boot) and parent, or undefined if it is gone or a zombie. */
function procStat(pid: number): { ppid: number; start: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
    return { ppid: Number(fields[1]), start: fields[19]! };
  } catch {
    return undefined;
  }
}

/** ProcessTree follows every descendant of a root pid while it runs (pid → start time). */
class ProcessTree {
  readonly seen = new Map<number, string>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly root: number) {
    this.timer = setInterval(() => this.scan(), 150);
  }

  scan(): void {
    const parents = new Map<number, number[]>();
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const stat = procStat(Number(name));
      if (!stat) continue;
      parents.set(stat.ppid, [...(parents.get(stat.ppid) ?? []), Number(name)]);
    }
    const queue = [...(parents.get(this.root) ?? [])];
    while (queue.length) {
      const pid = queue.shift()!;
      const stat = procStat(pid);
      if (stat && !this.seen.has(pid)) this.seen.set(pid, stat.start);
      queue.push(...(parents.get(pid) ?? []));
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** survivors: descendants seen during the run that still live (same pid and start time). */
  survivors(): number[] {
    return [...this.seen].filter(([pid, start]) => procStat(pid)?.start === start).map(([pid]) => pid);
  }
}

interface UpProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startUp(args: string[]): UpProcess {
  const child = spawn(process.execPath, [FLINT, 'up', ...args], {
    env: { ...process.env, CI: 'true', FLINT_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** within: `promise`, or a rejection naming `what` after `ms` (the timer is cleared either way, so it holds nothing open). */
async function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what())), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function printedPi(output: string): number {
  const match = /^Pi is roughly ([0-9.]+) /m.exec(output);
  assert.ok(match, `flint up printed the result:\n${output}`);
  return Number(match[1]);
}

/** keysOf: the cluster's keys, by SCAN (KEYS would block the Redis other tests share). */
async function keysOf(redis: Redis, cluster: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', clusterKeyPattern(cluster), 'COUNT', 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return found;
}

async function noContainersLeft(cluster: string): Promise<void> {
  const left = await docker().listContainers({ all: true, filters: { label: [`${LABEL.cluster}=${cluster}`] } });
  assert.deepEqual(left.map((c) => c.Names[0]), [], 'no container of the run is left');
}

test('flint up --demo submits SparkPi in cluster mode, prints pi and the time, exits 0 and leaves nothing behind', { timeout: 300_000 }, async () => {
  const cluster = uniqueCluster('up-demo');
  const containers = await recordContainerEvents(cluster, ['create']);
  const up = startUp(['--demo', '--rest-port', '0', '--ui-port', '0', '--cluster', cluster, '--slices', '6']);
  const tree = new ProcessTree(up.child.pid!);
  let code: number | null;
  try {
    code = await within(up.exited, 240_000, () => `flint up --demo did not exit within 240 s:\n${up.output()}`);
  } finally {
    tree.stop();
    containers.close();
    if (up.child.exitCode === null) up.child.kill('SIGKILL');
  }
  const output = up.output();
  try {
    assert.equal(code, 0, output);
    const pi = printedPi(output);
    assert.ok(Math.abs(pi - Math.PI) < 1e-9, `printed pi ${pi} is within 1e-9 of π`);
    assert.match(output, /^computed by \d+ executors in 6 slices of 2000000 intervals; took \d+\.\d\d s from submission to FINISHED$/m);
    assert.match(output, /^\[#+\] 6\/6 slices$/m, 'the progress bar reached the end');
    assert.match(output, /^demo {6}driver FINISHED/m);
    assert.match(output, /^flint up: stopped; nothing left running$/m);

    // its processes (2 masters, 2 workers, the embedded redis-server) were seen, and none is left
    assert.ok(tree.seen.size >= 5, `the run's processes were followed (${tree.seen.size})`);
    await waitFor(() => tree.survivors().length === 0, { timeoutMs: 10_000, message: `no process of the run left (${tree.survivors().join(', ')})` });
    // the driver and the executors were flint-demo containers of this cluster, and they are gone
    const created = containers.events.map((e) => e.attributes);
    const kinds = created.map((c) => c[LABEL.kind]);
    assert.equal(kinds.filter((k) => k === 'driver').length, 1, 'one driver container');
    assert.ok(kinds.filter((k) => k === 'executor').length >= 1, 'executor containers');
    for (const c of created) assert.equal(c.image, DEMO_IMAGE);
    await noContainersLeft(cluster);
    // the embedded Redis's data dir and the work dir are removed
    for (const dir of [/data in (\/\S+);/.exec(output)?.[1], /work dir (\/\S+)$/m.exec(output)?.[1]]) {
      assert.ok(dir, 'flint up printed its directories');
      assert.equal(existsSync(dir), false, `${dir} removed`);
    }
  } finally {
    await removeContainersByLabel(LABEL.cluster, cluster).catch(() => undefined);
  }
});

test('flint up, the demo against it, then SIGINT: no process, container or Redis key of the run is left', { timeout: 300_000 }, async () => {
  const cluster = uniqueCluster('up-sigint');
  const secret = randomBytes(32).toString('base64url');
  const redis = new Redis(REDIS_URL);
  const containers = await recordContainerEvents(cluster, ['create']);
  const up = startUp(['--redis', REDIS_ARGV_URL, '--cluster', cluster, '--rest-port', '0', '--ui-port', '0', '--conf', `spark.flint.auth.secret=${secret}`]);
  const tree = new ProcessTree(up.child.pid!);
  try {
    await waitFor(() => up.output().includes('flint up: cluster running') || up.child.exitCode !== null, { timeoutMs: 90_000, message: 'flint up says the cluster is running' });
    const output = up.output();
    assert.match(output, /flint up: cluster running; press Ctrl-C to stop everything/, output);
    const restUrl = /^rest {6}(http:\/\/\S+)/m.exec(output)?.[1];
    const appApiUrl = /^app api {3}(http:\/\/\S+)/m.exec(output)?.[1];
    assert.ok(restUrl && appApiUrl, `flint up printed its REST and app API URLs:\n${output}`);

    const result = await runPiDemo({
      runtime: 'docker',
      restUrl,
      appApiUrl,
      token: signToken(secret, { scope: ['admin'], ttlSeconds: 600, subject: 'up-cli-test' }),
      driverToken: signToken(secret, { scope: ['submit'], ttlSeconds: 600, subject: 'up-cli-test-driver' }),
      slices: 6,
      executors: 2,
      intervals: 600_000,
      timeoutMs: 180_000,
    });
    assert.ok(Math.abs(result.pi - Math.PI) < 1e-9, `pi ${result.pi} is within 1e-9 of π`);
    assert.ok(containers.events.some(({ attributes: c }) => c[LABEL.kind] === 'driver' && c.image === DEMO_IMAGE), 'the driver ran in a flint-demo container of the run');
    assert.ok((await keysOf(redis, cluster)).length > 0, 'the run has keys while it runs');

    up.child.kill('SIGINT');
    const code = await within(up.exited, 60_000, () => `flint up did not stop within 60 s of SIGINT:\n${up.output()}`);
    assert.equal(code, 0, up.output());
    assert.match(up.output(), /^flint up: stopped; nothing left running$/m);
    tree.stop();
    assert.ok(tree.seen.size >= 4, `the run's processes were followed (${tree.seen.size})`);
    await waitFor(() => tree.survivors().length === 0, { timeoutMs: 10_000, message: `no process of the run left (${tree.survivors().join(', ')})` });
    await noContainersLeft(cluster);
    assert.deepEqual(await keysOf(redis, cluster), [], 'no Redis key of the run is left');
  } finally {
    tree.stop();
    containers.close();
    if (up.child.exitCode === null) up.child.kill('SIGKILL');
    await removeContainersByLabel(LABEL.cluster, cluster).catch(() => undefined);
    await cleanupCluster(redis, cluster);
    redis.disconnect();
  }
});
