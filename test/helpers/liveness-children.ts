/**
 * Child processes for the liveness tests: an application client or an app API
 * server in a process of its own, so a test can SIGKILL it (a driver that dies) or
 * run two of them (two replicas). Each prints one JSON line when it is ready
 * ({"appId": ...} or {"url": ...}); its logs (pino, FLINT_LOG_LEVEL=info) go to stdout too.
 *
 *   node --import tsx test/helpers/liveness-children.ts app-client   (env: REDIS_URL, CLUSTER, DESC, CLIENT_ID?, HEARTBEAT_URL?)
 *   node --import tsx test/helpers/liveness-children.ts app-api      (env: REDIS_URL, CLUSTER, PUBLIC_URL?, RECEIVER_TICK_MS?)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { pathToFileURL } from 'node:url';

/** LivenessChild: a child process, what it printed, and its ready line. */
export interface LivenessChild {
  child: ChildProcess;
  ready: Record<string, string>;
  stdout(): string;
  stderr(): string;
  exit: Promise<number | null>;
}

const SELF = new URL(import.meta.url).pathname;

/** spawnLivenessChild starts `kind` and waits (bounded) for its ready line. */
export async function spawnLivenessChild(kind: 'app-client' | 'app-api', env: Record<string, string>, timeoutMs = 20_000): Promise<LivenessChild> {
  const child = spawn(process.execPath, ['--import', 'tsx', SELF, kind], {
    env: { ...process.env, FLINT_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (chunk) => (err += chunk));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const ready = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${kind} child not ready within ${timeoutMs} ms; stderr: ${err.slice(-2000)}; stdout: ${out.slice(-2000)}`));
    }, timeoutMs);
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      for (const line of out.split('\n')) {
        if (!line.startsWith('{"ready":')) continue;
        clearTimeout(timer);
        resolve((JSON.parse(line) as { ready: Record<string, string> }).ready);
      }
    });
    void exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${kind} child exited with ${code} before it was ready; stderr: ${err.slice(-2000)}`));
    });
  });
  return { child, ready, stdout: () => out, stderr: () => err, exit };
}

/** stopChild ends a child (SIGTERM, then SIGKILL after 5 s) and waits for it. */
export async function stopChild(child: LivenessChild | undefined): Promise<void> {
  if (!child || child.child.exitCode !== null || child.child.signalCode !== null) return;
  child.child.kill('SIGTERM');
  const timer = setTimeout(() => child.child.kill('SIGKILL'), 5_000);
  await child.exit;
  clearTimeout(timer);
}

async function runAppClient(): Promise<void> {
  const { AppClient } = await import('../../client/app-client.ts');
  const client = new AppClient({
    redisUrl: process.env.REDIS_URL!,
    cluster: process.env.CLUSTER!,
    appDescription: JSON.parse(process.env.DESC!),
    clientId: process.env.CLIENT_ID || undefined,
    heartbeatUrl: process.env.HEARTBEAT_URL || undefined,
    driverId: null,
  });
  const appId = await client.start();
  if (!appId) throw new Error(`registration failed: ${client.deadReason}`);
  console.log(JSON.stringify({ ready: { appId } }));
  const keepAlive = setInterval(() => undefined, 60_000);
  process.once('SIGTERM', () => {
    clearInterval(keepAlive);
    void client.stop();
  });
}

async function runAppApi(): Promise<void> {
  const { startAppHttpServer } = await import('../../functions/http/app-api.ts');
  const server = await startAppHttpServer({
    redisUrl: process.env.REDIS_URL!,
    cluster: process.env.CLUSTER!,
    port: 0,
    pollMs: 200,
    receiverTickMs: Number(process.env.RECEIVER_TICK_MS || 200),
    publicUrl: process.env.PUBLIC_URL || undefined,
  });
  console.log(JSON.stringify({ ready: { url: server.url } }));
  process.once('SIGTERM', () => void server.close());
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const kind = process.argv[2];
  const run = kind === 'app-client' ? runAppClient : kind === 'app-api' ? runAppApi : undefined;
  if (!run) {
    console.error(`unknown child kind '${kind}'`);
    process.exit(2);
  }
  run().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
