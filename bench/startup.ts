/**
 * Benchmark of what a user of the installed package pays before any work: the time
 * of `flint --help` and the resident memory of an idle `flint master` and an idle
 * `flint worker`. It measures the package as a user gets it: this checkout packed
 * and installed into an empty prefix with production dependencies only
 * (infra/pack-install.sh, the same step CI runs), so the code is the compiled dist/
 * and the node_modules tree is the one `npm install --omit=dev` makes.
 *
 * - `flint --help`: the whole process, from fork to exit, one warm-up then N runs,
 *   min / median / max of the wall time and of the CPU time; beside it bare
 *   `node -e ''` (the floor: Node's own start) and the checkout's
 *   `node bin/flint.js --help` (TypeScript through tsx).
 * - idle RSS: one master as configured by default (Spark's REST server and the web UI
 *   on), one master with both off (message handlers only) and one worker (the default
 *   runtime: Docker when the engine answers) on a fresh cluster; once the worker has registered and both have settled
 *   (settleS), VmRSS of both is sampled every 500 ms for sampleS and the median and the
 *   largest sample are reported (the goal is judged on the largest), with VmHWM (the
 *   peak, reached while starting). Beside them an idle bare Node process, the floor.
 * - where it goes: the RSS of a fresh Node process that imported one package of the
 *   installed tree and nothing else, less the bare process's.
 *
 *   node --import tsx bench/startup.ts      (`npm run bench` runs it too)
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import { REDIS_URL, REPO_ROOT, benchCluster, deleteClusterKeys, round, sleep } from './common.ts';

export interface Spread {
  runs: number;
  min: number;
  median: number;
  max: number;
}

export interface IdleRss {
  /** VmRSS once the process said it was ready, MB */
  atReadyMb: number;
  /** median and largest VmRSS over the sampling window, MB */
  settledMedianMb: number;
  settledMaxMb: number;
  /** VmHWM at the end of the window: the peak, reached while starting, MB */
  peakMb: number;
  samples: number;
}

export interface StartupBenchResult {
  install: { packAndInstallS: number; installedMb: number };
  /** seconds, whole process */
  help: { installed: ProcessTime; bareNode: ProcessTime; checkoutSources: ProcessTime };
  /** master: as configured by default (REST server and web UI on, on free ports here); masterHandlersOnly: both turned off */
  idle: { settleS: number; sampleS: number; master: IdleRss; masterHandlersOnly: IdleRss; worker: IdleRss; workerRuntime: string; bareNode: IdleRss };
  /** MB of RSS a fresh process gains by importing one package of the installed tree */
  packageRssMb: Array<{ name: string; mb: number }>;
}

const PACKAGES = ['commander', 'ms', 'zod', 'pino', 'ioredis', 'bullmq', 'hono', '@hono/node-server', 'prom-client', 'dockerode', '@bull-board/api'];

function spread(samples: number[], digits = 3): Spread {
  const sorted = [...samples].sort((a, b) => a - b);
  return { runs: sorted.length, min: round(sorted[0]!, digits), median: round(sorted[Math.floor(sorted.length / 2)]!, digits), max: round(sorted.at(-1)!, digits) };
}

