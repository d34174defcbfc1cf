/**
 * runPiDemo: Flint's SparkPi-like demo in cluster mode, as `spark-submit
 * --deploy-mode cluster` runs SparkPi: the driver is submitted through the REST
 * server exactly as `flint submit` would submit it, and runs on a worker — a
 * flint-demo:latest container (or, on the process runtime, a local busybox
 * process). The driver (infra/images/demo/pi-driver.sh) registers its own
 * application through the application HTTP API, hands slices to its executors
 * and prints `progress k/N` and `Pi is roughly <value>`. This side only submits,
 * polls the driver's status and tails its stdout through the worker UI's `/log`.
 * See demo/README.md for the data path.
 */
import { buildSubmitRequest } from '../cli/submit.ts';
import { RestSubmissionClient, isErrorResponse } from '../client/rest-client.ts';
import { DOCKER_RESOURCE_SCHEME, type CreateSubmissionRequest } from '../protocol/rest.ts';
import { DEMO_IMAGE, ensureDemoImage, findBusybox, stageDemoScripts } from './image.ts';
import { LineBuffer, midpointErrorBound, parseDriverLine, parseLogResponse, tailLines, type DriverLine } from './driver-output.ts';

export class DemoError extends Error {
  override name = 'DemoError';
}

/** DEMO_APP_NAME: spark.app.name of the driver (and the name of the application it registers). */
export const DEMO_APP_NAME = 'Flint Pi';

/** IMAGE_DEMO_DIR / IMAGE_BUSYBOX: where the scripts and busybox live inside flint-demo:latest. */
const IMAGE_DEMO_DIR = '/demo';
const IMAGE_BUSYBOX = '/bin/busybox';

/** FINAL_DRIVER_STATES: a driver in one of these states will not run again. */
const FINAL_DRIVER_STATES = new Set(['FINISHED', 'FAILED', 'ERROR', 'KILLED']);

export interface PiDemoSize {
  /** tasks the work is cut into (default 16) */
  slices?: number;
  /** executors the driver asks for, one core each (default min(slices, 4)) */
  executors?: number;
  /** intervals of the midpoint rule (default 2,000,000) */
  intervals?: number;
}

export interface PiSubmissionInput extends Required<PiDemoSize> {
  runtime: 'docker' | 'process';
  /** the REST server, as `flint submit --master` takes it */
  restUrl: string;
  /** the application HTTP API as the driver reaches it (host network: loopback is the host's) */
  appApiUrl: string;
  /** bearer token the driver uses on the application API (submit scope) */
  driverToken: string;
  /** process runtime: the host's busybox and the directory holding the demo's scripts */
  hostBusybox?: string;
  hostDemoDir?: string;
  /** seconds before the driver hands out again a slice that produced no result (driver default 20) */
  claimTimeoutSeconds?: number;
  /** the application's spark.executor.heartbeatInterval in ms (driver default 2 s) */
  heartbeatIntervalMs?: number;
  /** seconds the driver gives the job before it fails */
  driverTimeoutSeconds: number;
}

/** checkDemoSize fills in the defaults and refuses sizes the driver would refuse, with the same words. */
export function checkDemoSize(size: PiDemoSize): Required<PiDemoSize> {
  const slices = size.slices ?? 16;
  if (!Number.isInteger(slices) || slices < 1) throw new DemoError(`slices must be a positive integer, got ${slices}`);
  const executors = size.executors ?? Math.min(slices, 4);
  if (!Number.isInteger(executors) || executors < 1) throw new DemoError(`executors must be a positive integer, got ${executors}`);
  const intervals = size.intervals ?? 2_000_000;
  if (!Number.isInteger(intervals) || intervals < slices || intervals > 1e12) throw new DemoError(`intervals must be an integer of at least slices (${slices}), got ${intervals}`);
  return { slices, executors, intervals };
}

/**
 * buildPiSubmission: the CreateSubmissionRequest `flint submit` would send for
 * `flint submit --master <rest> --name "Flint Pi" --driver-memory 128m
 * docker://flint-demo:latest <busybox> sh <dir>/pi-driver.sh SLICES EXECUTORS INTERVALS`,
 * plus the driver's environment: where the application API is and its token, and
 * on the process runtime the host paths of busybox and the scripts.
 */
