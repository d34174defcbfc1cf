/**
 * The REST submission server: Spark's StandaloneRestServer as a hono app.
 * It only translates: HTTP requests become DriverGateway calls (asks to the
 * master) and the replies become Spark's response JSON. Every dependency comes
 * in through `RestBindings`, so tests drive it with `app.request()`.
 *
 *   POST /v1/submissions/create          submit scope    CreateSubmissionResponse (Idempotency-Key: a retry gets the first answer)
 *   POST /v1/submissions/kill/<id>       kill scope      KillSubmissionResponse
 *   POST /v1/submissions/killall         kill scope      KillAllSubmissionResponse
 *   POST /v1/submissions/clear           admin scope     ClearResponse
 *   GET  /v1/submissions/status/<id>     no token        SubmissionStatusResponse
 *   GET  /v1/submissions/readyz          no token        ReadyzResponse | 503 ErrorResponse
 *   anything else                        no token        400 ErrorResponse (468 for an unknown version)
 */
import { listenHttp } from '../../../lib/http-listen.ts';
import type { ServerTls } from '../../../lib/http/tls.ts';
import { Hono, type Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { limitBody } from '../../../lib/http/body-limit.ts';
import { createHash } from 'node:crypto';
import { requireScope, assertSafeBind, extractToken, type AuthVariables } from '../../../lib/http/auth.ts';
import { credentialHash } from '../../../lib/http/app-tokens.ts';
import { createLogger, type Logger } from '../../../lib/log.ts';
import { GatewayUnavailableError, type DriverGateway } from './gateway.ts';
import {
  DEFAULT_BODY_LIMIT_BYTES,
  PROTOCOL_VERSION,
  RestProtocolError,
  clearResponse,
  createSubmissionResponse,
  errorResponse,
  errorServletResponse,
  killAllSubmissionResponse,
  killSubmissionResponse,
  parseSubmissionId,
  parseSubmitMessage,
  readyzResponse,
  submissionStatusResponse,
  toSparkJson,
  validateResponse,
  type RestResponse,
} from '../../../protocol/rest.ts';
import { buildDriverDescription } from './driver-mapping.ts';

export interface RestBindings {
  gateway: DriverGateway;
  auth: { secret?: string };
  serverSparkVersion: string;
  /** master URL given to drivers whose request sets no spark.master */
  masterUrl: string;
  /** largest request body read, in bytes (default 1 MiB); larger bodies get 413 */
  bodyLimitBytes?: number;
  /** image for requests that name none (e.g. a JVM request from Spark's own client); unset answers them 400 */
  defaultImage?: string;
  /** the REST port, so `spark.master=spark://host:<restPort>` is rewritten to the master's port as Spark does */
  restPort?: number;
  /** environment for `{{NAME}}` placeholders (default process.env) */
  serverEnv?: Readonly<Record<string, string | undefined>>;
  logger?: Logger;
}

type RestEnv = { Variables: AuthVariables };

/** IDEMPOTENCY_KEY: printable ASCII, as the app API takes the same header. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

const BASE = `/${PROTOCOL_VERSION}/submissions`;

/** createRestApp builds the hono app of the REST submission server. */
export function createRestApp(bindings: RestBindings): Hono<RestEnv> {
  const app = new Hono<RestEnv>();
  const version = bindings.serverSparkVersion;
  const log = bindings.logger ?? createLogger('rest');
  const auth = { secret: bindings.auth.secret, serverSparkVersion: version };
  const maxSize = bindings.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;

  const send = (c: Context, status: 200 | 400 | 405 | 413 | 468 | 500 | 503, response: RestResponse): Response => {
    const invalid = validateResponse(response);
    if (invalid) {
      // Spark's validateResponse: a response the server built wrongly is a 500 with the reason.
      log.error({ action: response.action, reason: invalid }, 'REST response failed validation');
      return c.body(toSparkJson(errorResponse(version, `Internal server error: ${invalid}`)), 500, JSON_HEADERS);
    }
    // 468 is Spark's own code, outside hono's list of known status codes.
    return c.body(toSparkJson(response), status as ContentfulStatusCode, JSON_HEADERS);
  };
  const fail = (c: Context, status: 400 | 405 | 413 | 500 | 503, message: string) => send(c, status, errorResponse(version, message));
  const paths = (action: string) => [`${BASE}/${action}`, `${BASE}/${action}/*`];
  const idAfter = (c: Context, action: string) => parseSubmissionId(c.req.path.slice(`${BASE}/${action}`.length));

  app.onError((error, c) => {
    if (error instanceof GatewayUnavailableError) return fail(c, 503, `Master is not available: ${error.message}`);
    log.error({ err: error, path: c.req.path }, 'REST request failed');
    return fail(c, 500, `Internal server error: ${error.message}`);
  });

  app.on(
    'POST',
    paths('create'),
    requireScope('submit', auth),
    limitBody({ maxSize, onError: (c) => fail(c, 413, `Request body too large: the limit is ${maxSize} bytes.`) }),
    async (c) => {
      const body = await c.req.text();
      let parsed;
      let driverDescription;
      try {
        parsed = parseSubmitMessage(body);
        if (parsed.kind === 'other') return fail(c, 400, `Received message of unexpected type ${parsed.messageType}.`);
        driverDescription = buildDriverDescription(parsed.request, {
          masterUrl: bindings.masterUrl,
          defaultImage: bindings.defaultImage,
          restPort: bindings.restPort,
          serverEnv: bindings.serverEnv ?? process.env,
        });
      } catch (error) {
        if (error instanceof RestProtocolError) return fail(c, 400, `Malformed request: ${error.message}`);
        throw error;
      }
      const idempotencyKey = c.req.header('idempotency-key');
      let requestId: string | undefined;
      if (idempotencyKey !== undefined) {
        if (!IDEMPOTENCY_KEY.test(idempotencyKey)) return fail(c, 400, 'Malformed request: invalid Idempotency-Key: use 1-255 printable ASCII characters.');
        // scoped to the caller's credential: two callers with the same key submit two drivers
        const credential = extractToken(c.req.header('authorization')) ?? '';
        requestId = `submit-${createHash('sha256').update(`${credentialHash(credential)}\n${idempotencyKey}`).digest('hex').slice(0, 40)}`;
      }
      const reply = await bindings.gateway.submitDriver(driverDescription, { requestId });
      log.info({ driverId: reply.driverId, success: reply.success, appName: driverDescription.name }, 'REST submission');
      return send(c, 200, createSubmissionResponse(version, reply, parsed.unknownFields));
    },
  );

  app.on('POST', paths('kill'), requireScope('kill', auth), async (c) => {
    const id = idAfter(c, 'kill');
    if (id === undefined) return fail(c, 400, 'Submission ID is missing in kill request.');
    return send(c, 200, killSubmissionResponse(version, id, await bindings.gateway.killDriver(id)));
  });

  app.on('POST', paths('killall'), requireScope('kill', auth), async (c) => {
    return send(c, 200, killAllSubmissionResponse(version, await bindings.gateway.killAllDrivers()));
  });

  app.on('POST', paths('clear'), requireScope('admin', auth), async (c) => {
    return send(c, 200, clearResponse(version, await bindings.gateway.clearCompleted()));
  });

  app.on('GET', paths('status'), async (c) => {
    const id = idAfter(c, 'status');
    if (id === undefined) return fail(c, 400, 'Submission ID is missing in status request.');
    return send(c, 200, submissionStatusResponse(version, id, await bindings.gateway.driverStatus(id)));
  });

  app.on('GET', paths('readyz'), async (c) => {
    let ready = false;
    try {
      ready = await bindings.gateway.ready();
    } catch (error) {
      log.warn({ err: error }, 'readiness check failed');
    }
    return ready ? send(c, 200, readyzResponse(version)) : fail(c, 503, 'Master is not ready.');
  });

  // Spark's servlets implement one method each; Jetty answers the others with a bare 405.
  const allowed: Record<string, string> = { create: 'POST', kill: 'POST', killall: 'POST', clear: 'POST', status: 'GET', readyz: 'GET' };
  for (const [action, method] of Object.entries(allowed)) {
    app.all(paths(action)[0]!, methodNotAllowed(action, method));
    app.all(paths(action)[1]!, methodNotAllowed(action, method));
  }
  function methodNotAllowed(action: string, method: string) {
    return (c: Context) => {
      c.header('Allow', method);
      return fail(c, 405, `HTTP method ${c.req.method} is not supported by ${BASE}/${action}: use ${method}.`);
    };
  }

  app.all('*', (c) => {
    const { status, body } = errorServletResponse(c.req.path, version);
    return send(c, status, body);
  });

  return app;
}

const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8' };

export interface RunningRestServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * startRestServer listens (lib/http-listen.ts, HTTPS with `tls`) after
 * assertSafeBind (no non-loopback address without a secret). Port 0 picks a free port.
 */
export async function startRestServer(app: Hono<RestEnv> | Hono, options: { host: string; port: number; secret?: string; tls?: ServerTls }): Promise<RunningRestServer> {
  assertSafeBind(options.host, options.secret);
  return listenHttp(app.fetch, { host: options.host, port: options.port, what: 'REST server', tls: options.tls });
}
