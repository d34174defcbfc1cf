/**
 * The master web UI as a hono app: Spark's MasterWebUI pages and `/json`, plus
 * Flint's live updates, `/metrics` and the queue board. It only translates: reads
 * come from the read side (functions/store/read-state.ts), kills become asks to
 * the master, and every dependency comes in through `MasterUiBindings`, so tests
 * drive it with `app.request()` or through a real server.
 *
 *   GET  /                      master page                    no token
 *   GET  /json, /json/<field>   Spark's MasterStateResponse    no token
 *   GET  /app/?appId=           application page               no token
 *   GET  /worker/?workerId=     the master's view of a worker  no token
 *   GET  /events                server-sent cluster events     no token
 *   GET  /metrics               Flint's Prometheus series      no token
 *   GET  /metrics/master/prometheus, /metrics/applications/prometheus
 *                               Spark's master and application sources (spark-sources.ts)  no token
 *   GET  /login, POST /login    token → HttpOnly cookie
 *   POST /logout
 *   POST /app/kill/             KillApplication                kill scope
 *   POST /driver/kill/          RequestKillDriver              kill scope
 *   POST /workers/kill/?host=   DecommissionWorkersOnHosts     admin scope; 405 unless spark.decommission.enabled
 *   *    /queues/*              bull-board                     admin scope (+ Origin check on changes)
 *
 * Pages are re-rendered whole on each request; `?fragment=1` returns only the
 * content, which the live script swaps in when the cluster event stream moves.
 */
import { Hono, type Context } from 'hono';
import { SPARK_METRICS_CONTENT_TYPE } from '../../../lib/http/spark-metrics.ts';
import { applicationsSourceText, masterSourceText } from '../spark-sources.ts';
import { limitBody } from '../../../lib/http/body-limit.ts';
import { html } from 'hono/html';
import { HTTPException } from 'hono/http-exception';
import { streamSSE, type SSEStreamingApi } from 'hono/streaming';
import type { RedisConnection } from '../../../lib/redis.ts';
import type { Keys } from '../../../protocol/keys.ts';
import { MasterInbound, parseMessage } from '../../../protocol/messages.ts';
import type { AuthVariables } from '../../../lib/http/auth.ts';
import { readApplication, readMasterState, readWorker } from '../../store/read-state.ts';
import { workerFromHash, type MasterState, type WorkerRecord } from '../../../protocol/records.ts';
import { renderMasterJson } from '../../../protocol/spark-json.ts';
import type { FlintMetrics } from '../metrics.ts';
import type { ClusterEventFeed } from './event-feed.ts';
import { CONTENT_SECURITY_POLICY, renderPage, type Html } from '../../../lib/http/ui/layout.ts';
import { appContent, masterContent, messageContent, workerContent, type PageContext } from './pages.ts';
import { currentClaims, endSession, requireUiScope, safeRedirectPath, sameOriginForCookies, startSession } from '../../../lib/http/ui/session.ts';
import { LIVE_SCRIPT } from './live-script.ts';
import type { QueueBoard } from './queue-board.ts';

/** UiKiller: how the UI kills things (asks to the master in production). */
export interface UiKiller {
  /** killApplication: true if the app was active and is now KILLED */
  application(appId: string): Promise<boolean>;
  /** killDriver: Spark's KillDriverResponse */
  driver(driverId: string): Promise<{ success: boolean; message: string }>;
  /** decommissionHosts: DecommissionWorkersOnHosts; how many workers are on those hosts (decommissioned now or before) */
  decommissionHosts(hostnames: string[]): Promise<number>;
}

export interface MasterUiBindings {
  redis: RedisConnection;
  keys: Keys;
  masterUrl: string;
  restUrl?: string;
  /** spark.master.ui.title; default "Flint Master at <url>" */
  title?: string;
  /** spark.ui.killEnabled */
  killEnabled: boolean;
  /** spark.decommission.enabled: without it POST /workers/kill/ answers 405 */
  decommissionEnabled?: boolean;
  auth: { secret?: string };
  killer: UiKiller;
  events?: ClusterEventFeed;
  metrics?: FlintMetrics;
  /** bull-board, built on its first request and served at /queues behind the admin scope */
  queueBoard?: QueueBoard;
  /** SSE keep-alive period (default 15 s) */
  keepAliveMs?: number;
  /** live-update streams served at once (default MAX_LIVE_STREAMS) */
  maxLiveStreams?: number;
  now?: () => number;
}

