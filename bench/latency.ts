/**
 * Submit → executor RUNNING latency with real containers: a master host and a
 * real worker agent (Docker runtime) in this process; each sample registers an
 * application wanting one executor (image flint-test-busybox, `sleep`) and waits
 * for the app's ExecutorUpdated RUNNING event; then the app is unregistered and
 * its container removed before the next sample. Alternating with it, bare
 * dockerode create + start of the same image, one at a time.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { connectRedis } from '../lib/redis.ts';
import { clusterKeys } from '../protocol/keys.ts';
import { MasterClient } from '../client/master-client.ts';
import { startMaster } from '../functions/host.ts';
import { DockerRuntime } from '../workers/runtime/docker.ts';
import { runtimeStateDir } from '../workers/runtime/task-identity.ts';
import { LABEL } from '../workers/runtime/task-identity.ts';
import { startAgent } from '../workers/agent/agent.ts';
import { decodeAppEvent, type RawStreamEntry } from '../protocol/streams.ts';
import { REDIS_URL, benchCluster, benchConfig, deleteClusterKeys, percentile, round, waitUntil, benchAppDescription } from './common.ts';

export const BENCH_IMAGE = process.env.FLINT_TEST_IMAGE || 'flint-test-busybox:latest';

export interface LatencyResult {
  samples: number;
  flintP50Ms: number;
  flintP99Ms: number;
  bareP50Ms: number;
  bareP99Ms: number;
  flintMs: number[];
  bareMs: number[];
}

/** bareDockerLatency: create + start of one container at a time, removed after each sample. */
export async function bareDockerLatency(samples: number, docker: Docker): Promise<number[]> {
  const label = `bench-bare-${randomUUID()}`;
  const out: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const started = performance.now();
      const container = await docker.createContainer({
        Image: BENCH_IMAGE,
        Cmd: ['sleep', '30'],
        Labels: { 'flint.bench': label },
        // the same network mode Flint's executors use by default (spark.flint.worker.network=host)
        HostConfig: { NetworkMode: 'host', AutoRemove: false },
      });
      await container.start();
      out.push(performance.now() - started);
      await container.remove({ force: true });
    }
    return out;
  } finally {
    const left = await docker.listContainers({ all: true, filters: { label: [`flint.bench=${label}`] } });
    await Promise.allSettled(left.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  }
}

export async function runLatencyBench(samples: number): Promise<LatencyResult> {
  const cluster = benchCluster('latency');
  const config = benchConfig(cluster, { 'spark.flint.worker.relistInterval': '1s', 'spark.flint.worker.stopGracePeriod': '1s' });
  const keys = clusterKeys(cluster);
  const redis = await connectRedis(REDIS_URL, { name: 'bench-latency' });
  const reader = await connectRedis(REDIS_URL, { name: 'bench-latency-events', blocking: true });
  const docker = new Docker({ socketPath: '/var/run/docker.sock' });
  const workDir = await mkdtemp(join(tmpdir(), 'flint-bench-latency-'));
  const master = await startMaster({ redisUrl: REDIS_URL, config, concurrency: 8 });
  const client = new MasterClient(REDIS_URL, cluster, 'bench-latency');
  const agent = await startAgent({
    redisUrl: REDIS_URL,
    config,
    cores: 2,
    memoryMB: 2048,
    port: 0,
    workDir,
    runtime: (worker) => new DockerRuntime({ stateDir: runtimeStateDir(worker, 'docker'), cluster: worker.cluster, workerId: worker.workerId, relistIntervalMs: 1000 }),
    onFatal: (message) => process.stderr.write(`bench agent fatal: ${message}\n`),
  });
  try {
    await waitUntil(() => agent.epoch() !== undefined, 30_000, 'the agent to register');
    const flint: number[] = [];
    const bare: number[] = [];
    // Flint and bare samples alternate, so both see the same machine load
    for (let i = 0; i < samples; i++) {
      bare.push(...(await bareDockerLatency(1, docker)));
      const started = performance.now();
      const { appId } = await client.ask<{ appId: string }>('RegisterApplication', {
        clientId: `bench-latency-${i}`,
        appDescription: benchAppDescription(`latency-${i}`, 1, ['sleep', '30']),
      }, 30_000);
      let cursor = '0';
      let running = false;
      const deadline = Date.now() + 30_000;
      while (!running) {
        if (Date.now() > deadline) throw new Error(`no RUNNING for ${appId} within 30 s`);
        const batches = (await reader.xread('BLOCK', 1000, 'STREAMS', keys.appEvents(appId), cursor)) as [string, RawStreamEntry[]][] | null;
        for (const entry of batches?.[0]?.[1] ?? []) {
          cursor = entry[0];
          const event = decodeAppEvent(entry);
          if (event.type === 'ExecutorUpdated' && event.parsed.ok && (event.parsed.value.body as { state: string }).state === 'RUNNING') running = true;
        }
      }
      flint.push(performance.now() - started);
      await client.ask('UnregisterApplication', { appId }, 30_000);
      await waitUntil(async () => (await docker.listContainers({ all: true, filters: { label: [`${LABEL.app}=${appId}`] } })).length === 0, 30_000, `the executor container of ${appId} to be removed`, 50);
    }
    return {
      samples,
      flintP50Ms: round(percentile(flint, 50)),
      flintP99Ms: round(percentile(flint, 99)),
      bareP50Ms: round(percentile(bare, 50)),
      bareP99Ms: round(percentile(bare, 99)),
      flintMs: flint.map((v) => round(v)),
      bareMs: bare.map((v) => round(v)),
    };
  } finally {
    await agent.stop({ abrupt: true }).catch(() => undefined);
    const left = await docker.listContainers({ all: true, filters: { label: [`${LABEL.cluster}=${cluster}`] } });
    await Promise.allSettled(left.map((c) => docker.getContainer(c.Id).remove({ force: true })));
    await client.close();
    await master.stop();
    await deleteClusterKeys(redis, cluster);
    redis.disconnect();
    reader.disconnect();
    await rm(workDir, { recursive: true, force: true });
  }
}
