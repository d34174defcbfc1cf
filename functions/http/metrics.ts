/**
 * Prometheus metrics of a Flint process (`/metrics`), with prom-client on a
 * registry of its own (never the global default one, so several servers in one
 * test process do not collide).
 *
 * Two kinds of series:
 *  - observed in this process: handler durations (`observeMessage`, wired to the
 *    functions host's `onMessage`), scheduling passes and placements
 *    (`observePass`, wired to `onPass`), and container launches counted from the
 *    cluster event stream as this process reads it (`recordClusterEvents`);
 *  - read from Redis at scrape time: queue depth, workers by state, cores and
 *    memory, dead letters. Every master process reports the same values for these,
 *    so dashboards should take max() across processes, not sum().
 */
import { Counter, Gauge, Histogram, Registry } from '../../lib/prometheus.ts';
import type { RedisConnection } from '../../lib/redis.ts';
import type { Keys } from '../../protocol/keys.ts';
import { readWorkerCapacities } from '../store/read-state.ts';
import type { ClusterEvent } from './ui/event-feed.ts';

/** JobCountsSource: what queue depth needs from a BullMQ Queue. */
export interface JobCountsSource {
  getJobCounts(...types: string[]): Promise<Record<string, number>>;
}

export interface FlintMetricsOptions {
  redis: RedisConnection;
  keys: Keys;
  /** the master's inbound queue (BullMQ Queue); without it flint_queue_depth is absent */
  queue?: JobCountsSource;
}

export interface MessageObservation {
  type: string;
  durationMs: number;
  outcome: 'ok' | 'rejected' | 'error';
}

export interface PassObservation {
  durationMs: number;
  executors: number;
  drivers: number;
  rejected: number;
}

const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed', 'paused'] as const;
const WORKER_STATES = ['ALIVE', 'DEAD', 'DECOMMISSIONED', 'UNKNOWN'] as const;
const FINISHED = new Set(['FAILED', 'LOST', 'EXITED']);
const MB = 1024 * 1024;

export interface FlintMetrics {
  registry: Registry;
  contentType: string;
  /** observeMessage: the functions host's `onMessage` observer */
  observeMessage(info: MessageObservation): void;
  /** observePass: the scheduling loop's `onPass` observer */
  observePass(info: PassObservation): void;
  /** recordClusterEvents: counts container launches from a batch of the cluster event stream */
  recordClusterEvents(events: ClusterEvent[]): Promise<void>;
  /** render reads the gauges from Redis and returns the exposition text */
  render(): Promise<string>;
}

