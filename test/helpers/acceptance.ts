/**
 * Helpers for the worker-agent acceptance tests: an AppClient listener that records
 * every call, `flint worker` as a real child process (bin/flint.js) that a test can
 * SIGKILL, SIGSTOP and restart on the same work dir, a recorder of Docker's own
 * container events (to prove no executor ever got a second container), and the
 * check that a test left no key and no container behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Redis } from 'ioredis';
import { AppClient, type AppClientListener, type AppClientOptions, type AppEventRecord } from '../../client/app-client.ts';
import { clusterKeyPattern } from '../../protocol/keys.ts';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { REDIS_ARGV_URL, REDIS_URL } from './env.ts';
import { docker, waitFor } from './isolation.ts';
export { recordContainerEvents, type ContainerEvent, type ContainerEventLog } from './isolation.ts';

/** RemovedCall: one `executorRemoved` call of the AppClient listener. */
export interface RemovedCall {
  fullId: string;
  message: string;
  exitStatus: number | undefined;
  workerHost: string | undefined;
  oomKilled: boolean;
}

/** AddedCall: one `executorAdded` call of the AppClient listener. */
export interface AddedCall {
  fullId: string;
  workerId: string;
  hostPort: string;
  cores: number;
  memoryMB: number;
}

/** RecordingListener: Spark's StandaloneAppClientListener that writes every call down, in order. */
export class RecordingListener implements AppClientListener {
  readonly connectedIds: string[] = [];
  readonly deadReasons: string[] = [];
  readonly added: AddedCall[] = [];
  readonly removed: RemovedCall[] = [];
  readonly workersRemoved: { workerId: string; host: string; message: string }[] = [];
  connected(appId: string): void {
    this.connectedIds.push(appId);
  }
  dead(reason: string): void {
    this.deadReasons.push(reason);
  }
  executorAdded(fullId: string, workerId: string, hostPort: string, cores: number, memoryMB: number): void {
    this.added.push({ fullId, workerId, hostPort, cores, memoryMB });
  }
  executorRemoved(fullId: string, message: string, exitStatus: number | undefined, workerHost: string | undefined, oomKilled: boolean): void {
    this.removed.push({ fullId, message, exitStatus, workerHost, oomKilled });
  }
  workerRemoved(workerId: string, host: string, message: string): void {
    this.workersRemoved.push({ workerId, host, message });
  }
  removedOf(fullId: string): RemovedCall[] {
    return this.removed.filter((call) => call.fullId === fullId);
  }
}

/** TracedClient: an AppClient with its listener and every raw event it delivered. */
export interface TracedClient {
  client: AppClient;
  listener: RecordingListener;
  events: AppEventRecord[];
  /** ExecutorUpdated events of one executor number, in stream order */
  updates(execId: number): Extract<AppEventRecord, { type: 'ExecutorUpdated' }>[];
}

/** tracedClient builds an AppClient for `cluster` with a RecordingListener and a log of raw events (not started). */
export function tracedClient(cluster: string, appDescription: unknown, options: Partial<AppClientOptions> = {}): TracedClient {
  const listener = new RecordingListener();
  const client = new AppClient({
    redisUrl: REDIS_URL,
    cluster,
    appDescription,
    listener,
    registrationTimeoutMs: 15_000,
    eventBlockMs: 1_000,
    ...options,
  });
  const events: AppEventRecord[] = [];
  client.on('event', (event) => events.push(event));
  return {
    client,
    listener,
    events,
    updates: (execId) => events.filter((e): e is Extract<AppEventRecord, { type: 'ExecutorUpdated' }> => e.type === 'ExecutorUpdated' && e.body.id === execId),
  };
}

/** execIdOf: the executor number of Spark's full id `appId/execId`. */
export function execIdOf(fullId: string): number {
  return Number(fullId.slice(fullId.lastIndexOf('/') + 1));
}

// ---------------------------------------------------------------- `flint worker` child processes