/** run spawns a command to its end; resolves with its output, or throws with it when it fails. */
async function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ stdout: string; stderr: string }> {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (exitCode) => resolve(exitCode));
  });
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${code}: ${stderr.trim().split('\n').slice(-5).join(' | ')}`);
  return { stdout, stderr };
}

/** ProcessTime: a whole process's wall time and its CPU time (user + system), seconds. */
export interface ProcessTime {
  wall: Spread;
  cpu: Spread;
}

/**
 * timeProcess: each run of a whole process, after `warmup` runs that are not counted,
 * timed by bash's `time` around fork, exec and wait (its CPU time is the kernel's
 * account of the process, which a busy machine disturbs less than the wall time).
 */
async function timeProcess(command: string, args: string[], runs: number, warmup = 1, env?: NodeJS.ProcessEnv): Promise<ProcessTime> {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    const { stderr } = await run('bash', ['-c', 'TIMEFORMAT="%3R %3U %3S"; time "$@" >/dev/null 2>&1', 'time', command, ...args], { env });
    const [real, user, system] = stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
    if (i >= warmup) {
      wall.push(real!);
      cpu.push(user! + system!);
    }
  }
  return { wall: spread(wall), cpu: spread(cpu) };
}

async function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!match) throw new Error(`no ${field} for pid ${pid}`);
  return Number(match[1]);
}

/** sampleRss samples VmRSS of every pid every 500 ms for `seconds`. */
async function sampleRss(pids: number[], seconds: number, atReadyKb: number[]): Promise<IdleRss[]> {
  const samples: number[][] = pids.map(() => []);
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    for (const [i, pid] of pids.entries()) samples[i]!.push((await statusKb(pid, 'VmRSS')) / 1024);
    await sleep(500);
  }
  return Promise.all(
    pids.map(async (pid, i) => {
      const s = spread(samples[i]!, 1);
      return { atReadyMb: round(atReadyKb[i]! / 1024, 1), settledMedianMb: s.median, settledMaxMb: s.max, peakMb: round((await statusKb(pid, 'VmHWM')) / 1024, 1), samples: s.runs };
    }),
  );
}

interface Daemon {
  pid: number;
  output(): string;
  exited: Promise<string>;
  stop(): Promise<string>;
}

/** startDaemon starts a long-running process and resolves once `ready` matches its standard output. */
async function startDaemon(command: string, args: string[], ready: RegExp, env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<Daemon> {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? String(code))));
  const daemon: Daemon = {
    pid: child.pid!,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const how = await exited;
      clearTimeout(killer);
      return how;
    },
  };
  const deadline = Date.now() + timeoutMs;
  while (!ready.test(output)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${args.join(' ')} exited before it was ready: ${output.trim().split('\n').slice(-3).join(' | ')}`);
    if (Date.now() > deadline) {
      await daemon.stop();
      throw new Error(`${args.join(' ')} was not ready after ${timeoutMs} ms: ${output.trim().split('\n').slice(-3).join(' | ')}`);
    }
    await sleep(50);
  }
  return daemon;
}

/** packageRss: RSS (MB) of a fresh process that imported `name` from the installed tree (or nothing), after a collection and a pause. */
async function packageRss(packageDir: string, name: string | undefined): Promise<number> {
  const script = `${name ? `await import(${JSON.stringify(name)});` : ''} await new Promise((r) => setTimeout(r, 1000)); globalThis.gc(); await new Promise((r) => setTimeout(r, 200)); process.stdout.write(String(process.memoryUsage().rss));`;
  // the young generation held small, as in an idle master or worker (lib/idle-memory.ts)
  const { stdout } = await run(process.execPath, ['--expose-gc', '--max-semi-space-size=1', '--input-type=module', '-e', script], { cwd: packageDir });
  return Number(stdout) / 1024 / 1024;
}

