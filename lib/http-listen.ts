/**
 * listenHttp: every Flint HTTP server (REST, UI, app API, invocation adapter,
 * worker UI, master metrics) listens the same way: @hono/node-server on a host
 * and port (0 = any free port), over HTTPS when given `tls` (lib/http/tls.ts
 * reads it from Spark's spark.ssl.* keys), a clear error naming what could not
 * listen, and a close() that does not wait for keep-alive or SSE connections to
 * time out. TLS lives here, once, so every server gets it the same way.
 */
import { serve } from '@hono/node-server';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { ServerTls } from './http/tls.ts';

export interface ListeningServer {
  /** http://host:port or https://host:port */
  url: string;
  port: number;
  close(): Promise<void>;
}

export type FetchHandler = (request: Request) => Response | Promise<Response>;

export interface ListenOptions {
  host: string;
  port: number;
  /** what listens, for the error message (e.g. "REST server") */
  what: string;
  /** serve HTTPS with this key material; plain HTTP without it */
  tls?: ServerTls;
}

/** hostForUrl brackets an IPv6 literal for use in a URL. */
export function hostForUrl(host: string): string {
  const bare = host.replace(/^\[|\]$/g, '');
  return bare.includes(':') ? `[${bare}]` : bare;
}

export function listenHttp(fetch: FetchHandler, options: ListenOptions): Promise<ListeningServer> {
  const scheme = options.tls ? 'https' : 'http';
  return new Promise((resolve, reject) => {
    const onListening = (info: AddressInfo) => {
      server.off('error', onError);
      resolve({
        url: `${scheme}://${hostForUrl(options.host)}:${info.port}`,
        port: info.port,
        close: () =>
          new Promise<void>((done, failed) => {
            server.close((error) => (error ? failed(error) : done()));
            // keep-alive and server-sent-event connections would hold close() open
            (server as Server).closeAllConnections?.();
          }),
      });
    };
    const server = (
      options.tls
        ? serve({ fetch, hostname: options.host, port: options.port, createServer: createHttpsServer, serverOptions: { ...options.tls } }, onListening)
        : serve({ fetch, hostname: options.host, port: options.port }, onListening)
    ) as Server;
    const onError = (error: NodeJS.ErrnoException) => {
      reject(new Error(`${options.what} cannot listen on ${options.host}:${options.port}: ${error.code ?? ''} ${error.message}`.trim(), { cause: error }));
    };
    server.once('error', onError);
    // a client that fails the handshake (an unknown CA, plain HTTP to an HTTPS port) is its problem, not the server's
    server.on('tlsClientError', () => undefined);
  });
}
