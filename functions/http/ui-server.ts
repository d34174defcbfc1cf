/**
 * startUiServer: the master web UI as a running HTTP server (@hono/node-server).
 * It wires the hono app (functions/http/ui/app.ts) to its real dependencies: a
 * Redis connection for reads, a MasterClient whose asks do the kills, the cluster
 * event feed (live pages and launch counts), the metric registry, and bull-board
 * over the master's BullMQ queue (loaded on its first request: ui/queue-board.ts). Listens on loopback unless told otherwise, and
 * refuses a non-loopback address without spark.flint.auth.secret (auth.ts).
 */
import { hostForUrl, listenHttp } from '../../lib/http-listen.ts';
import type { ServerTls } from '../../lib/http/tls.ts';
import { Queue } from '../../lib/bullmq.ts';
import type { FlintConfig } from '../../protocol/config.ts';
import { clusterKeys } from '../../protocol/keys.ts';
import { bullConnection, closeBull, connectRedisOrCluster } from '../../lib/redis.ts';
import { createLogger, type Logger } from '../../lib/log.ts';
import { MasterClient } from '../../client/master-client.ts';
import type { KillDriverResponse } from '../../protocol/messages.ts';
import { masterUrlFor } from '../store/master-store.ts';
import { assertSafeBind } from '../../lib/http/auth.ts';
import { createFlintMetrics, type FlintMetrics } from './metrics.ts';
import { ClusterEventFeed } from './ui/event-feed.ts';
import { createMasterUiApp } from './ui/app.ts';
import { lazyQueueBoard, type QueueBoard } from './ui/queue-board.ts';

export interface UiServerOptions {
  redisUrl: string;
  config: FlintConfig;
  /** bind address (default 127.0.0.1) */
  host?: string;
  /** port (default spark.master.ui.port; 0 = any free port) */
  port?: number;
  /** token secret (default spark.flint.auth.secret) */
  auth?: { secret?: string };
  /** the REST server's URL shown on the pages and in /json (default from spark.master.rest.*, when enabled) */
  restUrl?: string;
  /** serve HTTPS (lib/http/tls.ts) */
  tls?: ServerTls;
  /** the process's metrics, shared with its functions host's observers (default: a registry of the UI's own) */
  metrics?: FlintMetrics;
  /** mount bull-board at /queues (default true) */
  queueBoard?: boolean;
  log?: Logger;
}

export interface UiServer {
  url: string;
  port: number;
  /** the process's metrics: pass `metrics.observeMessage` / `observePass` to startMaster's onMessage / onPass */
  metrics: FlintMetrics;
  close(): Promise<void>;
}

/** restUrlFor: Spark's restUri, when the REST server is enabled. */
export function restUrlFor(config: FlintConfig): string | undefined {
  if (!config.get<boolean>('spark.master.rest.enabled')) return undefined;
  return `spark://${hostForUrl(config.get<string>('spark.master.host'))}:${config.get<number>('spark.master.rest.port')}`;
}

export async function startUiServer(options: UiServerOptions): Promise<UiServer> {
  const { config, redisUrl } = options;
  const host = options.host ?? '127.0.0.1';
  const secret = options.auth ? options.auth.secret : config.authSecret;
  assertSafeBind(host, secret);
  const log = options.log ?? createLogger('ui', { cluster: config.cluster });
  const keys = clusterKeys(config.cluster);
  const redis = await connectRedisOrCluster(redisUrl, { name: 'flint-ui' });
  const client = new MasterClient(redisUrl, config.cluster, 'flint-ui');
  const queue = new Queue(keys.masterQueue, { connection: bullConnection(redisUrl, { name: 'flint-ui-queue' }), prefix: keys.bullPrefix });
  const metrics = options.metrics ?? createFlintMetrics({ redis, keys, queue });
  const events = new ClusterEventFeed({ redisUrl, streamKey: keys.clusterEvents, log });
  const closers: (() => Promise<unknown>)[] = [
    () => events.stop(),
    () => client.close(),
    () => closeBull(queue),
    async () => redis.disconnect(),
  ];
  try {
    await events.start();
    events.subscribe((batch) => metrics.recordClusterEvents(batch));

    const queueBoard: QueueBoard | undefined = (options.queueBoard ?? true) ? lazyQueueBoard(queue, `Flint ${config.cluster}`) : undefined;

    const masterUrl = masterUrlFor(config);
    const app = createMasterUiApp({
      redis,
      keys,
      masterUrl,
      restUrl: options.restUrl ?? restUrlFor(config),
      title: config.get<string | undefined>('spark.master.ui.title'),
      killEnabled: config.get<boolean>('spark.ui.killEnabled'),
      decommissionEnabled: config.get<boolean>('spark.decommission.enabled'),
      auth: { secret },
      killer: {
        application: (appId) => client.ask<boolean>('KillApplication', { appId }),
        driver: (driverId) => client.ask<KillDriverResponse>('RequestKillDriver', { driverId }),
        // a generous timeout: a host list may match many workers, one commit each
        decommissionHosts: (hostnames) => client.ask<number>('DecommissionWorkersOnHosts', { hostnames }, 30_000),
      },
      events,
      metrics,
      queueBoard,
    });

    const port = options.port ?? config.get<number>('spark.master.ui.port');
    const server = await listenHttp(app.fetch, { host, port, what: 'master web UI', tls: options.tls });
    const url = server.url;
    log.info({ url, masterUrl }, 'master web UI listening');
    return {
      url,
      port: server.port,
      metrics,
      async close() {
        // open SSE streams would keep server.close() waiting: stop the feed, then drop connections
        await events.stop();
        await server.close();
        for (const close of closers) await close().catch(() => undefined);
      },
    };
  } catch (error) {
    for (const close of closers) await close().catch(() => undefined);
    throw error;
  }
}
