/**
 * The worker's web UI as a hono app: Spark's WorkerPage, the worker's `/json`
 * (JsonProtocol.writeWorkerState), Spark's worker metrics source at
 * `/metrics/prometheus`, and its log pages, `/logPage/` (HTML, paged by
 * byte offset) and `/log` (plain text). It takes a `WorkerUiSource` (the agent's
 * view of what it runs), so the same app serves a real agent and tests.
 *
 * Logs are read as worker-ui-logs.ts says: rolled copies and the active file as one log,
 * never through a link (the tasks' directories are hostile ground).
 * Log text is escaped before it reaches the page (CVE-2022-31777: Spark once
 * rendered job logs unescaped).
 */
import { listenHttp } from '../lib/http-listen.ts';
import type { ServerTls } from '../lib/http/tls.ts';
import { Hono, type Context } from 'hono';
import { html } from 'hono/html';
import { DEFAULT_LOG_BYTES, LogRequestError, MAX_LOG_BYTES, logRange, parseLogQuery, readLog, type LogChunk, type LogQuery, type LogTarget } from './worker-ui-logs.ts';

export { DEFAULT_LOG_BYTES, LogRequestError, MAX_LOG_BYTES, logRange, parseLogQuery, readLog, type LogChunk, type LogQuery, type LogTarget };
import type { AppDescriptionView, ResourceAddresses } from '../protocol/records.ts';
import { writeWorkerState, type ExecutorRunnerView } from '../protocol/spark-json.ts';
import { renderPage, stateCell, CONTENT_SECURITY_POLICY, type Html } from '../lib/http/ui/layout.ts';
import { renderSparkInstance, SPARK_METRICS_CONTENT_TYPE } from '../lib/http/spark-metrics.ts';
import { bytesToString, formatResources, megabytesToString } from '../lib/http/ui/format.ts';
import { requireUiScope } from '../lib/http/ui/session.ts';

type MaybePromise<T> = T | Promise<T>;

export interface WorkerExecutorView {
  appId: string;
  execId: number;
  state: string;
  cores: number;
  memoryMB: number;
  exitCode?: number;
  /** the executor's own directory (informational; logs are found from the worker's workDir) */
  workDir: string;
  resources?: ResourceAddresses;
  appDesc?: AppDescriptionView;
}

export interface WorkerDriverView {
  driverId: string;
  state: string;
  cores: number;
  memoryMB: number;
  workDir: string;
  mainClass?: string;
  exitCode?: number;
  resources?: ResourceAddresses;
}

/** WorkerUiSource: what the worker UI reads; the agent implements it over its own state. */
export interface WorkerUiSource {
  workerId: string;
  masterUrl: string;
  masterWebUiUrl?: string;
  workDir: string;
  cores: number;
  memoryMB: number;
  coresUsed(): MaybePromise<number>;
  memoryUsed(): MaybePromise<number>;
  resources?(): MaybePromise<ResourceAddresses>;
  resourcesUsed?(): MaybePromise<ResourceAddresses>;
  executors(): MaybePromise<WorkerExecutorView[]>;
  finishedExecutors(): MaybePromise<WorkerExecutorView[]>;
  drivers(): MaybePromise<WorkerDriverView[]>;
  finishedDrivers(): MaybePromise<WorkerDriverView[]>;
}

function logHref(path: '/logPage/' | '/log', query: LogQuery, offset: number | undefined, byteLength: number): string {
  const params = new URLSearchParams();
  if (query.driverId) params.set('driverId', query.driverId);
  else {
    params.set('appId', query.appId ?? '');
    params.set('executorId', query.executorId ?? '');
  }
  params.set('logType', query.logType ?? 'stdout');
  if (offset !== undefined) params.set('offset', String(offset));
  params.set('byteLength', String(byteLength));
  return `${path}?${params.toString()}`;
}

function executorLinks(e: { appId: string; execId: number }): Html {
  const href = (logType: string) => `/logPage/?appId=${encodeURIComponent(e.appId)}&executorId=${e.execId}&logType=${logType}`;
  return html`<a href="${href('stdout')}">stdout</a> <a href="${href('stderr')}">stderr</a>`;
}

function driverLinks(d: { driverId: string }): Html {
  const href = (logType: string) => `/logPage/?driverId=${encodeURIComponent(d.driverId)}&logType=${logType}`;
  return html`<a href="${href('stdout')}">stdout</a> <a href="${href('stderr')}">stderr</a>`;
}

