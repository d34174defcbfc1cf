/**
 * `flint master`: one functions host process (see functions/host.ts). Start as
 * many as you like against the same Redis and cluster; stop any with SIGTERM.
 */
import type { Command } from 'commander';
import { loadConfig, parseConfFlags } from '../protocol/config.ts';
import { DEFAULT_REDIS_URL } from '../lib/redis.ts';
import { startMaster } from './host.ts';

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

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function registerMasterCommand(program: Command): void {
  program
    .command('master')
    .description('run the master\'s stateless handlers (any number of these may run at once)')
    .option('--redis <url>', 'Redis URL (redis://, rediss://, sentinel://host:port/name); default spark.flint.redis.url or ' + DEFAULT_REDIS_URL)
    .option('--cluster <name>', 'cluster name (Redis hash tag); default spark.flint.cluster')
    .option('--concurrency <n>', 'messages handled at once by this process', (v) => Number(v))
    .option('--properties-file <path>', 'Spark-style properties file (key value per line)')
    .option('--conf <key=value>', 'configuration override (repeatable)', collect, [])
    .action(async (flags: CommonFlags & { concurrency?: number }) => {
      const { config, redisUrl } = configFromFlags(flags);
      const host = await startMaster({ redisUrl, config, concurrency: flags.concurrency });
      process.stdout.write(`flint master ${host.id} handling cluster '${config.cluster}' on ${redisUrl}\n`);
      await waitForSignal();
      await host.stop();
    });
}

/** waitForSignal resolves on the first SIGTERM or SIGINT. */
export function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
