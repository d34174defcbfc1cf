/**
 * Renders docs/benchmarks.md from the results of one `npm run bench`: a table of
 * every metric with Flint's figure, the ceiling measured in the same run, the
 * goal, and whether it was met (and by how much), plus where the time goes.
 */
import type { UiBenchResult } from './ui-json.ts';
import type { MemoryBenchResult } from './memory.ts';
import type { BullCeiling, LuaCeiling } from './ceilings.ts';
import type { HeartbeatBenchResult } from './heartbeats.ts';
import type { ExecutorHeartbeatBenchResult } from './executor-heartbeats.ts';
import type { LatencyResult } from './latency.ts';
import type { PassProfile, PlacementBenchResult } from './placements.ts';
import type { HandlerCrashResult, WorkerLossResult } from './recovery.ts';
import type { IdleRss, StartupBenchResult } from './startup.ts';

export interface BenchResults {
  startedAt: string;
  durationS: number;
  machine: { cpus: number; loadAverageStart: number[]; loadAverageEnd: number[]; node: string; redis: string };
  ceilings: { bullmq: BullCeiling; lua: LuaCeiling[] };
  placements: PlacementBenchResult[];
  passProfiles: PassProfile[];
  heartbeats: HeartbeatBenchResult;
  /** absent in results written before the benchmark existed */
  executorHeartbeats?: ExecutorHeartbeatBenchResult;
  latency: LatencyResult | { skipped: string };
  handlerCrash: HandlerCrashResult;
  workerLoss: WorkerLossResult;
  scaleOut: PlacementBenchResult[];
  ui: UiBenchResult;
  startup: StartupBenchResult | { skipped: string };
  memory: MemoryBenchResult;
  notes: string[];
}

export interface Row {
  metric: string;
  flint: string;
  ceiling: string;
  goal: string;
  verdict: string;
}

const n = (value: number) => Math.round(value).toLocaleString('en-US');

/** verdictAtLeast: met, or missed by the missing share of the goal. */
function verdictAtLeast(value: number, goal: number): string {
  if (value >= goal) return `met (${n(value - goal)} above)`;
  return `missed by ${n(goal - value)} (${Math.round((1 - value / goal) * 100)} % short)`;
}

function verdictAtMost(value: number, limit: number, unit: string): string {
  if (value <= limit) return `met (${n(limit - value)} ${unit} to spare)`;
  return `missed by ${n(value - limit)} ${unit}`;
}

