/**
 * BullMQ, loaded without the parts Flint never runs. Import BullMQ's classes from here,
 * never from 'bullmq' directly (eslint.config.js forbids it elsewhere).
 *
 * BullMQ 6's index loads, besides the Redis queue Flint uses: a PostgreSQL backend (its
 * SQL included), clients for node-redis, Bun and Valkey GLIDE, and cron-parser with
 * luxon (job schedulers' cron patterns): about 0.9 MB of
 * JavaScript (1.2 MB as strings in the heap) that every master, agent and client
 * compiled and then kept for as long as it ran. Before BullMQ loads, stand-ins for those modules go into require's cache
 * (lib/deferred-modules.ts); each loads the real module when something of it is first
 * used, so every BullMQ export still works (test/integration/bullmq-deferrals.test.ts).
 *
 * BullMQ is loaded with require, not imported: an ES module import of a CommonJS
 * package reads every export of it to build its namespace, which would load each
 * deferred module at once.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as BullMQ from 'bullmq';
import { deferByProperty, deferExports, hasRun } from './deferred-modules.ts';

const require = createRequire(import.meta.url);

/** resolveFrom: where the BullMQ file at `path` finds package `name`, if it does. */
function resolveFrom(root: string, path: string, name: string): string | undefined {
  try {
    return createRequire(join(root, path)).resolve(name);
  } catch {
    return undefined;
  }
}

const bullmqMain = require.resolve('bullmq');
if (!hasRun(bullmqMain)) {
  const root = dirname(bullmqMain); // dist/cjs
  // re-exported by `export *` from the index and classes/index.js: their names are kept
  for (const path of ['postgres/index.js', 'classes/node-redis-client.js', 'classes/bun-redis-client.js', 'classes/valkey-glide-client.js']) {
    deferExports(join(root, path));
  }
  // read as `cron_parser_1.CronExpressionParser` when a cron pattern is parsed
  const cronParser = resolveFrom(root, 'classes/job-scheduler.js', 'cron-parser');
  if (cronParser !== undefined) deferByProperty(cronParser);
}

const bullmq = require('bullmq') as typeof BullMQ;

export const Job = bullmq.Job;
export type Job = BullMQ.Job;
export const Queue = bullmq.Queue;
export type Queue = BullMQ.Queue;
export const QueueEvents = bullmq.QueueEvents;
export type QueueEvents = BullMQ.QueueEvents;
export const UnrecoverableError = bullmq.UnrecoverableError;
export type UnrecoverableError = BullMQ.UnrecoverableError;
export const Worker = bullmq.Worker;
export type Worker = BullMQ.Worker;
export type { JobsOptions } from 'bullmq';
