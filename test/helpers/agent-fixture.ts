/**
 * Agent test fixture: a unique cluster, an optional in-process master, and worker
 * agents started in-process against the real Redis and the real Docker engine.
 * `cleanup` stops everything and removes the cluster's keys, containers (by the
 * cluster label, unique per test) and temporary work dirs, even after a failure.
 */
import { Redis } from 'ioredis';
import { startMaster, type MasterHost } from '../../functions/host.ts';
import { loadConfig, type FlintConfig } from '../../protocol/config.ts';
import { clusterKeys, type Keys } from '../../protocol/keys.ts';
import { MasterClient } from '../../client/master-client.ts';
import { DockerRuntime } from '../../workers/runtime/docker.ts';
import { LABEL, runtimeStateDir } from '../../workers/runtime/task-identity.ts';
import { startAgent, type AgentHandle, type AgentOptions } from '../../workers/agent/agent.ts';
import { REDIS_URL } from './env.ts';
import { cleanupCluster, docker, makeTempDir, removeContainersByLabel, uniqueCluster, type TempDir } from './isolation.ts';

export interface AgentFixture {
  cluster: string;
  keys: Keys;
  config: FlintConfig;
  redis: Redis;
  masterClient: MasterClient;
  master: MasterHost | undefined;
  /** fatal messages agents stopped with */
  fatal: string[];
  /** a fresh work dir for one agent (reuse the path to restart "on the same host") */
  workDir(): Promise<string>;
  /** startAgent runs an agent with test defaults (1 core, 512 MB, any port, Docker runtime) */
  startAgent(options: Partial<AgentOptions> & { workDir: string }): Promise<AgentHandle>;
  /** containers of this cluster, running or not */
  containers(filters?: string[]): Promise<import('dockerode').ContainerInfo[]>;
  cleanup(): Promise<void>;
}

/** FAST_CONF: intervals short enough for tests. */
export const FAST_CONF: Record<string, string> = {
  'spark.flint.worker.registrationInterval': '300ms',
  'spark.flint.worker.relistInterval': '300ms',
  'spark.flint.worker.stopGracePeriod': '1s',
  'spark.worker.driverTerminateTimeout': '1s',
  'spark.flint.reaper.interval': '200ms',
  'spark.flint.worker.pidsLimit': '64',
};

export async function agentFixture(name: string, options: { master?: boolean; conf?: Record<string, string> } = {}): Promise<AgentFixture> {
  const cluster = uniqueCluster(name);
  const config = loadConfig({ env: {}, overrides: { 'spark.flint.cluster': cluster, ...FAST_CONF, ...options.conf } });
  const redis = new Redis(REDIS_URL);
  const masterClient = new MasterClient(REDIS_URL, cluster, 'agent-test');
  const agents: AgentHandle[] = [];
  const dirs: TempDir[] = [];
  const fatal: string[] = [];
  let master: MasterHost | undefined;
  const fixture: AgentFixture = {
    cluster,
    keys: clusterKeys(cluster),
    config,
    redis,
    masterClient,
    get master() {
      return master;
    },
    fatal,
    async workDir() {
      const dir = await makeTempDir(`agent-${name}`);
      dirs.push(dir);
      return dir.path;
    },
    async startAgent(agentOptions) {
      const agent = await startAgent({
        redisUrl: REDIS_URL,
        config,
        cores: 1,
        memoryMB: 512,
        port: 0,
        runtime: (worker) => new DockerRuntime({ stateDir: runtimeStateDir(worker, 'docker'), cluster: worker.cluster, workerId: worker.workerId, relistIntervalMs: 300 }),
        onFatal: (message) => fatal.push(message),
        reportBackoffMs: 200,
        ...agentOptions,
      });
      agents.push(agent);
      return agent;
    },
    containers(filters = []) {
      return docker().listContainers({ all: true, filters: { label: [`${LABEL.cluster}=${cluster}`, ...filters] } });
    },
    async cleanup() {
      await Promise.allSettled(agents.map((agent) => agent.stop({ abrupt: true })));
      await removeContainersByLabel(LABEL.cluster, cluster).catch(() => undefined);
      // a create already sent to Docker when an agent stopped may land a moment later
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await removeContainersByLabel(LABEL.cluster, cluster).catch(() => undefined);
      await master?.stop().catch(() => undefined);
      await masterClient.close();
      await cleanupCluster(redis, cluster);
      redis.disconnect();
      await Promise.allSettled(dirs.map((dir) => dir.cleanup()));
    },
  };
  if (options.master !== false) master = await startMaster({ redisUrl: REDIS_URL, config, concurrency: 8 });
  return fixture;
}
