/**
 * EmbeddedRedis: the Redis `flint up` starts when no Redis URL is configured. It is
 * a real redis-server (Flint never substitutes its own store) on a free loopback
 * port, with its own data directory, AOF on and noeviction, stopped and removed on
 * exit. A missing binary is a clear error saying how to install it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface EmbeddedRedis {
  url: string;
  port: number;
  dataDir: string;
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

export async function startEmbeddedRedis(options: { searchPath?: string; startTimeoutMs?: number } = {}): Promise<EmbeddedRedis> {
  const binary = findRedisServer(options.searchPath);
  if (!binary) {
    throw new RedisNotInstalledError(
      'redis-server is not installed: run `bash infra/setup.sh` (or `apt-get install -y redis-server`), or point Flint at a Redis with --redis redis://host:port',
    );
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'flint-redis-'));
  const port = await freeLoopbackPort();
  const child: ChildProcess = spawn(
    binary,
    ['--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'yes', '--dir', dataDir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction', '--save', '', '--daemonize', 'no', '--loglevel', 'warning'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
  for (;;) {
    if (child.exitCode !== null) {
      await rm(dataDir, { recursive: true, force: true });
      throw new Error(`embedded redis-server exited at start (code ${child.exitCode}): ${stderr.trim()}`);
    }
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    // a refused connection while redis-server starts is expected: connect() rejects, no 'error' event to print
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      break;
    } catch {
      probe.disconnect();
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        await rm(dataDir, { recursive: true, force: true });
        throw new Error(`embedded redis-server did not answer on ${url} within ${options.startTimeoutMs ?? 10_000} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  let stopped = false;
  return {
    url,
    port,
    dataDir,
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
