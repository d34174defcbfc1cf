/**
 * The application client over HTTP, so a driver written in any language can be
 * a Flint application: every route translates to one AppClient ↔ Master message
 * or to a read of the app's state, and the event stream becomes server-sent events.
 *
 *   POST   /v1/apps                     RegisterApplication (body: ApplicationDescription + clientId?) → 201 {appId}
 *   GET    /v1/apps/:id                 the app's state (its hash and executors)
 *   GET    /v1/apps/:id/events          SSE of the app's event stream; `id:` = stream id, resumable
 *                                       with Last-Event-ID (or ?lastEventId=); ends after
 *                                       ApplicationRemoved, or once the app is finished and drained
 *   POST   /v1/apps/:id/executors       RequestExecutors {total}
 *   POST   /v1/apps/:id/kill-executors  KillExecutors {executorIds}
 *   POST   /v1/apps/:id/kill            KillApplication
 *   DELETE /v1/apps/:id                 UnregisterApplication
 *   POST   /v1/apps/:id/unregister      the same, for clients that cannot send DELETE (busybox wget)
 *
 * With a secret configured, the mutating routes need a bearer token with the
 * `submit` scope (lib/http/auth.ts). Without one the API is open, and
 * `startAppHttpServer` therefore refuses to listen beyond loopback.
 */
import { listenHttp } from '../../lib/http-listen.ts';
import type { ServerTls } from '../../lib/http/tls.ts';
import { randomUUID } from 'node:crypto';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { streamSSE } from 'hono/streaming';
import {
  ApplicationDescription,
  KillExecutors,
  RegisterApplication,
  RequestExecutors,
  UnregisterApplication,
  formatIssues,
  z,
} from '../../protocol/messages.ts';
import { clusterKeys, DEFAULT_CLUSTER, type Keys } from '../../protocol/keys.ts';
import { isApplicationFinished, type ApplicationState } from '../../protocol/states.ts';
import { connectRedisOrCluster, DEFAULT_REDIS_URL, type RedisConnection } from '../../lib/redis.ts';
import { createLogger, type Logger } from '../../lib/log.ts';
import { requireScope, assertSafeBind } from '../../lib/http/auth.ts';
import { AskRejectedError, AskTimeoutError, MasterClient } from '../../client/master-client.ts';
import { decodeAppEventEntry, isStreamId, readAppEventEntries } from '../../client/app-client.ts';

export interface AppHttpOptions {
  redisUrl?: string;
  cluster?: string;
  /** auth.secret: spark.flint.auth.secret; when set, mutating routes need a `submit` token. */
  auth?: { secret?: string; now?: () => number };
  /** askTimeoutMs: how long a route waits for the master's reply (default 10 s). */
  askTimeoutMs?: number;
  /** pollMs: how long one blocking read of an event stream waits before re-checking the app (default 2 s). */
  pollMs?: number;
  /** keepAliveMs: an SSE comment is written after this much silence, so proxies keep the connection (default 15 s). */
  keepAliveMs?: number;
  logger?: Logger;
}

export interface AppHttp {
  app: Hono;
  /** close releases the master client, the state connection and every open event stream. */
  close(): Promise<void>;
}

/** RegisterAppBody: an ApplicationDescription with an optional clientId beside it (one flat JSON object). */
const RegisterAppBody = ApplicationDescription.extend({ clientId: RegisterApplication.shape.clientId.optional() });
const RequestExecutorsBody = z.object({ total: RequestExecutors.shape.requestedTotal });
const KillExecutorsBody = z.object({ executorIds: z.array(z.union([z.string(), z.number().int()])).max(10_000) });
const appIdSchema = UnregisterApplication.shape.appId;

class HttpError extends Error {
  constructor(
    readonly status: 400 | 404 | 409 | 413 | 422 | 503,
    message: string,
  ) {
    super(message);
  }
}

