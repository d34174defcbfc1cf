/**
 * The master UI's pages, as Spark's MasterPage, ApplicationPage and the master's
 * view of a worker show them: pure functions from read-side records to escaped
 * HTML (no I/O, `now` passed in).
 */
import { html } from 'hono/html';
import type { AppRecord, DriverRecord, ExecutorRecord, MasterState, WorkerRecord } from '../../../protocol/records.ts';
import { resourcesUsed } from '../../../protocol/records.ts';
import { appDuration } from '../../../protocol/spark-json.ts';
import { formatDate, formatDuration, formatResourceRequirements, formatResources, megabytesToString } from '../../../lib/http/ui/format.ts';
import { stateCell, type Html } from '../../../lib/http/ui/layout.ts';

export interface PageContext {
  now: number;
  /** show kill buttons (spark.ui.killEnabled) */
  killEnabled: boolean;
}

/**
 * safeHref: only http(s) URLs become links. Worker and app UI addresses come from
 * registrations; escaping alone would still let `javascript:` through an href.
 */
export function safeHref(url: string | undefined): string {
  return url && /^https?:\/\/[^\s]+$/i.test(url) ? url : '';
}

type CountedWorkerState = 'ALIVE' | 'DEAD' | 'DECOMMISSIONED' | 'UNKNOWN';

/** workerCounts: workers by state, Spark's "Alive Workers / Dead / Decommissioned / Unknown". */
export function workerCounts(workers: WorkerRecord[]): Record<CountedWorkerState, number> {
  const counts = { ALIVE: 0, DEAD: 0, DECOMMISSIONED: 0, UNKNOWN: 0 };
  for (const w of workers) {
    if (w.state in counts) counts[w.state as keyof typeof counts] += 1;
  }
  return counts;
}

function killForm(kind: 'app' | 'driver', id: string, what: string): Html {
  return html`<form class="kill" method="post" action="/${kind}/kill/" data-confirm="Are you sure you want to kill ${what} ${id} ?"><input type="hidden" name="id" value="${id}"><input type="hidden" name="terminate" value="true"><button type="submit" title="kill ${id}">(kill)</button></form>`;
}

function workerLink(id: string | undefined): Html | string {
  if (!id) return 'None';
  return html`<a href="/worker/?workerId=${encodeURIComponent(id)}">${id}</a>`;
}

function appLink(id: string): Html {
  return html`<a href="/app/?appId=${encodeURIComponent(id)}">${id}</a>`;
}

function workerRow(w: WorkerRecord): Html {
  const used = resourcesUsed(w.resources, w.resourcesFree);
  return html`<tr data-worker-id="${w.id}">
<td>${workerLink(w.id)}</td>
<td>${safeHref(w.webUiUrl) ? html`<a href="${safeHref(w.webUiUrl)}">${w.host}:${w.port}</a>` : `${w.host}:${w.port}`}</td>
<td>${stateCell(w.state)}</td>
<td>${w.cores} (${w.coresUsed} Used)</td>
<td>${megabytesToString(w.memoryMB)} (${megabytesToString(w.memoryUsed)} Used)</td>
<td>${formatResources(w.resources)}${Object.keys(w.resources).length ? html` <span class="muted">(used: ${formatResources(used)})</span>` : ''}</td>
<td>${formatDate(w.lastHeartbeat)}</td>
</tr>`;
}

function workersTable(workers: WorkerRecord[]): Html {
  return html`<table id="workers">
<thead><tr><th>Worker Id</th><th>Address</th><th>State</th><th>Cores</th><th>Memory</th><th>Resources</th><th>Last Heartbeat</th></tr></thead>
<tbody>${workers.map(workerRow)}</tbody>
</table>`;
}

function appRow(app: AppRecord, ctx: PageContext, active: boolean): Html {
  return html`<tr data-app-id="${app.id}">
<td>${appLink(app.id)}${active && ctx.killEnabled ? killForm('app', app.id, 'application') : ''}</td>
<td>${safeHref(app.desc.appUiUrl) && active ? html`<a href="${safeHref(app.desc.appUiUrl)}">${app.desc.name || app.name}</a>` : app.desc.name || app.name}</td>
<td>${app.coresGranted}</td>
<td>${megabytesToString(app.desc.memoryPerExecutorMB)}</td>
<td>${formatResourceRequirements(app.desc.resourcesPerExecutor)}</td>
<td>${formatDate(app.startTime)}</td>
<td>${app.desc.user || app.user}</td>
<td>${stateCell(app.state)}</td>
<td>${formatDuration(appDuration(app, ctx.now))}</td>
</tr>`;
}