/** createFlintMetrics: the metric set of one process, on its own registry. */
export function createFlintMetrics(options: FlintMetricsOptions): FlintMetrics {
  const { redis, keys, queue } = options;
  const registry = new Registry();

  const queueDepth = new Gauge({ name: 'flint_queue_depth', help: 'Jobs in the master queue by state (BullMQ getJobCounts).', labelNames: ['queue', 'state'] as const, registers: [registry] });
  const handlerDuration = new Histogram({
    name: 'flint_handler_duration_seconds',
    help: 'Time to handle one master message, by message type and outcome.',
    labelNames: ['message', 'outcome'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const passDuration = new Histogram({
    name: 'flint_scheduling_pass_duration_seconds',
    help: 'Time of one scheduling pass (snapshot, decide, commit).',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const placements = new Counter({ name: 'flint_placements_total', help: 'Executors and drivers placed by scheduling passes of this process.', labelNames: ['kind'] as const, registers: [registry] });
  const rejectedPlacements = new Counter({ name: 'flint_placements_rejected_total', help: 'Placements a commit refused because the snapshot was stale.', registers: [registry] });
  const workers = new Gauge({ name: 'flint_workers', help: 'Known workers by state.', labelNames: ['state'] as const, registers: [registry] });
  const cores = new Gauge({ name: 'flint_cores', help: 'Cores of ALIVE workers.', labelNames: ['kind'] as const, registers: [registry] });
  // bytes, Prometheus's base unit (promtool rejects a _mb suffix)
  const memory = new Gauge({ name: 'flint_memory_bytes', help: 'Memory of ALIVE workers, in bytes.', labelNames: ['kind'] as const, registers: [registry] });
  const launches = new Counter({
    name: 'flint_container_launches_total',
    help: 'Executor containers that reached RUNNING (started) or ended before ever running (failed), seen on the cluster event stream by this process.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const deadLetters = new Counter({ name: 'flint_dead_letters_total', help: 'Messages the master rejected into the dead-letter stream (cluster-wide, from Redis).', registers: [registry] });
  const placementsCommitted = new Counter({ name: 'flint_cluster_placements_total', help: 'Executor placements committed cluster-wide (from Redis stats).', registers: [registry] });

  // Labels are initialised so every series exists from the first scrape.
  for (const outcome of ['started', 'failed']) launches.inc({ outcome }, 0);
  for (const kind of ['executor', 'driver']) placements.inc({ kind }, 0);

  async function collect(): Promise<void> {
    const [capacities, stats, counts] = await Promise.all([
      readWorkerCapacities(redis, keys),
      redis.hmget(keys.stats, 'deadLetters', 'placements'),
      queue ? queue.getJobCounts(...QUEUE_STATES) : Promise.resolve(undefined),
    ]);
    const byState: Record<string, number> = Object.fromEntries(WORKER_STATES.map((s) => [s, 0]));
    let total = 0;
    let used = 0;
    let memTotal = 0;
    let memUsed = 0;
    for (const w of capacities) {
      byState[w.state] = (byState[w.state] ?? 0) + 1;
      if (w.state === 'ALIVE') {
        total += w.cores;
        used += w.coresUsed;
        memTotal += w.memoryMB;
        memUsed += w.memoryUsed;
      }
    }
    workers.reset();
    for (const [state, n] of Object.entries(byState)) workers.set({ state }, n);
    cores.set({ kind: 'total' }, total);
    cores.set({ kind: 'used' }, used);
    cores.set({ kind: 'free' }, total - used);
    memory.set({ kind: 'total' }, memTotal * MB);
    memory.set({ kind: 'used' }, memUsed * MB);
    memory.set({ kind: 'free' }, (memTotal - memUsed) * MB);
    // Redis holds the cluster-wide count: the counter mirrors it (reset + inc keeps it a counter type).
    deadLetters.reset();
    deadLetters.inc(Number(stats[0] ?? 0) || 0);
    placementsCommitted.reset();
    placementsCommitted.inc(Number(stats[1] ?? 0) || 0);
    if (counts) {
      for (const state of QUEUE_STATES) queueDepth.set({ queue: keys.masterQueue, state }, counts[state] ?? 0);
    }
  }

  return {
    registry,
    contentType: registry.contentType,
    observeMessage(info) {
      handlerDuration.observe({ message: info.type, outcome: info.outcome }, info.durationMs / 1000);
    },
    observePass(info) {
      passDuration.observe(info.durationMs / 1000);
      if (info.executors) placements.inc({ kind: 'executor' }, info.executors);
      if (info.drivers) placements.inc({ kind: 'driver' }, info.drivers);
      if (info.rejected) rejectedPlacements.inc(info.rejected);
    },
    async recordClusterEvents(events) {
      const finished: { appId: string; execId: string }[] = [];
      for (const event of events) {
        if (event.type !== 'ExecutorStateChanged') continue;
        const state = String(event.body.state ?? '');
        if (state === 'RUNNING') launches.inc({ outcome: 'started' });
        else if (FINISHED.has(state)) finished.push({ appId: String(event.body.appId ?? ''), execId: String(event.body.execId ?? '') });
      }
      if (finished.length === 0) return;
      // A finished executor failed to launch if it never ran: its record has no runningSince.
      const pipe = redis.pipeline();
      for (const f of finished) pipe.hget(keys.appExecutors(f.appId), f.execId);
      const replies = (await pipe.exec()) ?? [];
      for (const [error, raw] of replies) {
        if (error || typeof raw !== 'string') continue;
        try {
          const record = JSON.parse(raw) as { runningSince?: unknown };
          if (record.runningSince === undefined) launches.inc({ outcome: 'failed' });
        } catch {
          // a record that is not JSON is not counted
        }
      }
    },
    async render() {
      await collect();
      return registry.metrics();
    },
  };
}
