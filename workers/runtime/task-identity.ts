/**
 * Pure helpers shared by both runtimes: the deterministic name a task runs under,
 * the labels that let an agent find and re-adopt its tasks, the checks a TaskSpec
 * must pass before anything is started, and Spark's stderr header. No I/O here.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { ImageNotAllowedError, type TaskSpec } from './types.ts';

/** LABEL: the label keys Flint puts on every task (containers and process records). */
export const LABEL = {
  cluster: 'flint.cluster',
  worker: 'flint.worker',
  kind: 'flint.kind',
  task: 'flint.task',
  app: 'flint.app',
  executor: 'flint.executor',
  driver: 'flint.driver',
  /** the task's workDir on the host, so a restarted agent can resume log capture */
  workDir: 'flint.workdir',
  /** the trusted directory the workDir lies below (the worker's work dir): the walk to the workDir starts there */
  workRoot: 'flint.workroot',
} as const;

/** TASK_FILES: the files the agent writes in a task's directory (Spark's two logs; rolled copies beside them). */
export const TASK_FILES = {
  stdout: 'stdout',
  stderr: 'stderr',
} as const;

/**
 * PRIVATE_FILES: the runtime's own files for one task. They live in the agent's directory
 * for the task (privateTaskDir), never in the task's: a task can neither forge nor redirect
 * them, and they survive an agent restart (re-adoption reads them).
 */
export const PRIVATE_FILES = {
  /** Docker runtime: how far the log capture got (see log-capture.ts) */
  logState: 'log-state.json',
  /** both runtimes: written before a stop() signal, so the exit is reported as stopped even after an agent restart */
  stopRequested: 'stop-requested',
  /** both runtimes: why the agent refused a file the task tampered with and ended the task */
  refused: 'refused',
  /** process runtime: what the supervisor runs (mode 0600: the environment may hold secrets; deleted once read) */
  launch: 'launch.json',
  /** process runtime: written by the supervisor once the command runs */
  processTask: 'task.json',
  /** process runtime: written by the supervisor when the command exits */
  processExit: 'exit.json',
} as const;

/**
 * runtimeStateDir: where a runtime keeps its records for one worker's tasks:
 * `<work-dir>/.flint-<runtime>-runtime/<cluster>/<worker id>`, in the worker's work dir
 * (which survives restarts) and outside every task's directory (names starting with a dot
 * are never app or driver ids, and the work-dir cleanup leaves them alone).
 */
export function runtimeStateDir(worker: { workDir: string; cluster: string; workerId: string }, runtime: 'docker' | 'process'): string {
  return join(worker.workDir, `.flint-${runtime}-runtime`, worker.cluster, worker.workerId);
}

/** privateTaskDir: the agent's own directory for a task, `<stateDir>/<task name>` (stateDir is the worker's, outside every task's). */
export function privateTaskDir(stateDir: string, cluster: string, kind: string, taskId: string): string {
  return join(stateDir, taskName(cluster, kind, taskId));
}

/** sanitiseName maps any text onto Docker's name alphabet `[a-zA-Z0-9][a-zA-Z0-9_.-]*`. */
export function sanitiseName(text: string, maxLength = 64): string {
  const replaced = text.replace(/[^a-zA-Z0-9_.-]+/g, '-').replace(/^[^a-zA-Z0-9]+/, '');
  return replaced.slice(0, maxLength) || 'x';
}

/** shortHash is 10 hex chars of SHA-256: enough that two sanitised ids that look alike never share a name. */
export function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 10);
}

/**
 * taskName is the deterministic name a task runs under:
 * `flint-<cluster>-<kind>-<sanitised task id>-<hash>`. The hash covers the raw
 * cluster and taskId, so `executor:a/1` and `executor:a-1` (same sanitised text)
 * still get different names, and a duplicate launch of one task finds the first.
 */
export function taskName(cluster: string, kind: string, taskId: string): string {
  const withoutKind = taskId.startsWith(`${kind}:`) ? taskId.slice(kind.length + 1) : taskId;
  return `flint-${sanitiseName(cluster, 40)}-${sanitiseName(kind, 16)}-${sanitiseName(withoutKind, 80)}-${shortHash(`${cluster}\0${taskId}`)}`;
}

