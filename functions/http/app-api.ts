/**
 * The application client over HTTP, so a driver written in any language can be
 * a Flint application: every route translates to one AppClient ↔ Master message
 * or to a read of the app's state, and the event stream becomes server-sent events.
 *
 *   POST   /v1/apps                     RegisterApplication (body: ApplicationDescription + clientId?;
 *                                       Idempotency-Key header) → 201 {appId, appToken, leaseTimeoutMs, ...}
 *   GET    /v1/apps/:id                 the app's state (env and secret-looking values redacted unless owner/admin)
 *   POST   /v1/apps/:id/heartbeat       renew the app's client lease
 *   GET    /v1/apps/:id/events          SSE of the app's event stream; `id:` = stream id, resumable
 *                                       with Last-Event-ID (or ?lastEventId=); ends after
 *                                       ApplicationRemoved, or once the app is finished and drained
 *   POST   /v1/apps/:id/executors       RequestExecutors {total}
 *   POST   /v1/apps/:id/kill-executors  KillExecutors {executorIds}
 *   POST   /v1/apps/:id/kill            KillApplication
 *   DELETE /v1/apps/:id                 UnregisterApplication
 *   POST   /v1/apps/:id/unregister      the same, for clients that cannot send DELETE (busybox wget)
 *   POST   /v1/apps/:id/executors/:execId/heartbeat
 *                                       an executor's heartbeat (its own token; optional {metrics})
 *
 * Who may call what is app-api-access.ts: registration needs a `submit` token when
 * spark.flint.auth.secret is set (open on loopback without one); everything that acts
 * on one application needs that application's token (returned at registration) or a
 * cluster token with the `kill`/`admin` scope. Each request made with the app's token
 * renews the app's client lease, and so does every open event stream of its owner.
 * The process also runs the HeartbeatReceiver (client/heartbeat-receiver.ts) for the
 * apps whose executors heartbeat, and serves every event stream through one shared
 * Redis reader (app-event-hub.ts), at most spark.flint.appApi.maxStreams at once.
 */
import type { ServerTls } from '../../lib/http/tls.ts';
import { createHash, randomUUID } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import { limitBody } from '../../lib/http/body-limit.ts';
import { HTTP_BODY_LIMIT_BYTES } from '../../protocol/limits.ts';
import { listenHttp } from '../../lib/http-listen.ts';
import {
  ApplicationDescription,
  ApplicationDescriptionFields,
  boundedDescription,
  KillExecutors,
  RegisterApplication,
  RequestExecutors,
  UnregisterApplication,
  formatIssues,
  z,
} from '../../protocol/messages.ts';
import { clusterKeys, DEFAULT_CLUSTER } from '../../protocol/keys.ts';
import type { ApplicationState } from '../../protocol/states.ts';
import { connectRedisOrCluster, DEFAULT_REDIS_URL, type RedisConnection } from '../../lib/redis.ts';
import { createLogger, type Logger } from '../../lib/log.ts';
import { assertSafeBind, authorize } from '../../lib/http/auth.ts';
import { appToken, credentialHash } from '../../lib/http/app-tokens.ts';
import { AskRejectedError, AskTimeoutError, MasterClient } from '../../client/master-client.ts';
import { AppClientError, isStreamId, readAppEventEntries, withClientConf } from '../../client/app-client.ts';
import { ExecutorBeatBatcher, HeartbeatReceiver, LeaseKeeper, RECEIVER_TICK_MS } from '../../client/heartbeat-receiver.ts';
import { AppEventHub, MAX_STREAMS_PER_APP } from './app-event-hub.ts';
import { followAppEvents } from './app-events-sse.ts';
import { appStateFromHash } from './app-state-view.ts';

export { followAppEvents, appStateFromHash };
import { AppKeys, decideAppAccess, isExecutorCredential, isOwnerOrAdmin, isRefusal, readCredential, redactDescription, type Credential } from './app-api-access.ts';

