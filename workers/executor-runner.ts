/**
 * ExecutorRunner: Spark's ExecutorRunner for one executor of one application,
 * on top of the runtime contract (workers/runtime/types.ts).
 *
 * Lifecycle, as the agent reports it to the master:
 *   LAUNCHING (set by the master) → RUNNING once the runtime started the task →
 *   exactly one final state:
 *     - EXITED "Command exited with code N", exitStatus N;
 *     - FAILED "... OOMKilled ..." with oomKilled, when the runtime says the kernel's
 *       OOM killer ended it (never guessed from exit code 137);
 *     - KILLED "Runner thread for executor A/E interrupted" with the exit code, after
 *       a KillExecutor (or any stop the runtime recorded, also across agent restarts);
 *     - FAILED with the reason at once when the launch itself fails (image missing,
 *       image not allowed, bad work dir).
 *
 * The pure part (task id, placeholder substitution, environment, the final state of
 * an exit) is exported and unit-tested; the runner class only sequences runtime calls
 * and reports, on the common part in task-runner.ts (one exit source, one final report,
 * bounded kills).
 */
import type { ExecutorState } from '../protocol/states.ts';
import type { LaunchExecutor } from '../protocol/messages.ts';
import { HEARTBEAT_FAILURE_EXIT_CODE } from '../protocol/config.ts';
import type { TaskExit, TaskSpec, TaskStatus } from './runtime/types.ts';
import { TaskRunner, type RunnerDeps } from './task-runner.ts';

export type { RunnerDeps } from './task-runner.ts';

/** executorTaskId: the runtime identity of an executor, `executor:<appId>/<execId>`. */
export function executorTaskId(appId: string, execId: number): string {
  return `executor:${appId}/${execId}`;
}

/**
 * substitutePlaceholders replaces every `{{NAME}}` whose NAME is in `values`, in
 * every argument (Spark substitutes each occurrence). Unknown placeholders are
 * left as they are, as Spark leaves them.
 */
export function substitutePlaceholders(args: readonly string[], values: Readonly<Record<string, string>>): string[] {
  return args.map((arg) => arg.replace(/\{\{([A-Z_]+)\}\}/g, (whole, name: string) => (Object.prototype.hasOwnProperty.call(values, name) ? values[name]! : whole)));
}

/** WorkerContext: what a runner needs to know about its worker to build a task. */
export interface WorkerContext {
  workerId: string;
  cluster: string;
  /** the host the worker registered with ({{HOSTNAME}}) */
  host: string;
  /** the worker's web UI base URL, e.g. http://127.0.0.1:8081 (log URLs) */
  webUiUrl: string;
  /** the worker's URI ({{WORKER_URL}}); Flint workers have no RPC endpoint, so this names the worker in its cluster */
  workerUrl: string;
  /** the agent's work directory (absolute) */
  workDir: string;
  network: 'host' | 'none';
  pidsLimit: number;
}

/** workerUrlFor: the value of {{WORKER_URL}}: `flint://<cluster>/worker/<workerId>`. */
export function workerUrlFor(cluster: string, workerId: string): string {
  return `flint://${cluster}/worker/${workerId}`;
}

/** LABEL_CORES / LABEL_MEMORY: labels that let a restarted agent describe a re-adopted task to the master. */
export const LABEL_CORES = 'flint.cores';
export const LABEL_MEMORY = 'flint.memory-mb';

/** executorWorkDir: `<work-dir>/<appId>/<execId>` (Spark's layout). */
export function executorWorkDir(workDir: string, appId: string, execId: number): string {
  return `${workDir.replace(/\/+$/, '')}/${appId}/${execId}`;
}

/** executorLogUrl: Spark's SPARK_LOG_URL_STDOUT / _STDERR value. */
export function executorLogUrl(webUiUrl: string, appId: string, execId: number, logType: 'stdout' | 'stderr'): string {
  return `${webUiUrl.replace(/\/+$/, '')}/logPage/?appId=${encodeURIComponent(appId)}&executorId=${execId}&logType=${logType}`;
}

/**
 * buildExecutorSpec turns a LaunchExecutor into the runtime's TaskSpec: Spark's
 * placeholders substituted in every argument, the app's environment first and
 * Spark's and Flint's variables over it (so an app cannot fake its own identity).
 */
