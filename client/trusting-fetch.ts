/**
 * fetchTrusting: a `fetch` for Flint's clients that verifies https:// servers
 * against the system's CAs plus the given PEM bundle (a private CA that signed the
 * masters' certificates: `--ca-file`, spark.ssl.standalone.trustStore). Node's
 * global fetch cannot take extra CAs without a dependency (undici's Agent), so
 * this one is node:https underneath. It covers what the REST client uses: method,
 * string headers, a string body, an abort signal; the body is read whole.
 * Certificate and host-name checks stay on: an unknown certificate fails the
 * request as fetch does (TypeError "fetch failed" with the TLS error as cause).
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';

export type FetchLike = (input: string | URL, init?: { method?: string; headers?: Record<string, string>; body?: string; signal?: AbortSignal }) => Promise<Response>;

/** NO_BODY_STATUS: statuses a Response must be built without a body. */
const NO_BODY_STATUS = new Set([101, 204, 205, 304]);

export function fetchTrusting(ca: string | Buffer): FetchLike {
  const trusted = [...rootCertificates, ca.toString()];
  return (input, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(String(input));
      const fail = (error: Error) => reject(error.name === 'AbortError' || error.name === 'TimeoutError' ? error : new TypeError('fetch failed', { cause: error }));
      const onResponse = (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', fail);
        res.on('end', () => {
          const headers = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            if (value === undefined) continue;
            for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
          }
          const status = res.statusCode ?? 500;
          resolve(new Response(NO_BODY_STATUS.has(status) ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage, headers }));
        });
      };
      const options = { method: init.method ?? 'GET', headers: init.headers, signal: init.signal };
      const req = url.protocol === 'https:' ? httpsRequest(url, { ...options, ca: trusted }, onResponse) : httpRequest(url, options, onResponse);
      req.on('error', (error) => fail(init.signal?.aborted ? ((init.signal.reason as Error) ?? error) : error));
      if (init.body !== undefined) req.write(init.body);
      req.end();
    });
}
