/**
 * Handlers for worker → master messages: RegisterWorker, ExecutorStateChanged,
 * DriverStateChanged, WorkerLatestState, WorkerSchedulerStateResponse,
 * WorkerDecommissioning. (Heartbeat is not a queue message: see store/heartbeat.ts.)
 */
import { isExecutorFinished, isDriverFinalReport } from '../../protocol/states.ts';
import { fullExecutorId } from '../../protocol/keys.ts';
import { HandlerRejection, type Handler } from './context.ts';

/** registerWorker replies RegisteredWorker (with the epoch) or RegisterWorkerFailed. */
export const registerWorker: Handler<'RegisterWorker'> = async (ctx, message) => {
  const result = await ctx.store.registerWorker(message, ctx.now);
  if (result.type === 'RegisteredWorker') {
    ctx.log.info({ workerId: message.id, epoch: result.epoch, duplicate: result.duplicate }, 'worker registered');
    ctx.kickScheduler();
    // the web UI is a separate process that any host may run: a master handler does not know its URL
    return { ...result, masterUrl: ctx.masterUrl, masterWebUiUrl: '' };
  }
  ctx.log.warn({ workerId: message.id, reason: result.message }, 'worker registration refused');
  return result;
};

/** executorStateChanged applies a worker's report; Spark replies true whatever happened. */
export const executorStateChanged: Handler<'ExecutorStateChanged'> = async (ctx, message) => {
  const outcome = await ctx.store.executorStateChanged(message, ctx.now);
  const fields = { appId: message.appId, execId: message.execId, workerId: message.workerId, state: message.state, outcome };
  if (outcome === 'unknown') ctx.log.warn(fields, `Got status update for unknown executor ${message.appId}/${message.execId}`);
  else if (outcome === 'stale' || outcome === 'invalid-transition') ctx.log.warn(fields, 'executor state report ignored');
  else if (outcome === 'app-failed') ctx.log.error(fields, `Application ${message.appId} with no RUNNING executor failed ${ctx.config.maxExecutorRetries} times in a row; removing it`);
  if (outcome === 'applied' || outcome === 'app-failed') {
    if (isExecutorFinished(message.state)) ctx.kickScheduler();
  }
  return true;
};

/** driverStateChanged: only final states may be reported (Spark throws on any other). */
export const driverStateChanged: Handler<'DriverStateChanged'> = async (ctx, message) => {
  if (!isDriverFinalReport(message.state)) {
    throw new HandlerRejection(`Received unexpected state update for driver ${message.driverId}: ${message.state}`);
  }
  const outcome = await ctx.store.driverStateChanged(message, ctx.now);
  if (outcome !== 'applied') ctx.log.warn({ driverId: message.driverId, state: message.state, outcome }, 'driver state report ignored');
  else ctx.kickScheduler();
  return true;
};

async function reconcile(
  ctx: Parameters<Handler<'WorkerLatestState'>>[0],
  message: { id: string; epoch: number; executors: { appId: string; execId: number; state: string }[]; driverIds: string[]; inboxSeenThrough?: string },
) {
  // every executor the agent holds, a finished one whose final report is still on its way included:
  // the master must not end it as LOST meanwhile (that report settles it)
  const held = message.executors.map((e) => fullExecutorId(e.appId, e.execId));
  const result = await ctx.store.workerLatestState(message.id, message.epoch, held, message.driverIds, message.inboxSeenThrough, ctx.now);
  if ('error' in result) ctx.log.warn({ workerId: message.id, error: result.error }, 'worker state report ignored');
  else {
    if (result.killedExecutors + result.killedDrivers > 0) ctx.log.info({ workerId: message.id, ...result }, 'killing executors/drivers the master does not know');
    if (result.lostExecutors + result.lostDrivers > 0) {
      ctx.log.warn({ workerId: message.id, ...result }, 'ending executors/drivers the worker does not run');
      ctx.kickScheduler();
    }
  }
  return result;
}

/**
 * workerLatestState: reconcile in both directions: kill what the worker runs that the
 * master does not know (SPARK-13604), end what the master holds there that the worker
 * does not run.
 */
export const workerLatestState: Handler<'WorkerLatestState'> = (ctx, message) => reconcile(ctx, message);

/** workerSchedulerStateResponse: Flint has no master failover to recover from; it reconciles the same way. */
export const workerSchedulerStateResponse: Handler<'WorkerSchedulerStateResponse'> = (ctx, message) => reconcile(ctx, message);

/** workerDecommissioning: the worker asked to be decommissioned (Spark's decommissionWorker). */
export const workerDecommissioning: Handler<'WorkerDecommissioning'> = async (ctx, message) => {
  const changed = await ctx.store.decommissionWorker(message.id, false, ctx.now);
  if (changed) ctx.kickScheduler();
  return changed;
};