const REPO_ROOT = new URL('../../', import.meta.url).pathname;

/** FlintWorkerOptions: the flags of one `flint worker` run. */
export interface FlintWorkerOptions {
  cluster: string;
  workDir: string;
  cores: number;
  memory: string;
  runtime?: 'docker' | 'process';
  conf?: Record<string, string>;
  /** --id */
  id?: string;
  /** extra environment (e.g. test hooks) */
  env?: Record<string, string>;
}

/** FlintWorkerProcess: one running `node bin/flint.js worker ...` and what it printed. */
export interface FlintWorkerProcess {
  child: ChildProcess;
  pid: number;
  workerId: string;
  epoch: number;
  webUiUrl: string;
  stdout(): string;
  stderr(): string;
  /** resolves when the process is gone, with its exit code or the signal that ended it */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** FlintWorkers: starts `flint worker` processes and kills whatever is left of them on cleanup. */
export class FlintWorkers {
  private readonly all: FlintWorkerProcess[] = [];

  /** start runs `node bin/flint.js worker` and resolves once it printed its registration line. */
  async start(options: FlintWorkerOptions, timeoutMs = 30_000): Promise<FlintWorkerProcess> {
    const args = [
      'bin/flint.js', 'worker', '--redis', REDIS_ARGV_URL, '--cluster', options.cluster, '--work-dir', options.workDir, '--port', '0',
      '--cores', String(options.cores), '--memory', options.memory, '--runtime', options.runtime ?? 'docker', '--network', 'host',
    ];
    for (const [key, value] of Object.entries(options.conf ?? {})) args.push('--conf', `${key}=${value}`);
    if (options.id !== undefined) args.push('--id', options.id);
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: { ...process.env, FLINT_LOG_LEVEL: 'warn', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (chunk) => (out += chunk));
    child.stderr!.on('data', (chunk) => (err += chunk));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    const partial = { child, pid: child.pid!, stdout: () => out, stderr: () => err, exited, workerId: '', epoch: 0, webUiUrl: '' };
    this.all.push(partial);
    let gone = false;
    void exited.then(() => (gone = true));
    const line = await waitFor(
      () => {
        if (gone) throw new Error(`flint worker exited before registering: ${err.trim().split('\n').slice(-3).join(' | ')}`);
        return /flint worker (\S+) registered \(epoch (\d+)\) with cluster '[^']*' on \S+; web UI (\S+)/.exec(out);
      },
      { timeoutMs, intervalMs: 50, message: `flint worker registration line (stdout: ${out.slice(-200)})` },
    );
    partial.workerId = line[1]!;
    partial.epoch = Number(line[2]);
    partial.webUiUrl = line[3]!;
    return partial;
  }

  /** sigkill kills the process as an OOM killer or a power cut would, and waits until it is gone. */
  async sigkill(worker: FlintWorkerProcess): Promise<void> {
    if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
    await worker.exited;
  }

  /** cleanup SIGKILLs every process still running (a stopped one too: SIGKILL needs no SIGCONT). */
  async cleanup(): Promise<void> {
    await Promise.allSettled(this.all.map((worker) => this.sigkill(worker)));
  }
}

// ---------------------------------------------------------------- Docker's own record of containers

// ---------------------------------------------------------------- nothing left behind

/** clusterKeyCount: how many Redis keys of `cluster` exist (SCAN, never KEYS). */
export async function clusterKeyCount(redis: Redis, cluster: string): Promise<number> {
  let cursor = '0';
  let count = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', clusterKeyPattern(cluster), 'COUNT', 1000);
    cursor = next;
    count += keys.length;
  } while (cursor !== '0');
  return count;
}

/** clusterContainerCount: how many containers (running or not) carry `cluster`'s label. */
export async function clusterContainerCount(cluster: string): Promise<number> {
  return (await docker().listContainers({ all: true, filters: { label: [`${LABEL.cluster}=${cluster}`] } })).length;
}
