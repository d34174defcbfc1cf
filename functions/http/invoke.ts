/**
 * The HTTP invocation adapter: one HTTP request runs exactly one master handler
 * for one message, through the same `handle()` the queue consumer uses (so the
 * validation, the dead-lettering, the handler and the commit script are the same
 * code). It lets Flint's handlers run behind any HTTP front that scales by
 * requests (see wrangler-free.md) instead of, or next to, the BullMQ consumer.
 *
 *   POST /invoke/:messageType   body: the message as JSON
 *     200 {ok: true, reply}      the handler ran; `reply` is what an ask would get
 *     400 {ok: false, error}     malformed or refused message (dead-lettered by handle(); do not retry)
 *     401/403                    missing or bad bearer token (only when a secret is configured)
 *     413                        body over the limit
 *     500 {ok: false, error}     the handler failed (transient: retrying with the same key is safe)
 *
 * The idempotency key is the `Idempotency-Key` header (else a random id); it is
 * the handler's `requestId`, the key non-idempotent requests (RequestSubmitDriver)
 * use to return the first result to a retry instead of acting twice.
 */
import { listenHttp } from '../../lib/http-listen.ts';
import { randomUUID } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { limitBody } from '../../lib/http/body-limit.ts';
import { UnrecoverableError } from '../../lib/bullmq.ts';
import { createLogger, type Logger } from '../../lib/log.ts';
import { requireScope, assertSafeBind, type AuthVariables } from '../../lib/http/auth.ts';

/** InvokeTarget: anything that runs one message through a handler (a MasterHost from startMaster). */
export interface InvokeTarget {
  handle(type: string, body: unknown, requestId: string): Promise<unknown>;
}

export interface InvokeAppOptions {
  host: InvokeTarget;
  /** spark.flint.auth.secret: when set, every request needs a bearer token with the `admin` scope */
  secret?: string;
  /** largest body read, in bytes (default 1 MiB) */
  bodyLimitBytes?: number;
  logger?: Logger;
}

export const DEFAULT_INVOKE_BODY_LIMIT = 1024 * 1024;

/** IDEMPOTENCY_KEY: the same alphabet as message ids, so a key is also a valid BullMQ job id. */
const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:@-]{1,200}$/;
const MESSAGE_TYPE = /^[A-Za-z]{1,64}$/;

type InvokeEnv = { Variables: AuthVariables };

/**
 * isRefusal: handle() signals a message it will never accept (malformed, or refused
 * by its handler) with a DeadLetterError, an UnrecoverableError for BullMQ; it has
 * already been dead-lettered.
 */
function isRefusal(error: unknown): boolean {
  return error instanceof UnrecoverableError || (error instanceof Error && error.name === 'DeadLetterError');
}

/** createInvokeApp builds the adapter's hono app; tests drive it with `app.request()`. */
export function createInvokeApp(options: InvokeAppOptions): Hono<InvokeEnv> {
  const app = new Hono<InvokeEnv>();
  const log = options.logger ?? createLogger('invoke');
  const maxSize = options.bodyLimitBytes ?? DEFAULT_INVOKE_BODY_LIMIT;
  const fail = (c: Context, status: 400 | 404 | 405 | 413 | 500, error: string) => c.json({ ok: false, error }, status);

  app.onError((error, c) => {
    log.error({ err: error, path: c.req.path }, 'invocation failed');
    return fail(c, 500, `handler failed: ${error.message}`);
  });

  if (options.secret) {
    app.use('/invoke/*', requireScope('admin', { secret: options.secret, onDenied: (c, status, message) => c.json({ ok: false, error: message }, status) }));
  }

  app.post(
    '/invoke/:messageType',
    limitBody({ maxSize, onError: (c) => fail(c, 413, `request body too large: the limit is ${maxSize} bytes`) }),
    async (c) => {
      const type = c.req.param('messageType');
      if (!MESSAGE_TYPE.test(type)) return fail(c, 400, `invalid message type '${type.slice(0, 80)}'`);
      const headerKey = c.req.header('idempotency-key');
      if (headerKey !== undefined && !IDEMPOTENCY_KEY.test(headerKey)) {
        return fail(c, 400, 'invalid Idempotency-Key: use 1-200 letters, digits or . _ : @ -');
      }
      const requestId = headerKey ?? `http-${randomUUID()}`;
      const text = await c.req.text();
      // Text that is not JSON goes to handle() as it is: parseMessage names the JSON
      // error and the message is dead-lettered like any other malformed one.
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // keep the text
      }
      const started = performance.now();
      try {
        const reply = await options.host.handle(type, body, requestId);
        log.debug({ type, requestId, ms: performance.now() - started }, 'invoked');
        return c.json({ ok: true, reply: reply ?? null }, 200);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        if (isRefusal(error)) return fail(c, 400, message);
        log.error({ err: error, type, requestId }, 'handler failed');
        return fail(c, 500, `handler failed: ${message}`);
      }
    },
  );

  app.all('/invoke/:messageType', (c) => {
    c.header('Allow', 'POST');
    return fail(c, 405, `use POST /invoke/${c.req.param('messageType')}`);
  });
  app.all('*', (c) => fail(c, 404, `no such route: ${c.req.method} ${c.req.path} (use POST /invoke/<MessageType>)`));
  return app;
}

export interface RunningInvokeServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * startInvokeServer listens with @hono/node-server. Like the REST server, it
 * refuses a non-loopback address without a secret: the adapter can register
 * workers and start drivers, so it must never be open beyond this machine.
 */
export async function startInvokeServer(options: InvokeAppOptions & { hostname: string; port: number }): Promise<RunningInvokeServer> {
  assertSafeBind(options.hostname, options.secret);
  const app = createInvokeApp(options);
  return listenHttp(app.fetch, { host: options.hostname, port: options.port, what: 'invocation adapter' });
}
