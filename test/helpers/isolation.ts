/**
 * Test isolation: helpers that let tests run in parallel against one real Redis
 * and one real Docker engine without seeing each other, and clean up after
 * themselves even when they fail.
 *
 * - Redis: each test uses its own Flint cluster name (`uniqueCluster`), so all its
 *   keys and queues start with `flint{<cluster>}`; `cleanupCluster` deletes them.
 * - Docker: each test labels its containers with a unique value;
 *   `removeContainersByLabel` force-removes them.
 * - Files: `makeTempDir` gives a private directory and its cleanup.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import type { Redis } from 'ioredis';
import { assertClusterName, clusterKeyPattern } from '../../protocol/keys.ts';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { DOCKER_SOCKET } from './env.ts';

/** uniqueCluster: a fresh cluster name `t-<prefix>-<random>`, valid per protocol/keys.ts. */
export function uniqueCluster(prefix: string): string {
  // Cluster names allow letters, digits, '-' and '_' and at most 64 characters:
  // 't-' + 40 + '-' + 12 = 55 leaves room for callers that append a suffix.
  const safePrefix = prefix.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40) || 'test';
  return assertClusterName(`t-${safePrefix}-${randomBytes(6).toString('hex')}`);
}

/**
 * cleanupCluster deletes every key of `cluster` (state, streams and BullMQ queues)
 * with SCAN + UNLINK, never KEYS, so it does not block Redis for other tests.
 * Returns how many keys it deleted.
 */
export async function cleanupCluster(redis: Redis, cluster: string): Promise<number> {
  const pattern = clusterKeyPattern(cluster);
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  await deleteClusterAclUsers(redis, cluster);
  return deleted;
}

/**
 * deleteClusterAclUsers removes the Redis ACL users of `cluster` (`flint-<cluster>-*`, what
 * `flint up` and `flint acl` create), e.g. after a `flint up` that was killed. A connection
 * that may not manage users leaves them.
 */
export async function deleteClusterAclUsers(redis: Redis, cluster: string): Promise<void> {
  try {
    const users = ((await redis.call('ACL', 'USERS')) as string[]).filter((name) => name.startsWith(`flint-${cluster}-`));
    if (users.length > 0) await redis.call('ACL', 'DELUSER', ...users);
  } catch {
    // not allowed to list or delete users: nothing of ours to remove through this connection
  }
}

let sharedDocker: Docker | undefined;

/** docker: one dockerode client for all helpers of a test process. */
export function docker(): Docker {
  sharedDocker ??= new Docker({ socketPath: DOCKER_SOCKET });
  return sharedDocker;
}

/**
 * removeContainersByLabel force-removes every container (running or not) that has
 * `label=value`. A container already gone or already being removed is not an
 * error. Returns how many containers it removed.
 */
export async function removeContainersByLabel(label: string, value: string): Promise<number> {
  const engine = docker();
  const containers = await engine.listContainers({ all: true, filters: { label: [`${label}=${value}`] } });
  let removed = 0;
  for (const info of containers) {
    try {
      await engine.getContainer(info.Id).remove({ force: true, v: true });
      removed += 1;
    } catch (error) {
      // 404: removed meanwhile (e.g. AutoRemove); 409: a removal is already in progress.
      const status = (error as { statusCode?: number }).statusCode;
      if (status !== 404 && status !== 409) throw error;
    }
  }
  return removed;
}

/** TempDir: a private directory and the function that removes it (safe to call twice). */
export interface TempDir {
  path: string;
  cleanup(): Promise<void>;
}

/** makeTempDir creates `<tmpdir>/flint-test-<prefix>-XXXXXX`. */
export async function makeTempDir(prefix: string): Promise<TempDir> {
  const safePrefix = prefix.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40) || 'test';
  const path = await mkdtemp(join(tmpdir(), `flint-test-${safePrefix}-`));
  return {
    path,
    cleanup: () => rm(path, { recursive: true, force: true }),
  };
}

export interface WaitForOptions {
  /** give up after this long (default 10 s) */
  timeoutMs?: number;
  /** poll period (default 50 ms) */
  intervalMs?: number;
  /** what was awaited, for the failure message */
  message?: string;
}

/**
 * waitFor polls `predicate` until it returns a truthy value, and returns that
 * value. A predicate that throws counts as "not yet"; on timeout the error names
 * what was awaited and the last error or value seen, so a failing test says why.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 50;
  const what = options.message ?? 'condition';
  const deadline = Date.now() + timeoutMs;
  let last: { error: unknown } | { value: unknown } | undefined;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
      last = { value };
    } catch (error) {
      last = { error };
    }
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, Math.max(0, deadline - Date.now()))));
  }
  const detail =
    last === undefined
      ? ''
      : 'error' in last
        ? ` (last error: ${last.error instanceof Error ? last.error.message : String(last.error)})`
        : ` (last value: ${safeStringify(last.value)})`;
  throw new Error(`waitFor timed out after ${timeoutMs} ms: ${what}${detail}`);
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** writeAtomically: a reader polling for `path` sees it whole or not at all (written beside it, then renamed). */
export async function writeAtomically(path: string, text: string): Promise<void> {
  await writeFile(`${path}.partial`, text);
  await rename(`${path}.partial`, path);
}

/** ContainerEvent: one event (create, start, die, oom, ...) of a container of the cluster, as the engine reported it. */
export interface ContainerEvent {
  action: string;
  containerId: string;
  task: string;
  /** when the engine saw it, in ms since the epoch */
  timeMs: number;
  /** the container's labels and the engine's attributes (image, name) */
  attributes: Record<string, string>;
}

/** ContainerEventLog: Docker's events of one cluster's containers, recorded from before the test acts. */
export interface ContainerEventLog {
  events: ContainerEvent[];
  /** actions per task id, e.g. how many times each executor's container was created */
  count(action: 'create' | 'start' | 'die'): Map<string, number>;
  close(): void;
}

/** recordContainerEvents subscribes to the engine's event stream for `cluster`'s containers (create, start, die by default). */
export async function recordContainerEvents(cluster: string, actions: string[] = ['create', 'start', 'die']): Promise<ContainerEventLog> {
  const stream = (await docker().getEvents({
    filters: { type: ['container'], event: actions, label: [`${LABEL.cluster}=${cluster}`] },
  })) as NodeJS.ReadableStream & { destroy(): void };
  const events: ContainerEvent[] = [];
  let buffered = '';
  stream.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (!line) continue;
      const event = JSON.parse(line) as { Action: string; timeNano: number; Actor: { ID: string; Attributes: Record<string, string> } };
      events.push({ action: event.Action, containerId: event.Actor.ID, task: event.Actor.Attributes[LABEL.task] ?? '', timeMs: Math.floor(event.timeNano / 1e6), attributes: event.Actor.Attributes });
    }
  });
  stream.on('error', () => undefined);
  return {
    events,
    count(action) {
      const counts = new Map<string, number>();
      for (const event of events) if (event.action === action) counts.set(event.task, (counts.get(event.task) ?? 0) + 1);
      return counts;
    },
    close: () => stream.destroy(),
  };
}