function executorTable(id: string, rows: WorkerExecutorView[]): Html {
  return html`<table id="${id}"><thead><tr><th>ExecutorID</th><th>State</th><th>Cores</th><th>Memory</th><th>Resources</th><th>Job Details</th><th>Exit Code</th><th>Logs</th></tr></thead>
<tbody>${rows.map(
    (e) => html`<tr><td>${e.execId}</td><td>${stateCell(e.state)}</td><td>${e.cores}</td><td>${megabytesToString(e.memoryMB)}</td><td>${formatResources(e.resources ?? {})}</td>
<td>ID: ${e.appId}${e.appDesc ? html`<br>Name: ${e.appDesc.name}<br>User: ${e.appDesc.user}` : ''}</td><td>${e.exitCode ?? ''}</td><td>${executorLinks(e)}</td></tr>`,
  )}</tbody></table>`;
}

function driverTable(id: string, rows: WorkerDriverView[]): Html {
  return html`<table id="${id}"><thead><tr><th>Driver ID</th><th>Main Class</th><th>State</th><th>Cores</th><th>Memory</th><th>Resources</th><th>Exit Code</th><th>Logs</th></tr></thead>
<tbody>${rows.map(
    (d) => html`<tr><td>${d.driverId}</td><td>${d.mainClass ?? ''}</td><td>${stateCell(d.state)}</td><td>${d.cores}</td><td>${megabytesToString(d.memoryMB)}</td><td>${formatResources(d.resources ?? {})}</td><td>${d.exitCode ?? ''}</td><td>${driverLinks(d)}</td></tr>`,
  )}</tbody></table>`;
}

function runnerView(e: WorkerExecutorView): ExecutorRunnerView {
  return { execId: e.execId, appId: e.appId, memoryMB: e.memoryMB, resources: e.resources, appDesc: e.appDesc };
}

/**
 * workerSourceText: Spark's WorkerSource (`executors`, `coresUsed`, `memUsed_MB`,
 * `coresFree`, `memFree_MB`) as lib/http/spark-metrics.ts renders it.
 */
export function workerSourceText(w: { workerId: string; cores: number; memoryMB: number; coresUsed: number; memoryUsed: number; executors: number }): string {
  const labels = { worker_id: w.workerId };
  return renderSparkInstance('worker', "Spark's worker source (WorkerSource); metric is Spark's metric name.", [
    { source: 'worker', metric: 'executors', value: w.executors, labels },
    { source: 'worker', metric: 'coresUsed', value: w.coresUsed, labels },
    { source: 'worker', metric: 'memUsed_MB', value: w.memoryUsed, labels },
    { source: 'worker', metric: 'coresFree', value: w.cores - w.coresUsed, labels },
    { source: 'worker', metric: 'memFree_MB', value: w.memoryMB - w.memoryUsed, labels },
  ]);
}

/**
 * createWorkerUiApp builds the worker UI's hono app over `source`. With the cluster's
 * secret, the pages that show what tasks print or run (`/log`, `/logPage/`, `/json`) need
 * an admin token (Authorization header, or the master UI's session cookie, which a browser
 * also sends to this port on the same host): every task on the host network can reach
 * this port, and another tenant's logs are not its to read.
 */
