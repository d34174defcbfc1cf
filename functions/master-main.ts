/**
 * `flint master`: one functions host process (see functions/host.ts) and the HTTP
 * services its configuration asks for (REST submission server, web UI, application
 * API: functions/http/master-services.ts). Start as many as you like against the
 * same Redis and cluster; stop any with SIGTERM. `startMasterServices` is exported
 * here for `flint up`, which starts the same services the same way.
 * The command's definition is master-command.ts, which imports this module only
 * when the command runs.
 */
import { DEFAULT_REDIS_URL, loadConfig, parseConfFlags } from '../protocol/config.ts';
import { Queue } from '../lib/bullmq.ts';
import { startMaster } from './host.ts';
import { planMasterServices, startMasterServices } from './http/master-services.ts';
import type { FlintMetrics } from './http/metrics.ts';
import { assertSafeBind } from '../lib/http/auth.ts';
import { bullConnection, closeBull, connectRedisOrCluster, redactRedisUrl } from '../lib/redis.ts';
import { listenHttp } from '../lib/http-listen.ts';
import { waitForSignal } from '../lib/signals.ts';
import { releaseStartupMemory } from '../lib/idle-memory.ts';
import { credentialsFromConfig, resolveRedisUrl } from '../lib/redis-credentials.ts';
import { clusterKeys } from '../protocol/keys.ts';

export { startMasterServices, type MasterServices } from './http/master-services.ts';

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

/** MasterFlags: what commander hands the action (master-command.ts); --host, --port and --webui-port are Spark's start-master.sh flags. */
export type MasterFlags = CommonFlags & { concurrency?: number; http?: string; host?: string; port?: string; webuiPort?: string };

/** masterConfigFromFlags: configFromFlags plus the master's own flags, which win over every other source. */
export function masterConfigFromFlags(flags: MasterFlags) {
  const conf = [...(flags.conf ?? [])];
  if (flags.host !== undefined) conf.push(`spark.master.host=${flags.host}`);
  if (flags.port !== undefined) conf.push(`spark.master.port=${flags.port}`);
  if (flags.webuiPort !== undefined) conf.push(`spark.master.ui.port=${flags.webuiPort}`);
  return configFromFlags({ ...flags, conf });
}

/**
 * runMaster runs one functions host until SIGTERM/SIGINT, with the HTTP services
 * its configuration asks for (functions/http/master-services.ts: REST server, web
 * UI, application API) and, with --http, this process's /metrics and /invoke.
 * The services start first, so a port in use or a public bind without a secret
 * stops the process before it takes any message.
 */
export async function runMaster(flags: MasterFlags): Promise<void> {
  const { config, redisUrl: configuredUrl } = masterConfigFromFlags(flags);
  // the password is read from its file now and kept in memory only (never on a command line)
  const redisUrl = resolveRedisUrl(configuredUrl, credentialsFromConfig(config));
  const listen = flags.http ? parseListen(flags.http) : undefined;
  if (listen) assertSafeBind(listen.host, config.authSecret);
  const plan = planMasterServices(config);
  const observability = listen || plan.ui ? await startObservability(redisUrl, config.cluster) : undefined;
  const closers: (() => Promise<unknown>)[] = [async () => observability?.close()];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  };
  try {
    const services = await startMasterServices({ redisUrl, config, metrics: observability?.metrics });
    closers.push(() => services.close());
    const host = await startMaster({
      redisUrl,
      config,
      concurrency: flags.concurrency,
      onMessage: observability?.metrics.observeMessage,
      onPass: observability?.metrics.observePass,
    });
    closers.push(() => host.stop());
    const say = (line: string) => process.stdout.write(`flint master ${host.id}${line}\n`);
    say(` handling cluster '${config.cluster}' on ${redactRedisUrl(redisUrl)}`);
    if (services.restUrl) say(`: REST submission server on ${services.restUrl}`);
    if (services.uiUrl) say(`: web UI on ${services.uiUrl} (/json, /metrics, /metrics/master/prometheus)`);
    if (services.appApiUrl) say(`: application HTTP API on ${services.appApiUrl}`);
    if (listen && observability) {
      const [{ Hono }, { createInvokeApp }] = await Promise.all([import('hono'), import('./http/invoke.ts')]);
      const app = new Hono();
      const metrics = observability.metrics;
      app.get('/metrics', async (c) => c.body(await metrics.render(), 200, { 'Content-Type': metrics.contentType }));
      app.route('/', createInvokeApp({ host, secret: config.authSecret }));
      const server = await listenHttp(app.fetch, { host: listen.host, port: listen.port, what: 'master metrics and invocation adapter' });
      closers.push(() => server.close());
      say(`: /metrics and /invoke on ${server.url}`);
    }
  } catch (error) {
    await closeAll();
    throw error;
  }
  releaseStartupMemory();
  await waitForSignal();
  // handlers first (they finish what they hold), then the servers
  await closeAll();
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
  // prom-client is loaded only by a master that serves metrics (UI or --http)
  const { createFlintMetrics } = await import('./http/metrics.ts');
  const metrics = createFlintMetrics({ redis, keys, queue });
  return {
    metrics,
    async close() {
      await closeBull(queue);
      redis.disconnect();
    },
  };
}
