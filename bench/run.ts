/**
 * `npm run bench`: Flint's benchmark suite (not part of the tests). Runs every
 * benchmark once, each on a fresh cluster that it deletes afterwards, with the
 * ceilings measured in the same run, and writes docs/bench-results.json and
 * docs/benchmarks.md. Sized to finish in a few minutes on a 2-core machine (the
 * Redis memory benchmark, 100,000 launches on a Redis of its own, takes about four).
 *
 * Environment: FLINT_BENCH_REDIS_URL (default redis://127.0.0.1:6379),
 * FLINT_TEST_IMAGE (default flint-test-busybox:latest), FLINT_BENCH_QUICK=1 for
 * a smaller run (fewer placements and samples) when trying changes.
 */
import { runUiJsonBench } from './ui-json.ts';
import { runMemoryBench } from './memory.ts';
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { connectRedis } from '../lib/redis.ts';
import { rawBullMq, rawLuaCommit } from './ceilings.ts';
import { runHeartbeatBench } from './heartbeats.ts';
import { runExecutorHeartbeatBench } from './executor-heartbeats.ts';
import { runLatencyBench, type LatencyResult } from './latency.ts';
import { profilePass, runPlacementBench, type PlacementBenchResult } from './placements.ts';
import { runHandlerCrash, runWorkerLoss } from './recovery.ts';
import { renderMarkdown, type BenchResults } from './report.ts';
import { REDIS_URL, REPO_ROOT, round } from './common.ts';
import { runStartupBench, type StartupBenchResult } from './startup.ts';

process.env.FLINT_LOG_LEVEL ??= 'error';
const quick = process.env.FLINT_BENCH_QUICK === '1';
const APPS = quick ? 50 : 200;
const EXECUTORS_PER_APP = 100;

function step(name: string): void {
  process.stdout.write(`bench: ${name} [${new Date().toISOString()}, load ${loadavg()[0]!.toFixed(1)}]\n`);
}

