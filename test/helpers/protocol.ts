/**
 * Protocol-level helpers for master tests: a simulated worker speaks the real
 * protocol (RegisterWorker through the master queue, heartbeats through the
 * heartbeat script, commands read from its real inbox stream). Nothing is mocked:
 * these are the same messages an agent sends, without containers behind them.
 */
import type { RedisConnection } from '../../lib/redis.ts';
import type { Keys } from '../../protocol/keys.ts';
import { MasterClient } from '../../client/master-client.ts';
import { decodeAppEvent, decodeInboxEntry, type RawStreamEntry } from '../../protocol/streams.ts';
import type { RegisteredWorker } from '../../protocol/messages.ts';

export interface FakeWorkerSpec {
  id: string;
  cores: number;
  memoryMB: number;
  port?: number;
  resources?: Record<string, string[]>;
}

let nextPort = 20000;

/** registerFakeWorker registers a worker through the master queue and returns its epoch. */
export async function registerFakeWorker(client: MasterClient, spec: FakeWorkerSpec): Promise<number> {
  const reply = await client.ask<RegisteredWorker & { type: string; message?: string }>(
    'RegisterWorker',
    {
      id: spec.id,
      host: '127.0.0.1',
      port: spec.port ?? nextPort++,
      cores: spec.cores,
      memoryMB: spec.memoryMB,
      webUiUrl: '',
      resources: spec.resources ?? {},
      labels: {},
      executors: [],
      driverIds: [],
    },
    30_000,
  );
  if (reply.type !== 'RegisteredWorker') throw new Error(`registration of ${spec.id} failed: ${reply.message}`);
  return reply.epoch;
}

export interface DecodedEvent {
  id: string;
  type: string;
  body: Record<string, unknown>;
}

export async function readAppEvents(redis: RedisConnection, keys: Keys, appId: string): Promise<DecodedEvent[]> {
  const entries = (await redis.xrange(keys.appEvents(appId), '-', '+')) as RawStreamEntry[];
  return entries.map((entry) => {
    const decoded = decodeAppEvent(entry);
    if (!decoded.parsed.ok) throw new Error(`invalid app event ${entry[0]}: ${decoded.parsed.reason}`);
    return { id: decoded.id, type: decoded.type, body: decoded.parsed.value.body as Record<string, unknown> };
  });
}

export async function readInbox(redis: RedisConnection, keys: Keys, workerId: string): Promise<DecodedEvent[]> {
  const entries = (await redis.xrange(keys.workerInbox(workerId), '-', '+')) as RawStreamEntry[];
  return entries.map((entry) => {
    const decoded = decodeInboxEntry(entry);
    if (!decoded.parsed.ok) throw new Error(`invalid inbox entry ${entry[0]}: ${decoded.parsed.reason}`);
    return { id: decoded.id, type: decoded.type, body: decoded.parsed.value.body as Record<string, unknown> };
  });
}

/** appDescription builds a valid ApplicationDescription with test defaults. */
export function appDescription(overrides: Record<string, unknown> = {}) {
  return {
    name: 'test-app',
    image: 'flint-test-busybox:latest',
    command: ['sleep', '30'],
    env: {},
    memoryPerExecutorMB: 256,
    resourcesPerExecutor: [],
    user: 'test',
    appUiUrl: '',
    priority: 0,
    labels: {},
    ...overrides,
  };
}

/** exitSummary: a TaskExit without the run's handle (and without launchError/vanished unless set), for deepEqual checks. */
export function exitSummary(exit: { exitCode: number; oomKilled: boolean; stopped: boolean; launchError?: string; vanished?: string }): Record<string, unknown> {
  const summary: Record<string, unknown> = { exitCode: exit.exitCode, oomKilled: exit.oomKilled, stopped: exit.stopped };
  if (exit.launchError !== undefined) summary.launchError = exit.launchError;
  if (exit.vanished !== undefined) summary.vanished = exit.vanished;
  return summary;
}
