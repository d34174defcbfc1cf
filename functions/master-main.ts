/**
 * `flint master`: one functions host process (see functions/host.ts). Start as
 * many as you like against the same Redis and cluster; stop any with SIGTERM.
 * The command's definition is master-command.ts, which imports this module only
 * when the command runs.
 */
import { DEFAULT_REDIS_URL, loadConfig, parseConfFlags } from '../protocol/config.ts';
import { Hono } from 'hono';
import { Queue } from 'bullmq';
import { startMaster } from './host.ts';
import { createFlintMetrics, type FlintMetrics } from './http/metrics.ts';
import { createInvokeApp } from './http/invoke.ts';
import { assertSafeBind } from '../lib/http/auth.ts';
import { bullConnection, closeBull, connectRedisOrCluster, redactRedisUrl } from '../lib/redis.ts';
import { listenHttp } from '../lib/http-listen.ts';
import { waitForSignal } from '../lib/signals.ts';
import { clusterKeys } from '../protocol/keys.ts';

export interface CommonFlags {
  redis?: string;
  cluster?: string;
  propertiesFile?: string;
  conf?: string[];
}

/** configFromFlags layers --properties-file, FLINT_* env and --conf flags (plus --cluster/--redis). */
export function configFromFlags(flags: CommonFlags) {
  const overrides = parseConfFlags(flags.conf ?? []);
  if (flags.cluster) overrides['spark.flint.cluster'] = flags.cluster;
  if (flags.redis) overrides['spark.flint.redis.url'] = flags.redis;
  const config = loadConfig({ propertiesFile: flags.propertiesFile, overrides });
  return { config, redisUrl: config.redisUrl ?? DEFAULT_REDIS_URL };
}

/** MasterFlags: what commander hands the action (master-command.ts). */
export type MasterFlags = CommonFlags & { concurrency?: number; http?: string };

/** runMaster runs one functions host until SIGTERM/SIGINT, with /metrics and /invoke when --http is given. */
export async function runMaster(flags: MasterFlags): Promise<void> {
  const { config, redisUrl } = configFromFlags(flags);
  const listen = flags.http ? parseListen(flags.http) : undefined;
  if (listen) assertSafeBind(listen.host, config.authSecret);
  const observability = listen ? await startObservability(redisUrl, config.cluster) : undefined;
  const host = await startMaster({
    redisUrl,
    config,
    concurrency: flags.concurrency,
    onMessage: observability?.metrics.observeMessage,
    onPass: observability?.metrics.observePass,
  });
  let closeHttp = async () => {};
  if (listen && observability) {
    const app = new Hono();
    const metrics = observability.metrics;
    app.get('/metrics', async (c) => c.body(await metrics.render(), 200, { 'Content-Type': metrics.contentType }));
    app.route('/', createInvokeApp({ host, secret: config.authSecret }));
    const server = await listenHttp(app.fetch, { host: listen.host, port: listen.port, what: 'master metrics and invocation adapter' });
    closeHttp = () => server.close();
    process.stdout.write(`flint master ${host.id}: /metrics and /invoke on ${server.url}\n`);
  }
  process.stdout.write(`flint master ${host.id} handling cluster '${config.cluster}' on ${redactRedisUrl(redisUrl)}\n`);
  await waitForSignal();
  await host.stop();
  await closeHttp();
  await observability?.close();
}

function parseListen(text: string): { host: string; port: number } {
  const match = /^(.*):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || !match[1] || port > 65535) throw new Error(`--http '${text}' must be host:port, e.g. 127.0.0.1:9464`);
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}

async function startObservability(redisUrl: string, cluster: string): Promise<{ metrics: FlintMetrics; close(): Promise<void> }> {
  const keys = clusterKeys(cluster);
  const redis = await connectRedisOrCluster(redisUrl, { name: 'flint-master-metrics' });
  const queue = new Queue(keys.masterQueue, { connection: bullConnection(redisUrl, { name: 'flint-master-metrics-queue' }), prefix: keys.bullPrefix });
  const metrics = createFlintMetrics({ redis, keys, queue });
  return {
    metrics,
    async close() {
      await closeBull(queue);
      redis.disconnect();
    },
  };
}
