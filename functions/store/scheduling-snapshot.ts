/**
 * loadSchedulingSnapshot: everything a scheduling pass reads, in three round trips
 * whatever the cluster size: the compact `schedulable` hash (ALIVE workers' free
 * capacity), the waiting apps with their grant fields, and the waiting drivers.
 * Nothing here scans finished apps or per-executor records.
 */
import type { RedisConnection } from '../../lib/redis.ts';
import type { Keys } from '../../protocol/keys.ts';
import type { ApplicationDescription, DriverDescription } from '../../protocol/messages.ts';
import type { AppSnapshot, DriverSnapshot, WorkerSnapshot } from '../core/types.ts';

export interface SchedulingSnapshot {
  /** the dirty generation read before the snapshot */
  generation: string;
  workers: WorkerSnapshot[];
  apps: AppSnapshot[];
  drivers: DriverSnapshot[];
  runningDrivers: number;
  driverCoresInUse: number;
}

interface SchedulableEntry {
  c: number;
  /** total cores (the drivers guard measures against alive cores) */
  t?: number;
  m: number;
  e: number;
  r: Record<string, number>;
  h: string;
  p: number;
}

export function parseSchedulable(id: string, json: string): WorkerSnapshot {
  const entry = JSON.parse(json) as SchedulableEntry;
  return { id, host: entry.h, port: entry.p, coresFree: entry.c, coresTotal: entry.t, memoryFreeMB: entry.m, epoch: entry.e, resourcesFree: entry.r ?? {} };
}

export async function loadSchedulingSnapshot(redis: RedisConnection, keys: Keys, options: { needDriverCores: boolean }): Promise<SchedulingSnapshot> {
  const first = await redis
    .multi()
    .get(keys.scheduleDirty)
    .hgetall(keys.schedulable)
    .zrange(keys.appsWaiting, '0', '-1')
    .zrange(keys.driversWaiting, '0', '-1')
    .scard(keys.driversActive)
    .exec();
  if (!first) throw new Error('snapshot transaction aborted');
  const [generation, schedulable, appIds, driverIds, activeDrivers] = first.map(([error, value]) => {
    if (error) throw error;
    return value;
  }) as [string | null, Record<string, string>, string[], string[], number];

  const workers = Object.entries(schedulable)
    .map(([id, json]) => parseSchedulable(id, json))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  const pipeline = redis.pipeline();
  for (const appId of appIds) {
    pipeline.hmget(keys.app(appId), 'state', 'coresGranted', 'requestedCores', 'executorLimit', 'liveExecutors', 'desc');
  }
  for (const driverId of driverIds) pipeline.hmget(keys.driver(driverId), 'state', 'desc');
  const rows = ((await pipeline.exec()) ?? []).map(([error, value]) => {
    if (error) throw error;
    return value as (string | null)[];
  });

  const apps: AppSnapshot[] = [];
  appIds.forEach((appId, index) => {
    const [state, granted, requested, limit, live, descJson] = rows[index]!;
    if ((state !== 'WAITING' && state !== 'RUNNING') || !descJson) return;
    const coresLeft = Number(requested) - Number(granted);
    if (coresLeft <= 0) return;
    const desc = JSON.parse(descJson) as ApplicationDescription;
    const limitValue = Number(limit);
    apps.push({
      id: appId,
      coresLeft,
      coresPerExecutor: desc.coresPerExecutor,
      memoryPerExecutorMB: desc.memoryPerExecutorMB,
      resourcesPerExecutor: desc.resourcesPerExecutor ?? [],
      executorLimit: limitValue < 0 ? Infinity : limitValue,
      liveExecutors: Number(live),
    });
  });

  const drivers: DriverSnapshot[] = [];
  driverIds.forEach((driverId, index) => {
    const [state, descJson] = rows[appIds.length + index]!;
    if (state !== 'SUBMITTED' || !descJson) return;
    const desc = JSON.parse(descJson) as DriverDescription;
    drivers.push({ id: driverId, cores: desc.cores, memoryMB: desc.memoryMB, resourceReqs: desc.resourceReqs ?? [] });
  });

  const runningDrivers = Math.max(0, activeDrivers - driverIds.length);
  let driverCoresInUse = 0;
  if (options.needDriverCores && runningDrivers > 0) {
    const active = await redis.smembers(keys.driversActive);
    const waiting = new Set(driverIds);
    const p = redis.pipeline();
    const running = active.filter((id) => !waiting.has(id));
    for (const id of running) p.hget(keys.driver(id), 'cores');
    for (const [, cores] of (await p.exec()) ?? []) driverCoresInUse += Number(cores ?? 0);
  }

  return { generation: generation ?? '0', workers, apps, drivers, runningDrivers, driverCoresInUse };
}
