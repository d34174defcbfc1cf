/**
 * A cluster of real `flint master` and `flint worker` processes, started as an
 * operator starts them on their hosts (no `flint up`): the master serves the REST
 * server, the web UI and the application API on free ports and prints where; the
 * workers run tasks as local processes. Tests read the printed URLs, and `stop()`
 * ends every process (SIGTERM, then SIGKILL after a bound), removes the work dirs
 * and the cluster's keys, whatever state the test left them in.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { clusterKeys } from '../../protocol/keys.ts';
import { REPO_ROOT } from './flint-process.ts';
import { cleanupCluster, makeTempDir, waitFor, type TempDir } from './isolation.ts';

/** FlintChild: one flint process, with what it printed. */
export interface FlintChild {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

/** spawnFlint starts `node bin/flint.js <args>` (optionally through a wrapper such as `ip netns exec ns`). */
export function spawnFlint(args: string[], options: { env?: Record<string, string>; wrapper?: string[]; label: string }): FlintChild {
  const command = options.wrapper ? options.wrapper[0]! : process.execPath;
  const argv = options.wrapper ? [...options.wrapper.slice(1), process.execPath, 'bin/flint.js', ...args] : ['bin/flint.js', ...args];
  const child = spawn(command, argv, {
    cwd: REPO_ROOT,
    env: { ...process.env, FLINT_LOG_LEVEL: 'warn', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString();
    if (process.env.FLINT_TEST_VERBOSE) process.stderr.write(`[${options.label}] ${chunk.toString()}`);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** stopFlint: SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopFlint(proc: FlintChild, graceMs = 15_000): Promise<number | null> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return proc.child.exitCode;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
  try {
    return await proc.exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * removeClusterCgroups removes the (empty) cgroups the process runtime made for
 * `cluster`'s tasks (`<controller>/flint/<cluster>/...`, cgroup v1 or v2), deepest
 * first, killing any process still in one (an agent that failed to stop its task
 * must not leave it running past the test). Returns what it had to kill or leave.
 */
export async function removeClusterCgroups(cluster: string, root = '/sys/fs/cgroup'): Promise<string[]> {
  const left: string[] = [];
  const remove = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) if (entry.isDirectory()) await remove(join(dir, entry.name));
    // a task the agent failed to stop is this test's process: kill it so its cgroup can go
    const procs = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const pid of procs.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
        left.push(`${dir} (killed leftover pid ${pid})`);
      } catch {
        // already gone
      }
    }
    for (let attempt = 0; attempt < 20; attempt++) {
      const removed = await rmdir(dir).then(
        () => true,
        () => false,
      );
      if (removed) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    left.push(dir);
  };
  const controllers = await readdir(root, { withFileTypes: true }).catch(() => []);
  await remove(join(root, 'flint', cluster));
  for (const controller of controllers) if (controller.isDirectory()) await remove(join(root, controller.name, 'flint', cluster));
  return left;
}

/** MasterUrls: what a `flint master` printed it serves. */
export interface MasterUrls {
  rest?: string;
  ui?: string;
  appApi?: string;
}

/** printedUrls reads the service URLs from a `flint master`'s output. */
export function printedUrls(output: string): MasterUrls {
  const find = (what: string) => new RegExp(`: ${what} on (https?://\\S+)`).exec(output)?.[1];
  return { rest: find('REST submission server'), ui: find('web UI'), appApi: find('application HTTP API') };
}

/** printedWorkerUi: the web UI URL a `flint worker` printed once registered. */
export function printedWorkerUi(output: string): string | undefined {
  return /registered .* web UI (https?:\/\/\S+)/.exec(output)?.[1];
}

/** waitForMasterUrls waits until the master printed every service it was asked for (or fails with its output). */
export async function waitForMasterUrls(master: FlintChild, want: (keyof MasterUrls)[], timeoutMs = 30_000): Promise<Required<MasterUrls>> {
  return (await waitFor(
    () => {
      if (master.child.exitCode !== null) throw new Error(`flint master exited with ${master.child.exitCode}: ${master.output()}`);
      const urls = printedUrls(master.output());
      return want.every((name) => urls[name]) ? urls : undefined;
    },
    { timeoutMs, message: `flint master printed its URLs (${want.join(', ')})` },
  )) as Required<MasterUrls>;
}

export interface ProcessClusterOptions {
  cluster: string;
  /** the Redis, as it goes on the processes' command lines: without a password (REDIS_ARGV_URL; they find it through their password file) */
  redisUrl: string;
  secret: string;
  /** extra --conf for every process */
  conf?: Record<string, string>;
  /** worker cores and memory, one entry per worker (default one worker, 2 cores, 512m) */
  workers?: { cores: number; memory: string }[];
  env?: Record<string, string>;
  /** extra arguments of `flint master` (e.g. --http 127.0.0.1:0) */
  masterArgs?: string[];
}

export interface ProcessCluster {
  master: FlintChild;
  workers: FlintChild[];
  urls: Required<MasterUrls>;
  stop(): Promise<void>;
}

/**
 * startProcessCluster: one `flint master` with REST, UI and application API on free
 * loopback ports, and workers (`--runtime process`) registered with the cluster.
 */
export async function startProcessCluster(redis: Redis, options: ProcessClusterOptions): Promise<ProcessCluster> {
  const conf = {
    'spark.flint.auth.secret': options.secret,
    'spark.master.rest.port': '0',
    'spark.master.ui.port': '0',
    'spark.flint.master.appApi.enabled': 'true',
    'spark.flint.master.appApi.port': '0',
    ...options.conf,
  };
  const confArgs = Object.entries(conf).flatMap(([key, value]) => ['--conf', `${key}=${value}`]);
  const common = ['--redis', options.redisUrl, '--cluster', options.cluster];
  const dirs: TempDir[] = [];
  const workers: FlintChild[] = [];
  const master = spawnFlint(['master', ...common, ...confArgs, ...(options.masterArgs ?? [])], { label: 'master', env: options.env });
  const stop = async () => {
    await Promise.all(workers.map((worker) => stopFlint(worker)));
    await stopFlint(master);
    for (const dir of dirs) await dir.cleanup();
    const left = await removeClusterCgroups(options.cluster);
    if (left.length) process.stderr.write(`flint-cluster: the workers left task cgroups behind: ${left.join('; ')}\n`);
    await cleanupCluster(redis, options.cluster);
  };
  try {
    const urls = await waitForMasterUrls(master, ['rest', 'ui', 'appApi']);
    for (const [index, spec] of (options.workers ?? [{ cores: 2, memory: '512m' }]).entries()) {
      const dir = await makeTempDir(`cluster-worker-${index}`);
      dirs.push(dir);
      workers.push(
        spawnFlint(['worker', ...common, ...confArgs, '--runtime', 'process', '--port', '0', '--cores', String(spec.cores), '--memory', spec.memory, '--work-dir', dir.path, '--kill-on-exit'], {
          label: `worker-${index}`,
          env: options.env,
        }),
      );
    }
    const keys = clusterKeys(options.cluster);
    await waitFor(
      async () => {
        const dead = workers.find((worker) => worker.child.exitCode !== null);
        if (dead) throw new Error(`a worker exited: ${dead.output()}`);
        return (await redis.hlen(keys.schedulable)) === workers.length;
      },
      { timeoutMs: 30_000, message: `${workers.length} workers registered` },
    );
    return { master, workers, urls, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
