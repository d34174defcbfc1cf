/**
 * A real Flint cluster for the UI tests: the real master (functions host) in
 * this process, and protocol-level simulated workers that do what an agent does
 * on the wire: register with `RegisterWorker` (an ask), heartbeat through the
 * heartbeat script, read LaunchExecutor from their inbox stream and report
 * `ExecutorStateChanged` through the master queue. Each simulated worker also
 * serves a real worker UI (workers/worker-ui.ts) over a temp work dir, so log
 * links from the master UI lead somewhere real.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { loadConfig, type FlintConfig } from '../../protocol/config.ts';
import { clusterKeys, type Keys } from '../../protocol/keys.ts';
import type { RawStreamEntry } from '../../protocol/streams.ts';
import { fieldsToObject } from '../../protocol/streams.ts';
import { connectRedis } from '../../lib/redis.ts';
import { MasterClient } from '../../client/master-client.ts';
import { startMaster, type MasterHost, type MasterHostOptions } from '../../functions/host.ts';
import { recordHeartbeat } from '../../lib/worker-heartbeat.ts';
import { startWorkerUi, type WorkerExecutorView, type WorkerUiServer } from '../../workers/worker-ui.ts';
import { REDIS_URL } from '../helpers/env.ts';
import { cleanupCluster, makeTempDir, uniqueCluster, type TempDir } from '../helpers/isolation.ts';

export interface LaunchedExecutor {
  appId: string;
  execId: number;
  cores: number;
  memoryMB: number;
  epoch: number;
  state: string;
}

/** SimWorker: a worker that speaks Flint's protocol but runs nothing. */
export class SimWorker {
  epoch = 0;
  readonly launched: LaunchedExecutor[] = [];
  private lastInboxId = '0-0';
  private timer?: NodeJS.Timeout;
  private busy = false;
  ui?: WorkerUiServer;

  constructor(
    readonly id: string,
    readonly port: number,
    readonly cores: number,
    readonly memoryMB: number,
    private readonly cluster: SimCluster,
    readonly workDir: string,
    /** report RUNNING as soon as an executor is launched */
    readonly autoRun: boolean,
    /** the host it registers with (workers on one host share it) */
    readonly host = '127.0.0.1',
  ) {}

  async start(): Promise<void> {
    const running = () => this.running();
    const view = (e: LaunchedExecutor) => this.view(e);
    const launched = this.launched;
    this.ui = await startWorkerUi({
      workerId: this.id,
      masterUrl: this.cluster.masterUrl,
      workDir: this.workDir,
      cores: this.cores,
      memoryMB: this.memoryMB,
      coresUsed: () => running().reduce((n, e) => n + e.cores, 0),
      memoryUsed: () => running().reduce((n, e) => n + e.memoryMB, 0),
      executors: () => running().map(view),
      finishedExecutors: () => launched.filter((e) => !['LAUNCHING', 'RUNNING'].includes(e.state)).map(view),
      drivers: () => [],
      finishedDrivers: () => [],
    });
    const reply = await this.cluster.client.ask<{ type: string; epoch: number; message?: string }>('RegisterWorker', {
      id: this.id,
      host: this.host,
      port: this.port,
      cores: this.cores,
      memoryMB: this.memoryMB,
      webUiUrl: this.ui.url,
      resources: {},
      labels: {},
      executors: [],
      driverIds: [],
    });
    if (reply.type !== 'RegisteredWorker') throw new Error(`registration of ${this.id} refused: ${reply.message}`);
    this.epoch = reply.epoch;
    this.timer = setInterval(() => void this.tick(), 100);
  }

  private running(): LaunchedExecutor[] {
    return this.launched.filter((e) => e.state === 'LAUNCHING' || e.state === 'RUNNING');
  }

