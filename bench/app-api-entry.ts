/**
 * An app API process for the executor-heartbeat benchmark, run as a child process:
 * `BENCH_MODE=flint` serves Flint's app API (startAppHttpServer, exactly what the
 * cluster runs: token check, batched absorption into Redis, the receiver's expiry
 * check); `BENCH_MODE=bare` serves a bare hono app on the same HTTP stack whose
 * heartbeat route only parses the body and answers the same JSON, the physical
 * baseline of the same run. Prints `ready <url>`; SIGTERM stops it.
 */
import { Hono } from 'hono';
import { startAppHttpServer } from '../functions/http/app-api.ts';
import { listenHttp } from '../lib/http-listen.ts';

const mode = process.env.BENCH_MODE;
let close: () => Promise<void>;
let url: string;
if (mode === 'flint') {
  const server = await startAppHttpServer({ redisUrl: process.env.BENCH_REDIS_URL!, cluster: process.env.BENCH_CLUSTER!, port: 0 });
  close = server.close;
  url = server.url;
} else if (mode === 'bare') {
  const app = new Hono();
  app.post('/v1/apps/:id/executors/:execId/heartbeat', async (c) => {
    const text = await c.req.text();
    if (text) JSON.parse(text);
    return c.json({ ok: true, registered: true });
  });
  const server = await listenHttp(app.fetch, { host: '127.0.0.1', port: 0, what: 'bare hono' });
  close = server.close;
  url = server.url;
} else {
  process.stderr.write('bench/app-api-entry.ts needs BENCH_MODE=flint or bare\n');
  process.exit(2);
}
process.stdout.write(`ready ${url}\n`);
process.on('SIGTERM', () => void close().then(() => process.exit(0), () => process.exit(1)));
