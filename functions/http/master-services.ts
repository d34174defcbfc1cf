/**
 * The HTTP services of one `flint master` process, started from its configuration:
 *
 *   REST submission server   spark.master.rest.enabled (default true)   spark.master.rest.host:port (6066)
 *   web UI, /json, metrics   spark.flint.master.ui.enabled (true)       spark.master.host:spark.master.ui.port (8080)
 *   application HTTP API     spark.flint.master.appApi.enabled (false)  spark.flint.master.appApi.host:port (6067)
 *
 * Every service is stateless (it reads Redis and asks the master queue), so any
 * number of processes may serve them behind any load balancer. `flint master` and
 * `flint up` both start them here, so they behave the same. The plan is checked
 * before anything listens: a non-loopback address without spark.flint.auth.secret
 * refuses to start (CVE-2018-11770), and TLS key files are read once
 * (lib/http/tls.ts). A port of 0 binds a free port; the bound URLs are returned and
 * logged. A failure part-way closes what had started.
 */
import { Queue } from '../../lib/bullmq.ts';
import type { FlintConfig } from '../../protocol/config.ts';
import { clusterKeys } from '../../protocol/keys.ts';
import { assertSafeBind } from '../../lib/http/auth.ts';
import { serverTlsFromConfig, type ServerTls } from '../../lib/http/tls.ts';
import { hostForUrl } from '../../lib/http-listen.ts';
import { bullConnection, closeBull } from '../../lib/redis.ts';
import { createLogger, type Logger } from '../../lib/log.ts';
import { MasterClient } from '../../client/master-client.ts';
import { masterUrlFor } from '../store/master-store.ts';
import type { FlintMetrics } from './metrics.ts';

/** SERVER_SPARK_VERSION: the Spark version the REST server reports (serverSparkVersion). */
export const SERVER_SPARK_VERSION = '4.0.0';

export interface Endpoint {
  host: string;
  port: number;
}

/** MasterServicePlan: which services a process serves, where, and with which TLS. */
export interface MasterServicePlan {
  rest?: Endpoint;
  ui?: Endpoint;
  appApi?: Endpoint;
  tls?: ServerTls;
  secret?: string;
}

/**
 * planMasterServices: the services of `config`, checked: each bind address is
 * loopback or has a secret, and the TLS files (if any) are read.
 */
export function planMasterServices(config: FlintConfig): MasterServicePlan {
  const masterHost = config.get<string>('spark.master.host');
  const plan: MasterServicePlan = { secret: config.authSecret };
  if (config.get<boolean>('spark.master.rest.enabled')) {
    plan.rest = { host: config.get<string | undefined>('spark.master.rest.host') ?? masterHost, port: config.get<number>('spark.master.rest.port') };
  }
  if (config.get<boolean>('spark.flint.master.ui.enabled')) {
    plan.ui = { host: masterHost, port: config.get<number>('spark.master.ui.port') };
  }
  if (config.get<boolean>('spark.flint.master.appApi.enabled')) {
    plan.appApi = { host: config.get<string | undefined>('spark.flint.master.appApi.host') ?? masterHost, port: config.get<number>('spark.flint.master.appApi.port') };
  }
  for (const endpoint of [plan.rest, plan.ui, plan.appApi]) if (endpoint) assertSafeBind(endpoint.host, plan.secret);
  if (plan.rest || plan.ui || plan.appApi) plan.tls = serverTlsFromConfig(config);
  return plan;
}

export interface MasterServicesOptions {
  redisUrl: string;
  config: FlintConfig;
  /** the process's metrics (shared with its functions host's observers); the UI makes its own otherwise */
  metrics?: FlintMetrics;
  log?: Logger;
}

export interface MasterServices {
  restUrl?: string;
  uiUrl?: string;
  appApiUrl?: string;
  /** the metrics the UI serves at /metrics, when the UI runs */
  metrics?: FlintMetrics;
  /** close stops every service; idempotent */
  close(): Promise<void>;
}

/** startMasterServices starts the services `config` asks for and returns their bound URLs. */
export async function startMasterServices(options: MasterServicesOptions): Promise<MasterServices> {
  const { config, redisUrl } = options;
  const plan = planMasterServices(config);
  const log = options.log ?? createLogger('master-services', { cluster: config.cluster });
  const keys = clusterKeys(config.cluster);
  const closers: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const closer of closers.splice(0).reverse()) await closer().catch((error: unknown) => log.warn({ err: error }, 'closing a service failed'));
  };
  const services: MasterServices = { close };
  try {
    // each service's code is loaded only when the configuration turns it on: a master that serves
    // nothing does not pay for hono apps it never runs
    if (plan.rest) {
      const [{ createRestApp, startRestServer }, { MasterGateway }] = await Promise.all([import('./rest/server.ts'), import('./rest/gateway.ts')]);
      const client = new MasterClient(redisUrl, keys.cluster, 'flint-rest');
      closers.push(() => client.close());
      const probe = new Queue(keys.masterQueue, { connection: bullConnection(redisUrl, { name: 'flint-rest-probe' }), prefix: keys.bullPrefix });
      closers.push(() => closeBull(probe));
      const app = createRestApp({
        gateway: new MasterGateway(client, probe),
        auth: { secret: plan.secret },
        serverSparkVersion: SERVER_SPARK_VERSION,
        masterUrl: masterUrlFor(config),
        restPort: plan.rest.port,
        defaultImage: config.get<string | undefined>('spark.flint.rest.defaultDriverImage'),
      });
      const rest = await startRestServer(app, { ...plan.rest, secret: plan.secret, tls: plan.tls });
      closers.push(() => rest.close());
      services.restUrl = rest.url;
      log.info({ url: rest.url }, 'REST submission server listening');
    }
    if (plan.appApi) {
      const { startAppHttpServer } = await import('./app-api.ts');
      const appApi = await startAppHttpServer({
        redisUrl,
        cluster: keys.cluster,
        auth: { secret: plan.secret },
        ...plan.appApi,
        tls: plan.tls,
        maxStreams: config.get<number>('spark.flint.appApi.maxStreams'),
        publicUrl: config.get<string | undefined>('spark.flint.master.appApi.publicUrl'),
      });
      closers.push(() => appApi.close());
      services.appApiUrl = appApi.url;
      log.info({ url: appApi.url }, 'application HTTP API listening');
    }
    if (plan.ui) {
      const { startUiServer } = await import('./ui-server.ts');
      const restUrl = services.restUrl ? `spark://${hostForUrl(plan.rest!.host)}:${new URL(services.restUrl).port}` : undefined;
      const ui = await startUiServer({ redisUrl, config, ...plan.ui, auth: { secret: plan.secret }, tls: plan.tls, restUrl, metrics: options.metrics, log });
      closers.push(() => ui.close());
      services.uiUrl = ui.url;
      services.metrics = ui.metrics;
    }
    return services;
  } catch (error) {
    await close();
    throw error;
  }
}