export function buildRows(r: BenchResults): Row[] {
  const rows: Row[] = [];
  const luaFor = (workers: number) => r.ceilings.lua.find((c) => c.workers === workers);
  for (const p of r.placements) {
    const lua = luaFor(p.workers);
    rows.push({
      metric: `executor placements committed per second, ${n(p.workers)} simulated workers, ${p.apps} apps, ${n(p.placements)} placements, 1 handler process`,
      flint: `${n(p.placementsPerSecond)} /s`,
      ceiling: `raw Lua check-and-deduct ${lua ? n(lua.placementsPerSecond) : '?'} /s; raw BullMQ process ${n(r.ceilings.bullmq.processPerSecond)} jobs/s`,
      goal: p.workers === 1000 ? '≥ 10,000 /s and ≥ half the raw BullMQ rate' : '≥ half the raw BullMQ rate',
      verdict:
        p.workers === 1000
          ? `10,000/s: ${verdictAtLeast(p.placementsPerSecond, 10_000)}; half BullMQ (${n(r.ceilings.bullmq.processPerSecond / 2)}): ${verdictAtLeast(p.placementsPerSecond, r.ceilings.bullmq.processPerSecond / 2)}`
          : `half BullMQ (${n(r.ceilings.bullmq.processPerSecond / 2)}): ${verdictAtLeast(p.placementsPerSecond, r.ceilings.bullmq.processPerSecond / 2)}`,
    });
  }
  const h = r.heartbeats;
  rows.push({
    metric: `heartbeats absorbed per second (${n(h.workers)} workers, ${h.callers} concurrent callers on ${h.connections} connections)`,
    flint: `${n(h.heartbeatsPerSecond)} /s`,
    ceiling: `raw SET ${n(h.rawSetPerSecond)} /s (same harness)`,
    goal: '≥ 50,000 /s',
    verdict: verdictAtLeast(h.heartbeatsPerSecond, 50_000),
  });
  const e = r.executorHeartbeats;
  if (e) {
    rows.push({
      metric: `executor heartbeats absorbed per second by one app API process (${n(e.executors)} executors, HTTP with tokens and metrics, ${e.concurrency} in flight)`,
      flint: `${n(e.flintPerSecond)} /s`,
      ceiling: `bare hono endpoint ${n(e.bareHonoPerSecond)} /s (same load generator)`,
      goal: '≥ 20,000 /s',
      verdict: `${verdictAtLeast(e.flintPerSecond, 20_000)}; ${Math.round((e.flintPerSecond / e.bareHonoPerSecond) * 100)} % of bare hono`,
    });
  }
  if ('skipped' in r.latency) {
    rows.push({ metric: 'submit → executor RUNNING latency', flint: 'not measured', ceiling: '-', goal: 'p50 ≤ bare + 30 ms; p99 < 1 s', verdict: r.latency.skipped });
  } else {
    const l = r.latency;
    rows.push({
      metric: `submit → executor RUNNING, p50 (${l.samples} samples, real containers)`,
      flint: `${l.flintP50Ms} ms`,
      ceiling: `bare dockerode create + start p50 ${l.bareP50Ms} ms`,
      goal: 'within 30 ms of bare',
      verdict: verdictAtMost(l.flintP50Ms - l.bareP50Ms, 30, 'ms').replace(/^met/, `met (+${Math.round(l.flintP50Ms - l.bareP50Ms)} ms)`).replace(/ \(\d[\d,]* ms to spare\)/, ''),
    });
    rows.push({
      metric: 'submit → executor RUNNING, p99',
      flint: `${l.flintP99Ms} ms`,
      ceiling: `bare p99 ${l.bareP99Ms} ms`,
      goal: '< 1,000 ms',
      verdict: verdictAtMost(l.flintP99Ms, 1000, 'ms'),
    });
  }
  const c = r.handlerCrash;
  rows.push({
    metric: `handler process SIGKILLed with ${n(c.messages)} messages queued (${c.activeAtKill} in flight) → all handled by a second host`,
    flint: `${n(c.allHandledMs)} ms (queued ones: ${n(c.queuedHandledMs)} ms; second host up after ${n(c.secondHostReadyMs)} ms)`,
    ceiling: `BullMQ lock duration ${n(c.lockDurationMs)} ms + stalled check every ${n(c.stalledCheckMs)} ms (in-flight jobs of a dead host come back after them)`,
    goal: 'nothing lost; work resumed < 5,000 ms',
    verdict: verdictAtMost(c.allHandledMs, 5000, 'ms'),
  });
  const w = r.workerLoss;
  rows.push({
    metric: `worker lost (spark.worker.timeout ${w.workerTimeoutMs / 1000} s) → replacement executor RUNNING`,
    flint: `${n(w.replacementRunningMs)} ms (declared DEAD after ${n(w.detectedMs)} ms)`,
    ceiling: `timeout + 1 s = ${n(w.budgetMs)} ms`,
    goal: '≤ timeout + 1 s',
    verdict: verdictAtMost(w.replacementRunningMs, w.budgetMs, 'ms'),
  });
  for (const s of r.scaleOut) {
    rows.push({
      metric: `placements per second with ${s.masterProcesses} handler process${s.masterProcesses > 1 ? 'es' : ''} (${n(s.workers)} workers)`,
      flint: `${n(s.placementsPerSecond)} /s`,
      ceiling: `1 process: ${n(r.scaleOut[0]!.placementsPerSecond)} /s`,
      goal: '≥ 10,000 /s',
      verdict: verdictAtLeast(s.placementsPerSecond, 10_000),
    });
  }
  const u = r.ui;
  const cluster = `${n(u.cluster.workers)} workers, ${n(u.cluster.applications)} applications`;
  rows.push({
    metric: `master UI \`/json\`, ${cluster}, p99 over ${u.requests} requests (p50 ${u.jsonMs.p50} ms)`,
    flint: `${u.jsonMs.p99} ms (${n(u.jsonBytes)} bytes)`,
    ceiling: '—',
    goal: '< 200 ms',
    verdict: verdictAtMost(u.jsonMs.p99, 200, 'ms'),
  });
  rows.push({
    metric: `master UI page, ${cluster}, p99 over ${u.requests} requests (p50 ${u.masterPageMs.p50} ms)`,
    flint: `${u.masterPageMs.p99} ms (${n(u.masterPageBytes)} bytes)`,
    ceiling: '—',
    goal: '< 500 ms',
    verdict: verdictAtMost(u.masterPageMs.p99, 500, 'ms'),
  });
  rows.push(...startupRows(r.startup));
  const m = r.memory;
  const first = m.checkpoints[0];
  const last = m.checkpoints.at(-1);
  if (first && last) {
    const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;
    const growth = last.usedMemoryBytes - first.usedMemoryBytes;
    rows.push({
      metric: `Redis used_memory after ${n(last.launches)} executor launches and exits, ${m.workers} simulated workers, ${n(m.applications.long + m.applications.short)} applications`,
      flint: `${mb(last.usedMemoryBytes)} (after ${n(first.launches)}: ${mb(first.usedMemoryBytes)})`,
      ceiling: `empty Redis ${mb(m.baseline.emptyBytes)}; with the ${m.workers} workers registered ${mb(m.baseline.registeredWorkersBytes)}`,
      goal: '< 50 MB',
      verdict: verdictAtMost(last.usedMemoryBytes / 1048576, 50, 'MB'),
    });
    rows.push({
      metric: `Redis used_memory growth from ${n(first.launches)} to ${n(last.launches)} launches`,
      flint: `${growth >= 0 ? '+' : ''}${mb(growth)} (${((growth / first.usedMemoryBytes) * 100).toFixed(1)} %)`,
      ceiling: '—',
      goal: 'flat: within 10 %',
      verdict: Math.abs(growth) <= first.usedMemoryBytes * 0.1 ? 'met' : `missed (${((growth / first.usedMemoryBytes) * 100).toFixed(1)} %)`,
    });
  }
  return rows;
}