export interface AppHttpOptions {
  redisUrl?: string;
  cluster?: string;
  /** auth.secret: spark.flint.auth.secret; when set, registering needs a `submit` token and cluster tokens are accepted. */
  auth?: { secret?: string; now?: () => number };
  /** askTimeoutMs: how long a route waits for the master's reply (default 10 s). */
  askTimeoutMs?: number;
  /** pollMs: how often an open event stream re-checks its app's state (default 2 s). */
  pollMs?: number;
  /** keepAliveMs: an SSE comment is written after this much silence, so proxies keep the connection (default 15 s). */
  keepAliveMs?: number;
  /** maxStreams: spark.flint.appApi.maxStreams, event streams served at once (default 1000). */
  maxStreams?: number;
  /** publicUrl: where executors reach this API (the default spark.flint.executor.heartbeat.url); startAppHttpServer sets its own. */
  publicUrl?: string;
  /** receiverTickMs: how often this process runs the executor-expiry check (default 500 ms; 0 = never). */
  receiverTickMs?: number;
  /** leaseRenewMs: how often open event streams renew their app's lease (default 1 s; keep well under spark.flint.app.timeout). */
  leaseRenewMs?: number;
  logger?: Logger;
}

export interface AppHttp {
  app: Hono;
  /** setPublicUrl: the URL executors reach this API at, once it is known (after listening). */
  setPublicUrl(url: string): void;
  /** close releases the master client, the state connection, the receiver and every open event stream. */
  close(): Promise<void>;
}

/** RegisterAppBody: an ApplicationDescription with an optional clientId beside it (one flat JSON object). */
const RegisterAppBody = boundedDescription(ApplicationDescriptionFields.extend({ clientId: RegisterApplication.shape.clientId.optional() }));
const RequestExecutorsBody = z.object({ total: RequestExecutors.shape.requestedTotal });
const KillExecutorsBody = z.object({ executorIds: z.array(z.union([z.string(), z.number().int()])).max(10_000) });
const appIdSchema = UnregisterApplication.shape.appId;
/** APP_ID: the id grammar of protocol/messages.ts, checked without zod on the heartbeat path. */
const APP_ID = /^[A-Za-z0-9._:@/-]{1,256}$/;

/** IDEMPOTENCY_KEY: printable ASCII, as most APIs that take the header accept it. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
/** MAX_METRICS_BYTES: the largest metrics payload one heartbeat may carry. */
export const MAX_METRICS_BYTES = 4096;

class HttpError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 422 | 429 | 503,
    message: string,
  ) {
    super(message);
  }
}