type UiEnv = { Variables: AuthVariables };

/** MAX_LIVE_STREAMS / MAX_QUEUED_LIVE_EVENTS: live-update streams one UI process serves, and events one holds for a slow reader. */
export const MAX_LIVE_STREAMS = 512;
export const MAX_QUEUED_LIVE_EVENTS = 256;

/** UI_BODY_LIMIT_BYTES: the largest request body the master UI reads. */
export const UI_BODY_LIMIT_BYTES = 64 * 1024;

/** createMasterUiApp builds the master UI's hono app. */
export function createMasterUiApp(bindings: MasterUiBindings): Hono<UiEnv> {
  const app = new Hono<UiEnv>();
  const now = bindings.now ?? Date.now;
  // the UI's forms (login, kill buttons, the queue board's actions) are small; a body is read before any token is checked
  app.use('*', limitBody({ maxSize: UI_BODY_LIMIT_BYTES, onError: (c) => c.text(`Request body too large: the limit is ${UI_BODY_LIMIT_BYTES} bytes.\n`, 413) }));
  const secret = bindings.auth.secret;
  const title = bindings.title ?? `Flint Master at ${bindings.masterUrl}`;

  const readState = (withExecutors = false): Promise<MasterState> =>
    readMasterState(bindings.redis, bindings.keys, { url: bindings.masterUrl, restUrl: bindings.restUrl, withExecutors, now: now() });

  const nav = (c: Context): Html => {
    const claims = currentClaims(c, secret, now());
    const account = claims
      ? html`<span title="scopes: ${claims.scope}">${claims.sub ? claims.sub : 'token'} (${claims.scope})</span><form method="post" action="/logout" style="display:inline"><button type="submit">Log out</button></form>`
      : html`<a href="/login?next=${encodeURIComponent(new URL(c.req.url).pathname + new URL(c.req.url).search)}">Log in</a>`;
    return html`<a href="/">Master</a><a href="/json">JSON</a><a href="/metrics">Metrics</a>${bindings.queueBoard ? html`<a href="/queues">Queues</a>` : ''}${account}`;
  };

  const respond = async (c: Context, pageTitle: string, content: Html, status: 200 | 401 | 403 | 404 | 400 | 500 = 200, live = true) => {
    c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Cache-Control', 'no-store');
    if (c.req.query('fragment') === '1') return c.html(await content, status);
    return c.html(await renderPage({ title: pageTitle, nav: nav(c), content, live }), status);
  };

  const denied = (c: Context, status: 401 | 403, message: string) => {
    if ((c.req.header('accept') ?? '').includes('application/json')) return c.json({ error: message }, status);
    return respond(c, 'Not allowed', messageContent(status === 401 ? 'Authentication required' : 'Not allowed', message, html`<p><a href="/login">Log in with a token</a></p>`), status, false);
  };
  const kill = requireUiScope('kill', { secret, now, onDenied: denied });
  const admin = requireUiScope('admin', { secret, now, onDenied: denied });

  const sameOrigin = sameOriginForCookies();

  app.onError((error, c) => {
    if (error instanceof HTTPException && error.status === 403) {
      return respond(c, 'Not allowed', messageContent('Not allowed', 'This form was not submitted from this UI (Origin check failed).'), 403, false);
    }
    if (error instanceof HTTPException) return error.getResponse();
    console.error('master UI error', error);
    return respond(c, 'Error', messageContent('Error', `The UI could not read the cluster state: ${error.message}`), 500, false);
  });

  app.get('/static/live.js', (c) => {
    c.header('Cache-Control', 'no-cache');
    return c.body(LIVE_SCRIPT, 200, { 'Content-Type': 'text/javascript; charset=utf-8' });
  });

  app.get('/', async (c) => {
    const state = await readState(false);
    return respond(c, title, html`<h1>${title}</h1>${masterContent(state, pageContext())}`);
  });

  const json = async (c: Context) => {
    const state = await readState(false);
    c.header('Cache-Control', 'no-store');
    return c.json(renderMasterJson(state, new URL(c.req.url).pathname, now()));
  };
  app.get('/json', json);
  app.get('/json/*', json);

  // Spark links use the trailing slash (/app/?appId=); the bare path is accepted too
  app.get('/app', (c) => c.redirect(`/app/${new URL(c.req.url).search}`, 301));
  app.get('/worker', (c) => c.redirect(`/worker/${new URL(c.req.url).search}`, 301));
  app.get('/app/', async (c) => {
    const appId = c.req.query('appId') ?? '';
    if (!appId) return respond(c, 'Application', messageContent('Missing appId', 'Use /app/?appId=<application id>.'), 400, false);
    const record = await readApplication(bindings.redis, bindings.keys, appId);
    if (!record) return respond(c, 'Application', messageContent('Application not found', `No application ${appId} is known (it may have been trimmed from the completed list).`), 404, false);
    const workers = await readWorkersOf(record.executors.map((e) => e.workerId));
    return respond(c, `Application ${appId}`, appContent(record, workers, pageContext()));
  });

  app.get('/worker/', async (c) => {
    const workerId = c.req.query('workerId') ?? '';
    if (!workerId) return respond(c, 'Worker', messageContent('Missing workerId', 'Use /worker/?workerId=<worker id>.'), 400, false);
    const found = await readWorker(bindings.redis, bindings.keys, workerId);
    if (!found) return respond(c, 'Worker', messageContent('Worker not found', `No worker ${workerId} is known (a DEAD worker is forgotten after spark.dead.worker.persistence timeouts).`), 404, false);
    return respond(c, `Worker ${workerId}`, workerContent(found.worker, found.executors, found.drivers, pageContext()));
  });

  let liveStreams = 0;
  app.get('/events', (c) => {
    const feed = bindings.events;
    if (!feed) return c.text('live updates are not enabled on this server', 404);
    // anyone may follow (reads are open), so the streams and what each holds are bounded
    const maxLiveStreams = bindings.maxLiveStreams ?? MAX_LIVE_STREAMS;
    if (liveStreams >= maxLiveStreams) {
      c.header('Retry-After', '5');
      return c.text(`this UI serves ${maxLiveStreams} live-update streams at once; try again later`, 429);
    }
    liveStreams += 1;
    c.header('Cache-Control', 'no-store');
    c.header('X-Accel-Buffering', 'no');
    return streamSSE(c, async (stream) => {
      try {
        await followLiveEvents(stream, feed);
      } finally {
        liveStreams -= 1;
      }
    });
  });

  /** followLiveEvents: the cluster's events as they come, for the pages' live updates (each only makes the page refresh). */
  const followLiveEvents = async (stream: SSEStreamingApi, feed: NonNullable<MasterUiBindings['events']>): Promise<void> => {
    let closed = false;
    const queue: string[] = [];
    let wake: (() => void) | undefined;
    const unsubscribe = feed.subscribe((events) => {
      for (const e of events) queue.push(JSON.stringify({ id: e.id, type: e.type, body: e.body, at: e.at }));
      // a reader that does not keep up only needs the latest: each event just makes the page refresh
      if (queue.length > MAX_QUEUED_LIVE_EVENTS) queue.splice(0, queue.length - MAX_QUEUED_LIVE_EVENTS);
      wake?.();
    });
    stream.onAbort(() => {
      closed = true;
      unsubscribe();
      wake?.();
    });
    await stream.writeSSE({ event: 'hello', data: JSON.stringify({ at: now() }) });
    const keepAliveMs = bindings.keepAliveMs ?? 15_000;
    try {
      while (!closed) {
        if (queue.length === 0) {
          let timer: NodeJS.Timeout | undefined;
          await new Promise<void>((resolve) => {
            wake = resolve;
            timer = setTimeout(resolve, keepAliveMs);
          });
          clearTimeout(timer);
          wake = undefined;
        }
        if (closed) break;
        if (queue.length === 0) {
          await stream.write(': keep-alive\n\n');
          continue;
        }
        for (const data of queue.splice(0)) {
          const id = (JSON.parse(data) as { id: string }).id;
          await stream.writeSSE({ event: 'cluster', id, data });
        }
      }
    } finally {
      unsubscribe();
    }
  };

  app.get('/metrics', async (c) => {
    if (!bindings.metrics) return c.text('metrics are not enabled on this server', 404);
    return c.body(await bindings.metrics.render(), 200, { 'Content-Type': bindings.metrics.contentType });
  });

  // Spark's PrometheusServlet paths on the master UI (instances `master` and `applications`)
  app.get('/metrics/master/prometheus', async (c) => {
    c.header('Cache-Control', 'no-store');
    return c.body(masterSourceText(await readState(false)), 200, { 'Content-Type': SPARK_METRICS_CONTENT_TYPE });
  });
  app.get('/metrics/applications/prometheus', async (c) => {
    c.header('Cache-Control', 'no-store');
    return c.body(applicationsSourceText(await readState(false)), 200, { 'Content-Type': SPARK_METRICS_CONTENT_TYPE });
  });

  app.get('/login', (c) => {
    const next = safeRedirectPath(c.req.query('next'));
    return respond(c, 'Log in', loginForm(next, secret ? undefined : 'This master has no spark.flint.auth.secret configured: kills from the UI are disabled.'), 200, false);
  });
  app.post('/login', sameOrigin, async (c) => {
    const form = await c.req.parseBody();
    const next = safeRedirectPath(typeof form.next === 'string' ? form.next : undefined);
    const token = typeof form.token === 'string' ? form.token : '';
    const started = startSession(c, token, secret, now());
    if (!started.ok) return respond(c, 'Log in', loginForm(next, started.message), 401, false);
    return c.redirect(next, 303);
  });
  app.post('/logout', sameOrigin, (c) => {
    endSession(c);
    return c.redirect('/', 303);
  });

  const killRoute = (kind: 'app' | 'driver') => async (c: Context<UiEnv>) => {
    if (!bindings.killEnabled) return respond(c, 'Not allowed', messageContent('Kill disabled', 'spark.ui.killEnabled is false on this master.'), 403, false);
    const form = await c.req.parseBody();
    const id = typeof form.id === 'string' ? form.id.trim() : '';
    const terminate = form.terminate === 'true';
    // Spark's MasterPage.handleKillRequest: only with terminate=true and an id; then back to the page.
    if (!terminate || !id) return c.redirect('/', 303);
    if (kind === 'app') {
      const killed = await bindings.killer.application(id);
      if (!killed && (c.req.header('accept') ?? '').includes('application/json')) return c.json({ id, killed }, 404);
      if ((c.req.header('accept') ?? '').includes('application/json')) return c.json({ id, killed });
    } else {
      const reply = await bindings.killer.driver(id);
      if ((c.req.header('accept') ?? '').includes('application/json')) return c.json({ id, ...reply }, reply.success ? 200 : 404);
    }
    return c.redirect('/', 303);
  };
  // authentication first, so an anonymous request learns it needs a token (401), then the Origin check
  app.post('/app/kill/', kill, sameOrigin, killRoute('app'));
  app.post('/driver/kill/', kill, sameOrigin, killRoute('driver'));

  // Spark's MasterWebUI /workers/kill. It exists only with spark.decommission.enabled, else 405 (SPARK-46888);
  // Spark's spark.master.ui.decommission.allow.mode (which client IPs may call it) is Flint's admin scope.
  const decommissionDisabled = (c: Context<UiEnv>) => {
    c.header('Cache-Control', 'no-store');
    return c.text('Decommissioning is disabled on this master (spark.decommission.enabled is false).', 405);
  };
  const decommissionRoute = async (c: Context<UiEnv>) => {
    c.header('Cache-Control', 'no-store');
    const wantsJson = (c.req.header('accept') ?? '').includes('application/json');
    const reply = (status: 200 | 400 | 404 | 500, text: string, body: Record<string, unknown>) =>
      wantsJson ? c.json({ ...body, message: text }, status) : c.text(text, status);
    const hostnames = await requestedHosts(c);
    if (hostnames.length === 0) {
      return reply(400, 'Missing host: use POST /workers/kill/?host=<hostname> (repeat host for more hosts; a hostname, without a port).', { error: 'missing host' });
    }
    const parsed = parseMessage<typeof MasterInbound, 'DecommissionWorkersOnHosts'>(MasterInbound, 'DecommissionWorkersOnHosts', { hostnames });
    if (!parsed.ok) return reply(400, `Invalid host list: ${parsed.reason}`, { error: 'invalid host list' });
    let count: number;
    try {
      count = await bindings.killer.decommissionHosts(parsed.value.body.hostnames);
    } catch (error) {
      return reply(500, `The master did not decommission: ${(error as Error).message}`, { error: 'decommission failed', hostnames });
    }
    const on = hostnames.join(', ');
    if (count > 0) return reply(200, `Decommissioned ${count} worker${count === 1 ? '' : 's'} on ${on}`, { hostnames, decommissioned: count });
    return reply(404, `No worker is registered on ${on}`, { hostnames, decommissioned: 0 });
  };
  for (const path of ['/workers/kill', '/workers/kill/']) {
    if (bindings.decommissionEnabled) app.post(path, admin, sameOrigin, decommissionRoute);
    else app.post(path, decommissionDisabled);
  }

  if (bindings.queueBoard) {
    // the board's own API (retry, clean, pause, ...) changes queues: admin, and the Origin check for cookies
    const board = bindings.queueBoard;
    app.use('/queues', admin, sameOrigin);
    app.use('/queues/*', admin, sameOrigin);
    app.all('/queues', async (c) => (await board()).fetch(c.req.raw));
    app.all('/queues/*', async (c) => (await board()).fetch(c.req.raw));
  }

  app.notFound((c) => respond(c, 'Not found', messageContent('Not found', `Nothing at ${new URL(c.req.url).pathname}.`), 404, false));

  function pageContext(): PageContext {
    return { now: now(), killEnabled: bindings.killEnabled };
  }

  /** requestedHosts: every `host` of the query string and of a form body, trimmed, blanks and repeats dropped. */
  async function requestedHosts(c: Context<UiEnv>): Promise<string[]> {
    const form = await c.req.parseBody({ all: true });
    const fromForm = form.host === undefined ? [] : Array.isArray(form.host) ? form.host : [form.host];
    const all = [...(c.req.queries('host') ?? []), ...fromForm.filter((v): v is string => typeof v === 'string')];
    return [...new Set(all.map((h) => h.trim()).filter((h) => h !== ''))];
  }

  /** readWorkersOf: the workers an app's executors sit on (the app page needs their UI addresses for log links). */
  async function readWorkersOf(workerIds: string[]): Promise<WorkerRecord[]> {
    const ids = [...new Set(workerIds)];
    if (ids.length === 0) return [];
    const pipe = bindings.redis.pipeline();
    for (const id of ids) pipe.hgetall(bindings.keys.worker(id));
    const replies = (await pipe.exec()) ?? [];
    return replies.map(([, h]) => workerFromHash((h as Record<string, string>) ?? {})).filter((w): w is WorkerRecord => w !== undefined);
  }

  return app;
}

function loginForm(next: string, message?: string): Html {
  return html`<h1>Log in</h1>
${message ? html`<p class="error" id="login-error">${message}</p>` : ''}
<p>Paste a token minted with <code>flint token --scope kill</code> (or <code>admin</code> for the queue board). It is kept in an HttpOnly cookie until it expires.</p>
<form method="post" action="/login" id="login-form">
<input type="hidden" name="next" value="${next}">
<input type="password" name="token" id="token" size="60" autocomplete="off" placeholder="eyJ...">
<button type="submit">Log in</button>
</form>`;
}
