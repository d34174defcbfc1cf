/**
 * MasterStore: the typed callers of the master's commit scripts, one method per
 * transition, named as the script is. Every write to cluster state goes through
 * here; handlers never issue raw writes. Time is passed in (`now`).
 */
import type { RedisConnection } from '../../lib/redis.ts';
import { clusterKeys, type Keys } from '../../protocol/keys.ts';
import type { FlintConfig } from '../../protocol/config.ts';
import type { ApplicationDescription, DriverDescription, RegisterWorker, ExecutorStateChanged, DriverStateChanged } from '../../protocol/messages.ts';
import type { ExecutorPlacement, DriverPlacement } from '../core/types.ts';
import { callScript, loadScripts, type MasterScriptConfig, type ScriptName } from './scripts.ts';
import { recordHeartbeat, type HeartbeatOutcome } from '../../lib/worker-heartbeat.ts';
import { newAppKey } from '../../lib/http/app-tokens.ts';

export type RegisterWorkerResult =
  | { type: 'RegisteredWorker'; epoch: number; duplicate: boolean }
  | { type: 'RegisterWorkerFailed'; message: string };

export type ExecutorStateOutcome = 'applied' | 'app-failed' | 'unknown' | 'stale' | 'duplicate' | 'invalid-transition';
export type DriverStateOutcome = 'applied' | 'unknown' | 'stale';
export type KillDriverOutcome = 'killed-waiting' | 'kill-sent' | 'not-found';

export interface CommitResult {
  drivers: [accepted: number, rejected: number];
  executors: [accepted: number, rejected: number];
}

export interface ReapResult {
  removed: string[];
  culled: number;
  more: boolean;
  graced?: number;
}

/** masterUrlFor: the URL Flint reports as its master (Spark's spark://host:port). */
export function masterUrlFor(config: FlintConfig): string {
  return `spark://${config.get<string>('spark.master.host')}:${config.get<number>('spark.master.port')}`;
}

export function scriptConfigFrom(config: FlintConfig): MasterScriptConfig {
  return {
    masterUrl: masterUrlFor(config),
    retainedApps: config.retainedApplications,
    retainedDrivers: config.retainedDrivers,
    retainedExecutors: config.retainedDeadExecutors,
    maxRetries: config.maxExecutorRetries,
    maxDrivers: config.maxDrivers,
    appIdPattern: config.appIdPattern,
    driverIdPattern: config.driverIdPattern,
    appNumberModulo: config.appNumberModulo ?? null,
  };
}

export class MasterStore {
  readonly keys: Keys;
  private readonly scriptConfig: MasterScriptConfig;

  constructor(
    readonly redis: RedisConnection,
    readonly config: FlintConfig,
  ) {
    this.keys = clusterKeys(config.cluster);
    this.scriptConfig = scriptConfigFrom(config);
    loadScripts();
  }

  private call<T>(name: ScriptName, now: number, args: (string | number)[]): Promise<T> {
    return callScript<T>(this.redis, this.keys, this.scriptConfig, name, now, args);
  }

  async registerWorker(message: RegisterWorker, now: number): Promise<RegisterWorkerResult> {
    const text = await this.call<string>('register-worker', now, [
      JSON.stringify(message),
      JSON.stringify(message.resources ?? {}),
      JSON.stringify(message.labels ?? {}),
    ]);
    return JSON.parse(text) as RegisterWorkerResult;
  }

  async recordHeartbeat(workerId: string, epoch: number): Promise<HeartbeatOutcome> {
    return recordHeartbeat(this.redis, this.config.cluster, workerId, epoch, this.scriptConfig.masterUrl);
  }

  async registerApplication(
    clientId: string,
    desc: ApplicationDescription,
    options: {
      explicitId?: string;
      requestedCores: number;
      executorLimit: number;
      /** the new app's key (kept only if the app is new; default: a fresh random one) */
      appKey?: string;
      /** SHA-256 of the registering credential, '' (default) for none */
      registrar?: string;
      driverId?: string;
      /** executor heartbeats: what LaunchExecutor carries, and the receiver's timeout and check interval */
      heartbeat?: { launch: { url: string; intervalMs: number; maxFailures: number }; timeoutMs: number; checkIntervalMs: number };
    },
    now: number,
  ): Promise<{ appId: string; duplicate: boolean } | { error: string }> {
    const text = await this.call<string>('register-application', now, [
      clientId,
      JSON.stringify(desc),
      options.explicitId ?? '',
      options.requestedCores,
      options.executorLimit,
      desc.priority ?? 0,
      options.appKey ?? newAppKey(),
      options.registrar ?? '',
      options.driverId ?? '',
      options.heartbeat ? JSON.stringify(options.heartbeat.launch) : '',
      options.heartbeat?.timeoutMs ?? 0,
      options.heartbeat?.checkIntervalMs ?? 0,
    ]);
    return JSON.parse(text);
  }

