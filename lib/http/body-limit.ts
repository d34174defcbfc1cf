/**
 * limitBody: hono's bodyLimit, without its cost on the common path. hono's middleware reads
 * `c.req.raw.body` first, which makes @hono/node-server build a full WHATWG Request
 * (a ReadableStream, an AbortSignal, undici's header checks) for every request with a
 * body: on the executor-heartbeat path that was most of the work per beat. A request that
 * declares its length (Content-Length, no Transfer-Encoding) is judged by that header alone:
 * Node's HTTP parser never delivers more than the declared length, so the body read later
 * is bounded by it. Only a chunked body goes through hono's streaming count.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';

export function limitBody(options: { maxSize: number; onError: (c: Context) => Response | Promise<Response> }): MiddlewareHandler {
  const streaming = bodyLimit(options);
  return async function limitBodyMiddleware(c, next) {
    const declared = c.req.header('content-length');
    if (declared !== undefined && c.req.header('transfer-encoding') === undefined) {
      const length = Number(declared);
      // a malformed length never reaches here (Node's parser answers 400), but stay strict
      if (!Number.isSafeInteger(length) || length > options.maxSize) return options.onError(c);
      return next();
    }
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    return streaming(c, next);
  };
}
