/**
 * Handlers for application client → master messages: RegisterApplication,
 * UnregisterApplication, RequestExecutors, KillExecutors, and the UI's KillApplication.
 */
import { parseAppConf, type AppConfSettings } from '../../protocol/config.ts';
import { pathSafeIdProblem } from '../../protocol/messages.ts';
import { HandlerRejection, type Handler } from './context.ts';

/**
 * idPatternShape: the ids an id pattern makes, as a regular expression (`%s` is the
 * 14-digit timestamp, `%d`/`%04d` a number). Example: `driver-%s-%04d` matches
 * `driver-20260101120000-0007`.
 */
export function idPatternShape(pattern: string): RegExp {
  const parts = pattern.split(/(%s|%0?\d*d)/).map((part) => (part === '%s' ? '\\d{14}' : /^%0?\d*d$/.test(part) ? '\\d+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${parts.join('')}$`);
}

/**
 * appIdFromNameProblem: why a name-derived app id is refused: it must be a directory name
 * on workers (PATH_SAFE_ID: `../../x` would leave the work dir), and it must not have the
 * shape of a driver id, whose directory is `<work-dir>/<driverId>` too: an app named like a
 * driver would put its executors' directories inside that driver's.
 */
export function appIdFromNameProblem(appId: string, driverIdPattern: string): string | undefined {
  const unsafe = pathSafeIdProblem(appId);
  if (unsafe !== undefined) return `the id ${JSON.stringify(appId)} ${unsafe}`;
  if (idPatternShape(driverIdPattern).test(appId)) return `the id ${JSON.stringify(appId)} has the shape of a driver id (spark.deploy.driverIdPattern)`;
  return undefined;
}

/**
 * registerApplication → RegisteredApplication {appId, masterUrl, leaseTimeoutMs};
 * idempotent per clientId. The app's conf is read here (an invalid HeartbeatReceiver
 * setting refuses the registration, naming the key); a new app gets a random key in
 * the store (its token and its executors' heartbeat tokens derive from it) and a client lease.
 */
export const registerApplication: Handler<'RegisterApplication'> = async (ctx, message) => {
  const desc = message.appDescription;
  const explicitId = ctx.config.useAppNameAsAppId ? desc.name.toLowerCase().replace(/\s+/g, '') : undefined;
  if (explicitId !== undefined) {
    const problem = appIdFromNameProblem(explicitId, ctx.config.driverIdPattern);
    if (problem !== undefined) throw new HandlerRejection(`application name ${JSON.stringify(desc.name)} cannot be used as an app id (spark.master.useAppNameAsAppId.enabled): ${problem}`);
  }
  let settings: AppConfSettings;
  try {
    settings = parseAppConf(desc.conf ?? {});
  } catch (error) {
    throw new HandlerRejection((error as Error).message);
  }
  const heartbeat = settings.heartbeat;
  if (heartbeat && !heartbeat.url) {
    throw new HandlerRejection('conf spark.flint.executor.heartbeat.url is required with spark.flint.executor.heartbeat.enabled (register through the app API, which sets it, or set it to an app API\'s URL)');
  }
  const result = await ctx.store.registerApplication(
    message.clientId,
    desc,
    {
      explicitId,
      requestedCores: desc.maxCores ?? ctx.config.defaultCores,
      executorLimit: desc.initialExecutorLimit ?? -1,
      registrar: message.registrar ?? '',
      driverId: settings.driverId,
      heartbeat: heartbeat && {
        launch: { url: heartbeat.url!, intervalMs: heartbeat.intervalMs, maxFailures: heartbeat.maxFailures },
        timeoutMs: heartbeat.timeoutMs,
        checkIntervalMs: heartbeat.checkIntervalMs,
      },
    },
    ctx.now,
  );
  if ('error' in result) throw new HandlerRejection(result.error);
  if (!result.duplicate) {
    ctx.log.info({ appId: result.appId, name: desc.name, driverId: settings.driverId, heartbeats: heartbeat !== undefined }, 'application registered');
    ctx.kickScheduler();
  }
  return { appId: result.appId, masterUrl: ctx.masterUrl, leaseTimeoutMs: ctx.config.appTimeoutMs };
};

/** unregisterApplication: the app finished (FINISHED; no ApplicationRemoved is sent). */
export const unregisterApplication: Handler<'UnregisterApplication'> = async (ctx, message) => {
  const removed = await ctx.store.removeApplication(message.appId, 'FINISHED', ctx.now);
  if (removed) {
    ctx.log.info({ appId: message.appId }, 'application finished');
    ctx.kickScheduler();
  }
  return removed;
};

/** killApplication: the UI's or CLI's kill (KILLED; ApplicationRemoved("KILLED") is sent). */
export const killApplication: Handler<'KillApplication'> = async (ctx, message) => {
  const removed = await ctx.store.removeApplication(message.appId, 'KILLED', ctx.now);
  if (removed) {
    ctx.log.info({ appId: message.appId }, 'application killed');
    ctx.kickScheduler();
  }
  return removed;
};

/** requestExecutors sets the app's executor target; true for a known app. */
export const requestExecutors: Handler<'RequestExecutors'> = async (ctx, message) => {
  const known = await ctx.store.requestExecutors(message.appId, message.requestedTotal, ctx.now);
  if (known) ctx.kickScheduler();
  else ctx.log.warn({ appId: message.appId }, 'Unknown application requested executors');
  return known;
};

/** killExecutors kills the listed executors; ids that are not integers are dropped, as Spark does. */
export const killExecutors: Handler<'KillExecutors'> = async (ctx, message) => {
  const ids: number[] = [];
  const ignored: string[] = [];
  for (const id of message.executorIds) {
    if (/^\d+$/.test(id)) ids.push(Number(id));
    else ignored.push(id);
  }
  // Spark logs each; one line for all of them (a request may carry thousands), the first few shown
  if (ignored.length === 1) ctx.log.error({ appId: message.appId, executorId: ignored[0] }, `Encountered executor with a non-integer ID: ${ignored[0]}. Ignoring`);
  else if (ignored.length > 1) ctx.log.error({ appId: message.appId, executorIds: ignored.slice(0, 5), count: ignored.length }, `Encountered ${ignored.length} executors with non-integer IDs (${ignored.slice(0, 5).join(', ')}${ignored.length > 5 ? ', ...' : ''}). Ignoring`);
  const known = await ctx.store.killExecutors(message.appId, ids, ctx.now, message.message ?? '');
  if (known) {
    if (message.message) ctx.log.warn({ appId: message.appId, executorIds: ids }, `Removing executors ${ids.join(', ')} of ${message.appId}: ${message.message}`);
    ctx.kickScheduler();
  }
  return known;
};
