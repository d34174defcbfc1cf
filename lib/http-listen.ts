/**
 * listenHttp: every Flint HTTP server (REST, UI, app API, invocation adapter,
 * worker UI, master metrics) listens the same way: @hono/node-server on a host
 * and port (0 = any free port), a clear error naming what could not listen, and
 * a close() that does not wait for keep-alive or SSE connections to time out.
 */
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';

export interface ListeningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export type FetchHandler = (request: Request) => Response | Promise<Response>;

/** hostForUrl brackets an IPv6 literal for use in a URL. */
export function hostForUrl(host: string): string {
  const bare = host.replace(/^\[|\]$/g, '');
  return bare.includes(':') ? `[${bare}]` : bare;
}

export function listenHttp(fetch: FetchHandler, options: { host: string; port: number; what: string }): Promise<ListeningServer> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname: options.host, port: options.port }, (info: AddressInfo) => {
      server.off('error', onError);
      resolve({
        url: `http://${hostForUrl(options.host)}:${info.port}`,
        port: info.port,
        close: () =>
          new Promise<void>((done, failed) => {
            server.close((error) => (error ? failed(error) : done()));
            // keep-alive and server-sent-event connections would hold close() open
            (server as Server).closeAllConnections?.();
          }),
      });
    }) as Server;
    const onError = (error: NodeJS.ErrnoException) => {
      reject(new Error(`${options.what} cannot listen on ${options.host}:${options.port}: ${error.code ?? ''} ${error.message}`.trim(), { cause: error }));
    };
    server.once('error', onError);
  });
}