export function buildPiSubmission(input: PiSubmissionInput): CreateSubmissionRequest {
  const onHost = input.runtime === 'process';
  if (onHost && (!input.hostBusybox || !input.hostDemoDir)) throw new DemoError('the process runtime needs the host paths of busybox and the demo scripts');
  const busybox = onHost ? input.hostBusybox! : IMAGE_BUSYBOX;
  const demoDir = onHost ? input.hostDemoDir! : IMAGE_DEMO_DIR;
  const command = [busybox, 'sh', `${demoDir}/pi-driver.sh`, String(input.slices), String(input.executors), String(input.intervals)];
  const request = buildSubmitRequest(
    `${DOCKER_RESOURCE_SCHEME}${DEMO_IMAGE}`,
    command,
    { deployMode: 'cluster', name: DEMO_APP_NAME, driverCores: '1', driverMemory: '128m', conf: [] },
    input.restUrl,
    {},
  );
  const env: Record<string, string> = {
    FLINT_APP_API: input.appApiUrl,
    FLINT_TOKEN: input.driverToken,
    FLINT_DEMO_IMAGE: DEMO_IMAGE,
    FLINT_DEMO_TIMEOUT: String(input.driverTimeoutSeconds),
  };
  if (input.claimTimeoutSeconds !== undefined) env.FLINT_DEMO_CLAIM_TIMEOUT = String(input.claimTimeoutSeconds);
  if (input.heartbeatIntervalMs !== undefined) env.FLINT_DEMO_HEARTBEAT_INTERVAL = `${input.heartbeatIntervalMs}ms`;
  if (onHost) {
    // the executors run on this host too: point them at the repository's scripts
    env.FLINT_DEMO_DIR = demoDir;
    env.FLINT_DEMO_BUSYBOX = busybox;
  }
  request.environmentVariables = { ...request.environmentVariables, ...env };
  return request;
}

export type PiDemoEvent =
  | { type: 'image'; outcome: 'found' | 'built' }
  | { type: 'submitted'; driverId: string }
  | { type: 'state'; state: string; workerHostPort?: string }
  | { type: 'output'; line: DriverLine };

export interface PiDemoOptions extends PiDemoSize {
  runtime: 'docker' | 'process';
  restUrl: string;
  /** REST token with the admin scope: it submits the driver, kills it on a timeout or an abort, and reads its log from the worker UI (which, with the cluster's secret, shows logs to admin tokens only) */
  token: string;
  appApiUrl: string;
  driverToken: string;
  claimTimeoutSeconds?: number;
  /** the executors' heartbeat interval in ms (default: the driver's, 2 s) */
  heartbeatIntervalMs?: number;
  /** give up (and kill the driver) after this long (default 240 s) */
  timeoutMs?: number;
  /** status and log poll interval (default 250 ms) */
  pollMs?: number;
  /** aborting kills the driver and rejects */
  signal?: AbortSignal;
  onEvent?: (event: PiDemoEvent) => void;
}

export interface PiDemoResult {
  pi: number;
  /** |pi − Math.PI| */
  error: number;
  errorBound: number;
  /** from the submission until the driver was FINISHED */
  elapsedMs: number;
  slices: number;
  intervals: number;
  /** executors that computed at least one slice (the driver's summary) */
  executors: number;
  driverId: string;
  workerHostPort: string;
  /** the driver's stdout, line by line, and the tail of its stderr */
  stdout: string[];
  stderr: string;
}