/** createAppHttpApp builds the hono app; its connections open lazily, on the first request (or receiver tick) that needs them. */
export function createAppHttpApp(options: AppHttpOptions = {}): AppHttp {
  const redisUrl = options.redisUrl ?? DEFAULT_REDIS_URL;
  const keys = clusterKeys(options.cluster ?? DEFAULT_CLUSTER);
  const secret = options.auth?.secret;
  const now = options.auth?.now ?? Date.now;
  const askTimeoutMs = options.askTimeoutMs ?? 10_000;
  const pollMs = options.pollMs ?? 2_000;
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  const log = options.logger ?? createLogger('app-http', { cluster: keys.cluster });
  let publicUrl = options.publicUrl?.replace(/\/+$/, '');
  let master: MasterClient | undefined;
  let state: Promise<RedisConnection> | undefined;
  let closed = false;

  const masterClient = () => (master ??= new MasterClient(redisUrl, keys.cluster, 'flint-app-http'));
  const stateRedis = () => (state ??= connectRedisOrCluster(redisUrl, { name: 'flint-app-http-state' }));
  const appKeys = new AppKeys(stateRedis, keys);
  const lease = new LeaseKeeper(stateRedis, keys, log, options.leaseRenewMs ?? 1_000);
  const beats = new ExecutorBeatBatcher(stateRedis, keys);
  const hub = new AppEventHub({
    connect: () => connectRedisOrCluster(redisUrl, { name: `flint-app-http-events-${keys.cluster}`.slice(0, 100), blocking: true }),
    blockMs: Math.min(pollMs, 1_000),
    maxStreams: options.maxStreams ?? 1000,
    log,
  });
  const receiverTickMs = options.receiverTickMs ?? RECEIVER_TICK_MS;
  const receiver =
    receiverTickMs > 0
      ? new HeartbeatReceiver({ redis: stateRedis, keys, master: { ask: (...args) => masterClient().ask(...args) }, log, tickMs: receiverTickMs, askTimeoutMs })
      : undefined;
  receiver?.start();

  const app = new Hono();

  // bodies are read through a limit (a larger one is cut off while it streams, never buffered whole)
  app.use('*', limitBody({ maxSize: HTTP_BODY_LIMIT_BYTES, onError: (c) => c.json({ error: `request body is larger than ${HTTP_BODY_LIMIT_BYTES} bytes` }, 413) }));

  app.onError((error, c) => {
    if (error instanceof HttpError) return c.json({ error: error.message }, error.status);
    if (error instanceof AskTimeoutError) return c.json({ error: error.message }, 503);
    if (error instanceof AskRejectedError) return c.json({ error: `the master refused the request: ${error.message}` }, 422);
    log.error({ err: error.message, path: c.req.path }, 'app API request failed');
    return c.json({ error: `internal error: ${error.message}` }, 500);
  });

  /** credentialOf: the request's credential; a malformed or invalid one is a 401 here. */
  const credentialOf = (c: Context): Credential => {
    const credential = readCredential(c.req.header('authorization'), secret, now());
    if (isRefusal(credential)) {
      c.header('WWW-Authenticate', 'Bearer realm="flint", error="invalid_token"');
      throw new HttpError(credential.status, credential.message);
    }
    return credential;
  };

  /** requireApp: the caller may act on `appId` (its owner, or a cluster token with one of `scopes`); an owner renews the lease. */
  const requireApp = async (c: Context, appId: string, scopes: ('kill' | 'admin')[]): Promise<{ owner: boolean }> => {
    const access = await decideAppAccess(credentialOf(c), appId, scopes, appKeys);
    if (!access.ok) {
      if (access.status === 401) c.header('WWW-Authenticate', 'Bearer realm="flint"');
      throw new HttpError(access.status, access.message);
    }
    if (access.owner) lease.touch(appId);
    return { owner: access.owner };
  };

  app.post('/v1/apps', async (c) => {
    let registrar: string | undefined;
    if (secret) {
      const decision = authorize(c.req.header('authorization'), 'submit', secret, now());
      if (!decision.ok) {
        c.header('WWW-Authenticate', 'Bearer realm="flint"');
        throw new HttpError(decision.status, decision.message);
      }
    }
    const credential = credentialOf(c);
    if (credential.kind === 'app' || credential.kind === 'executor') throw new HttpError(403, 'An application or executor token cannot register applications.');
    if (credential.kind === 'cluster') registrar = credentialHash(credential.token);

    const body = await jsonBody(c, RegisterAppBody);
    const { clientId: givenClientId, ...description } = body;
    const idempotencyKey = c.req.header('idempotency-key');
    let requestId: string | undefined;
    let clientId = givenClientId;
    if (idempotencyKey !== undefined) {
      if (!IDEMPOTENCY_KEY.test(idempotencyKey)) throw new HttpError(400, 'invalid Idempotency-Key: use 1-255 printable ASCII characters');
      if (givenClientId !== undefined) throw new HttpError(400, 'send either a clientId or an Idempotency-Key header, not both');
      // scoped to the caller: two callers with the same key get two applications
      requestId = createHash('sha256').update(`${registrar ?? ''}\n${idempotencyKey}`).digest('hex').slice(0, 40);
      clientId = `idem-${requestId}`;
    }
    clientId ??= randomUUID();
    let appDescription: ApplicationDescription;
    try {
      appDescription = withClientConf(description, { heartbeatUrl: publicUrl }).desc;
    } catch (error) {
      if (error instanceof AppClientError) throw new HttpError(400, error.message);
      throw error;
    }
    const reply = await masterClient().ask<{ appId: string; masterUrl: string; leaseTimeoutMs?: number }>(
      'RegisterApplication',
      { clientId, appDescription, registrar },
      askTimeoutMs,
      { requestId: requestId && `reg-${requestId}` },
    );
    const appSecret = await appKeys.get(reply.appId, true);
    if (!appSecret) throw new HttpError(404, `application '${reply.appId}' is already forgotten (trimmed from the completed list)`);
    if (appSecret.registrar !== (registrar ?? '')) {
      throw new HttpError(409, `clientId '${clientId}' belongs to an application registered with another credential; use a clientId of your own`);
    }
    lease.touch(reply.appId);
    return c.json(
      { appId: reply.appId, clientId, masterUrl: reply.masterUrl, appToken: appToken(appSecret.key, reply.appId), leaseTimeoutMs: reply.leaseTimeoutMs },
      201,
    );
  });

  app.get('/v1/apps/:id', async (c) => {
    const appId = appIdParam(c);
    const view = await isOwnerOrAdmin(credentialOf(c), appId, appKeys);
    if (view.owner) lease.touch(appId);
    const redis = await stateRedis();
    const [hash, executors, beatsWithScores, metrics] = (await redis
      .pipeline()
      .hgetall(keys.app(appId))
      .hgetall(keys.appExecutors(appId))
      .zrange(keys.appExecutorBeats(appId), '0', '-1', 'WITHSCORES')
      .hgetall(keys.appExecutorMetrics(appId))
      .exec())!.map(([error, value]) => {
      if (error) throw error;
      return value;
    }) as [Record<string, string>, Record<string, string>, string[], Record<string, string>];
    if (!hash || Object.keys(hash).length === 0) throw new HttpError(404, `unknown application '${appId}'`);
    // an executor's metrics are what its task chose to send: its owner's (and an admin's) to read
    const body = appStateFromHash(hash, executors, { beats: beatsWithScores, metrics: view.full ? metrics : {} });
    if (!view.full) body.desc = redactDescription(body.desc);
    return c.json(body);
  });

  app.post('/v1/apps/:id/heartbeat', async (c) => {
    const appId = appIdParam(c);
    const { owner } = await requireApp(c, appId, []);
    if (!owner) throw new HttpError(403, "Only the application's own token renews its lease.");
    const held = await lease.renew([appId]);
    if (held === 0) throw new HttpError(404, `unknown or finished application '${appId}'`);
    return c.json({ ok: true, appId });
  });

  app.post('/v1/apps/:id/executors', async (c) => {
    const appId = appIdParam(c);
    await requireApp(c, appId, ['admin']);
    const { total } = await jsonBody(c, RequestExecutorsBody);
    const known = await masterClient().ask<boolean>('RequestExecutors', { appId, requestedTotal: total }, askTimeoutMs);
    return known ? c.json({ ok: true, appId, requestedTotal: total }) : unknownApp(c, appId);
  });

  app.post('/v1/apps/:id/kill-executors', async (c) => {
    const appId = appIdParam(c);
    await requireApp(c, appId, ['kill', 'admin']);
    const { executorIds } = await jsonBody(c, KillExecutorsBody);
    const ids = KillExecutors.shape.executorIds.parse(executorIds.map(String));
    const known = await masterClient().ask<boolean>('KillExecutors', { appId, executorIds: ids }, askTimeoutMs);
    return known ? c.json({ ok: true, appId }) : unknownApp(c, appId);
  });

  app.post('/v1/apps/:id/kill', async (c) => {
    const appId = appIdParam(c);
    await requireApp(c, appId, ['kill', 'admin']);
    const removed = await masterClient().ask<boolean>('KillApplication', { appId }, askTimeoutMs);
    return removed ? c.json({ ok: true, appId }) : unknownApp(c, appId);
  });

  const unregister = async (c: Context) => {
    const appId = appIdParam(c);
    await requireApp(c, appId, ['kill', 'admin']);
    const removed = await masterClient().ask<boolean>('UnregisterApplication', { appId }, askTimeoutMs);
    return removed ? c.json({ ok: true, appId }) : unknownApp(c, appId);
  };
  app.delete('/v1/apps/:id', unregister);
  app.post('/v1/apps/:id/unregister', unregister);

  // The hot path (acceptance: 20,000 beats/s per process): no zod, the key from the cache,
  // one HMAC, and the beat joins this event-loop turn's batch (one script call for all).
  app.post('/v1/apps/:id/executors/:execId/heartbeat', async (c) => {
    const appId = c.req.param('id') ?? '';
    if (!APP_ID.test(appId)) appIdParam(c); // the schema's message for a bad id
    const execText = c.req.param('execId') ?? '';
    if (!/^\d{1,9}$/.test(execText)) throw new HttpError(400, `invalid executor id '${execText}': expected a non-negative integer`);
    const execId = Number(execText);
    const credential = credentialOf(c);
    if (credential.kind === 'none') throw new HttpError(401, "Missing bearer token: a heartbeat needs the executor's token (FLINT_HEARTBEAT_TOKEN).");
    if (!(await isExecutorCredential(credential, appId, execId, appKeys))) {
      throw new HttpError(403, `The token is not executor ${appId}/${execId}'s heartbeat token.`);
    }
    const metrics = await metricsOf(c);
    const outcome = await beats.record({ appId, execId, metrics });
    if (outcome === 'unknown') throw new HttpError(404, `unknown or finished executor ${appId}/${execId}`);
    return c.json({ ok: true, registered: outcome === 'recorded' });
  });

  app.get('/v1/apps/:id/events', async (c) => {
    const appId = appIdParam(c);
    // A browser's EventSource resends Last-Event-ID on reconnect; it wins over the query.
    const after = c.req.header('last-event-id') ?? c.req.query('lastEventId') ?? '0';
    if (!isStreamId(after)) throw new HttpError(400, `invalid Last-Event-ID '${after}': expected a stream id such as 1700000000000-0`);
    const { owner } = await requireApp(c, appId, ['admin']);
    const redis = await stateRedis();
    if ((await redis.exists(keys.app(appId), keys.appEvents(appId))) === 0) throw new HttpError(404, `unknown application '${appId}'`);
    if (closed) throw new HttpError(503, 'the server is shutting down');
    const place = hub.reserve(appId);
    if (place !== 'ok') {
      c.header('Retry-After', '1');
      if (place === 'app-full') throw new HttpError(429, `application '${appId}' already has ${MAX_STREAMS_PER_APP} event streams open on this app API; close one first`);
      throw new HttpError(429, `this app API serves ${options.maxStreams ?? 1000} event streams at once (spark.flint.appApi.maxStreams); try again later`);
    }
    const releaseLease = owner ? lease.hold(appId) : () => undefined;
    c.header('Cache-Control', 'no-store');
    c.header('X-Accel-Buffering', 'no');
    return streamSSE(c, async (stream) => {
      let done = false;
      let following: { close(): void } | undefined;
      const release = () => {
        done = true;
        following?.close();
      };
      stream.onAbort(release);
      c.req.raw.signal?.addEventListener('abort', release, { once: true });
      try {
        await followAppEvents({
          after,
          pollMs,
          keepAliveMs,
          isDone: () => done || stream.aborted || closed,
          readNow: (cursor) => readAppEventEntries(redis, keys.appEvents(appId), cursor, { blockMs: 0 }),
          follow: (cursor) => (following = hub.join(keys.appEvents(appId), cursor)),
          appState: async () => (await redis.hget(keys.app(appId), 'state')) as ApplicationState | null,
          send: (event) => stream.writeSSE(event),
          comment: (text) => stream.write(`: ${text}\n\n`).then(() => undefined),
        });
      } catch (error) {
        if (!done) log.warn({ appId, err: (error as Error).message }, 'event stream ended by an error');
      } finally {
        release();
        releaseLease();
        hub.unreserve(appId);
      }
    });
  });

  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));

  return {
    app,
    setPublicUrl(url: string) {
      publicUrl = url.replace(/\/+$/, '');
    },
    async close() {
      closed = true;
      lease.stop();
      await receiver?.stop();
      await hub.close();
      const pending: Promise<unknown>[] = [];
      if (master) pending.push(master.close());
      if (state) pending.push(state.then((redis) => redis.quit()).catch(() => undefined));
      await Promise.allSettled(pending);
    },
  };
}

