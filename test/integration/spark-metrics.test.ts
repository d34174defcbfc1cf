/**
 * Spark's metric sources and Flint's own series on a cluster of `flint master` and
 * `flint worker` processes with an application running: every metrics endpoint
 * passes `promtool check metrics` (Debian's prometheus package, installed by
 * infra/setup.sh), and the sources carry Spark's names and the cluster's values —
 * the master source (workers, aliveWorkers, apps, waitingApps) at
 * /metrics/master/prometheus, the applications source (status, runtime_ms, cores)
 * at /metrics/applications/prometheus, the worker source (executors, coresUsed,
 * memUsed_MB, coresFree, memFree_MB) at each worker UI's /metrics/prometheus, and
 * Flint's series at /metrics (web UI and --http).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { signToken } from '../../lib/http/auth.ts';
import { REDIS_ARGV_URL, REDIS_URL } from '../helpers/env.ts';
import { uniqueCluster, waitFor } from '../helpers/isolation.ts';
import { appDescription } from '../helpers/protocol.ts';
import { printedWorkerUi, startProcessCluster } from '../helpers/flint-cluster.ts';

const SECRET = 'spark-metrics-secret-0123456789abcdef0123456789';

/** promtool runs `promtool check metrics` on a scrape and returns its verdict. */
function promtool(text: string): { status: number | null; output: string } {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  if (result.error) throw new Error(`promtool could not run (Debian package prometheus; bash infra/setup.sh installs it): ${result.error.message}`);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** gauge reads one series of a Spark instance family by its metric label (and optional other labels). */
function gauge(text: string, family: string, metric: string, extra = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${family}{`) && l.includes(`metric="${metric}"`) && l.includes(extra));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function scrape(url: string): Promise<string> {
  const response = await fetch(url);
  assert.equal(response.status, 200, url);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain/, url);
  return response.text();
}

test("every metrics endpoint passes promtool and Spark's sources carry Spark's names and the cluster's values", { timeout: 120_000 }, async () => {
  const redis = new Redis(REDIS_URL);
  const cluster = uniqueCluster('spark-metrics');
  const procs = await startProcessCluster(redis, { cluster, redisUrl: REDIS_ARGV_URL, secret: SECRET, masterArgs: ['--http', '127.0.0.1:0'], workers: [{ cores: 3, memory: '512m' }] });
  try {
    const workerUi = await waitFor(() => printedWorkerUi(procs.workers[0]!.output()), { message: 'the worker printed its UI URL' });
    const httpMetrics = /: \/metrics and \/invoke on (http:\/\/\S+)/.exec(procs.master.output())?.[1];
    assert.ok(httpMetrics, procs.master.output());

    // an application with two 1-core, 64 MB executors, registered through the master's application API
    const token = signToken(SECRET, { scope: 'submit', ttlSeconds: 600 });
    const registered = await fetch(`${procs.urls.appApi}/v1/apps`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(appDescription({ name: 'metrics app', command: ['sh', '-c', 'sleep 60'], maxCores: 2, coresPerExecutor: 1, memoryPerExecutorMB: 64 })),
    });
    assert.equal(registered.status, 201, await registered.clone().text());
    const { appId, appToken } = (await registered.json()) as { appId: string; appToken: string };

    const apps = await waitFor(
      async () => {
        const text = await scrape(`${procs.urls.ui}/metrics/applications/prometheus`);
        return gauge(text, 'metrics_application_Value', 'cores') === 2 ? text : undefined;
      },
      { timeoutMs: 30_000, message: 'the applications source shows 2 granted cores' },
    );
    const worker = await waitFor(
      async () => {
        const text = await scrape(`${workerUi}/metrics/prometheus`);
        return gauge(text, 'metrics_worker_Value', 'executors') === 2 ? text : undefined;
      },
      { timeoutMs: 30_000, message: 'the worker source shows 2 executors' },
    );
    const master = await scrape(`${procs.urls.ui}/metrics/master/prometheus`);
    const flintUi = await scrape(`${procs.urls.ui}/metrics`);
    const flintHttp = await scrape(`${httpMetrics}/metrics`);

    for (const [name, text] of Object.entries({ master, apps, worker, flintUi, flintHttp })) {
      const verdict = promtool(text);
      assert.equal(verdict.status, 0, `promtool check metrics on ${name}:\n${verdict.output}\n${text}`);
    }

    // the master source, against /json
    const json = (await (await fetch(`${procs.urls.ui}/json`)).json()) as { workers: unknown[]; aliveworkers: number; activeapps: { id: string; state: string }[] };
    assert.equal(gauge(master, 'metrics_master_Value', 'workers'), json.workers.length);
    assert.equal(gauge(master, 'metrics_master_Value', 'aliveWorkers'), 1);
    assert.equal(gauge(master, 'metrics_master_Value', 'apps'), 1);
    assert.equal(gauge(master, 'metrics_master_Value', 'waitingApps'), json.activeapps.filter((a) => a.state === 'WAITING').length);
    assert.match(master, /^metrics_master_Value\{type="gauges",source="master",metric="aliveWorkers"\} 1$/m);

    // the applications source: Spark's source name application.<name>.<start ms>, status as a label
    const state = json.activeapps.find((a) => a.id === appId)!.state;
    assert.match(apps, new RegExp(`^metrics_application_Value\\{type="gauges",source="application\\.metrics app\\.\\d{13}",metric="status",app_id="${appId}",state="${state}"\\} 1$`, 'm'));
    assert.ok(gauge(apps, 'metrics_application_Value', 'runtime_ms')! >= 0);

    // the worker source: 3 cores, 512 MB, two 1-core 64 MB executors
    assert.equal(gauge(worker, 'metrics_worker_Value', 'coresUsed'), 2);
    assert.equal(gauge(worker, 'metrics_worker_Value', 'coresFree'), 1);
    assert.equal(gauge(worker, 'metrics_worker_Value', 'memUsed_MB'), 128);
    assert.equal(gauge(worker, 'metrics_worker_Value', 'memFree_MB'), 384);

    // Flint's own series stay at /metrics
    assert.match(flintUi, /^flint_workers\{state="ALIVE"\} 1$/m);
    assert.doesNotMatch(flintUi, /metrics_master_Value/);

    // once killed, the application leaves the applications source, as in Spark
    // the application's own token kills it (a submit token registers applications, it does not own them)
    const killed = await fetch(`${procs.urls.appApi}/v1/apps/${appId}/kill`, { method: 'POST', headers: { Authorization: `Bearer ${appToken}` } });
    assert.equal(killed.status, 200);
    await waitFor(async () => gauge(await scrape(`${procs.urls.ui}/metrics/applications/prometheus`), 'metrics_application_Value', 'cores') === undefined, {
      timeoutMs: 20_000,
      message: 'the killed app left the applications source',
    });
    assert.equal(promtool(await scrape(`${procs.urls.ui}/metrics/applications/prometheus`)).status, 0, 'an empty source passes promtool too');
  } finally {
    await procs.stop();
    await redis.quit();
  }
});