/** readDriverLog: one chunk of a driver's log from the worker UI; undefined while there is none yet. */
async function readDriverLog(workerHostPort: string, token: string, driverId: string, logType: 'stdout' | 'stderr', offset?: number): Promise<ReturnType<typeof parseLogResponse>> {
  const params = new URLSearchParams({ driverId, logType, byteLength: String(64 * 1024) });
  if (offset !== undefined) params.set('offset', String(offset));
  let response: Response;
  try {
    // the worker UI shows logs to admin tokens only when the cluster has a secret
    response = await fetch(`http://${workerHostPort}/log?${params.toString()}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
  } catch {
    return undefined;
  }
  const body = await response.text();
  return response.ok ? parseLogResponse(body) : undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runPiDemo(options: PiDemoOptions): Promise<PiDemoResult> {
  checkDemoSize(options);
  if (options.runtime === 'docker') return runPiDemoWith(options, undefined);
  // the process runtime's tasks read the scripts from the host, as an unprivileged user
  const scripts = await stageDemoScripts();
  try {
    return await runPiDemoWith(options, scripts.dir);
  } finally {
    await scripts.remove();
  }
}

async function runPiDemoWith(options: PiDemoOptions, hostDemoDir: string | undefined): Promise<PiDemoResult> {
  const size = checkDemoSize(options);
  const timeoutMs = options.timeoutMs ?? 240_000;
  const pollMs = options.pollMs ?? 250;
  const emit = (event: PiDemoEvent) => options.onEvent?.(event);

  let hostBusybox: string | undefined;
  if (options.runtime === 'docker') emit({ type: 'image', outcome: await ensureDemoImage() });
  else hostBusybox = await findBusybox();

  const request = buildPiSubmission({
    ...size,
    runtime: options.runtime,
    restUrl: options.restUrl,
    appApiUrl: options.appApiUrl,
    driverToken: options.driverToken,
    hostBusybox,
    hostDemoDir,
    claimTimeoutSeconds: options.claimTimeoutSeconds,
    heartbeatIntervalMs: options.heartbeatIntervalMs,
    driverTimeoutSeconds: Math.max(1, Math.ceil(timeoutMs / 1000)),
  });
  const rest = new RestSubmissionClient(options.restUrl, { token: options.token });
  const started = performance.now();
  const created = await rest.createSubmission(request);
  if (isErrorResponse(created.body)) throw new DemoError(`the REST server refused the driver (HTTP ${created.status}): ${created.body.message}`);
  if (!created.body.success || !created.body.submissionId) throw new DemoError(`the master did not accept the driver: ${created.body.message ?? 'no reason given'}`);
  const driverId = created.body.submissionId;
  emit({ type: 'submitted', driverId });

  const stdout: string[] = [];
  const lines = new LineBuffer();
  let offset = 0;
  let state = '';
  let workerHostPort = '';
  let message: string | undefined;
  const deadline = Date.now() + timeoutMs;

  const take = (text: string) => {
    for (const raw of lines.push(text)) {
      stdout.push(raw);
      emit({ type: 'output', line: parseDriverLine(raw) });
    }
  };
  /** tail reads what the driver wrote since the last call (several chunks if it wrote a lot). */
  const tail = async () => {
    if (!workerHostPort) return;
    for (;;) {
      const chunk = await readDriverLog(workerHostPort, options.token, driverId, 'stdout', offset);
      if (!chunk || chunk.end <= offset) return;
      take(chunk.text);
      offset = chunk.end;
      if (offset >= chunk.total) return;
    }
  };
  /** stop kills the driver (its application goes with it) and rejects with `why`. */
  const stop = async (why: string): Promise<never> => {
    let outcome: string;
    try {
      const killed = await rest.killSubmission(driverId);
      outcome = isErrorResponse(killed.body) || !killed.body.success ? `the kill was refused: ${killed.body.message ?? ''}` : 'killed';
    } catch (error) {
      outcome = `the kill failed: ${(error as Error).message}`;
    }
    throw new DemoError(`${why}; driver ${driverId}: ${outcome}`);
  };

  while (!FINAL_DRIVER_STATES.has(state)) {
    if (options.signal?.aborted) await stop('interrupted');
    if (Date.now() > deadline) await stop(`the demo did not finish within ${timeoutMs} ms (driver ${state || 'not yet placed'}; is a worker with free cores running?)`);
    const status = await rest.requestSubmissionStatus(driverId).catch(() => undefined);
    let next = state;
    if (status && !isErrorResponse(status.body) && status.body.success) {
      next = status.body.driverState ?? '';
      if (status.body.workerHostPort) workerHostPort = status.body.workerHostPort;
      message = status.body.message;
    }
    // the output first: a driver reported ended has had its logs flushed, and they come before its end
    await tail();
    if (next !== state) {
      state = next;
      emit({ type: 'state', state, workerHostPort: workerHostPort || undefined });
    }
    if (!FINAL_DRIVER_STATES.has(state)) await sleep(pollMs);
  }
  const elapsedMs = performance.now() - started;
  for (const raw of lines.flush()) {
    stdout.push(raw);
    emit({ type: 'output', line: parseDriverLine(raw) });
  }
  const stderrChunk = workerHostPort ? await readDriverLog(workerHostPort, options.token, driverId, 'stderr') : undefined;
  const stderr = stderrChunk?.text ?? '';

  if (state !== 'FINISHED') {
    const shown = tailLines(stderr, 12).join('\n  ');
    throw new DemoError(`driver ${driverId} ended ${state}${message ? `: ${message}` : ''}${shown ? `\ndriver stderr (last lines):\n  ${shown}` : ''}`);
  }
  const parsed = stdout.map(parseDriverLine);
  const result = parsed.find((line) => line.kind === 'result');
  const summary = parsed.find((line) => line.kind === 'summary');
  if (result?.kind !== 'result') throw new DemoError(`driver ${driverId} finished without printing a result (stdout: ${stdout.slice(-5).join(' | ') || 'empty'})`);
  return {
    pi: result.pi,
    error: Math.abs(result.pi - Math.PI),
    errorBound: midpointErrorBound(size.intervals),
    elapsedMs,
    slices: size.slices,
    intervals: size.intervals,
    executors: summary?.kind === 'summary' ? summary.executors : 0,
    driverId,
    workerHostPort,
    stdout,
    stderr,
  };
}
