/**
 * Handlers for master web UI → master messages: DecommissionWorkersOnHosts (the
 * UI's `POST /workers/kill/`). Spark's RequestMasterState has no handler here: the
 * UI reads the state from Redis itself (functions/store/read-state.ts).
 */
import { workersOnHosts, type WorkerHost } from '../core/workers-on-hosts.ts';
import type { Handler, HandlerContext } from './context.ts';

/**
 * decommissionWorkersOnHosts decommissions every worker on the named hosts and
 * replies how many it matched (Spark's DecommissionWorkersOnHosts, with its
 * DecommissionWorkers step done in place). Each worker goes through the same
 * atomic script as WorkerDecommissioning, telling the worker too (DecommissionWorker
 * to its inbox); the script does nothing for a worker already decommissioned, or
 * gone DEAD since the read, so a repeat is harmless and replies the same count.
 */
export const decommissionWorkersOnHosts: Handler<'DecommissionWorkersOnHosts'> = async (ctx, message) => {
  const matched = workersOnHosts(await readWorkerHosts(ctx), message.hostnames);
  // one atomic script per worker, sent together (each is independent; a host may carry many)
  const outcomes = await Promise.all(matched.map((workerId) => ctx.store.decommissionWorker(workerId, true, ctx.now)));
  const changed = outcomes.filter(Boolean).length;
  if (changed > 0) ctx.kickScheduler();
  ctx.log.info({ hostnames: message.hostnames, matched: matched.length, changed, workerIds: matched }, `Decommissioning workers on hosts ${message.hostnames.join(', ')}: ${matched.length} matched, ${changed} newly decommissioned`);
  return matched.length;
};

/** readWorkerHosts: id, host and state of every known worker (one pipelined HMGET each). */
async function readWorkerHosts(ctx: HandlerContext): Promise<WorkerHost[]> {
  const { redis, keys } = ctx.store;
  const ids = await redis.smembers(keys.workersAll);
  if (ids.length === 0) return [];
  const pipe = redis.pipeline();
  for (const id of ids) pipe.hmget(keys.worker(id), 'host', 'state');
  const replies = (await pipe.exec()) ?? [];
  const workers: WorkerHost[] = [];
  replies.forEach(([error, value], i) => {
    if (error) throw new Error(`reading worker ${ids[i]}: ${error.message}`, { cause: error });
    const [host, state] = value as (string | null)[];
    // a worker culled between the two reads has no hash left: it is not on any host
    if (host && state) workers.push({ id: ids[i]!, host, state });
  });
  return workers;
}