export function buildExecutorSpec(launch: LaunchExecutor, worker: WorkerContext): TaskSpec {
  const { appId, execId, appDesc } = launch;
  const workDir = executorWorkDir(worker.workDir, appId, execId);
  const command = substitutePlaceholders(appDesc.command, {
    EXECUTOR_ID: String(execId),
    APP_ID: appId,
    CORES: String(launch.cores),
    WORKER_URL: worker.workerUrl,
    HOSTNAME: worker.host,
    RESOURCE_PROFILE_ID: String(launch.rpId),
  });
  const env: Record<string, string> = {
    ...appDesc.env,
    SPARK_EXECUTOR_DIRS: workDir,
    SPARK_LAUNCH_WITH_SCALA: '0',
    SPARK_LOG_URL_STDOUT: executorLogUrl(worker.webUiUrl, appId, execId, 'stdout'),
    SPARK_LOG_URL_STDERR: executorLogUrl(worker.webUiUrl, appId, execId, 'stderr'),
    FLINT_APP_ID: appId,
    FLINT_EXECUTOR_ID: String(execId),
    FLINT_CORES: String(launch.cores),
    FLINT_MEMORY_MB: String(launch.memoryMB),
    FLINT_WORKER_ID: worker.workerId,
  };
  // Spark writes a resources file and appends --resourcesFile; Flint argv is arbitrary, so the assignment travels in the environment
  if (Object.keys(launch.resources).length > 0) env.FLINT_RESOURCES = JSON.stringify(launch.resources);
  Object.assign(env, executorHeartbeatEnv(launch));
  return {
    kind: 'executor',
    taskId: executorTaskId(appId, execId),
    workerId: worker.workerId,
    cluster: worker.cluster,
    appId,
    execId,
    image: appDesc.image,
    command,
    env,
    cores: launch.cores,
    memoryMB: launch.memoryMB,
    workDir,
    // every directory below the worker's work dir is opened without following links; an id that would leave it is refused
    workRoot: worker.workDir,
    network: worker.network,
    pidsLimit: worker.pidsLimit,
    labels: { ...appDesc.labels, [LABEL_CORES]: String(launch.cores), [LABEL_MEMORY]: String(launch.memoryMB) },
  };
}

/**
 * executorHeartbeatEnv: where and how an executor of an application with heartbeats
 * on sends them (Spark's Executor.reportHeartBeat, for an arbitrary command):
 *   FLINT_HEARTBEAT_URL           POST here every interval (Authorization: Bearer <token>),
 *                                 optionally with {"metrics": {...}}
 *   FLINT_HEARTBEAT_TOKEN         valid for this executor of this application only
 *   FLINT_HEARTBEAT_INTERVAL_MS   spark.executor.heartbeatInterval (first beat after 1-2 intervals)
 *   FLINT_HEARTBEAT_MAX_FAILURES  spark.executor.heartbeat.maxFailures: after that many failed
 *                                 beats in a row, exit with FLINT_HEARTBEAT_EXIT_CODE (56)
 * Empty for an application without heartbeats.
 */
export function executorHeartbeatEnv(launch: Pick<LaunchExecutor, 'appId' | 'execId' | 'heartbeat'>): Record<string, string> {
  const heartbeat = launch.heartbeat;
  if (!heartbeat) return {};
  return {
    FLINT_HEARTBEAT_URL: `${heartbeat.url.replace(/\/+$/, '')}/v1/apps/${encodeURIComponent(launch.appId)}/executors/${launch.execId}/heartbeat`,
    FLINT_HEARTBEAT_TOKEN: heartbeat.token,
    FLINT_HEARTBEAT_INTERVAL_MS: String(heartbeat.intervalMs),
    FLINT_HEARTBEAT_MAX_FAILURES: String(heartbeat.maxFailures),
    FLINT_HEARTBEAT_EXIT_CODE: String(HEARTBEAT_FAILURE_EXIT_CODE),
  };
}

/** ExecutorReport: the part of ExecutorStateChanged a runner decides (the agent adds workerId and epoch). */
export interface ExecutorReport {
  appId: string;
  execId: number;
  state: ExecutorState;
  message?: string;
  exitStatus?: number;
  oomKilled?: boolean;
}

/**
 * refusedMessage: why the worker ended a task that tampered with a file it writes. Example:
 * `the worker ended the executor: stdout was replaced by a symbolic link: refused (nothing
 * was written through it)`.
 */
export function refusedMessage(kind: 'executor' | 'driver', reason: string): string {
  return `the worker ended the ${kind}: ${reason} (nothing was written through it)`;
}

/** killedMessage: Spark's reason for a killed executor. */
export function killedMessage(appId: string, execId: number): string {
  return `Runner thread for executor ${appId}/${execId} interrupted`;
}

/**
 * executorExitReport: the final state of an executor whose task ended.
 * A kill from the master wins (KILLED), then a task the worker ended for tampering with a
 * file it writes (FAILED, refusedMessage), then any other requested stop (KILLED), then a
 * command that never ran (FAILED with the reason,
 * as Spark reports a process that could not be started), then the OOM killer (FAILED,
 * oomKilled), then a task that vanished (FAILED), else EXITED with the code.
 * Example: exit 137 without OOMKilled is EXITED 137, not an OOM.
 */
export function executorExitReport(appId: string, execId: number, exit: TaskExit, killed: boolean): ExecutorReport {
  if (killed) return { appId, execId, state: 'KILLED', message: killedMessage(appId, execId), exitStatus: exit.exitCode };
  if (exit.refused !== undefined) return { appId, execId, state: 'FAILED', message: refusedMessage('executor', exit.refused), exitStatus: exit.exitCode };
  if (exit.stopped) return { appId, execId, state: 'KILLED', message: killedMessage(appId, execId), exitStatus: exit.exitCode };
  if (exit.launchError !== undefined) return { appId, execId, state: 'FAILED', message: exit.launchError };
  if (exit.oomKilled) {
    return {
      appId,
      execId,
      state: 'FAILED',
      message: `Command exited with code ${exit.exitCode} (OOMKilled: the executor exceeded its memory limit)`,
      exitStatus: exit.exitCode,
      oomKilled: true,
    };
  }
  if (exit.vanished !== undefined) return { appId, execId, state: 'FAILED', message: `the executor task disappeared: ${exit.vanished}` };
  return { appId, execId, state: 'EXITED', message: `Command exited with code ${exit.exitCode}`, exitStatus: exit.exitCode };
}

