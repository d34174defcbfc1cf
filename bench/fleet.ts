/**
 * SimulatedFleet: thousands of lightweight worker agents in one process, for the
 * scheduling and heartbeat benchmarks. Each simulated worker speaks the real
 * protocol without containers behind it:
 *  - registers through the RegisterWorker commit script (MasterStore.registerWorker);
 *  - heartbeats with recordHeartbeat (the same script agents call);
 *  - reads LaunchExecutor commands from its own inbox stream with the agents'
 *    consumer group, and acknowledges each launch the way an agent does: an
 *    ExecutorStateChanged RUNNING job on the master queue, then XACK.
 *
 * Real agents block on their own inbox; 10,000 blocked connections do not fit in
 * one process, so the fleet uses the cluster event stream (`ExecutorsAdded` names
 * the worker) as a doorbell and then reads exactly those inboxes, pipelined. The
 * cluster stream is capped (MAXLEN ~ 10,000), so doorbells can be trimmed away
 * before they are read: whenever the stream is quiet, the fleet also sweeps every
 * inbox once. The master's work per launch is the same as with real agents.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { clusterKeys, type Keys } from '../protocol/keys.ts';
import { decodeInboxEntry, fieldsToObject, INBOX_GROUP, type RawStreamEntry } from '../protocol/streams.ts';
import { MasterStore } from '../functions/store/master-store.ts';
import { recordHeartbeat } from '../lib/worker-heartbeat.ts';
import { MASTER_JOB_OPTIONS } from '../client/master-client.ts';
import { bullConnection, connectRedis } from '../lib/redis.ts';
import type { FlintConfig } from '../protocol/config.ts';
import { runConcurrently } from './common.ts';

export interface SimulatedWorker {
  id: string;
  epoch: number;
}

export interface FleetOptions {
  redisUrl: string;
  config: FlintConfig;
  cores: number;
  memoryMB: number;
}

export class SimulatedFleet {
  readonly keys: Keys;
  readonly workers = new Map<string, SimulatedWorker>();
  /** launches acknowledged (RUNNING reported) */
  acknowledged = 0;
  /** first time (performance.now) each executor `appId/execId` was acknowledged */
  readonly runningAt = new Map<string, number>();
  private redis!: Redis;
  private reader!: Redis;
  private queue!: Queue;
  private store!: MasterStore;
  private stopped = false;
  private ackLoop?: Promise<void>;
  private beatTimer?: NodeJS.Timeout;
  private silenced = new Set<string>();
  private sweepNeeded = false;
  private get ids(): string[] {
    return [...this.workers.keys()].filter((id) => !this.silenced.has(id));
  }

  constructor(private readonly options: FleetOptions) {
    this.keys = clusterKeys(options.config.cluster);
  }

  async open(): Promise<void> {
    this.redis = await connectRedis(this.options.redisUrl, { name: 'bench-fleet' });
    this.reader = await connectRedis(this.options.redisUrl, { name: 'bench-fleet-reader', blocking: true });
    this.store = new MasterStore(this.redis, this.options.config);
    this.queue = new Queue(this.keys.masterQueue, { connection: bullConnection(this.options.redisUrl, { name: 'bench-fleet-queue' }), prefix: this.keys.bullPrefix });
  }

  /** register adds `count` workers named `<prefix>-<n>` through the RegisterWorker script, 64 at a time. */
  async register(count: number, prefix = 'sim', firstPort = 10000): Promise<SimulatedWorker[]> {
    const added: SimulatedWorker[] = [];
    await runConcurrently(count, 64, async (index) => {
      const id = `${prefix}-${String(index).padStart(5, '0')}`;
      const result = await this.store.registerWorker(
        {
          id,
          host: '127.0.0.1',
          port: firstPort + index,
          cores: this.options.cores,
          memoryMB: this.options.memoryMB,
          webUiUrl: '',
          resources: {},
          labels: {},
          executors: [],
          driverIds: [],
        },
        Date.now(),
      );
      if (result.type !== 'RegisteredWorker') throw new Error(`simulated worker ${id} was refused: ${result.message}`);
      const worker = { id, epoch: result.epoch };
      this.workers.set(id, worker);
      added.push(worker);
    });
    // the agents' consumer group on every inbox, as each agent creates its own
    for (let i = 0; i < added.length; i += 1000) {
      const pipeline = this.redis.pipeline();
      for (const worker of added.slice(i, i + 1000)) pipeline.xgroup('CREATE', this.keys.workerInbox(worker.id), INBOX_GROUP, '0', 'MKSTREAM');
      await pipeline.exec();
    }
    return added;
  }

  /** startHeartbeats beats every worker every `intervalMs` (spread over the interval), except silenced ones. */
  startHeartbeats(intervalMs: number): void {
    const ids = () => [...this.workers.values()];
    let cursor = 0;
    const tickMs = 50;
    this.beatTimer = setInterval(() => {
      const all = ids();
      const perTick = Math.max(1, Math.ceil((all.length * tickMs) / intervalMs));
      for (let i = 0; i < perTick && all.length; i++) {
        const worker = all[cursor++ % all.length]!;
        if (this.silenced.has(worker.id)) continue;
        void recordHeartbeat(this.redis, this.keys.cluster, worker.id, worker.epoch).catch(() => undefined);
      }
    }, tickMs);
    this.beatTimer.unref();
  }

  /** silence stops one worker's heartbeats and acknowledgements: the worker is lost. */
  silence(workerId: string): void {
    this.silenced.add(workerId);
  }

  /** startAcknowledging follows the cluster event stream and reports RUNNING for every launch. */
  startAcknowledging(): void {
    this.ackLoop = this.acknowledgeLoop();
  }

  private async acknowledgeLoop(): Promise<void> {
    let cursor = '0';
    while (!this.stopped) {
      let batches: [string, RawStreamEntry[]][] | null;
      try {
        batches = (await this.reader.xread('COUNT', 5000, 'BLOCK', 200, 'STREAMS', this.keys.clusterEvents, cursor)) as [string, RawStreamEntry[]][] | null;
      } catch (error) {
        if (this.stopped) return;
        throw error;
      }
      if (!batches) {
        // quiet: catch launches whose doorbell was trimmed from the capped stream
        if (this.sweepNeeded) {
          this.sweepNeeded = false;
          for (let i = 0; i < this.ids.length && !this.stopped; i += 1000) await this.drainInboxes(this.ids.slice(i, i + 1000));
        }
        continue;
      }
      this.sweepNeeded = true;
      const doorbell = new Set<string>();
      for (const [id, fields] of batches[0]![1]) {
        cursor = id;
        const raw = fieldsToObject(fields);
        if (raw.type !== 'ExecutorsAdded') continue;
        const { workerIds = [] } = JSON.parse(raw.body ?? '{}') as { workerIds?: string[] };
        for (const workerId of workerIds) {
          if (this.workers.has(workerId) && !this.silenced.has(workerId)) doorbell.add(workerId);
        }
      }
      if (doorbell.size) await this.drainInboxes([...doorbell]);
    }
  }

  private async drainInboxes(workerIds: string[]): Promise<void> {
    const read = this.redis.pipeline();
    for (const id of workerIds) read.xreadgroup('GROUP', INBOX_GROUP, id, 'COUNT', 1000, 'STREAMS', this.keys.workerInbox(id), '>');
    const results = (await read.exec()) ?? [];
    const jobs: { name: string; data: unknown; opts: typeof MASTER_JOB_OPTIONS }[] = [];
    const acks = this.redis.pipeline();
    results.forEach(([error, value], index) => {
      if (error || !value) return;
      const workerId = workerIds[index]!;
      const worker = this.workers.get(workerId)!;
      for (const entry of (value as [string, RawStreamEntry[]][])[0]![1]) {
        const decoded = decodeInboxEntry(entry);
        acks.xack(this.keys.workerInbox(workerId), INBOX_GROUP, entry[0]);
        if (!decoded.parsed.ok || decoded.type !== 'LaunchExecutor') continue;
        const launch = decoded.parsed.value.body as { appId: string; execId: number; epoch: number };
        if (launch.epoch !== worker.epoch) continue; // an agent refuses commands of another registration
        jobs.push({
          name: 'ExecutorStateChanged',
          data: { appId: launch.appId, execId: launch.execId, state: 'RUNNING', workerId, epoch: worker.epoch },
          opts: MASTER_JOB_OPTIONS,
        });
        const key = `${launch.appId}/${launch.execId}`;
        if (!this.runningAt.has(key)) this.runningAt.set(key, performance.now());
      }
    });
    for (let i = 0; i < jobs.length; i += 1000) await this.queue.addBulk(jobs.slice(i, i + 1000));
    await acks.exec();
    this.acknowledged += jobs.length;
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.beatTimer) clearInterval(this.beatTimer);
    this.reader.disconnect();
    await this.ackLoop?.catch(() => undefined);
    await this.queue.close();
    this.redis.disconnect();
  }
}