const seconds = (value: number) => `${value.toFixed(3)} s`;

/** startupRows: the installed package's `flint --help` time and the idle RSS of a master and a worker. */
function startupRows(startup: BenchResults['startup']): Row[] {
  if ('skipped' in startup) {
    return [{ metric: '`flint --help` (installed package) and idle RSS of a master and a worker', flint: 'not measured', ceiling: '-', goal: '≤ 0.15 s; ≤ 80 MB', verdict: startup.skipped }];
  }
  const { help, idle } = startup;
  const wall = help.installed.wall;
  const rss = (what: string, measured: IdleRss): Row => ({
    metric: `idle RSS of ${what} (installed package; VmRSS sampled every 0.5 s for ${idle.sampleS} s, ${idle.settleS} s after the worker registered; largest sample)`,
    flint: `${measured.settledMaxMb} MB (median ${measured.settledMedianMb} MB; ${measured.atReadyMb} MB when it said it was ready; peak ${measured.peakMb} MB)`,
    ceiling: `idle bare Node process ${idle.bareNode.settledMaxMb} MB`,
    goal: '≤ 80 MB',
    verdict: verdictAtMost(measured.settledMaxMb, 80, 'MB'),
  });
  return [
    {
      metric: `\`flint --help\`, installed package (compiled), whole process, wall time, median of ${wall.runs} runs after a warm-up (min – max ${seconds(wall.min)} – ${seconds(wall.max)})`,
      flint: `${seconds(wall.median)} (CPU ${seconds(help.installed.cpu.median)})`,
      ceiling: `bare \`node -e ''\` ${seconds(help.bareNode.wall.median)} (CPU ${seconds(help.bareNode.cpu.median)}); a checkout's \`node bin/flint.js --help\` (TypeScript through tsx) ${seconds(help.checkoutSources.wall.median)}`,
      goal: '≤ 0.15 s',
      verdict: wall.median <= 0.15 ? `met (${Math.round((0.15 - wall.median) * 1000)} ms to spare)` : `missed by ${Math.round((wall.median - 0.15) * 1000)} ms`,
    },
    rss('a master (`flint master` with its default services, REST server and web UI; one worker registered)', idle.master),
    rss('a master with the REST server and web UI turned off (message handlers only)', idle.masterHandlersOnly),
    rss(`a worker agent (\`flint worker\`, ${idle.workerRuntime} runtime, no tasks)`, idle.worker),
  ];
}

/** startupSection: where an installed process's start-up memory goes, package by package. */
function startupSection(startup: BenchResults['startup']): string[] {
  if ('skipped' in startup) return [];
  const lines: string[] = [];
  lines.push('## Start-up and idle memory');
  lines.push('');
  lines.push(`Measured on the package as a user installs it: this checkout packed (\`npm pack\`) and installed into an empty prefix with \`npm install --global --omit=dev\` ` +
    `(infra/pack-install.sh, ${startup.install.packAndInstallS} s, ${startup.install.installedMb} MB installed with its dependencies). ` +
    'RSS a fresh Node process gains by importing one package of that tree and nothing else (young generation held at 1 MB as in an idle master or worker, ' +
    'after a collection), against a bare process:');
  lines.push('');
  lines.push('| package | RSS (MB) |');
  lines.push('|---|---|');
  for (const p of startup.packageRssMb) lines.push(`| ${p.name} | ${p.name === 'bare node' ? '' : '+'}${p.mb} |`);
  lines.push('');
  lines.push('The figures overlap (BullMQ includes ioredis; every package pays for the Node modules it loads, such as TLS and HTTP), so they do not add up. ' +
    'What a master and a worker do to give start-up memory back, and what is left: [packaging.md](packaging.md#start-up-time-and-idle-memory).');
  lines.push('');
  return lines;
}