/** runStartupBench packs and installs the package, measures it, and removes the install and its cluster. */
export async function runStartupBench(options: { helpRuns: number; settleS: number; sampleS: number; redisUrl?: string }): Promise<StartupBenchResult> {
  const redisUrl = options.redisUrl ?? REDIS_URL;
  const prefix = await mkdtemp(join(tmpdir(), 'flint-bench-install-'));
  const workDir = await mkdtemp(join(tmpdir(), 'flint-bench-worker-'));
  const cluster = benchCluster('startup');
  const daemons: Daemon[] = [];
  try {
    const installStarted = Date.now();
    const installed = await run('bash', [join(REPO_ROOT, 'infra', 'pack-install.sh'), join(prefix, 'root')]);
    const flint = installed.stdout.trim().split('\n').at(-1)!;
    const packAndInstallS = round((Date.now() - installStarted) / 1000, 1);
    const packageDir = join(prefix, 'root', 'lib', 'node_modules', 'flint');
    const installedMb = round(Number((await run('du', ['-sk', join(prefix, 'root')])).stdout.split('\t')[0]) / 1024, 1);
    // the installed command's `#!/usr/bin/env node` must find this Node; the
    // processes log as a user's do (info), so the figures include pino's work
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` };
    delete env.FLINT_LOG_LEVEL;
    delete env.NODE_ENV;

    const help = {
      installed: await timeProcess(flint, ['--help'], options.helpRuns, 1, env),
      bareNode: await timeProcess(process.execPath, ['-e', ''], options.helpRuns),
      checkoutSources: await timeProcess(process.execPath, [join(REPO_ROOT, 'bin', 'flint.js'), '--help'], options.helpRuns),
    };

    const common = ['--redis', redisUrl, '--cluster', cluster];
    // Spark's defaults (REST server and web UI on), on free ports so that nothing else on the machine is in the way
    const master = await startDaemon(flint, ['master', ...common, '--conf', 'spark.master.rest.port=0', '--conf', 'spark.master.ui.port=0'], /web UI on/, env);
    daemons.push(master);
    const masterReadyKb = await statusKb(master.pid, 'VmRSS');
    const handlersOnly = await startDaemon(flint, ['master', ...common, '--conf', 'spark.master.rest.enabled=false', '--conf', 'spark.flint.master.ui.enabled=false'], /handling cluster/, env);
    daemons.push(handlersOnly);
    const handlersOnlyReadyKb = await statusKb(handlersOnly.pid, 'VmRSS');
    const worker = await startDaemon(flint, ['worker', ...common, '--work-dir', workDir, '--port', '0', '--cores', '1', '--memory', '512m'], /registered \(epoch/, env);
    daemons.push(worker);
    const workerReadyKb = await statusKb(worker.pid, 'VmRSS');
    const bare = await startDaemon(process.execPath, ['-e', 'process.stdout.write("ready\\n"); setInterval(() => {}, 1000)'], /ready/, env);
    daemons.push(bare);
    const bareReadyKb = await statusKb(bare.pid, 'VmRSS');
    const workerRuntime = /"msg":"runtime (\w+)/.exec(worker.output())?.[1] ?? 'unknown';
    await sleep(options.settleS * 1000);
    const [masterRss, handlersOnlyRss, workerRss, bareRss] = await sampleRss(
      [master.pid, handlersOnly.pid, worker.pid, bare.pid],
      options.sampleS,
      [masterReadyKb, handlersOnlyReadyKb, workerReadyKb, bareReadyKb],
    );
    for (const daemon of daemons.reverse()) {
      const how = await daemon.stop();
      if (daemon !== bare && how !== '0') throw new Error(`a process did not stop cleanly on SIGTERM (${how}): ${daemon.output().trim().split('\n').slice(-3).join(' | ')}`);
    }
    daemons.length = 0;

    const floor = await packageRss(packageDir, undefined);
    const packageRssMb: Array<{ name: string; mb: number }> = [{ name: 'bare node', mb: round(floor, 1) }];
    for (const name of PACKAGES) packageRssMb.push({ name, mb: round((await packageRss(packageDir, name)) - floor, 1) });

    return {
      install: { packAndInstallS, installedMb },
      help,
      idle: { settleS: options.settleS, sampleS: options.sampleS, master: masterRss!, masterHandlersOnly: handlersOnlyRss!, worker: workerRss!, workerRuntime, bareNode: bareRss! },
      packageRssMb,
    };
  } finally {
    await Promise.all(daemons.map((daemon) => daemon.stop()));
    const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
    try {
      await redis.connect();
      await deleteClusterKeys(redis, cluster);
    } finally {
      redis.disconnect();
    }
    await rm(prefix, { recursive: true, force: true });
    await rm(workDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  runStartupBench({ helpRuns: 10, settleS: 25, sampleS: 15 }).then(
    (result) => console.log(JSON.stringify(result, null, 2)),
    (error) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