  private view(e: LaunchedExecutor): WorkerExecutorView {
    return { appId: e.appId, execId: e.execId, state: e.state, cores: e.cores, memoryMB: e.memoryMB, workDir: join(this.workDir, e.appId, String(e.execId)) };
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      await recordHeartbeat(this.cluster.redis, this.cluster.name, this.id, this.epoch);
      const reply = (await this.cluster.redis.xread('COUNT', 100, 'STREAMS', this.cluster.keys.workerInbox(this.id), this.lastInboxId)) as [string, RawStreamEntry[]][] | null;
      for (const entry of reply?.[0]?.[1] ?? []) {
        this.lastInboxId = entry[0];
        const raw = fieldsToObject(entry[1]);
        const body = JSON.parse(raw.body ?? '{}') as Record<string, unknown>;
        if (raw.type === 'LaunchExecutor') {
          const e: LaunchedExecutor = {
            appId: String(body.appId),
            execId: Number(body.execId),
            cores: Number(body.cores),
            memoryMB: Number(body.memoryMB),
            epoch: Number(body.epoch),
            state: 'LAUNCHING',
          };
          this.launched.push(e);
          const dir = join(this.workDir, e.appId, String(e.execId));
          await mkdir(dir, { recursive: true });
          await writeFile(join(dir, 'stdout'), `executor ${e.execId} of ${e.appId} started\n`);
          await writeFile(join(dir, 'stderr'), '');
          if (this.autoRun) await this.report(e.appId, e.execId, 'RUNNING');
        } else if (raw.type === 'KillExecutor') {
          const e = this.find(String(body.appId), Number(body.execId));
          if (e && (e.state === 'LAUNCHING' || e.state === 'RUNNING')) await this.report(e.appId, e.execId, 'KILLED', { exitStatus: 143 });
        }
      }
    } catch {
      // the next tick retries (e.g. during shutdown)
    } finally {
      this.busy = false;
    }
  }

  find(appId: string, execId: number): LaunchedExecutor | undefined {
    return this.launched.find((e) => e.appId === appId && e.execId === execId);
  }

  /** report sends ExecutorStateChanged exactly as an agent does. */
  async report(appId: string, execId: number, state: 'RUNNING' | 'KILLED' | 'FAILED' | 'LOST' | 'EXITED', extra: { exitStatus?: number; message?: string; oomKilled?: boolean } = {}): Promise<void> {
    const e = this.find(appId, execId);
    if (e) e.state = state;
    await this.cluster.client.ask('ExecutorStateChanged', { appId, execId, state, workerId: this.id, epoch: this.epoch, ...extra });
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    while (this.busy) await new Promise((r) => setTimeout(r, 10));
    await this.ui?.close();
  }
}

export interface SimCluster {
  name: string;
  config: FlintConfig;
  keys: Keys;
  redis: Redis;
  client: MasterClient;
  master: MasterHost;
  masterUrl: string;
  workers: SimWorker[];
  workDir: TempDir;
  addWorker(options: { cores: number; memoryMB: number; autoRun?: boolean; host?: string }): Promise<SimWorker>;
  registerApp(options: { name: string; maxCores?: number; coresPerExecutor?: number; memoryPerExecutorMB?: number; user?: string }): Promise<string>;
  close(): Promise<void>;
}

/** startSimCluster: a unique cluster with a real master; workers and apps are added by the test. */
export async function startSimCluster(
  prefix: string,
  overrides: Record<string, string> = {},
  /** prepare runs before the master starts (e.g. to start the UI and wire its metrics as onMessage/onPass) */
  prepare?: (config: FlintConfig) => Promise<Partial<MasterHostOptions>>,
): Promise<SimCluster> {
  const name = uniqueCluster(prefix);
  const config = loadConfig({ env: {}, overrides: { 'spark.flint.cluster': name, 'spark.master.rest.enabled': 'true', ...overrides } });
  const keys = clusterKeys(name);
  const redis = await connectRedis(REDIS_URL, { name: `test-${prefix}` });
  const workDir = await makeTempDir(prefix);
  let master: MasterHost | undefined;
  const client = new MasterClient(REDIS_URL, name, `test-${prefix}`);
  const workers: SimWorker[] = [];
  try {
    const hostOptions = prepare ? await prepare(config) : {};
    master = await startMaster({ redisUrl: REDIS_URL, config, ...hostOptions });
  } catch (error) {
    await client.close();
    await cleanupCluster(redis, name);
    redis.disconnect();
    await workDir.cleanup();
    throw error;
  }
  let nextPort = 20000 + Math.floor(Math.random() * 20000);
  const cluster: SimCluster = {
    name,
    config,
    keys,
    redis,
    client,
    master,
    masterUrl: `spark://${config.get<string>('spark.master.host')}:${config.get<number>('spark.master.port')}`,
    workers,
    workDir,
    async addWorker(options) {
      const index = workers.length + 1;
      const worker = new SimWorker(`worker-${name}-${index}`, nextPort++, options.cores, options.memoryMB, cluster, join(workDir.path, `w${index}`), options.autoRun ?? true, options.host);
      await mkdir(worker.workDir, { recursive: true });
      workers.push(worker);
      await worker.start();
      return worker;
    },
    async registerApp(options) {
      const reply = await client.ask<{ appId: string }>('RegisterApplication', {
        clientId: `client-${options.name.replace(/[^A-Za-z0-9._-]/g, '_')}-${Math.random().toString(36).slice(2)}`,
        appDescription: {
          name: options.name,
          image: 'flint-test-busybox:latest',
          command: ['sleep', '3600'],
          env: {},
          maxCores: options.maxCores,
          coresPerExecutor: options.coresPerExecutor,
          memoryPerExecutorMB: options.memoryPerExecutorMB ?? 512,
          resourcesPerExecutor: [],
          user: options.user ?? 'tester',
          appUiUrl: '',
          priority: 0,
          labels: {},
        },
      });
      return reply.appId;
    },
    async close() {
      for (const w of workers) await w.stop().catch(() => undefined);
      await master!.stop().catch(() => undefined);
      await client.close();
      await cleanupCluster(redis, name);
      redis.disconnect();
      await workDir.cleanup();
    },
  };
  return cluster;
}
