/**
 * runDemo: Flint's SparkPi-like demo, end to end on a real cluster.
 *
 * The driver is this function (client mode, as `spark-submit --deploy-mode client`
 * runs SparkPi's driver in the submitting process): it registers an application
 * with AppClient, whose executors are containers of `flint-demo:latest` placed by
 * the master and started by the worker agents. Like Spark's executors, they
 * connect back to the driver (here a small HTTP endpoint on 127.0.0.1; executors
 * run with NetworkMode host), ask for tasks, and report results. Each task is a
 * slice of the midpoint rule for pi = ∫₀¹ 4/(1+x²) dx, computed by awk in the
 * container; the driver adds the partial sums once every slice is in (each
 * exactly once, see slice-ledger.ts), then unregisters the app.
 * See demo/README.md for the data path.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AppClient } from '../client/app-client.ts';
import { DEMO_IMAGE, ensureDemoImage } from './image.ts';
import { SliceLedger, midpointErrorBound } from './slice-ledger.ts';

export interface DemoProgress {
  phase: 'image' | 'registering' | 'waiting-for-executors' | 'computing' | 'finishing' | 'done';
  slicesDone: number;
  slices: number;
  executorsRunning: number;
}

export interface DemoOptions {
  redisUrl: string;
  cluster: string;
  /** tasks the work is cut into (default 16) */
  slices?: number;
  /** executors requested (one core each; default min(slices, 4)) */
  executors?: number;
  /** intervals of the midpoint rule (default 2,000,000) */
  intervals?: number;
  onProgress?: (progress: DemoProgress) => void;
  /** give up after this long (default 180 s) */
  timeoutMs?: number;
  /** executor image (default flint-demo:latest, built when missing) */
  image?: string;
}

export interface DemoResult {
  pi: number;
  /** |pi − Math.PI| */
  error: number;
  /** the midpoint rule's error bound for the intervals used */
  errorBound: number;
  elapsedMs: number;
  /** executors that computed at least one slice */
  executors: number;
  /** executors the master launched for the app */
  executorsLaunched: number;
  slices: number;
  intervals: number;
  appId: string;
  slicesByExecutor: Record<string, number>;
}

export class DemoError extends Error {
  override name = 'DemoError';
}

const INTEGER = /^\d{1,12}$/;

function reply(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage, limit = 4096): Promise<string> {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > limit) throw new DemoError('request body too large');
  }
  return body;
}

/** startDriverEndpoint serves the ledger to executors on 127.0.0.1 (never beyond loopback). */
async function startDriverEndpoint(ledger: SliceLedger, onChange: () => void) {
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (req.method === 'GET' && url.pathname === '/task') {
        const executor = url.searchParams.get('executor') ?? '';
        if (!INTEGER.test(executor)) return reply(res, 400, 'executor must be an executor id\n');
        const task = ledger.next(Number(executor));
        onChange();
        if (task.kind === 'slice') return reply(res, 200, `slice ${task.slice.id} ${task.slice.start} ${task.slice.end} ${task.intervals}\n`);
        return reply(res, 200, `${task.kind}\n`);
      }
      if (req.method === 'POST' && url.pathname === '/result') {
        const form = new URLSearchParams(await readBody(req));
        const ints = ['slice', 'executor', 'start', 'end'].map((name) => form.get(name) ?? '');
        const sumText = form.get('sum') ?? '';
        if (!ints.every((v) => INTEGER.test(v)) || !/^[-+0-9.eE]{1,40}$/.test(sumText)) return reply(res, 400, 'malformed result\n');
        const [slice, executor, start, end] = ints.map(Number) as [number, number, number, number];
        const outcome = ledger.record({ slice, executor, start, end, sum: Number(sumText) });
        onChange();
        return reply(res, outcome === 'invalid' ? 400 : 200, `${outcome}\n`);
      }
      reply(res, 404, 'use GET /task?executor=ID or POST /result\n');
    })().catch((error) => reply(res, 400, `${(error as Error).message}\n`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const slices = options.slices ?? 16;
  const intervals = options.intervals ?? 2_000_000;
  const executorCount = options.executors ?? Math.min(slices, 4);
  const timeoutMs = options.timeoutMs ?? 180_000;
  const ledger = new SliceLedger(intervals, slices); // validates slices and intervals
  if (!Number.isInteger(executorCount) || executorCount < 1) throw new DemoError(`executors must be a positive integer, got ${executorCount}`);
  const started = performance.now();
  const running = new Set<number>();
  const launched = new Set<number>();
  let phase: DemoProgress['phase'] = 'image';
  const progress = () => options.onProgress?.({ phase, slicesDone: ledger.done, slices, executorsRunning: running.size });

  progress();
  const image = options.image ?? DEMO_IMAGE;
  if (image === DEMO_IMAGE) await ensureDemoImage();

  let settle!: () => void;
  let fail!: (error: Error) => void;
  const finished = new Promise<void>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  const onChange = () => {
    if (phase === 'waiting-for-executors' && ledger.done + running.size > 0) phase = 'computing';
    progress();
    if (ledger.complete) settle();
  };
  const endpoint = await startDriverEndpoint(ledger, onChange);
  const client = new AppClient({
    redisUrl: options.redisUrl,
    cluster: options.cluster,
    appDescription: {
      name: 'Flint Pi',
      image,
      command: ['/bin/sh', '/demo/pi-executor.sh', endpoint.url, '{{EXECUTOR_ID}}'],
      maxCores: executorCount,
      coresPerExecutor: 1,
      memoryPerExecutorMB: 64,
      user: 'flint-demo',
      labels: { 'flint.demo': 'pi' },
    },
    listener: {
      executorAdded(fullId) {
        launched.add(Number(fullId.split('/').pop()));
        progress();
      },
      executorRemoved(fullId, message, exitStatus) {
        const execId = Number(fullId.split('/').pop());
        running.delete(execId);
        // a lost or failed executor's unfinished slices go to another executor
        if (!ledger.complete) ledger.release(execId);
        progress();
        void message;
        void exitStatus;
      },
      dead(reason) {
        if (!ledger.complete) fail(new DemoError(`the demo application ended before every slice was computed: ${reason}`));
      },
    },
    registrationTimeoutMs: 10_000,
  });
  client.on('event', (event) => {
    if (event.type === 'ExecutorUpdated' && event.body.state === 'RUNNING') {
      running.add(event.body.id);
      onChange();
    }
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    phase = 'registering';
    progress();
    const appId = await client.start();
    if (!appId) throw new DemoError(`the demo application was not registered: ${client.deadReason ?? 'no reason given'}`);
    phase = 'waiting-for-executors';
    progress();
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DemoError(`the demo did not finish within ${timeoutMs} ms: ${ledger.done}/${slices} slices in, ${launched.size} executors launched, ${running.size} running (is a worker agent running for cluster '${options.cluster}'?)`)),
        timeoutMs,
      );
    });
    await Promise.race([finished, timeout]);
    phase = 'finishing';
    progress();
    const pi = ledger.total();
    const elapsedMs = performance.now() - started;
    const slicesByExecutor = ledger.slicesByExecutor();
    phase = 'done';
    progress();
    return {
      pi,
      error: Math.abs(pi - Math.PI),
      errorBound: midpointErrorBound(intervals),
      elapsedMs,
      executors: Object.keys(slicesByExecutor).length,
      executorsLaunched: launched.size,
      slices,
      intervals,
      appId,
      slicesByExecutor,
    };
  } finally {
    clearTimeout(timer);
    // UnregisterApplication: the master kills executors still asking for work
    await client.stop();
    await endpoint.close();
  }
}
