/**
 * `flint up`: a complete local cluster in one command — Redis (embedded when none
 * is configured), two master handler processes, two worker agents, and the REST
 * submission server, the application HTTP API and the web UI, which `up` serves
 * itself through the master's own entry (startMasterServices, as `flint master`) — and,
 * with `--demo`, the SparkPi-like demo job submitted in cluster mode. Ctrl-C (or the end of the demo) stops everything it started: processes,
 * containers, the embedded Redis and its data, temporary directories, and (on an
 * external Redis) every key of the run's cluster. The command's definition is
 * up-command.ts, which imports this module only when the command runs.
 */
import { waitForSignal } from '../lib/signals.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { envNameFor, formatSparkId, loadConfig, parseConfFlags, sparkTimestamp, type FlintConfig } from '../protocol/config.ts';
import { clusterKeyPattern, clusterKeys } from '../protocol/keys.ts';
import { connectRedisOrCluster, redactRedisUrl, scanTargets } from '../lib/redis.ts';
import { startEmbeddedRedis, type EmbeddedRedis } from '../lib/embedded-redis.ts';
import { credentialsFromConfig, resolveRedisUrl, stripCredentials } from '../lib/redis-credentials.ts';
import { setUpRunCredentials } from './up-credentials.ts';
import { FLINT_BIN } from '../lib/package-layout.ts';
import { Docker } from '../lib/docker.ts';
import { signToken } from '../lib/http/auth.ts';
import { startMasterServices } from '../functions/master-main.ts';
import { pingDocker } from '../workers/worker-main.ts';
import type { CommandIo } from './command-io.ts';
import { runDemoWithProgress } from './demo-progress.ts';


export interface UpOptions {
  redis?: string;
  cluster?: string;
  masters: number;
  workers: number;
  workerCores?: number;
  workerMemory?: string;
  runtime: 'auto' | 'docker' | 'process';
  restPort: number;
  uiPort: number;
  demo: boolean;
  slices: number;
  conf: string[];
  propertiesFile?: string;
}

export interface RunningCluster {
  cluster: string;
  /** the cluster's Redis, without credentials */
  redisUrl: string;
  restUrl: string;
  /** the application HTTP API, for drivers */
  appApiUrl: string;
  uiUrl: string;
  /** admin token (printed) */
  token: string;
  /** token with the submit scope only, handed to drivers as FLINT_TOKEN */
  driverToken: string;
  runtime: 'docker' | 'process';
  workDir: string;
  config: FlintConfig;
  /** stop everything `up` started; idempotent */
  stop(): Promise<void>;
}

/** SECRET_CONF_KEYS: configuration a child gets through its environment, never its command line. */
const SECRET_CONF_KEYS = new Set(['spark.flint.auth.secret', 'spark.flint.redis.url', 'spark.flint.redis.user', 'spark.flint.redis.passwordFile']);

/**
 * childConf splits `--conf k=v` flags for the child processes: the secret-bearing ones
 * go to their environment (FLINT_<KEY>), except the Redis connection, which each child
 * gets from its own credentials; the rest stay flags.
 */
export function childConf(conf: readonly string[]): { flags: string[]; env: Record<string, string> } {
  const flags: string[] = [];
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(parseConfFlags(conf))) {
    if (!SECRET_CONF_KEYS.has(key)) flags.push('--conf', `${key}=${value}`);
    else if (key === 'spark.flint.auth.secret') env[envNameFor(key)] = value;
  }
  return { flags, env };
}