export function createWorkerUiApp(source: WorkerUiSource, options: { secret?: string } = {}): Hono {
  const app = new Hono();
  const title = `Flint Worker at ${source.workerId}`;
  if (options.secret) {
    const guard = requireUiScope('admin', { secret: options.secret, onDenied: (c, status, message) => c.text(`${message}\n`, status) });
    for (const path of ['/log', '/logPage/', '/logPage', '/json']) app.use(path, guard);
  }

  const page = (c: Context, pageTitle: string, content: Html, status: 200 | 400 | 404 | 500 = 200) => {
    c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Cache-Control', 'no-store');
    const nav = source.masterWebUiUrl && /^https?:\/\//i.test(source.masterWebUiUrl) ? html`<a href="${source.masterWebUiUrl}">Back to Master</a>` : '';
    return c.html(renderPage({ title: pageTitle, nav: html`<a href="/">Worker</a><a href="/json">JSON</a>${nav}`, content }), status);
  };

  app.onError((error, c) => {
    if (error instanceof LogRequestError) return page(c, 'Log', html`<h1>Log unavailable</h1><p class="error">${error.message}</p>`, error.status);
    return page(c, 'Error', html`<h1>Error</h1><p class="error">${error.message}</p>`, 500);
  });

  app.get('/', async (c) => {
    const [coresUsed, memoryUsed, resources, executors, finishedExecutors, drivers, finishedDrivers] = await Promise.all([
      source.coresUsed(),
      source.memoryUsed(),
      source.resources?.() ?? {},
      source.executors(),
      source.finishedExecutors(),
      source.drivers(),
      source.finishedDrivers(),
    ]);
    return page(
      c,
      title,
      html`<h1>${title}</h1>
<ul class="summary" id="worker-summary">
<li><strong>ID:</strong> ${source.workerId}</li>
<li><strong>Master URL:</strong> ${source.masterUrl}</li>
<li><strong>Cores:</strong> ${source.cores} (${coresUsed} Used)</li>
<li><strong>Memory:</strong> ${megabytesToString(source.memoryMB)} (${megabytesToString(memoryUsed)} Used)</li>
<li><strong>Resources:</strong> ${formatResources(resources)}</li>
</ul>
<h2>Running Executors (${executors.length})</h2>${executorTable('running-executors', executors)}
<h2>Running Drivers (${drivers.length})</h2>${driverTable('running-drivers', drivers)}
<h2>Finished Executors (${finishedExecutors.length})</h2>${executorTable('finished-executors', finishedExecutors)}
<h2>Finished Drivers (${finishedDrivers.length})</h2>${driverTable('finished-drivers', finishedDrivers)}`,
    );
  });

  app.get('/json', async (c) => {
    const [coresUsed, memoryUsed, resources, resourcesUsed, executors, finishedExecutors] = await Promise.all([
      source.coresUsed(),
      source.memoryUsed(),
      source.resources?.() ?? {},
      source.resourcesUsed?.() ?? {},
      source.executors(),
      source.finishedExecutors(),
    ]);
    return c.json(
      writeWorkerState({
        workerId: source.workerId,
        masterUrl: source.masterUrl,
        masterWebUiUrl: source.masterWebUiUrl ?? '',
        cores: source.cores,
        coresUsed,
        memoryMB: source.memoryMB,
        memoryUsed,
        resources,
        resourcesUsed,
        executors: executors.map(runnerView),
        finishedExecutors: finishedExecutors.map(runnerView),
      }),
    );
  });

  // Spark's WorkerSource at the PrometheusServlet's default path
  app.get('/metrics/prometheus', async (c) => {
    const [coresUsed, memoryUsed, executors] = await Promise.all([source.coresUsed(), source.memoryUsed(), source.executors()]);
    c.header('Cache-Control', 'no-store');
    return c.body(workerSourceText({ workerId: source.workerId, cores: source.cores, memoryMB: source.memoryMB, coresUsed, memoryUsed, executors: executors.length }), 200, {
      'Content-Type': SPARK_METRICS_CONTENT_TYPE,
    });
  });

  app.get('/logPage/', async (c) => {
    const query = c.req.query() as LogQuery;
    const target = parseLogQuery(query);
    const chunk = await readLog(source.workDir, target);
    const who = query.driverId ? `driver ${query.driverId}` : `executor ${query.executorId} of ${query.appId}`;
    const prev = chunk.start > 0 ? logHref('/logPage/', query, Math.max(chunk.start - target.byteLength, 0), target.byteLength) : '';
    const next = chunk.end < chunk.total ? logHref('/logPage/', query, chunk.end, target.byteLength) : '';
    return page(
      c,
      `${target.logType} log of ${who}`,
      html`<h1>${target.logType} log of ${who}</h1>
<p id="log-range">Showing ${chunk.start} - ${chunk.end} of ${chunk.total} bytes (${bytesToString(chunk.total)})</p>
<p class="log-nav">${prev ? html`<a id="log-prev" href="${prev}">Previous ${bytesToString(target.byteLength)}</a>` : html`<span class="muted">Previous</span>`}
 | ${next ? html`<a id="log-next" href="${next}">Next ${bytesToString(target.byteLength)}</a>` : html`<span class="muted">Next</span>`}
 | <a href="${logHref('/logPage/', query, undefined, target.byteLength)}">Tail</a> | <a href="${logHref('/log', query, chunk.start, target.byteLength)}">Plain text</a></p>
<pre class="log" id="log-text">${chunk.text}</pre>`,
    );
  });

  app.get('/log', async (c) => {
    const query = c.req.query() as LogQuery;
    let target: LogTarget;
    let chunk: LogChunk;
    try {
      target = parseLogQuery(query);
      chunk = await readLog(source.workDir, target);
    } catch (error) {
      if (error instanceof LogRequestError) return c.text(`Error: ${error.message}`, error.status);
      throw error;
    }
    c.header('X-Content-Type-Options', 'nosniff');
    // Spark's /log header line: "==== Bytes start-end of total of <dir><logType> ===="
    return c.text(`==== Bytes ${chunk.start}-${chunk.end} of ${chunk.total} of ${target.relativePath} ====\n${chunk.text}`);
  });

  return app;
}

export interface WorkerUiServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** startWorkerUi serves the worker UI (loopback by default; port 0 = any free port; HTTPS with `tls`). */
export async function startWorkerUi(source: WorkerUiSource, options: { host?: string; port?: number; tls?: ServerTls } = {}): Promise<WorkerUiServer> {
  const app = createWorkerUiApp(source);
  const host = options.host ?? '127.0.0.1';
  return listenHttp(app.fetch, { host, port: options.port ?? 0, what: 'worker web UI', tls: options.tls });
}