/** taskLabels are the labels a task carries: identity first, then the spec's own labels (which cannot override identity). */
export function taskLabels(spec: TaskSpec, hostWorkDir: string, workRoot?: string): Record<string, string> {
  const labels: Record<string, string> = { ...(spec.labels ?? {}) };
  labels[LABEL.cluster] = spec.cluster;
  labels[LABEL.worker] = spec.workerId;
  labels[LABEL.kind] = spec.kind;
  labels[LABEL.task] = spec.taskId;
  labels[LABEL.workDir] = hostWorkDir;
  if (workRoot !== undefined) labels[LABEL.workRoot] = workRoot;
  if (spec.appId !== undefined) labels[LABEL.app] = spec.appId;
  if (spec.execId !== undefined) labels[LABEL.executor] = String(spec.execId);
  if (spec.driverId !== undefined) labels[LABEL.driver] = spec.driverId;
  return labels;
}

/** stderrHeader is what Spark writes at the top of a task's stderr before the process's own output. */
export function stderrHeader(spec: Pick<TaskSpec, 'kind' | 'command'>): string {
  const title = spec.kind === 'driver' ? 'Launch Command' : 'Spark Executor Command';
  return `${title}: ${JSON.stringify(spec.command)}\n${'='.repeat(40)}\n\n`;
}

/** checkImageAllowed throws ImageNotAllowedError unless the image starts with one of the allowed prefixes (no list allows all). */
export function checkImageAllowed(image: string, allowList: readonly string[] | undefined): void {
  if (allowList === undefined || allowList.length === 0) return;
  if (allowList.some((prefix) => image.startsWith(prefix))) return;
  throw new ImageNotAllowedError(`image ${image} is not allowed (allowed prefixes: ${allowList.join(', ')})`);
}

/** validateTaskSpec returns the first problem with a spec in words, or undefined when it can be started. */
export function validateTaskSpec(spec: TaskSpec): string | undefined {
  if (spec === null || typeof spec !== 'object') return 'task spec must be an object';
  if (spec.kind !== 'executor' && spec.kind !== 'driver') return `task kind must be executor or driver, got ${String(spec.kind)}`;
  for (const field of ['taskId', 'workerId', 'cluster', 'image', 'workDir'] as const) {
    if (typeof spec[field] !== 'string' || spec[field].length === 0) return `task spec ${field} must be a non-empty string`;
  }
  if (!spec.workDir.startsWith('/')) return `task workDir must be an absolute path, got ${spec.workDir}`;
  if (spec.workRoot !== undefined && (typeof spec.workRoot !== 'string' || !spec.workRoot.startsWith('/'))) return `task workRoot must be an absolute path, got ${String(spec.workRoot)}`;
  if (!Array.isArray(spec.command) || spec.command.some((arg) => typeof arg !== 'string')) return 'task command must be an array of strings';
  if (spec.command.some((arg) => arg.includes('\0'))) return 'task command arguments must not contain NUL';
  if (spec.env === null || typeof spec.env !== 'object') return 'task env must be an object of strings';
  for (const [key, value] of Object.entries(spec.env)) {
    if (key.length === 0 || key.includes('=') || key.includes('\0')) return `task env name ${JSON.stringify(key)} is invalid`;
    if (typeof value !== 'string' || value.includes('\0')) return `task env ${key} must be a string without NUL`;
  }
  if (!Number.isFinite(spec.cores) || spec.cores <= 0) return `task cores must be a positive number, got ${spec.cores}`;
  if (!Number.isInteger(spec.memoryMB) || spec.memoryMB < 6) return `task memoryMB must be an integer of at least 6 (Docker's minimum), got ${spec.memoryMB}`;
  if (!Number.isInteger(spec.pidsLimit) || spec.pidsLimit <= 0) return `task pidsLimit must be a positive integer, got ${spec.pidsLimit}`;
  if (spec.network !== 'host' && spec.network !== 'none') return `task network must be host or none, got ${String(spec.network)}`;
  if (spec.labels !== undefined) {
    for (const [key, value] of Object.entries(spec.labels)) {
      if (typeof value !== 'string') return `task label ${key} must be a string`;
    }
  }
  return undefined;
}

/** assertValidTaskSpec throws a TypeError naming the problem with a spec. */
export function assertValidTaskSpec(spec: TaskSpec): void {
  const problem = validateTaskSpec(spec);
  if (problem !== undefined) throw new TypeError(problem);
}
