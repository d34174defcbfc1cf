/**
 * A master host for benchmarks, run as a child process: exactly what `flint
 * master` runs (startMaster), configured from the environment the bench sets
 * (BENCH_REDIS_URL, BENCH_CLUSTER, BENCH_CONF as JSON, BENCH_CONCURRENCY).
 * Prints `ready` once it consumes the queue; SIGTERM stops it gracefully
 * (in-flight jobs finish), SIGKILL is the crash the recovery benchmark causes.
 */
import { startMaster } from '../functions/host.ts';
import { loadConfig } from '../protocol/config.ts';

const cluster = process.env.BENCH_CLUSTER;
const redisUrl = process.env.BENCH_REDIS_URL;
if (!cluster || !redisUrl) {
  process.stderr.write('bench/master-entry.ts needs BENCH_CLUSTER and BENCH_REDIS_URL\n');
  process.exit(2);
}
const conf = JSON.parse(process.env.BENCH_CONF || '{}') as Record<string, string>;
const config = loadConfig({ env: {}, overrides: { ...conf, 'spark.flint.cluster': cluster } });
const passMs: number[] = [];
let messages = 0;
const host = await startMaster({
  redisUrl,
  config,
  concurrency: Number(process.env.BENCH_CONCURRENCY || 32),
  onPass: (info) => passMs.push(info.durationMs),
  onMessage: () => messages++,
});
process.stdout.write(`ready ${host.id}\n`);

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void host.stop().then(
    () => {
      // the pass statistics of this process, for the report
      process.stdout.write(`stats ${JSON.stringify({ ...host.scheduler.stats, messages, passMs })}\n`, () => process.exit(0));
    },
    () => process.exit(1),
  );
});