const escapeCell = (text: string) => text.replace(/\|/g, '\\|');

export function renderMarkdown(r: BenchResults): string {
  const rows = buildRows(r);
  const lines: string[] = [];
  lines.push('# Benchmarks');
  lines.push('');
  lines.push('Generated by `npm run bench` (bench/run.ts); the raw figures are in `docs/bench-results.json`. Every figure');
  lines.push('comes from this one run, ceilings included, on the machine described below, each benchmark on a fresh');
  lines.push('cluster name that it deletes afterwards.');
  lines.push('');
  lines.push(`Run: ${r.startedAt}, ${r.durationS} s, ${r.machine.cpus} CPUs, Node ${r.machine.node}, Redis ${r.machine.redis}. ` +
    `Load average at start ${r.machine.loadAverageStart.map((v) => v.toFixed(1)).join(' / ')}, at the end ${r.machine.loadAverageEnd.map((v) => v.toFixed(1)).join(' / ')} ` +
    '(1 / 5 / 15 min): the machine is shared, so every figure, Flint\'s and the ceilings alike, is lower than on an idle machine; compare Flint with the ceiling of the same run.');
  lines.push('');
  lines.push('| metric | Flint | ceiling (same run) | goal | met? |');
  lines.push('|---|---|---|---|---|');
  for (const row of rows) lines.push(`| ${[row.metric, row.flint, row.ceiling, row.goal, row.verdict].map(escapeCell).join(' | ')} |`);
  lines.push('');
  lines.push('## Where the time goes');
  lines.push('');
  lines.push('One scheduling pass, run step by step with timers on the same kind of state (all apps waiting, nothing placed yet):');
  lines.push('');
  lines.push('| workers | apps | placements | snapshot (ms) | plan (ms) | commit (ms) | commit per placement (µs) |');
  lines.push('|---|---|---|---|---|---|---|');
  for (const p of r.passProfiles) lines.push(`| ${n(p.workers)} | ${p.apps} | ${n(p.placements)} | ${p.snapshotMs} | ${p.planMs} | ${p.commitMs} | ${p.commitUsPerPlacement} |`);
  lines.push('');
  lines.push('Placement runs in detail:');
  lines.push('');
  lines.push('| workers | processes | placements | placement time (ms) | all RUNNING and handled (ms) | passes | pass p50 (ms) | longest pass (ms) | rejected at commit |');
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const p of [...r.placements, ...r.scaleOut]) {
    lines.push(`| ${n(p.workers)} | ${p.masterProcesses} | ${n(p.placements)} | ${n(p.placementMs)} | ${n(p.allRunningMs)} | ${p.passes} | ${p.passMsP50} | ${p.passMsMax} | ${p.rejectedPlacements} |`);
  }
  lines.push('');
  const m = r.memory;
  if (m.checkpoints.length > 0) {
    lines.push('## Redis memory under launch churn');
    lines.push('');
    lines.push(
      `${n(m.launches)} executor launches and exits on ${m.workers} simulated workers of ${m.coresPerWorker} cores (${n(m.launchesPerSecond)} launches/s; ` +
        `${m.applications.long} applications for the whole run, ${n(m.applications.short)} short ones of 50 launches each, ${m.applications.completed} completed ones retained at the end). ` +
        'Redis memory by key family at each checkpoint (MEMORY USAGE summed over every key):',
    );
    lines.push('');
    const families = [...new Set(m.checkpoints.flatMap((c) => c.families.slice(0, 10).map((f) => f.family)))];
    lines.push(`| key family | ${m.checkpoints.map((c) => `after ${n(c.launches)}: keys`).join(' | ')} | ${m.checkpoints.map((c) => `after ${n(c.launches)}: MB`).join(' | ')} |`);
    lines.push(`|---|${m.checkpoints.map(() => '---|').join('')}${m.checkpoints.map(() => '---|').join('')}`);
    for (const name of families) {
      const of = (c: (typeof m.checkpoints)[number]) => c.families.find((f) => f.family === name);
      lines.push(`| \`${name}\` | ${m.checkpoints.map((c) => n(of(c)?.keys ?? 0)).join(' | ')} | ${m.checkpoints.map((c) => ((of(c)?.bytes ?? 0) / 1048576).toFixed(2)).join(' | ')} |`);
    }
    lines.push(`| all keys (used_memory) | ${m.checkpoints.map((c) => n(c.keys)).join(' | ')} | ${m.checkpoints.map((c) => (c.usedMemoryBytes / 1048576).toFixed(2)).join(' | ')} |`);
    lines.push('');
  }
  for (const note of r.notes) {
    lines.push(`- ${note}`);
  }
  lines.push('');
  lines.push(...startupSection(r.startup));
  return lines.join('\n');
}
