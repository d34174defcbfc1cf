/**
 * The worker agent's public shapes: the options `startAgent` takes, the handle it returns,
 * and the view the worker UI and tests read.
 */
import type { FlintConfig } from '../../protocol/config.ts';
import type { LaunchExecutor } from '../../protocol/messages.ts';
import type { DriverState, ExecutorState } from '../../protocol/states.ts';
import type { Logger } from '../../lib/log.ts';
import type { ServerTls } from '../../lib/http/tls.ts';
import type { Runtime } from '../runtime/types.ts';

/** AgentOptions: everything `startAgent` needs; `flint worker` builds them from flags and config. */
export interface AgentOptions {
  redisUrl: string;
  config: FlintConfig;
  /** cluster name; default config.cluster */
  cluster?: string;
  /**
   * the runtime, or a factory called once the worker id is known (runtimes narrow their
   * lookups to one worker, and keep their records under the work dir: runtimeStateDir)
   */
  runtime: Runtime | ((worker: { workerId: string; cluster: string; workDir: string }) => Runtime | Promise<Runtime>);
  workDir: string;
  cores: number;
  memoryMB: number;
  /** host the worker registers with and its web UI binds to (default 127.0.0.1) */
  host?: string;
  /** web UI port; 0 = any free port (default spark.worker.ui.port) */
  port?: number;
  /** HTTPS for the web UI (lib/http/tls.ts) */
  tls?: ServerTls;
  resources?: Record<string, string[]>;
  labels?: Record<string, string>;
  /** explicit worker id (--id); otherwise the one kept in the work dir, or a new one */
  id?: string;
  /** container network (default spark.flint.worker.network) */
  network?: 'host' | 'none';
  /** stop (and report KILLED) every task on a graceful stop */
  killOnExit?: boolean;
  logger?: Logger;
  /**
   * onFatal is called when the agent must exit (registration refused or given up,
   * a state report undeliverable). Default: log it and exit the process with code 1.
   * The agent has already stopped (abruptly) when it is called.
   */
  onFatal?: (message: string) => void;
  /** random source for the registration fuzz (tests) */
  random?: () => number;
  /** first back-off of state-report retries in ms (doubles per attempt; default 1000) */
  reportBackoffMs?: number;
  /** how long one state-report attempt may take before it counts as failed (default 10000 ms) */
  reportAttemptTimeoutMs?: number;
  /** most inbox commands handled at once (default 64) */
  maxInFlightCommands?: number;
  /**
   * the worker web UI: given the agent, returns a fetch handler served on the web UI
   * port (called once the worker id is known). Default: the worker UI of
   * workers/worker-ui.ts (Spark's WorkerPage, `/json`, log pages). `false`: no server
   * (then `port` must be given and is only reported).
   */
  webUi?: false | ((agent: AgentHandle) => { fetch: (request: Request) => Response | Promise<Response> });
}

/** ExecutorView: one executor as the worker UI shows it. */
export interface ExecutorView {
  appId: string;
  execId: number;
  cores: number;
  memoryMB: number;
  state: ExecutorState;
  workDir: string;
  startedAt?: number;
  finishedAt?: number;
  exitStatus?: number;
  message?: string;
  resources?: Record<string, string[]>;
  appDesc?: LaunchExecutor['appDesc'];
}

/** DriverView: one driver as the worker UI shows it. */
export interface DriverView {
  driverId: string;
  cores: number;
  memoryMB: number;
  state: DriverState;
  supervise: boolean;
  relaunches: number;
  workDir: string;
  startedAt?: number;
  finishedAt?: number;
  exitStatus?: number;
  exception?: string;
  mainClass: string;
  resources: Record<string, string[]>;
}

/** InboxStats: what the inbox reader has done since the agent started. */
export interface InboxStats {
  /** entries handled (acknowledged and deleted) */
  handled: number;
  /** commands refused for another registration epoch */
  refusedEpoch: number;
  /** entries that could not be decoded: sent to the dead-letter stream */
  deadLettered: number;
  /** pending entries whose fields were gone (trimmed or deleted): acknowledged */
  trimmed: number;
  /** commands being handled right now */
  inFlight: number;
}

/** AgentView: Spark's WorkerStateResponse, for the worker UI. */
export interface AgentView {
  workerId: string;
  cluster: string;
  epoch: number | undefined;
  registered: boolean;
  decommissioned: boolean;
  host: string;
  port: number;
  webUiUrl: string;
  workerUrl: string;
  runtime: string;
  workDir: string;
  masterUrl: string;
  masterWebUiUrl: string;
  cores: number;
  memoryMB: number;
  coresUsed: number;
  memoryUsed: number;
  resources: Record<string, string[]>;
  resourcesUsed: Record<string, string[]>;
  labels: Record<string, string>;
  executors: ExecutorView[];
  finishedExecutors: ExecutorView[];
  drivers: DriverView[];
  finishedDrivers: DriverView[];
  inbox: InboxStats;
}

/** AgentHandle: what `startAgent` returns. */
export interface AgentHandle {
  readonly workerId: string;
  readonly cluster: string;
  readonly webUiUrl: string;
  /** the current registration epoch (undefined while registering the first time) */
  epoch(): number | undefined;
  /** the executors and drivers the agent has, running and finished (trimmed as Spark trims) */
  view(): AgentView;
  /**
   * stop ends the agent. Graceful (default): stop heartbeating and reading the inbox,
   * kill tasks if killOnExit, close connections. `abrupt`: drop timers and connections
   * at once without touching any task or file, as a SIGKILL would.
   */
  stop(options?: { abrupt?: boolean }): Promise<void>;
  /**
   * decommission: Spark's decommissionSelf on the worker's decommission signal. With
   * spark.decommission.enabled the agent stops taking executors and tells the master
   * (WorkerDecommissioning); running tasks keep running. Returns whether it acted.
   */
  decommission(): Promise<boolean>;
  /** resolves when the agent has stopped, with the reason when it stopped because it had to (see onFatal) */
  readonly stopped: Promise<{ fatal?: string }>;
}