function appsTable(id: string, apps: AppRecord[], ctx: PageContext, active: boolean): Html {
  return html`<table id="${id}">
<thead><tr><th>Application ID</th><th>Name</th><th>Cores</th><th>Memory per Executor</th><th>Resources Per Executor</th><th>Submitted Time</th><th>User</th><th>State</th><th>Duration</th></tr></thead>
<tbody>${apps.map((a) => appRow(a, ctx, active))}</tbody>
</table>`;
}

function driverRow(d: DriverRecord, ctx: PageContext, active: boolean): Html {
  return html`<tr data-driver-id="${d.id}">
<td>${d.id}${active && ctx.killEnabled ? killForm('driver', d.id, 'driver') : ''}</td>
<td>${formatDate(d.startTime)}</td>
<td>${workerLink(d.workerId)}</td>
<td>${stateCell(d.state)}${d.exception ? html` <span class="error" title="${d.exception}">(exception)</span>` : ''}${d.relaunchedAs ? html` <span class="muted">→ ${d.relaunchedAs}</span>` : ''}</td>
<td>${d.desc.cores}</td>
<td>${megabytesToString(d.desc.memoryMB)}</td>
<td>${formatResources(d.resources)}</td>
<td>${d.desc.mainClass || d.desc.name}</td>
</tr>`;
}

