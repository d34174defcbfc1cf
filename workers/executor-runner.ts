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
 * an exit) is exported and unit-tested; the runner class only sequences runtime
 * calls and reports. Exit signals may arrive several times and from several sources
 * (runtime.wait, runtime.onExit, the agent's relist): `observeExit` settles once.
 */
import type { Logger } from '../lib/log.ts';
import type { ExecutorState } from '../protocol/states.ts';
import type { LaunchExecutor } from '../protocol/messages.ts';
import { HEARTBEAT_FAILURE_EXIT_CODE } from '../protocol/config.ts';
import type { Runtime, TaskExit, TaskSpec, TaskStatus } from './runtime/types.ts';

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

/** killedMessage: Spark's reason for a killed executor. */
export function killedMessage(appId: string, execId: number): string {
  return `Runner thread for executor ${appId}/${execId} interrupted`;
}

/**
 * executorExitReport: the final state of an executor whose task ended.
 * A requested stop wins (KILLED), then the OOM killer (FAILED, oomKilled), else
 * EXITED with the code. Example: exit 137 without OOMKilled is EXITED 137, not an OOM.
 */
export function executorExitReport(appId: string, execId: number, exit: TaskExit, killed: boolean): ExecutorReport {
  if (killed || exit.stopped) {
    return { appId, execId, state: 'KILLED', message: killedMessage(appId, execId), exitStatus: exit.exitCode };
  }
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
  return { appId, execId, state: 'EXITED', message: `Command exited with code ${exit.exitCode}`, exitStatus: exit.exitCode };
}

/** launchFailureReport: FAILED with the launch error's text (Spark sends `e.toString`). */
export function launchFailureReport(appId: string, execId: number, error: unknown): ExecutorReport {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { appId, execId, state: 'FAILED', message: text.slice(0, 4000) };
}

/** RunnerDeps: what runners get from the agent. */
export interface RunnerDeps {
  runtime: Runtime;
  log: Logger;
  /** stop grace period in ms */
  stopGraceMs: number;
  now(): number;
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
export class ExecutorRunner {
  readonly taskId: string;
  state: ExecutorState = 'LAUNCHING';
  /** set by kill(): the exit is then reported as KILLED */
  killed = false;
  /** the final report once decided */
  finalReport: ExecutorReport | undefined;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  /** runtime handle of the task (container id) once started */
  handle: string | undefined;
  private settling: Promise<void> | undefined;

  constructor(
    readonly info: ExecutorInfo,
    private readonly deps: ExecutorRunnerDeps,
  ) {
    this.taskId = executorTaskId(info.appId, info.execId);
  }

  get isFinished(): boolean {
    return this.finalReport !== undefined;
  }

  /** launch starts the task (adopting one with the same id) and reports RUNNING, or FAILED on a launch error. */
  async launch(spec: TaskSpec): Promise<void> {
    let status: TaskStatus;
    try {
      status = await this.deps.runtime.start(spec);
    } catch (error) {
      this.deps.log.error({ err: error, appId: this.info.appId, execId: this.info.execId }, 'executor launch failed');
      await this.settle(launchFailureReport(this.info.appId, this.info.execId, error));
      return;
    }
    this.handle = status.handle;
    this.startedAt = status.startedAt ?? this.deps.now();
    if (this.killed) return; // a kill arrived while starting: kill() stops it and reports
    this.state = 'RUNNING';
    await this.deps.report(this, { appId: this.info.appId, execId: this.info.execId, state: 'RUNNING' });
    this.watch();
  }

  /** adopt takes over a running task found after an agent restart (already RUNNING on the master). */
  adopt(status: TaskStatus): void {
    this.handle = status.handle;
    this.startedAt = status.startedAt;
    this.state = 'RUNNING';
    this.watch();
  }

  /** watch waits for the task's exit through the runtime. */
  watch(): void {
    this.deps.runtime
      .wait(this.taskId)
      .then(
        (exit) => this.observeExit(exit),
        (error: unknown) => {
          // removed or runtime closed: the agent's relist decides what happened
          if (!this.isFinished) this.deps.log.debug({ err: error, taskId: this.taskId }, 'wait ended without an exit');
        },
      )
      .catch((error: unknown) => this.deps.log.debug({ err: error, taskId: this.taskId }, 'exit not settled (agent stopping?)'));
  }

  /** observeExit settles the executor from an exit, once, whatever the source. */
  async observeExit(exit: TaskExit): Promise<void> {
    await this.settle(executorExitReport(this.info.appId, this.info.execId, exit, this.killed));
  }

  /** kill stops the task (SIGTERM, grace, SIGKILL); the exit then settles as KILLED with its exit code. */
  async kill(): Promise<void> {
    if (this.isFinished) return this.settling;
    this.killed = true;
    await this.deps.runtime.stop(this.taskId, this.deps.stopGraceMs);
    const status = await this.deps.runtime.inspect(this.taskId);
    if (status !== undefined && !status.running && status.exitCode !== undefined) {
      await this.observeExit({ exitCode: status.exitCode, oomKilled: status.oomKilled ?? false, stopped: true });
    } else if (status === undefined && this.handle === undefined) {
      // never started (the launch was still pending): nothing ran
      await this.settle({ appId: this.info.appId, execId: this.info.execId, state: 'KILLED', message: killedMessage(this.info.appId, this.info.execId) });
    }
    await this.settling;
  }

  /** settle delivers the final report once and hands the runner back to the agent. */
  settle(report: ExecutorReport): Promise<void> {
    // a second exit signal waits for the first one's report and hand-back
    if (this.settling !== undefined) return this.settling;
    this.finalReport = report;
    this.state = report.state;
    this.finishedAt = this.deps.now();
    this.settling = (async () => {
      await this.deps.report(this, report);
      await this.deps.finished(this, report);
    })();
    return this.settling;
  }
}
