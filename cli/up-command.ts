/**
 * `flint up`, as the command line sees it. Starting the cluster (up.ts: embedded
 * Redis, child processes, dockerode, the servers) is imported only when the
 * command runs.
 */
import type { Command } from 'commander';
import { processIo, type CommandIo } from './command-io.ts';
import { collectRepeatable } from '../lib/repeatable-option.ts';
import type { UpOptions } from './up.ts';

/** registerUpCommand adds `flint up`. */
export function registerUpCommand(program: Command, io: CommandIo = processIo()): Command {
  return program
    .command('up')
    .description('start a complete local cluster (Redis, 2 masters, 2 workers, REST, app API, UI); --demo submits SparkPi to it in cluster mode and stops')
    .option('--redis <url>', 'use this Redis instead of starting an embedded one')
    .option('--cluster <name>', 'cluster name (default: a fresh one on an external Redis)')
    .option('--masters <n>', 'master handler processes', (v) => Number(v), 2)
    .option('--workers <n>', 'worker agents', (v) => Number(v), 2)
    .option('--worker-cores <n>', 'cores each worker offers', (v) => Number(v))
    .option('--worker-memory <size>', 'memory each worker offers, e.g. 2g')
    .option('--runtime <kind>', 'auto | docker | process', 'auto')
    .option('--rest-port <port>', 'REST submission server port (0 = any free port)', (v) => Number(v), 6066)
    .option('--ui-port <port>', 'web UI port (0 = any free port)', (v) => Number(v), 8080)
    .option('--demo', 'run the SparkPi-like demo job, print its result, then stop everything', false)
    .option('--slices <n>', 'demo: number of executor slices', (v) => Number(v), 8)
    .option('--properties-file <path>', 'Spark-style properties file')
    .option('--conf <key=value>', 'configuration override (repeatable)', collectRepeatable, [])
    .action(async (flags: UpOptions) => {
      const { runUp } = await import('./up.ts');
      io.setExitCode(await runUp(flags, io));
    });
}
