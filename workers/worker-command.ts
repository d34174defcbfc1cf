/**
 * `flint worker`, as the command line sees it: name, description and options.
 * The agent itself (dockerode, BullMQ, pino) is in worker-main.ts, imported only
 * when the command runs, so `flint --help` and the other commands do not load it.
 */
import type { Command } from 'commander';
import { DEFAULT_REDIS_URL } from '../protocol/config.ts';
import { collectRepeatable as collect } from '../lib/repeatable-option.ts';
import { holdStartupMemory } from '../lib/idle-memory.ts';
import type { WorkerFlags } from './worker-main.ts';

/** registerWorkerCommand adds `flint worker` to the program. */
export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('run a worker agent: register with the master, run executors and drivers in containers')
    .option('--cores <n>', 'cores offered to applications (default: all processors)')
    .option('--memory <size>', 'memory offered, e.g. 4g or 512m (default: total − 1g, at least 512m)')
    .option('--work-dir <dir>', 'directory for executor and driver files (default ./work)')
    .option('--resource <name=addr1,addr2>', 'a custom resource and its addresses (repeatable)', collect, [])
    .option('--label <key=value>', 'a worker label (repeatable)', collect, [])
    .option('--redis <url>', `Redis URL; default spark.flint.redis.url or ${DEFAULT_REDIS_URL}`)
    .option('--cluster <name>', 'cluster name (Redis hash tag); default spark.flint.cluster')
    .option('--host <host>', 'host the worker registers with and its web UI listens on (default 127.0.0.1)')
    .option('--port <port>', 'web UI port, 0 = any free port (default spark.worker.ui.port, 8081)')
    .option('--runtime <kind>', 'auto | docker | process (default spark.flint.worker.runtime)')
    .option('--network <mode>', 'container network: host | none (default spark.flint.worker.network)')
    .option('--kill-on-exit', 'kill running executors and drivers when the worker stops (default: leave them for re-adoption)')
    .option('--properties-file <path>', 'Spark-style properties file (key value per line)')
    .option('--conf <key=value>', 'configuration override (repeatable)', collect, [])
    .option('--id <workerId>', 'worker id (default: the one kept in the work dir, else spark.worker.idPattern)')
    .action(async (flags: WorkerFlags) => {
      holdStartupMemory();
      const { runWorker } = await import('./worker-main.ts');
      await runWorker(flags);
    });
}