  async removeApplication(appId: string, state: 'FINISHED' | 'KILLED' | 'FAILED', now: number): Promise<boolean> {
    return (await this.call<number>('remove-application', now, [appId, state])) === 1;
  }

  /**
   * expireAppLeases finishes the apps whose client lease lapsed for spark.flint.app.timeout
   * (Redis's clock decides). `graceGapMs`: after a gap in the checks longer than this,
   * every lease is renewed instead (clients could not renew while Redis was away).
   */
  async expireAppLeases(now: number, options: { graceGapMs: number; limit?: number }): Promise<{ expired: string[]; more: boolean; graced?: number }> {
    const text = await this.call<string>('expire-app-leases', now, [this.config.appTimeoutMs, options.limit ?? 200, options.graceGapMs]);
    return JSON.parse(text) as { expired: string[]; more: boolean; graced?: number };
  }

  async executorStateChanged(message: ExecutorStateChanged, now: number): Promise<ExecutorStateOutcome> {
    return this.call('executor-state-changed', now, [
      message.appId,
      String(message.execId),
      message.state,
      message.message ?? '',
      message.exitStatus === undefined ? '' : String(message.exitStatus),
      message.workerId,
      String(message.epoch),
      message.oomKilled ? '1' : '0',
    ]);
  }

  async requestExecutors(appId: string, total: number, now: number): Promise<boolean> {
    return (await this.call<number>('request-executors', now, [appId, total])) === 1;
  }

  /** killExecutors: `message` (the heartbeat receiver's reason) reports each kill to the app as ExecutorLost. */
  async killExecutors(appId: string, executorIds: number[], now: number, message = ''): Promise<boolean> {
    return (await this.call<number>('kill-executors', now, [appId, JSON.stringify(executorIds), message])) === 1;
  }

  /**
   * workerLatestState reconciles a worker's report with the master's state in both
   * directions (worker-latest-state.lua): what the agent holds and the master does not is
   * killed; what the master holds there, launched at or before `inboxSeenThrough`, and the
   * agent does not hold is ended (executors LOST, drivers relaunched or ERROR).
   */
  async workerLatestState(
    workerId: string,
    epoch: number,
    executorFullIds: string[],
    driverIds: string[],
    inboxSeenThrough: string | undefined,
    now: number,
  ): Promise<{ killedExecutors: number; killedDrivers: number; lostExecutors: number; lostDrivers: number } | { error: string }> {
    const text = await this.call<string>('worker-latest-state', now, [
      workerId,
      String(epoch),
      JSON.stringify(executorFullIds),
      JSON.stringify(driverIds),
      inboxSeenThrough ?? '',
    ]);
    return JSON.parse(text);
  }

  /**
   * reapWorkers runs one worker-timeout check (Redis's clock decides who is silent).
   * `graceGapMs`: after a gap in the checks longer than this, live workers get a fresh
   * heartbeat instead (a failover or an outage of every master must not kill the fleet).
   */
  async reapWorkers(now: number, options: { graceGapMs: number; limit?: number }): Promise<ReapResult> {
    const text = await this.call<string>('reap-workers', now, [
      this.config.workerTimeoutMs,
      this.config.deadWorkerPersistence,
      options.limit ?? 200,
      options.graceGapMs,
    ]);
    return JSON.parse(text) as ReapResult;
  }

  async commitPlacements(drivers: DriverPlacement[], executors: ExecutorPlacement[], now: number): Promise<CommitResult> {
    const text = await this.call<string>('commit-placements', now, [JSON.stringify(drivers), JSON.stringify(executors)]);
    return JSON.parse(text) as CommitResult;
  }

  async submitDriver(desc: DriverDescription, requestId: string, now: number): Promise<string> {
    return this.call('submit-driver', now, [JSON.stringify(desc), requestId]);
  }

  async killDriver(driverId: string, now: number): Promise<KillDriverOutcome> {
    return this.call('kill-driver', now, [driverId]);
  }

  async driverStateChanged(message: DriverStateChanged, now: number): Promise<DriverStateOutcome> {
    return this.call('driver-state-changed', now, [message.driverId, message.state, message.exception ?? '', message.workerId, String(message.epoch)]);
  }

  async decommissionWorker(workerId: string, notifyWorker: boolean, now: number): Promise<boolean> {
    return (await this.call<number>('decommission-worker', now, [workerId, notifyWorker ? '1' : '0'])) === 1;
  }

  async clearCompleted(now: number): Promise<number> {
    return this.call('clear-completed', now, []);
  }

  async finishSchedulePass(leaseToken: string, generation: string, now: number): Promise<'done' | 'again' | 'lost'> {
    return this.call('finish-schedule-pass', now, [leaseToken, generation]);
  }
}
