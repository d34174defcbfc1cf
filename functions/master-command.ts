/**
 * `flint master`, as the command line sees it: name, description and options.
 * The process itself (functions host, BullMQ, hono, prom-client) is in
 * master-main.ts, imported only when the command runs, so `flint --help` and the
 * other commands do not load it.
 */
import type { Command } from 'commander';
import { DEFAULT_REDIS_URL } from '../protocol/config.ts';
import { collectRepeatable as collect } from '../lib/repeatable-option.ts';
import { holdStartupMemory } from '../lib/idle-memory.ts';
import type { MasterFlags } from './master-main.ts';

/** registerMasterCommand adds `flint master` to the program. */
export function registerMasterCommand(program: Command): void {
  program
    .command('master')
    .description('run the master: its stateless handlers, and the REST server, web UI and application API as configured (any number may run at once)')
    .option('--redis <url>', 'Redis URL (redis://, rediss://, sentinel://host:port/name, redis-cluster://host:port[,host:port]); default spark.flint.redis.url or ' + DEFAULT_REDIS_URL)
    .option('--cluster <name>', 'cluster name (Redis hash tag); default spark.flint.cluster')
    .option('--concurrency <n>', 'messages handled at once by this process', (v) => Number(v))
    .option('--properties-file <path>', 'Spark-style properties file (key value per line)')
    .option('--conf <key=value>', 'configuration override (repeatable)', collect, [])
    .option('--host <host>', 'address the web UI, REST server and application API bind to, and the master URL\'s host (spark.master.host, SPARK_MASTER_HOST; default 127.0.0.1)')
    .option('--port <port>', 'port of the master URL spark://host:port (spark.master.port, SPARK_MASTER_PORT; default 7077)')
    .option('--webui-port <port>', 'web UI port, 0 = any free port (spark.master.ui.port, SPARK_MASTER_WEBUI_PORT; default 8080)')
    .option('--http <host:port>', "serve this process's Prometheus /metrics and the HTTP invocation adapter (/invoke/<MessageType>)")
    .action(async (flags: MasterFlags) => {
      holdStartupMemory();
      const { runMaster } = await import('./master-main.ts');
      await runMaster(flags);
    });
}
