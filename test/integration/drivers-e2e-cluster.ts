/**
 * A real Flint cluster for the driver end-to-end tests: the master (functions
 * host) and the REST submission server (MasterGateway over the master's queue) in
 * this process, worker agents either in this process (agent-fixture.ts) or as
 * `flint worker` child processes, all against the real Redis and Docker engine.
 * `cleanup` kills the child processes, closes the server and then lets the agent
 * fixture remove the cluster's containers (by label), keys and work dirs.
 */
import type Docker from 'dockerode';
import { createRestApp, startRestServer, type RunningRestServer } from '../../functions/http/rest/server.ts';
import { MasterGateway } from '../../functions/http/rest/gateway.ts';
import { signToken } from '../../lib/http/auth.ts';
import { RestSubmissionClient } from '../../client/rest-client.ts';
import type { SubmissionStatusResponse } from '../../protocol/rest.ts';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { agentFixture, type AgentFixture } from '../helpers/agent-fixture.ts';
import { REDIS_ARGV_URL, REDIS_URL } from '../helpers/env.ts';
import { docker, waitFor } from '../helpers/isolation.ts';
import { runFlint, type FlintProcess } from '../helpers/flint-process.ts';

export { REPO_ROOT, runFlint, runFlintToEnd, type FlintProcess } from '../helpers/flint-process.ts';

/** SECRET: the cluster's spark.flint.auth.secret (tests only). */
export const SECRET = 'drivers-e2e-secret-0123456789abcdef0123456789';

/** WorkerProcess: a `flint worker` child process once it has registered. */
export interface WorkerProcess extends FlintProcess {
  workerId: string;
  epoch: number;
  workDir: string;
}

export interface DriverCluster extends AgentFixture {
  rest: RunningRestServer;
  /** a token with every scope */
  token: string;
  client: RestSubmissionClient;
  /** postCreate sends a create request body exactly as given (Spark's client's bytes) */
  postCreate(body: string): Promise<{ status: number; json: Record<string, unknown> }>;
  status(driverId: string): Promise<SubmissionStatusResponse>;
  /** waitForState polls the REST status until the driver is in `state` */
  waitForState(driverId: string, state: string, timeoutMs?: number): Promise<SubmissionStatusResponse>;
  /** driverContainers: this cluster's containers of one driver, running or not */
  driverContainers(driverId: string): Promise<Docker.ContainerInfo[]>;
  /** spawnWorker starts `flint worker` as a child process and waits for its registration line */
  spawnWorker(workDir: string, options?: { cores?: number; memory?: string; conf?: Record<string, string> }): Promise<WorkerProcess>;
}

