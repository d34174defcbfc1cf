/**
 * /metrics against a real cluster: the UI server's metrics wired into the real
 * master (onMessage / onPass), workers and apps registered through the protocol,
 * executors reported by simulated workers. Every listed series is exposed, and
 * the values follow what the cluster does.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from 'bullmq';
import { startUiServer, type UiServer } from '../../functions/http/ui-server.ts';
import { bullConnection } from '../../lib/redis.ts';
import { waitFor } from '../helpers/isolation.ts';
import { REDIS_URL } from '../helpers/env.ts';
import { startSimCluster, type SimCluster } from './ui-cluster.ts';

let cluster: SimCluster;
let ui: UiServer | undefined;

before(async () => {
  cluster = await startSimCluster('ui-metrics', {}, async (config) => {
    ui = await startUiServer({ redisUrl: REDIS_URL, config, port: 0, queueBoard: false });
    return { onMessage: ui.metrics.observeMessage, onPass: ui.metrics.observePass };
  });
});

after(async () => {
  await ui?.close();
  await cluster?.close();
});

async function scrape(): Promise<string> {
  const response = await fetch(ui!.url + '/metrics');
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /text\/plain/);
  return response.text();
}

/** value: the sample of `name` whose labels include every given label, or undefined. */
function value(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = Object.fromEntries([...(match[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => present[k] === v)) return Number(match[4]);
  }
  return undefined;
}

test('/metrics exposes every series and they follow the cluster', async () => {
  const empty = await scrape();
  for (const name of ['flint_workers', 'flint_cores', 'flint_memory_bytes', 'flint_container_launches_total', 'flint_dead_letters_total', 'flint_placements_total', 'flint_queue_depth']) {
    assert.ok(value(empty, name) !== undefined, `${name} missing from:\n${empty}`);
  }
  assert.match(empty, /# TYPE flint_handler_duration_seconds histogram/);
  assert.match(empty, /# TYPE flint_scheduling_pass_duration_seconds histogram/);
  assert.equal(value(empty, 'flint_workers', { state: 'ALIVE' }), 0);
  assert.equal(value(empty, 'flint_cores', { kind: 'total' }), 0);
  assert.equal(value(empty, 'flint_queue_depth', { queue: 'master', state: 'waiting' }), 0);

  await cluster.addWorker({ cores: 4, memoryMB: 4096 });
  const lazy = await cluster.addWorker({ cores: 2, memoryMB: 2048, autoRun: false });
  const appId = await cluster.registerApp({ name: 'metrics-app', maxCores: 6, coresPerExecutor: 1, memoryPerExecutorMB: 256 });
  await waitFor(() => lazy.launched.length === 2, { message: 'two executors launched on the lazy worker' });

  // the eager worker's 4 executors report RUNNING; the lazy worker's first executor fails before running
  await lazy.report(appId, lazy.launched[0]!.execId, 'FAILED', { exitStatus: 1, message: 'image not found' });
  await lazy.report(appId, lazy.launched[1]!.execId, 'RUNNING');

  const text = await waitFor(
    async () => {
      const t = await scrape();
      return value(t, 'flint_container_launches_total', { outcome: 'started' }) === 5 && value(t, 'flint_container_launches_total', { outcome: 'failed' }) === 1 ? t : undefined;
    },
    { message: 'launch counts 5 started, 1 failed', timeoutMs: 15_000 },
  );
  assert.equal(value(text, 'flint_workers', { state: 'ALIVE' }), 2);
  assert.equal(value(text, 'flint_workers', { state: 'DEAD' }), 0);
  assert.equal(value(text, 'flint_cores', { kind: 'total' }), 6);
  assert.equal(value(text, 'flint_memory_bytes', { kind: 'total' }), 6144 * 1024 * 1024);
  // the failed executor gave its core back, and the scheduler may have placed a replacement: used + free = total
  const used = value(text, 'flint_cores', { kind: 'used' })!;
  assert.ok(used >= 5 && used <= 6, `cores used ${used}`);
  assert.equal(used + value(text, 'flint_cores', { kind: 'free' })!, 6);
  assert.ok(value(text, 'flint_placements_total', { kind: 'executor' })! >= 6, 'placements counted from onPass');
  assert.ok(value(text, 'flint_scheduling_pass_duration_seconds_count')! >= 1);
  assert.ok(value(text, 'flint_handler_duration_seconds_count', { message: 'RegisterWorker', outcome: 'ok' })! >= 2);
  assert.ok(value(text, 'flint_handler_duration_seconds_count', { message: 'ExecutorStateChanged', outcome: 'ok' })! >= 6);
  assert.ok(value(text, 'flint_queue_depth', { queue: 'master', state: 'completed' })! >= 8);
  const deadBefore = value(text, 'flint_dead_letters_total')!;

  // a malformed message put straight on the queue is dead-lettered and counted
  const raw = new Queue(cluster.keys.masterQueue, { connection: bullConnection(REDIS_URL), prefix: cluster.keys.bullPrefix });
  try {
    await raw.add('RegisterWorker', { id: '', cores: -1 });
  } finally {
    await raw.close();
  }
  const afterDead = await waitFor(async () => {
    const t = await scrape();
    return value(t, 'flint_dead_letters_total') === deadBefore + 1 ? t : undefined;
  }, { message: 'dead letter counted' });
  assert.ok(value(afterDead, 'flint_handler_duration_seconds_count', { message: 'RegisterWorker', outcome: 'rejected' })! >= 1);
});
