/**
 * EmbeddedRedis: the Redis `flint up` starts when no Redis URL is configured. It is
 * a real redis-server (Flint never substitutes its own store) on a free loopback
 * port, with its own data directory, AOF on and noeviction, stopped and removed on
 * exit. A missing binary is a clear error saying how to install it.
 *
 * It requires authentication: its `default` user has a generated password, kept
 * only in this process's memory; the server reads it (as a SHA-256) from an aclfile
 * in the owner-only data directory, never from its command line. The aclfile also
 * persists the role users `flint up` adds (ACL SETUSER, then ACL SAVE).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface EmbeddedRedis {
  /** the server's URL, without credentials (what may be printed or put on a command line) */
  url: string;
  /** the URL with the `default` user's password: every permission; keep it in memory */
  adminUrl: string;
  port: number;
  dataDir: string;
  /** the aclfile the server loads and ACL SAVE writes */
  aclFile: string;
  stop(): Promise<void>;
}

export class RedisNotInstalledError extends Error {
  override name = 'RedisNotInstalledError';
}

/** findRedisServer returns the redis-server path, or undefined. */
export function findRedisServer(searchPath: string = process.env.PATH ?? ''): string | undefined {
  const result = spawnSync('/bin/sh', ['-c', 'command -v redis-server'], { encoding: 'utf8', env: { PATH: searchPath } });
  const path = result.stdout.trim();
  return result.status === 0 && path ? path : undefined;
}

/** freeLoopbackPort asks the kernel for a free port on 127.0.0.1. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** how many free ports startEmbeddedRedis tries before giving up */
const PORT_ATTEMPTS = 5;

type Launch = { kind: 'up'; child: ChildProcess; exited: Promise<void> } | { kind: 'port taken' } | { kind: 'failed'; message: string };

/**
 * launchOn starts redis-server on `port` and waits until it answers as itself. A free
 * port can be taken between the kernel naming it and redis-server binding it (by any
 * listener, or as the local port of an outgoing connection); then the server exits
 * with "Address already in use", or something else answers there: both are 'port taken'.
 */
async function launchOn(binary: string, port: number, dataDir: string, confFile: string, password: string, startTimeoutMs: number): Promise<Launch> {
  // the configuration file (aclfile) first; nothing secret on the command line
  const child: ChildProcess = spawn(
    binary,
    [confFile, '--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'yes', '--dir', dataDir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction', '--save', '', '--daemonize', 'no', '--loglevel', 'warning'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  // redis-server logs to stdout (no logfile): its reason for exiting at start is there
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-65_536)));
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-65_536)));
  // a spawn that fails (e.g. EACCES) emits 'error' and never 'exit': without a listener it would crash the process
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (error) => {
      spawnError = error;
      resolve();
    });
  });
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (spawnError !== undefined) return { kind: 'failed', message: `cannot start ${binary}: ${spawnError.message}` };
    if (child.exitCode !== null || child.signalCode !== null) {
      await exited;
      if (/address already in use/i.test(output)) return { kind: 'port taken' };
      return { kind: 'failed', message: `embedded redis-server exited at start (code ${child.exitCode ?? child.signalCode}): ${output.trim()}` };
    }
    // a command timeout: whatever holds a taken port may accept a connection and never answer
    // RESP2: no HELLO before the AUTH below (RESP3's HELLO would need the credentials up front)
    const probe = new Redis(url, { protocol: 2, enableReadyCheck: false, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000, commandTimeout: 1000 });
    // a refused connection while redis-server starts is expected: connect() rejects, no 'error' event to print
    probe.on('error', () => undefined);
    let answeredBy: number | undefined;
    try {
      await probe.connect();
      // AUTH by hand: ours knows this password; any other server refuses it (or has none), so it is not ours
      const auth = await probe.call('AUTH', password).then(
        () => 'ok' as const,
        (error: Error) => (/WRONGPASS|without any password|no password is set|invalid username-password/i.test(error.message) ? ('foreign' as const) : ('not yet' as const)),
      );
      if (auth === 'foreign') answeredBy = -1;
      else if (auth === 'ok') answeredBy = Number(/^process_id:(\d+)/m.exec(await probe.info('server'))?.[1]);
    } catch {
      // not up yet
    } finally {
      probe.disconnect();
    }
    if (answeredBy !== undefined) {
      if (answeredBy === child.pid) return { kind: 'up', child, exited };
      // another server holds the port; ours cannot bind it and is about to exit
      await kill();
      return { kind: 'port taken' };
    }
    if (Date.now() > deadline) {
      await kill();
      return { kind: 'failed', message: `embedded redis-server did not answer on ${url} within ${startTimeoutMs} ms` };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface EmbeddedRedisOptions {
  /** the PATH searched for redis-server */
  searchPath?: string;
  startTimeoutMs?: number;
  /** where candidate ports come from (default: the kernel's free loopback ports) */
  pickPort?: () => Promise<number>;
}

export async function startEmbeddedRedis(options: EmbeddedRedisOptions = {}): Promise<EmbeddedRedis> {
  const binary = findRedisServer(options.searchPath);
  if (!binary) {
    throw new RedisNotInstalledError(
      'redis-server is not installed: run `bash infra/setup.sh` (or `apt-get install -y redis-server`), or point Flint at a Redis with --redis redis://host:port',
    );
  }
  // mkdtemp makes the directory owner-only (0700): the aclfile and the data stay private
  const dataDir = await mkdtemp(join(tmpdir(), 'flint-redis-'));
  const password = randomBytes(32).toString('base64url');
  const aclFile = join(dataDir, 'users.acl');
  const confFile = join(dataDir, 'redis.conf');
  let launched: Extract<Launch, { kind: 'up' }> | undefined;
  let port = 0;
  const taken: number[] = [];
  try {
    await chmod(dataDir, 0o700);
    await writeFile(aclFile, `user default on #${createHash('sha256').update(password).digest('hex')} ~* &* +@all\n`, { mode: 0o600 });
    await writeFile(confFile, `aclfile ${aclFile}\n`, { mode: 0o600 });
    while (!launched) {
      if (taken.length >= PORT_ATTEMPTS) throw new Error(`embedded redis-server: ${PORT_ATTEMPTS} free loopback ports were taken before it could bind them (${taken.join(', ')})`);
      port = await (options.pickPort ?? freeLoopbackPort)();
      const attempt = await launchOn(binary, port, dataDir, confFile, password, options.startTimeoutMs ?? 10_000);
      if (attempt.kind === 'failed') throw new Error(attempt.message);
      if (attempt.kind === 'port taken') taken.push(port);
      else launched = attempt;
    }
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  const { child, exited } = launched;
  const url = `redis://127.0.0.1:${port}`;
  let stopped = false;
  return {
    url,
    adminUrl: `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}`,
    port,
    dataDir,
    aclFile,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