function appIdParam(c: Context): string {
  const appId = c.req.param('id') ?? '';
  const parsed = appIdSchema.safeParse(appId);
  if (!parsed.success) throw new HttpError(400, `invalid application id '${appId}': ${formatIssues(parsed.error)}`);
  return parsed.data;
}

/** jsonObject: `text` parsed as a JSON object, or a 400 that says what `what` should have been. */
function jsonObject(text: string, what: string, shape: string): Record<string, unknown> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `${what} is not valid JSON: ${(error as Error).message}`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new HttpError(400, `${what} must be ${shape}`);
  return data as Record<string, unknown>;
}

async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  const text = await c.req.text();
  const data = jsonObject(text, 'request body', 'a JSON object');
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw new HttpError(400, `invalid request body: ${formatIssues(parsed.error)}`);
  return parsed.data;
}

/**
 * metricsOf: a heartbeat's optional body, `{"metrics": <JSON object>}`, as the JSON
 * text of the metrics ('' for none); at most MAX_METRICS_BYTES.
 */
async function metricsOf(c: Context): Promise<string> {
  const text = await c.req.text();
  if (text.trim() === '') return '';
  if (Buffer.byteLength(text) > MAX_METRICS_BYTES + 64) throw new HttpError(413, `a heartbeat body may carry at most ${MAX_METRICS_BYTES} bytes of metrics`);
  const metrics = jsonObject(text, 'heartbeat body', 'a JSON object such as {"metrics": {...}}').metrics;
  if (metrics === undefined) return '';
  if (metrics === null || typeof metrics !== 'object' || Array.isArray(metrics)) throw new HttpError(400, 'metrics must be a JSON object');
  const encoded = JSON.stringify(metrics);
  if (Buffer.byteLength(encoded) > MAX_METRICS_BYTES) throw new HttpError(413, `a heartbeat body may carry at most ${MAX_METRICS_BYTES} bytes of metrics`);
  return encoded;
}

function unknownApp(c: Context, appId: string): Response {
  return c.json({ error: `unknown or finished application '${appId}'` }, 404);
}

export interface RunningAppHttpServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * startAppHttpServer serves the app API with @hono/node-server. It refuses a
 * non-loopback host without a secret (assertSafeBind). Port 0 picks a free port.
 * Unless `publicUrl` says otherwise, executors send heartbeats to the URL it listens on.
 */
export async function startAppHttpServer(options: AppHttpOptions & { host?: string; port?: number; tls?: ServerTls }): Promise<RunningAppHttpServer> {
  const host = options.host ?? '127.0.0.1';
  assertSafeBind(host, options.auth?.secret);
  const api = createAppHttpApp(options);
  try {
    const server = await listenHttp(api.app.fetch, { host, port: options.port ?? 0, what: 'application HTTP API', tls: options.tls });
    if (!options.publicUrl) api.setPublicUrl(server.url);
    return {
      url: server.url,
      port: server.port,
      close: async () => {
        await api.close();
        await server.close();
      },
    };
  } catch (error) {
    await api.close();
    throw error;
  }
}