function startChild(args: string[], label: string, env: Record<string, string> = {}): ChildProcess {
  // the user's working directory, so relative paths (--properties-file) mean the same to every process
  const child = spawn(process.execPath, [FLINT_BIN, ...args], {
    env: { ...process.env, FLINT_LOG_LEVEL: process.env.FLINT_LOG_LEVEL ?? 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const prefix = (chunk: Buffer) =>
    chunk
      .toString()
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => `[${label}] ${line}\n`)
      .join('');
  child.stdout?.on('data', (chunk: Buffer) => process.stdout.write(prefix(chunk)));
  child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(prefix(chunk)));
  return child;
}

async function stopChild(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string, failFast?: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const failure = failFast?.();
    if (failure) throw new Error(failure);
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** startLocalCluster starts everything and returns once the workers are registered and the servers listen. */
export async function startLocalCluster(options: UpOptions, io: CommandIo): Promise<RunningCluster> {
  const cleanups: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup().catch((error) => io.err(`flint up: cleanup step failed: ${(error as Error).message}`));
    }
  };
  try {
    const overrides = parseConfFlags(options.conf);
    const baseConfig = loadConfig({ propertiesFile: options.propertiesFile, overrides });
    const configuredRedis = options.redis ?? baseConfig.redisUrl;
    // a fresh cluster name on a shared Redis, so everything of this run can be removed
    const cluster = options.cluster ?? (configuredRedis ? `up-${randomBytes(4).toString('hex')}` : baseConfig.cluster);
    const secret = baseConfig.authSecret ?? randomBytes(32).toString('base64url');
    // the services `up` serves itself, through the same entry as `flint master`: the REST
    // server and web UI on the --rest-port/--ui-port, the application API for drivers
    // (on a free port unless configured)
    const config = loadConfig({
      propertiesFile: options.propertiesFile,
      overrides: {
        'spark.flint.master.appApi.port': '0',
        ...overrides,
        'spark.flint.cluster': cluster,
        'spark.flint.auth.secret': secret,
        'spark.master.rest.enabled': 'true',
        'spark.master.rest.port': String(options.restPort),
        'spark.flint.master.ui.enabled': 'true',
        'spark.master.ui.port': String(options.uiPort),
        'spark.flint.master.appApi.enabled': 'true',
      },
    });

    // Redis: the embedded one (its admin password is generated and kept in memory) or the
    // configured one (credentials from spark.flint.redis.user/passwordFile or the URL)
    let adminUrl: string;
    if (!configuredRedis) {
      const embedded: EmbeddedRedis = await startEmbeddedRedis();
      cleanups.push(() => embedded.stop());
      adminUrl = embedded.adminUrl;
      io.out(`redis     ${embedded.url} (embedded, password required, data in ${embedded.dataDir}; removed on exit)`);
    } else {
      adminUrl = resolveRedisUrl(configuredRedis, credentialsFromConfig(baseConfig));
      io.out(`redis     ${redactRedisUrl(configuredRedis)} (cluster '${cluster}'; its keys are removed on exit)`);
      const url = adminUrl;
      cleanups.push(async () => {
        const redis = await connectRedisOrCluster(url, { name: 'flint-up-cleanup' });
        try {
          for (const server of scanTargets(redis)) {
            let cursor = '0';
            do {
              const [next, keys] = await server.scan(cursor, 'MATCH', clusterKeyPattern(cluster), 'COUNT', 1000);
              if (keys.length) await redis.unlink(...keys);
              cursor = next;
            } while (cursor !== '0');
          }
        } finally {
          redis.disconnect();
        }
      });
    }
    const redisUrl = stripCredentials(adminUrl);

    // every process its own Redis user; passwords in an owner-only directory, outside every work dir
    const secretsDir = await mkdtemp(join(tmpdir(), 'flint-up-secrets-'));
    cleanups.push(() => rm(secretsDir, { recursive: true, force: true }));
    const now = Date.now();
    // the worker ids are chosen here (spark.worker.idPattern, numbered) so that each gets its user before it starts
    const workerIds = Array.from({ length: options.workers }, (_, i) => formatSparkId(config.get<string>('spark.worker.idPattern'), [sparkTimestamp(now), '127.0.0.1', i + 1]));
    const credentials = await setUpRunCredentials({ adminUrl, cluster, workerIds, dir: secretsDir });
    cleanups.push(() => credentials.remove());
    io.out(
      credentials.fallbackReason
        ? `users     one Redis user for every process: ${credentials.fallbackReason}`
        : `users     Redis ACL users per role (masters, each worker, these servers); passwords in ${secretsDir} (owner only; removed on exit)`,
    );

    // runtime: Docker when its socket answers, else local processes
    let runtime: 'docker' | 'process' = options.runtime === 'auto' ? 'docker' : options.runtime;
    const docker = new Docker({ socketPath: '/var/run/docker.sock' });
    if (options.runtime !== 'process') {
      const ping = await pingDocker(docker, 2000);
      if (!ping.ok) {
        if (options.runtime === 'docker') throw new Error(`the Docker engine does not answer (${ping.why}); start it (bash infra/setup.sh) or use --runtime process`);
        runtime = 'process';
        io.out(`runtime   no Docker engine answered (${ping.why}): executors and drivers run as local processes`);
      }
    }
    if (runtime === 'docker') {
      io.out('runtime   docker (containers are removed on exit)');
      cleanups.push(async () => {
        const leftovers = await docker.listContainers({ all: true, filters: { label: [`flint.cluster=${cluster}`] } });
        await Promise.all(leftovers.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
      });
    }

    const workDir = await mkdtemp(join(tmpdir(), 'flint-up-'));
    // tasks run as an unprivileged user and reach their directories by path: searchable, not listable
    await chmod(workDir, 0o711);
    cleanups.push(() => rm(workDir, { recursive: true, force: true }));

    const forwarded = childConf(options.conf);
    const common = ['--cluster', cluster, ...forwarded.flags];
    if (options.propertiesFile) common.push('--properties-file', options.propertiesFile);
    // the master processes only handle messages: `up` serves the HTTP services itself (below)
    const handlersOnly = ['spark.master.rest.enabled=false', 'spark.flint.master.ui.enabled=false', 'spark.flint.master.appApi.enabled=false'].flatMap((c) => ['--conf', c]);
    const children: ChildProcess[] = [];
    cleanups.push(async () => {
      // workers first (they kill their executors), then the masters
      await Promise.all(children.slice(options.masters).map((child) => stopChild(child)));
      await Promise.all(children.slice(0, options.masters).map((child) => stopChild(child)));
    });
    const exitedEarly = () => {
      const dead = children.find((child) => child.exitCode !== null);
      return dead ? `a process of the cluster exited early (code ${dead.exitCode}); see its output above` : undefined;
    };

    for (let i = 0; i < options.masters; i++) children.push(startChild(['master', ...credentials.master.args, ...common, ...handlersOnly], `master-${i + 1}`, forwarded.env));
    const keys = clusterKeys(cluster);
    const probe = await connectRedisOrCluster(adminUrl, { name: 'flint-up-probe' });
    cleanups.push(async () => probe.disconnect());
    await waitUntil(async () => (await probe.hlen(keys.masters)) >= options.masters, 30_000, `${options.masters} master processes`, exitedEarly);

    const cores = options.workerCores ?? Math.max(1, Math.floor(cpus().length / options.workers) || 1) * 2;
    const memory = options.workerMemory ?? `${Math.max(512, Math.floor(totalmem() / 1024 / 1024 / 4 / options.workers))}m`;
    for (let i = 0; i < options.workers; i++) {
      children.push(
        startChild(
          ['worker', ...credentials.worker(workerIds[i]!).args, ...common, '--id', workerIds[i]!, '--work-dir', join(workDir, `worker-${i + 1}`), '--port', '0', '--cores', String(cores), '--memory', memory, '--runtime', runtime, '--kill-on-exit'],
          `worker-${i + 1}`,
          forwarded.env,
        ),
      );
    }
    await waitUntil(async () => (await probe.hlen(keys.schedulable)) >= options.workers, 60_000, `${options.workers} workers to register`, exitedEarly);

    // the REST server, application API and UI run as the client user: they read state and enqueue, and keep the applications' heartbeat state
    const services = await startMasterServices({ redisUrl: credentials.client.url, config });
    cleanups.push(() => services.close());
    const servers = { restUrl: services.restUrl!, appApiUrl: services.appApiUrl!, uiUrl: services.uiUrl! };
    const token = signToken(secret, { scope: ['admin'], ttlSeconds: 24 * 3600, subject: 'flint-up' });
    // drivers (the demo's among them) register applications with a token that can do no more
    const driverToken = signToken(secret, { scope: ['submit'], ttlSeconds: 24 * 3600, subject: 'flint-up-driver' });

    io.out(`masters   ${options.masters} handler processes`);
    io.out(`workers   ${options.workers} agents, ${cores} cores and ${memory} each, work dir ${workDir}`);
    io.out(`rest      ${servers.restUrl}  (flint submit --master ${servers.restUrl} ...)`);
    io.out(`app api   ${servers.appApiUrl}  (drivers register applications here: FLINT_APP_API)`);
    io.out(`web ui    ${servers.uiUrl}  (/json, /metrics)`);
    io.out(`token     export FLINT_TOKEN=${token}`);

    return {
      cluster,
      redisUrl,
      restUrl: servers.restUrl,
      appApiUrl: servers.appApiUrl,
      uiUrl: servers.uiUrl,
      token,
      driverToken,
      runtime,
      workDir,
      config,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/**
 * runUp starts the cluster, then runs the demo (--demo) or waits for Ctrl-C, and
 * stops everything it started either way; returns the exit code (the demo's).
 */
export async function runUp(flags: UpOptions, io: CommandIo): Promise<number> {
  // the cluster's own components log warnings and errors; the command prints what it does
  process.env.FLINT_LOG_LEVEL ??= 'warn';
  for (const [name, value] of [['--masters', flags.masters], ['--workers', flags.workers], ['--slices', flags.slices]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  }
  if (!['auto', 'docker', 'process'].includes(flags.runtime)) throw new Error('--runtime must be auto, docker or process');
  const cluster = await startLocalCluster(flags, io);
  let exitCode = 0;
  try {
    if (flags.demo) {
      // Ctrl-C during the demo kills its driver, then everything stops as usual
      const interrupted = new AbortController();
      const onSignal = () => interrupted.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        exitCode = await runDemoWithProgress(cluster, { slices: flags.slices, signal: interrupted.signal }, io);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    } else {
      io.out('flint up: cluster running; press Ctrl-C to stop everything');
      await waitForSignal();
    }
  } finally {
    io.out('flint up: stopping...');
    await cluster.stop();
    io.out('flint up: stopped; nothing left running');
  }
  return exitCode;
}