/** launchFailureText: a launch error as one line, `Class: message` as Spark sends `e.toString`, at most 1,000 characters. */
export function launchFailureText(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.replace(/\s*\n\s*/g, ' ').trim().slice(0, 1000);
}

/** launchFailureReport: FAILED with the launch error's one-line text. */
export function launchFailureReport(appId: string, execId: number, error: unknown): ExecutorReport {
  return { appId, execId, state: 'FAILED', message: launchFailureText(error) };
}

/** ExecutorRunnerDeps: how an executor runner reports; both resolve once the report was delivered. */
export interface ExecutorRunnerDeps extends RunnerDeps {
  report(runner: ExecutorRunner, report: ExecutorReport): Promise<void>;
  /** called once, after the final state was delivered */
  finished(runner: ExecutorRunner, report: ExecutorReport): Promise<void>;
}

/** ExecutorInfo: what identifies and sizes an executor. */
export interface ExecutorInfo {
  appId: string;
  execId: number;
  cores: number;
  memoryMB: number;
  workDir: string;
  /** resource addresses assigned by the master (unknown for a task re-adopted after a restart) */
  resources?: Record<string, string[]>;
  /** the application's description (unknown for a task re-adopted after a restart) */
  appDesc?: LaunchExecutor['appDesc'];
}

/** ExecutorRunner: one executor's task, from launch or re-adoption to its final report. */
export class ExecutorRunner extends TaskRunner<ExecutorReport> {
  state: ExecutorState = 'LAUNCHING';

  constructor(
    readonly info: ExecutorInfo,
    private readonly executorDeps: ExecutorRunnerDeps,
  ) {
    super(executorTaskId(info.appId, info.execId), executorDeps);
  }

  /**
   * launch starts the task (adopting one with the same id) and reports RUNNING, or FAILED
   * with the reason when it cannot be started (the runtime has removed what it created).
   */
  async launch(spec: TaskSpec): Promise<void> {
    let status: TaskStatus;
    try {
      status = await this.deps.runtime.start(spec);
    } catch (error) {
      this.deps.log.warn({ appId: this.info.appId, execId: this.info.execId, reason: launchFailureText(error) }, 'executor launch failed');
      await this.settle(launchFailureReport(this.info.appId, this.info.execId, error));
      return;
    }
    this.startedAt = status.startedAt ?? this.deps.now();
    this.state = 'RUNNING';
    // RUNNING is queued before an exit that came early can queue the final report
    const running = this.executorDeps.report(this, { appId: this.info.appId, execId: this.info.execId, state: 'RUNNING' });
    this.runStarted(status);
    await running;
  }

  /**
   * adopt takes over a task found after an agent restart. A running one is reported
   * RUNNING (the master may still hold it LAUNCHING, if the agent died before its first
   * report; a duplicate RUNNING changes nothing); one that exited meanwhile is settled by
   * its exit, which the runtime reports once it has re-attached.
   */
  adopt(status: TaskStatus): Promise<void> {
    this.startedAt = status.startedAt;
    this.state = 'RUNNING';
    const running = status.running ? this.executorDeps.report(this, { appId: this.info.appId, execId: this.info.execId, state: 'RUNNING' }) : Promise.resolve();
    this.runStarted(status);
    return running;
  }

  protected override async onExit(exit: TaskExit): Promise<void> {
    await this.settle(executorExitReport(this.info.appId, this.info.execId, exit, this.killed));
  }

  protected override killedWithoutExit(): ExecutorReport {
    return { appId: this.info.appId, execId: this.info.execId, state: 'KILLED', message: `${killedMessage(this.info.appId, this.info.execId)} (no exit code: the runtime did not report one)` };
  }

  /** kill stops the task (SIGTERM, grace, SIGKILL); its exit then settles it as KILLED with its exit code. */
  async kill(): Promise<void> {
    if (this.isFinished) return this.settled;
    this.killed = true;
    if (this.handle === undefined) {
      // never started (its launch failed or has not run): nothing ran
      await this.settle({ appId: this.info.appId, execId: this.info.execId, state: 'KILLED', message: killedMessage(this.info.appId, this.info.execId) });
      return;
    }
    await this.stopAndSettle();
    await this.settled;
  }

  /** settle delivers the final report once and hands the runner back to the agent. */
  settle(report: ExecutorReport): Promise<void> {
    return this.settleWith(report, async () => {
      this.state = report.state;
      await this.executorDeps.report(this, report);
      await this.executorDeps.finished(this, report);
    });
  }
}