/** createAppHttpApp builds the hono app; its connections open lazily, on the first request that needs them. */
export function createAppHttpApp(options: AppHttpOptions = {}): AppHttp {
  const redisUrl = options.redisUrl ?? DEFAULT_REDIS_URL;
  const keys = clusterKeys(options.cluster ?? DEFAULT_CLUSTER);
  const askTimeoutMs = options.askTimeoutMs ?? 10_000;
  const pollMs = options.pollMs ?? 2_000;
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  const log = options.logger ?? createLogger('app-http', { cluster: keys.cluster });
  const readers = new Set<RedisConnection>();
  let master: MasterClient | undefined;
  let state: Promise<RedisConnection> | undefined;
  let closed = false;

  const masterClient = () => (master ??= new MasterClient(redisUrl, keys.cluster, 'flint-app-http'));
  const stateRedis = () => (state ??= connectRedisOrCluster(redisUrl, { name: 'flint-app-http-state' }));

  const app = new Hono();
  const mutating: MiddlewareHandler = options.auth?.secret
    ? (requireScope('submit', {
        secret: options.auth.secret,
        now: options.auth.now,
        onDenied: (c, status, message) => c.json({ error: message }, status),
      }) as unknown as MiddlewareHandler)
    : async function openRoute(_c, next) {
        await next();
      };

  app.onError((error, c) => {
    if (error instanceof HttpError) return c.json({ error: error.message }, error.status);
    if (error instanceof AskTimeoutError) return c.json({ error: error.message }, 503);
    if (error instanceof AskRejectedError) return c.json({ error: `the master refused the request: ${error.message}` }, 422);
    log.error({ err: error.message, path: c.req.path }, 'app API request failed');
    return c.json({ error: `internal error: ${error.message}` }, 500);
  });

  app.post('/v1/apps', mutating, async (c) => {
    const body = await jsonBody(c, RegisterAppBody);
    const { clientId = randomUUID(), ...appDescription } = body;
    const reply = await masterClient().ask<{ appId: string; masterUrl: string }>('RegisterApplication', { clientId, appDescription }, askTimeoutMs);
    return c.json({ appId: reply.appId, clientId, masterUrl: reply.masterUrl }, 201);
  });

  app.get('/v1/apps/:id', async (c) => {
    const appId = appIdParam(c);
    const redis = await stateRedis();
    const [hash, executors] = await Promise.all([redis.hgetall(keys.app(appId)), redis.hgetall(keys.appExecutors(appId))]);
    if (!hash || Object.keys(hash).length === 0) throw new HttpError(404, `unknown application '${appId}'`);
    return c.json(appStateFromHash(hash, executors));
  });

  app.post('/v1/apps/:id/executors', mutating, async (c) => {
    const appId = appIdParam(c);
    const { total } = await jsonBody(c, RequestExecutorsBody);
    const known = await masterClient().ask<boolean>('RequestExecutors', { appId, requestedTotal: total }, askTimeoutMs);
    return known ? c.json({ ok: true, appId, requestedTotal: total }) : unknownApp(c, appId);
  });

  app.post('/v1/apps/:id/kill-executors', mutating, async (c) => {
    const appId = appIdParam(c);
    const { executorIds } = await jsonBody(c, KillExecutorsBody);
    const ids = KillExecutors.shape.executorIds.parse(executorIds.map(String));
    const known = await masterClient().ask<boolean>('KillExecutors', { appId, executorIds: ids }, askTimeoutMs);
    return known ? c.json({ ok: true, appId }) : unknownApp(c, appId);
  });

  app.post('/v1/apps/:id/kill', mutating, async (c) => {
    const appId = appIdParam(c);
    const removed = await masterClient().ask<boolean>('KillApplication', { appId }, askTimeoutMs);
    return removed ? c.json({ ok: true, appId }) : unknownApp(c, appId);
  });

  const unregister = async (c: Context) => {
    const appId = appIdParam(c);
    const removed = await masterClient().ask<boolean>('UnregisterApplication', { appId }, askTimeoutMs);
    return removed ? c.json({ ok: true, appId }) : unknownApp(c, appId);
  };
  app.delete('/v1/apps/:id', mutating, unregister);
  app.post('/v1/apps/:id/unregister', mutating, unregister);

  app.get('/v1/apps/:id/events', async (c) => {
    const appId = appIdParam(c);
    // A browser's EventSource resends Last-Event-ID on reconnect; it wins over the query.
    const after = c.req.header('last-event-id') ?? c.req.query('lastEventId') ?? '0';
    if (!isStreamId(after)) throw new HttpError(400, `invalid Last-Event-ID '${after}': expected a stream id such as 1700000000000-0`);
    const redis = await stateRedis();
    if ((await redis.exists(keys.app(appId), keys.appEvents(appId))) === 0) throw new HttpError(404, `unknown application '${appId}'`);
    if (closed) throw new HttpError(503, 'the server is shutting down');
    const reader = await connectRedisOrCluster(redisUrl, { name: `flint-app-http-events-${appId}`.slice(0, 100), blocking: true });
    readers.add(reader);
    return streamSSE(c, async (stream) => {
      let done = false;
      const release = () => {
        done = true;
        readers.delete(reader);
        reader.disconnect();
      };
      stream.onAbort(release);
      c.req.raw.signal?.addEventListener('abort', release, { once: true });
      try {
        await followAppEvents({
          reader,
          keys,
          appId,
          after,
          pollMs,
          keepAliveMs,
          isDone: () => done || stream.aborted || closed,
          appState: async () => (await redis.hget(keys.app(appId), 'state')) as ApplicationState | null,
          send: (event) => stream.writeSSE(event),
          comment: (text) => stream.write(`: ${text}\n\n`).then(() => undefined),
        });
      } catch (error) {
        if (!done) log.warn({ appId, err: (error as Error).message }, 'event stream ended by an error');
      } finally {
        release();
      }
    });
  });

  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));

  return {
    app,
    async close() {
      closed = true;
      for (const reader of readers) reader.disconnect();
      readers.clear();
      const pending: Promise<unknown>[] = [];
      if (master) pending.push(master.close());
      if (state) pending.push(state.then((redis) => redis.quit()).catch(() => undefined));
      await Promise.allSettled(pending);
    },
  };
}