/** driverCluster: a unique cluster with a master and a REST server; workers are added by the test. */
export async function driverCluster(name: string, options: { conf?: Record<string, string> } = {}): Promise<DriverCluster> {
  const f = await agentFixture(name, { conf: options.conf });
  const children: FlintProcess[] = [];
  let gateway: MasterGateway | undefined;
  let rest: RunningRestServer | undefined;
  try {
    gateway = MasterGateway.connect({ redisUrl: REDIS_URL, cluster: f.cluster });
    rest = await startRestServer(
      createRestApp({ gateway, auth: { secret: SECRET }, serverSparkVersion: '4.0.0', masterUrl: 'spark://127.0.0.1:7077', restPort: 6066, serverEnv: {} }),
      { host: '127.0.0.1', port: 0, secret: SECRET },
    );
  } catch (error) {
    await gateway?.close();
    await f.cleanup();
    throw error;
  }
  const token = signToken(SECRET, { scope: 'admin', ttlSeconds: 3600, subject: name });
  const client = new RestSubmissionClient(rest.url, { token });
  const fixtureCleanup = f.cleanup;
  const status = async (driverId: string): Promise<SubmissionStatusResponse> => {
    const result = await client.requestSubmissionStatus(driverId);
    if (result.status !== 200 || result.body.action !== 'SubmissionStatusResponse') throw new Error(`status of ${driverId}: HTTP ${result.status} ${JSON.stringify(result.body)}`);
    return result.body as SubmissionStatusResponse;
  };
  const cluster: DriverCluster = Object.assign(f, {
    rest,
    token,
    client,
    async postCreate(body: string) {
      const response = await fetch(`${rest!.url}/v1/submissions/create`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json;charset=UTF-8', Authorization: `Bearer ${token}` },
        body,
      });
      return { status: response.status, json: (await response.json()) as Record<string, unknown> };
    },
    status,
    async waitForState(driverId: string, state: string, timeoutMs = 30_000) {
      let last: SubmissionStatusResponse | undefined;
      return waitFor(
        async () => {
          last = await status(driverId);
          return last.driverState === state ? last : undefined;
        },
        { timeoutMs, intervalMs: 200, message: `driver ${driverId} to be ${state} (last: ${JSON.stringify(last)})` },
      );
    },
    driverContainers(driverId: string) {
      return f.containers([`${LABEL.driver}=${driverId}`]);
    },
    async spawnWorker(workDir: string, workerOptions: { cores?: number; memory?: string; conf?: Record<string, string> } = {}) {
      const conf = { ...WORKER_CONF, ...workerOptions.conf };
      const proc = runFlint([
        'worker', '--redis', REDIS_ARGV_URL, '--cluster', f.cluster, '--work-dir', workDir, '--port', '0',
        '--cores', String(workerOptions.cores ?? 1), '--memory', workerOptions.memory ?? '1g', '--runtime', 'docker', '--network', 'none',
        ...Object.entries(conf).flatMap(([key, value]) => ['--conf', `${key}=${value}`]),
      ]);
      children.push(proc);
      const line = await waitFor(
        () => {
          if (proc.child.exitCode !== null) throw new Error(`flint worker exited with ${proc.child.exitCode}: ${proc.stderr()}`);
          return /flint worker (\S+) registered \(epoch (\d+)\)/.exec(proc.stdout());
        },
        { timeoutMs: 40_000, message: 'flint worker registration line' },
      );
      return Object.assign(proc, { workerId: line[1]!, epoch: Number(line[2]), workDir });
    },
    async cleanup() {
      for (const proc of children) if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
      await Promise.allSettled(children.map((proc) => proc.exit));
      await rest!.close().catch(() => undefined);
      await gateway!.close();
      await fixtureCleanup();
    },
  });
  return cluster;
}

/** WORKER_CONF: `flint worker` settings short enough for tests (the master's are FAST_CONF). */
export const WORKER_CONF: Record<string, string> = {
  'spark.flint.worker.registrationInterval': '300ms',
  'spark.flint.worker.relistInterval': '300ms',
  'spark.worker.driverTerminateTimeout': '1s',
  'spark.flint.worker.stopGracePeriod': '1s',
  'spark.flint.worker.pidsLimit': '64',
};

/** ContainerTimes: when Docker created a container and when it exited (ms; undefined while it runs). */
export interface ContainerTimes {
  createdAt: number;
  finishedAt?: number;
}

/** containerTimes inspects a container's creation and exit times, or undefined if it is gone. */
export async function containerTimes(id: string): Promise<ContainerTimes | undefined> {
  let info: Docker.ContainerInspectInfo;
  try {
    info = await docker().getContainer(id).inspect();
  } catch {
    return undefined;
  }
  const finished = Date.parse(info.State.FinishedAt);
  const exited = !info.State.Running && info.State.Status === 'exited' && Number.isFinite(finished) && finished > 0;
  return { createdAt: Date.parse(info.Created), finishedAt: exited ? finished : undefined };
}

/** sparkCreateBody: a CreateSubmissionRequest in the shape and key order Spark's RestSubmissionClient sends. */
export function sparkCreateBody(input: {
  appResource: string;
  appArgs: string[];
  mainClass?: string;
  sparkProperties: Record<string, string>;
  environmentVariables?: Record<string, string>;
}): string {
  return JSON.stringify({
    action: 'CreateSubmissionRequest',
    appArgs: input.appArgs,
    appResource: input.appResource,
    clientSparkVersion: '4.0.0',
    environmentVariables: input.environmentVariables ?? {},
    mainClass: input.mainClass ?? 'org.apache.spark.examples.SparkPi',
    sparkProperties: input.sparkProperties,
  });
}