async function redisVersion(): Promise<string> {
  const redis = await connectRedis(REDIS_URL, { name: 'bench-info' });
  try {
    return /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
  } finally {
    redis.disconnect();
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadAverageStart = loadavg();
  const notes: string[] = [];

  // first, while nothing of the bench's own runs beside it
  step('installed package: flint --help time, idle master and worker RSS');
  let startup: StartupBenchResult | { skipped: string };
  try {
    startup = await runStartupBench({ helpRuns: quick ? 5 : 10, settleS: 25, sampleS: quick ? 5 : 15 });
  } catch (error) {
    startup = { skipped: `not measured: ${(error as Error).message}` };
  }

  step('ceilings: raw BullMQ, raw Lua check-and-deduct');
  const bullmq = await rawBullMq(20_000);
  const lua = [await rawLuaCommit(1000), await rawLuaCommit(10_000)];

  step('placements with 1,000 and 10,000 simulated workers');
  const placements: PlacementBenchResult[] = [];
  placements.push(await runPlacementBench({ workers: 1000, coresPerWorker: 32, apps: APPS, executorsPerApp: EXECUTORS_PER_APP, masterProcesses: 1 }));
  placements.push(await runPlacementBench({ workers: 10_000, coresPerWorker: 4, apps: APPS, executorsPerApp: EXECUTORS_PER_APP, masterProcesses: 1 }));

  step('scheduling pass profile (snapshot / plan / commit)');
  const passProfiles = [
    await profilePass({ workers: 1000, coresPerWorker: 32, apps: APPS, executorsPerApp: EXECUTORS_PER_APP }),
    await profilePass({ workers: 10_000, coresPerWorker: 4, apps: APPS, executorsPerApp: EXECUTORS_PER_APP }),
  ];

  step('heartbeats');
  const heartbeats = await runHeartbeatBench({ workers: 10_000, beats: quick ? 30_000 : 100_000, callers: 64, connections: 8 });

  step('executor heartbeats through one app API process (1,000 executors), and a bare hono endpoint');
  const executorHeartbeats = await runExecutorHeartbeatBench({ executors: 1000, beats: quick ? 20_000 : 60_000, concurrency: 256 });

  step('submit → RUNNING latency with real containers');
  let latency: LatencyResult | { skipped: string };
  try {
    latency = await runLatencyBench(quick ? 8 : 25);
  } catch (error) {
    latency = { skipped: `not measured: ${(error as Error).message}` };
  }

  step('recovery: handler SIGKILL, worker loss');
  const handlerCrash = await runHandlerCrash(3000);
  const workerLoss = await runWorkerLoss();

  step('scale-out: 1, 2 and 4 handler processes');
  const scaleOut: PlacementBenchResult[] = [placements[0]!];
  for (const processes of [2, 4]) {
    scaleOut.push(await runPlacementBench({ workers: 1000, coresPerWorker: 32, apps: APPS, executorsPerApp: EXECUTORS_PER_APP, masterProcesses: processes }));
  }

  step('master UI: /json and the master page with 1,000 workers and 1,000 applications');
  const ui = await runUiJsonBench({ redisUrl: REDIS_URL, workers: 1000, apps: 1000, requests: 20 });

  const memoryLaunches = quick ? 20_000 : 100_000;
  step(`Redis memory: ${memoryLaunches.toLocaleString('en-US')} executor launches and exits on 100 simulated workers (a Redis of its own)`);
  const memory = await runMemoryBench({ workers: 100, coresPerWorker: 8, launches: memoryLaunches, checkpoints: [memoryLaunches / 2, memoryLaunches] });

  // ---- notes computed from this run
  for (const profile of passProfiles) {
    const total = profile.snapshotMs + profile.planMs + profile.commitMs;
    const raw = lua.find((c) => c.workers === profile.workers)!;
    const commitRate = (profile.placements / profile.commitMs) * 1000;
    notes.push(
      `${profile.workers.toLocaleString('en-US')} workers: one pass placing ${profile.placements.toLocaleString('en-US')} executors spends ` +
        `${Math.round((profile.commitMs / total) * 100)} % of its time in the commit script (${profile.commitUsPerPlacement} µs per placement, ` +
        `${Math.round(commitRate).toLocaleString('en-US')} placements/s from one caller), ${Math.round((profile.planMs / total) * 100)} % planning and ` +
        `${Math.round((profile.snapshotMs / total) * 100)} % reading the snapshot. The raw check-and-deduct script reaches ` +
        `${raw.placementsPerSecond.toLocaleString('en-US')} placements/s with 16 callers in the same run.`,
    );
  }
  notes.push(
    'Why the commit script costs several times the raw one: each worker and app a batch touches is read once and written back once ' +
      '(capacity HINCRBYs, the executor set, the compact `schedulable` entry, the app counters), but with spread-out scheduling a batch of 256 ' +
      'placements touches up to 256 workers, so per placement that is still about 6 Redis calls, plus the two stream entries every placement ' +
      'needs (LaunchExecutor to the worker\'s inbox, ExecutorAdded to the app) and the executor record; the raw script does 5 calls and no ' +
      'stream writes. The hot-path JSON is formatted directly (string.format) rather than encoded field by field.',
  );
  notes.push(
    'Heartbeats: record-heartbeat (lib/worker-heartbeat.ts, shared by agent and master) is a standalone script (no shared prelude) doing one HMGET (state and epoch) and one ZADD; the caller caches ' +
      'the key names per cluster. The remaining gap to a raw SET is the script call itself and the epoch check, which is what makes a beat from ' +
      'an older incarnation of a worker harmless. ' +
      `Redis's own accounting (INFO commandstats) in this run: ${heartbeats.redisUsecPerBeat} µs per heartbeat script call against ` +
      `${heartbeats.redisUsecPerSet} µs per SET; the script's two data commands take ${heartbeats.redisUsecPerDataCommand.hmget} µs (HMGET) and ` +
      `${heartbeats.redisUsecPerDataCommand.zadd} µs (ZADD) of it, the rest is the cost of ` +
      `running a script at all, so one Redis core absorbs at most about ${Math.round(1e6 / Math.max(heartbeats.redisUsecPerBeat, 0.01)).toLocaleString('en-US')} beats/s ` +
      'before network and client time.',
  );
  notes.push(
    `Executor heartbeats (Spark's HeartbeatReceiver): each beat is an HTTP POST with the executor's own token and a small metrics payload; ` +
      `the app API checks the token (one HMAC against the app's key, cached), and every beat that arrives in one event-loop turn goes to Redis ` +
      `in one script call (${executorHeartbeats.beatsPerScriptCall} beats per call in this run, ${executorHeartbeats.redisUsecPerBeat} µs of Redis time per beat: ` +
      `ZADD of the last-seen time and HSET of the metrics). Flint reached ${Math.round((executorHeartbeats.flintPerSecond / executorHeartbeats.bareHonoPerSecond) * 100)} % ` +
      'of the bare hono endpoint driven by the same load generator; on 2 shared cores the generator, the server and Redis compete for CPU, so ' +
      'the bare endpoint is the ceiling to read Flint against.',
  );
  notes.push(
    'Scale-out: scheduling passes are serialized by the `schedule:lease` (one pass at a time, by design: the commit script is the single serialization ' +
      'point), so extra handler processes add message-handling capacity (RegisterApplication, the RUNNING reports) but not placement capacity; on 2 shared ' +
      'cores they also compete with Redis and the simulated fleet for CPU.',
  );
  notes.push(
    'Handler crash: messages that were only queued are taken by the second host as soon as it is up; the jobs the killed host held are redelivered ' +
      'when their BullMQ lock lapses (MASTER_JOB_LOCK_MS 3 s, stalled check every MASTER_STALLED_CHECK_MS 1 s in functions/host.ts), which is what the total measures. ' +
      'Every message was handled exactly once in effect (the bench checks every registration landed).',
  );
  notes.push(
    'Simulated workers (bench/fleet.ts) register through the register-worker script, heartbeat with recordHeartbeat and report RUNNING as ' +
      'ExecutorStateChanged jobs on the master queue after reading LaunchExecutor from their inbox stream with the agents\' consumer group; the cluster ' +
      'event stream serves as their doorbell so that one process can stand in for 10,000 agents.',
  );
  notes.push(
    'Redis memory: measured on a redis-server of its own (the embedded one: same version and settings), so used_memory is this cluster\'s alone; ' +
      'the figures are taken the moment the launch count crosses each checkpoint, with the fleet and the master still at work (jobs in flight included). ' +
      'What stays: the last 2,000 handled master-queue jobs, about 10,000 entries in each of the cluster\'s and BullMQ\'s event streams, ' +
      'per running application its live executors, its last 100 finished ones and ~1,000 events, and the 200 retained completed applications with theirs.',
  );
  if (loadavg()[0]! > cpus().length) {
    notes.push(`The machine was busy during the run (load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs, from other work on the same machine): absolute figures are depressed; the ceilings of the same run show by how much.`);
  }

  const results: BenchResults = {
    startedAt: new Date(started).toISOString(),
    durationS: round((Date.now() - started) / 1000, 0),
    machine: { cpus: cpus().length, loadAverageStart, loadAverageEnd: loadavg(), node: process.versions.node, redis: await redisVersion() },
    ceilings: { bullmq, lua },
    placements,
    passProfiles,
    heartbeats,
    executorHeartbeats,
    latency,
    handlerCrash,
    workerLoss,
    scaleOut: scaleOut,
    ui,
    startup,
    memory,
    notes,
  };
  await writeFile(join(REPO_ROOT, 'docs', 'bench-results.json'), JSON.stringify(results, null, 2) + '\n');
  await writeFile(join(REPO_ROOT, 'docs', 'benchmarks.md'), renderMarkdown(results));
  step(`done in ${results.durationS} s: docs/benchmarks.md, docs/bench-results.json`);
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`bench failed: ${(error as Error).stack ?? error}\n`);
    process.exit(1);
  },
);