export interface FollowAppEventsOptions {
  reader: RedisConnection;
  keys: Keys;
  appId: string;
  after: string;
  pollMs: number;
  keepAliveMs: number;
  isDone(): boolean;
  appState(): Promise<ApplicationState | null>;
  send(event: { id: string; event: string; data: string }): Promise<void>;
  comment(text: string): Promise<void>;
}

/**
 * followAppEvents: the SSE loop. Reads without blocking until the stream is
 * drained; then, if the app is finished (or gone), ends; otherwise blocks for
 * `pollMs` and writes a keep-alive comment after `keepAliveMs` of silence.
 * It ends right after ApplicationRemoved. Returns the last id sent.
 */
export async function followAppEvents(options: FollowAppEventsOptions): Promise<string> {
  const { reader, keys, appId } = options;
  const streamKey = keys.appEvents(appId);
  let cursor = options.after;
  let lastWrite = Date.now();
  let drained = false;
  while (!options.isDone()) {
    const entries = await readAppEventEntries(reader, streamKey, cursor, { blockMs: drained ? options.pollMs : 0 });
    if (entries.length === 0) {
      if (!drained) {
        drained = true;
        const state = await options.appState();
        if (state === null || isApplicationFinished(state)) return cursor;
      } else {
        const state = await options.appState();
        if (state === null || isApplicationFinished(state)) {
          drained = false; // one more non-blocking read, for events written with the final state
          continue;
        }
        if (Date.now() - lastWrite >= options.keepAliveMs) {
          await options.comment('keep-alive');
          lastWrite = Date.now();
        }
      }
      continue;
    }
    drained = false;
    for (const entry of entries) {
      cursor = entry[0];
      const decoded = decodeAppEventEntry(entry);
      if (!decoded.ok) {
        await options.send({ id: cursor, event: 'invalid', data: JSON.stringify(decoded.invalid) });
        continue;
      }
      await options.send({ id: cursor, event: decoded.event.type, data: JSON.stringify(decoded.event.body) });
      if (decoded.event.type === 'ApplicationRemoved') return cursor;
    }
    lastWrite = Date.now();
  }
  return cursor;
}

const NUMERIC_APP_FIELDS = [
  'coresGranted',
  'requestedCores',
  'executorLimit',
  'liveExecutors',
  'retryCount',
  'nextExecutorId',
  'startTime',
  'endTime',
  'seq',
  'priority',
] as const;

/** HIDDEN_APP_FIELDS: bookkeeping that is not the app's state (the clientId is the registration's idempotency key). */
const HIDDEN_APP_FIELDS = new Set(['clientId']);

/**
 * appStateFromHash: the app hash (strings) → JSON for GET /v1/apps/:id: numbers
 * as numbers, `desc` parsed, executors parsed and ordered by id.
 */
export function appStateFromHash(hash: Record<string, string>, executors: Record<string, string> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(hash)) {
    if (HIDDEN_APP_FIELDS.has(field)) continue;
    if ((NUMERIC_APP_FIELDS as readonly string[]).includes(field)) {
      const n = Number(value);
      out[field] = Number.isFinite(n) ? n : value;
    } else if (field === 'desc') {
      out[field] = parseJsonOr(value);
    } else {
      out[field] = value;
    }
  }
  out.executors = Object.entries(executors)
    .map(([id, raw]) => {
      const parsed = parseJsonOr(raw);
      return parsed !== null && typeof parsed === 'object' ? { id: Number(id), ...(parsed as object) } : { id: Number(id), raw };
    })
    .sort((a, b) => a.id - b.id);
  return out;
}

function parseJsonOr(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function appIdParam(c: Context): string {
  const appId = c.req.param('id') ?? '';
  const parsed = appIdSchema.safeParse(appId);
  if (!parsed.success) throw new HttpError(400, `invalid application id '${appId}': ${formatIssues(parsed.error)}`);
  return parsed.data;
}

const MAX_BODY_BYTES = 1024 * 1024;

async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  const text = await c.req.text();
  if (text.length > MAX_BODY_BYTES) throw new HttpError(413, `request body is larger than ${MAX_BODY_BYTES} bytes`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `request body is not valid JSON: ${(error as Error).message}`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new HttpError(400, 'request body must be a JSON object');
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw new HttpError(400, `invalid request body: ${formatIssues(parsed.error)}`);
  return parsed.data;
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
 */
export async function startAppHttpServer(options: AppHttpOptions & { host?: string; port?: number; tls?: ServerTls }): Promise<RunningAppHttpServer> {
  const host = options.host ?? '127.0.0.1';
  assertSafeBind(host, options.auth?.secret);
  const api = createAppHttpApp(options);
  try {
    const server = await listenHttp(api.app.fetch, { host, port: options.port ?? 0, what: 'application HTTP API', tls: options.tls });
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
