/**
 * Handlers for driver client → master messages: RequestSubmitDriver,
 * RequestKillDriver, RequestKillAllDrivers, RequestDriverStatus,
 * RequestClearCompletedDriversAndApps. Replies use Spark's wording.
 */
import type { DriverState } from '../../protocol/states.ts';
import type { DriverStatusResponse, KillDriverResponse, KillAllDriversResponse, SubmitDriverResponse } from '../../protocol/messages.ts';
import type { Handler, HandlerContext } from './context.ts';

export const requestSubmitDriver: Handler<'RequestSubmitDriver'> = async (ctx, message): Promise<SubmitDriverResponse> => {
  const driverId = await ctx.store.submitDriver(message.driverDescription, ctx.requestId, ctx.now);
  ctx.log.info({ driverId }, 'driver submitted');
  ctx.kickScheduler();
  return { success: true, driverId, message: `Driver successfully submitted as ${driverId}` };
};

async function killOne(ctx: HandlerContext, driverId: string): Promise<KillDriverResponse> {
  const outcome = await ctx.store.killDriver(driverId, ctx.now);
  if (outcome === 'not-found') {
    return { driverId, success: false, message: `Driver ${driverId} has already finished or does not exist` };
  }
  if (outcome === 'killed-waiting') ctx.kickScheduler();
  ctx.log.info({ driverId, outcome }, 'driver kill requested');
  return { driverId, success: true, message: `Kill request for ${driverId} submitted` };
}

export const requestKillDriver: Handler<'RequestKillDriver'> = (ctx, message) => killOne(ctx, message.driverId);

export const requestKillAllDrivers: Handler<'RequestKillAllDrivers'> = async (ctx): Promise<KillAllDriversResponse> => {
  const active = await ctx.store.redis.smembers(ctx.store.keys.driversActive);
  for (const driverId of active) await killOne(ctx, driverId);
  return { success: true, message: 'Kill request for all drivers submitted' };
};

export const requestDriverStatus: Handler<'RequestDriverStatus'> = async (ctx, message): Promise<DriverStatusResponse> => {
  const [state, workerId, workerHostPort, exception] = await ctx.store.redis.hmget(
    ctx.store.keys.driver(message.driverId),
    'state',
    'workerId',
    'workerHostPort',
    'exception',
  );
  if (!state) return { found: false };
  const response: DriverStatusResponse = { found: true, state: state as DriverState };
  if (workerId) {
    response.workerId = workerId;
    if (workerHostPort) response.workerHostPort = workerHostPort;
  }
  if (exception) response.exception = exception;
  return response;
};

export const requestClearCompletedDriversAndApps: Handler<'RequestClearCompletedDriversAndApps'> = async (ctx) => {
  const forgotten = await ctx.store.clearCompleted(ctx.now);
  ctx.log.info({ forgotten }, 'completed drivers and applications cleared');
  return true;
};