function driversTable(id: string, drivers: DriverRecord[], ctx: PageContext, active: boolean): Html {
  return html`<table id="${id}">
<thead><tr><th>Submission ID</th><th>Submitted Time</th><th>Worker</th><th>State</th><th>Cores</th><th>Memory</th><th>Resources</th><th>Main Class</th></tr></thead>
<tbody>${drivers.map((d) => driverRow(d, ctx, active))}</tbody>
</table>`;
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** masterContent: Spark's MasterPage body (everything under the header). */
export function masterContent(state: MasterState, ctx: PageContext): Html {
  const alive = state.workers.filter((w) => w.state === 'ALIVE');
  const counts = workerCounts(state.workers);
  const cores = sum(alive.map((w) => w.cores));
  const coresUsed = sum(alive.map((w) => w.coresUsed));
  const memory = sum(alive.map((w) => w.memoryMB));
  const memoryUsed = sum(alive.map((w) => w.memoryUsed));
  const running = state.activeDrivers.filter((d) => d.state !== 'SUBMITTED');
  const waiting = state.activeDrivers.filter((d) => d.state === 'SUBMITTED');
  const completedBy = (s: string) => state.completedDrivers.filter((d) => d.state === s).length;
  const runningApps = state.activeApps;
  return html`<ul class="summary" id="summary">
<li><strong>URL:</strong> <span id="master-url">${state.url}</span></li>
${state.restUrl ? html`<li><strong>REST URL:</strong> <span id="rest-url">${state.restUrl}</span> <span class="muted">(cluster mode)</span></li>` : ''}
<li><strong>Workers:</strong> <span id="worker-counts">${counts.ALIVE} Alive, ${counts.DEAD} Dead, ${counts.DECOMMISSIONED} Decommissioned, ${counts.UNKNOWN} Unknown</span></li>
<li><strong>Cores in use:</strong> <span id="cores">${cores} Total, ${coresUsed} Used</span></li>
<li><strong>Memory in use:</strong> <span id="memory">${megabytesToString(memory)} Total, ${megabytesToString(memoryUsed)} Used</span></li>
<li><strong>Applications:</strong> <span id="app-counts">${runningApps.length} <a href="#running-app">Running</a>, ${state.completedApps.length} <a href="#completed-app">Completed</a></span></li>
<li><strong>Drivers:</strong> <span id="driver-counts">${running.length} Running (${waiting.length} Waiting), ${state.completedDrivers.length} Completed (${completedBy('KILLED')} Killed, ${completedBy('FAILED')} Failed, ${completedBy('ERROR')} Error, ${completedBy('RELAUNCHING')} Relaunching)</span></li>
<li><strong>Status:</strong> <span id="status">${state.status}</span></li>
</ul>
<h2 id="workers-title">Workers (${state.workers.length})</h2>
${workersTable(state.workers)}
<h2 id="running-app">Running Applications (${runningApps.length})</h2>
${appsTable('running-apps', runningApps, ctx, true)}
<h2 id="running-drivers-title">Running Drivers (${running.length})</h2>
${driversTable('running-drivers', running, ctx, true)}
<h2 id="waiting-drivers-title">Waiting Drivers (${waiting.length})</h2>
${driversTable('waiting-drivers', waiting, ctx, true)}
<h2 id="completed-app">Completed Applications (${state.completedApps.length})</h2>
${appsTable('completed-apps', [...state.completedApps].reverse(), ctx, false)}
<h2 id="completed-drivers-title">Completed Drivers (${state.completedDrivers.length})</h2>
${driversTable('completed-drivers', [...state.completedDrivers].reverse(), ctx, false)}`;
}

/** logLink: the worker UI's log page of one executor, or '' when the worker has no UI address. */
export function executorLogUrl(workerUiUrl: string | undefined, appId: string, execId: number, logType: 'stdout' | 'stderr'): string {
  if (!safeHref(workerUiUrl)) return '';
  const base = workerUiUrl!.replace(/\/+$/, '');
  return `${base}/logPage/?appId=${encodeURIComponent(appId)}&executorId=${execId}&logType=${logType}`;
}

/** heartbeatCells: an executor's last heartbeat (with its age) and latest metrics, for apps with heartbeats on. */
function heartbeatCells(e: ExecutorRecord, now: number): Html {
  const beat = e.lastHeartbeat === undefined ? html`<span class="muted">none yet</span>` : html`${formatDate(e.lastHeartbeat)} <span class="muted">(${formatDuration(Math.max(0, now - e.lastHeartbeat))} ago)</span>`;
  const metrics = e.latestMetrics
    ? html`${Object.entries(e.latestMetrics.metrics)
        .map(([name, value]) => `${name}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
        .join(', ')}`
    : html`<span class="muted">none</span>`;
  return html`<td class="executor-heartbeat">${beat}</td><td class="executor-metrics">${metrics}</td>`;
}

function executorRow(appId: string, e: ExecutorRecord, workers: Map<string, WorkerRecord>, beatsAt?: number): Html {
  const worker = workers.get(e.workerId);
  const stdout = executorLogUrl(worker?.webUiUrl, appId, e.id, 'stdout');
  const stderr = executorLogUrl(worker?.webUiUrl, appId, e.id, 'stderr');
  return html`<tr data-executor-id="${e.id}">
<td>${e.id}</td>
<td>${workerLink(e.workerId)}<div class="muted">${e.hostPort}</div></td>
<td>${e.cores}</td>
<td>${megabytesToString(e.memoryMB)}</td>
<td>${formatResources(e.resources)}</td>
<td class="executor-state">${stateCell(e.state)}${e.message ? html`<div class="muted">${e.message}</div>` : ''}</td>
<td>${e.exitStatus ?? ''}</td>
<td>${e.oomKilled ? 'yes' : ''}</td>
<td>${stdout ? html`<a href="${stdout}">stdout</a> <a href="${stderr}">stderr</a>` : html`<span class="muted">no worker UI</span>`}</td>
${beatsAt === undefined ? '' : heartbeatCells(e, beatsAt)}</tr>`;
}

/** executorsTable: Spark's executor table; with `beatsAt` (the page's now) also Last Heartbeat and Latest Metrics. */
function executorsTable(id: string, appId: string, executors: ExecutorRecord[], workers: Map<string, WorkerRecord>, beatsAt?: number): Html {
  return html`<table id="${id}">
<thead><tr><th>ExecutorID</th><th>Worker</th><th>Cores</th><th>Memory</th><th>Resources</th><th>State</th><th>Exit Status</th><th>OOM Killed</th><th>Logs</th>${beatsAt === undefined ? '' : html`<th>Last Heartbeat</th><th>Latest Metrics</th>`}</tr></thead>
<tbody>${executors.map((e) => executorRow(appId, e, workers, beatsAt))}</tbody>
</table>`;
}

const FINISHED_EXECUTOR = new Set(['KILLED', 'FAILED', 'LOST', 'EXITED']);

/** appContent: Spark's ApplicationPage: the app's summary, then its live and removed executors. */
export function appContent(app: AppRecord, workers: WorkerRecord[], ctx: PageContext): Html {
  const byId = new Map(workers.map((w) => [w.id, w]));
  const live = app.executors.filter((e) => !FINISHED_EXECUTOR.has(e.state));
  const removed = app.executors.filter((e) => FINISHED_EXECUTOR.has(e.state));
  const active = app.state === 'WAITING' || app.state === 'RUNNING';
  const beatsAt = app.heartbeatTimeoutMs !== undefined ? ctx.now : undefined;
  return html`<h1>Application: ${app.desc.name || app.name}</h1>
<ul class="summary" id="app-summary">
<li><strong>ID:</strong> <span id="app-id">${app.id}</span>${active && ctx.killEnabled ? killForm('app', app.id, 'application') : ''}</li>
<li><strong>Name:</strong> ${app.desc.name || app.name}</li>
<li><strong>User:</strong> ${app.desc.user || app.user}</li>
<li><strong>Image:</strong> ${app.desc.image}</li>
<li><strong>Cores:</strong> ${app.desc.maxCores === undefined ? 'Unlimited' : app.desc.maxCores} (${app.coresGranted} Granted)</li>
<li><strong>Executor Limit:</strong> ${app.executorLimit < 0 ? 'Unlimited' : app.executorLimit} (${live.length} Granted)</li>
<li><strong>Executor Memory:</strong> ${megabytesToString(app.desc.memoryPerExecutorMB)}</li>
<li><strong>Executor Resources:</strong> ${formatResourceRequirements(app.desc.resourcesPerExecutor)}</li>
<li><strong>Submit Date:</strong> ${formatDate(app.startTime)}</li>
<li><strong>State:</strong> <span id="app-state">${stateCell(app.state)}</span></li>
<li><strong>Duration:</strong> ${formatDuration(appDuration(app, ctx.now))}</li>
${app.driverId ? html`<li><strong>Driver:</strong> <span id="app-driver">${app.driverId}</span></li>` : ''}
${app.heartbeatTimeoutMs !== undefined ? html`<li><strong>Executor Heartbeat Timeout:</strong> ${formatDuration(app.heartbeatTimeoutMs)}</li>` : ''}
${app.endReason ? html`<li><strong>Ended Because:</strong> <span id="app-end-reason">${app.endReason}</span></li>` : ''}
${safeHref(app.desc.appUiUrl) && active ? html`<li><strong><a href="${safeHref(app.desc.appUiUrl)}">Application Detail UI</a></strong></li>` : ''}
</ul>
<h2>Executor Summary (${live.length})</h2>
${executorsTable('executors', app.id, live, byId, beatsAt)}
<h2>Removed Executors (${removed.length})</h2>
${executorsTable('removed-executors', app.id, removed, byId, beatsAt)}`;
}

/** workerContent: the master's view of one worker: registration, capacity, and what is placed on it. */
export function workerContent(
  worker: WorkerRecord,
  executors: { appId: string; executor: ExecutorRecord }[],
  drivers: DriverRecord[],
  ctx: PageContext,
): Html {
  return html`<h1>Worker: ${worker.id}</h1>
<ul class="summary" id="worker-summary">
<li><strong>ID:</strong> ${worker.id}</li>
<li><strong>Address:</strong> ${worker.host}:${worker.port}</li>
<li><strong>Web UI:</strong> ${safeHref(worker.webUiUrl) ? html`<a href="${safeHref(worker.webUiUrl)}">${worker.webUiUrl}</a>` : worker.webUiUrl || 'none'}</li>
<li><strong>State:</strong> <span id="worker-state">${stateCell(worker.state)}</span>${worker.deathReason ? html` <span class="muted">${worker.deathReason}</span>` : ''}</li>
<li><strong>Epoch:</strong> ${worker.epoch}</li>
<li><strong>Cores:</strong> ${worker.cores} (${worker.coresUsed} Used)</li>
<li><strong>Memory:</strong> ${megabytesToString(worker.memoryMB)} (${megabytesToString(worker.memoryUsed)} Used)</li>
<li><strong>Resources:</strong> ${formatResources(worker.resources)}</li>
<li><strong>Labels:</strong> ${Object.entries(worker.labels).map(([k, v]) => `${k}=${v}`).join(', ')}</li>
<li><strong>Registered:</strong> ${formatDate(worker.registeredAt)}</li>
<li><strong>Last Heartbeat:</strong> ${formatDate(worker.lastHeartbeat)} <span class="muted">(${formatDuration(ctx.now - worker.lastHeartbeat)} ago)</span></li>
</ul>
<h2>Executors (${executors.length})</h2>
<table id="worker-executors">
<thead><tr><th>Application</th><th>ExecutorID</th><th>State</th><th>Cores</th><th>Memory</th><th>Logs</th></tr></thead>
<tbody>${executors.map(
    ({ appId, executor: e }) => html`<tr><td>${appLink(appId)}</td><td>${e.id}</td><td>${stateCell(e.state)}</td><td>${e.cores}</td><td>${megabytesToString(e.memoryMB)}</td>
<td>${safeHref(worker.webUiUrl) ? html`<a href="${executorLogUrl(worker.webUiUrl, appId, e.id, 'stdout')}">stdout</a> <a href="${executorLogUrl(worker.webUiUrl, appId, e.id, 'stderr')}">stderr</a>` : ''}</td></tr>`,
  )}</tbody>
</table>
<h2>Drivers (${drivers.length})</h2>
${driversTable('worker-drivers', drivers, ctx, true)}`;
}

/** messageContent: a short page body for "not found", "denied" and the like. */
export function messageContent(title: string, message: string, extra?: Html): Html {
  return html`<h1>${title}</h1><p class="message">${message}</p>${extra ?? ''}`;
}
