/**
 * infra/setup.sh's Redis step, run for real against throwaway redis-servers (another
 * port, data, secret and pid files through the script's FLINT_* overrides; never the
 * shared 127.0.0.1:6379):
 *   - on a machine without Redis it starts one that requires the generated password
 *     (NOAUTH without it), with the password file owner-only and on no command line;
 *     a second run is a no-op that keeps the password;
 *   - on a machine where Redis already runs without a password (started by an older
 *     setup) it turns the password on in place: a connection opened before keeps
 *     working, a new one without the password gets NOAUTH; after a restart through
 *     the script the password and the users `flint acl --apply` saved are still there;
 *   - a Redis with another password on the port is a clear error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freeLoopbackPort } from '../../lib/embedded-redis.ts';
import { REPO_ROOT } from '../helpers/flint-process.ts';
import { makeTempDir, waitFor, type TempDir } from '../helpers/isolation.ts';

interface Sandbox {
  port: number;
  dir: TempDir;
  env: Record<string, string>;
  secretDir: string;
  passwordFile: string;
  pidFile: string;
}

async function sandbox(name: string): Promise<Sandbox> {
  const dir = await makeTempDir(`setup-${name}`);
  const port = await freeLoopbackPort();
  const secretDir = join(dir.path, 'etc-flint');
  const pidFile = join(dir.path, 'redis.pid');
  return {
    port,
    dir,
    secretDir,
    passwordFile: join(secretDir, 'redis-password'),
    pidFile,
    env: {
      FLINT_SETUP_ONLY: 'redis',
      FLINT_REDIS_PORT: String(port),
      FLINT_REDIS_DATA_DIR: join(dir.path, 'data'),
      FLINT_REDIS_SECRET_DIR: secretDir,
      FLINT_REDIS_PIDFILE: pidFile,
      FLINT_REDIS_LOGFILE: join(dir.path, 'redis.log'),
      FLINT_SETUP_WAIT_SECONDS: '20',
    },
  };
}

function runSetup(box: Sandbox): { code: number | null; output: string } {
  const env: Record<string, string | undefined> = { ...process.env, ...box.env };
  delete env.FLINT_REDIS_URL;
  delete env.FLINT_TEST_REDIS_URL;
  const result = spawnSync('bash', [join(REPO_ROOT, 'infra', 'setup.sh')], { env, encoding: 'utf8', timeout: 60_000 });
  return { code: result.status, output: `${result.stdout}${result.stderr}` };
}

/** anonymousCommand: what a client without a password gets for GET. */
async function anonymousCommand(port: number): Promise<string> {
  const redis = new Redis(port, '127.0.0.1', { protocol: 2, enableReadyCheck: false, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return String(await redis.get('k'));
  } catch (error) {
    return (error as Error).message;
  } finally {
    redis.disconnect();
  }
}

function authenticated(box: Sandbox, user?: string, password = readFileSync(box.passwordFile, 'utf8').trim()): Redis {
  const redis = new Redis(box.port, '127.0.0.1', { username: user, password, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  return redis;
}

/** stopRedis shuts the sandbox's Redis down (it daemonizes) and waits until its process is gone. */
async function stopRedis(box: Sandbox): Promise<void> {
  let pid: number | undefined;
  try {
    pid = Number(readFileSync(box.pidFile, 'utf8').trim());
  } catch {
    return;
  }
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  await waitFor(() => {
    try {
      process.kill(pid!, 0);
      return false;
    } catch {
      return true;
    }
  }, { timeoutMs: 20_000, message: `redis-server ${pid} exits` });
}

test('setup on a machine without Redis starts one that requires the generated password; a second run changes nothing', { timeout: 120_000 }, async () => {
  const box = await sandbox('fresh');
  try {
    const first = runSetup(box);
    assert.equal(first.code, 0, first.output);
    assert.match(first.output, /generated a password for the default user/);
    assert.match(first.output, /started redis-server with infra\/redis.conf on 127\.0\.0\.1:\d+ \(password required/);
    assert.equal(statSync(box.secretDir).mode & 0o777, 0o700);
    assert.equal(statSync(box.passwordFile).mode & 0o777, 0o600);
    const password = readFileSync(box.passwordFile, 'utf8').trim();
    assert.ok(password.length >= 40);
    assert.match(await anonymousCommand(box.port), /NOAUTH/);
    const redis = authenticated(box);
    try {
      assert.equal(await redis.ping(), 'PONG');
      assert.deepEqual(await redis.config('GET', 'maxmemory-policy'), ['maxmemory-policy', 'noeviction']);
      const pid = Number(/^process_id:(\d+)/m.exec(await redis.info('server'))![1]);
      assert.ok(!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(password), 'the password is not on the server\'s command line');
    } finally {
      redis.disconnect();
    }
    const second = runSetup(box);
    assert.equal(second.code, 0, second.output);
    assert.match(second.output, /found a Redis answering at 127\.0\.0\.1:\d+ \(password required/);
    assert.doesNotMatch(second.output, /generated|started/);
    assert.equal(readFileSync(box.passwordFile, 'utf8').trim(), password, 'the password is kept');
  } finally {
    await stopRedis(box);
    await box.dir.cleanup();
  }
});

test('setup on a machine where Redis runs without a password turns the password on in place, and it survives a restart', { timeout: 180_000 }, async () => {
  const box = await sandbox('upgrade');
  let before: Redis | undefined;
  try {
    // what an older setup started: infra/redis.conf, no password, no aclfile
    const dataDir = box.env.FLINT_REDIS_DATA_DIR!;
    spawnSync('mkdir', ['-p', dataDir]);
    const started = spawnSync('redis-server', [join(REPO_ROOT, 'infra', 'redis.conf'), '--port', String(box.port), '--dir', dataDir, '--pidfile', box.pidFile, '--logfile', join(box.dir.path, 'old.log')], { encoding: 'utf8' });
    assert.equal(started.status, 0, started.stderr);
    before = new Redis(box.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    before.on('error', () => undefined);
    await waitFor(async () => (await before!.ping()) === 'PONG', { message: 'the old Redis answers' });
    await before.set('kept', 'yes');

    const upgrade = runSetup(box);
    assert.equal(upgrade.code, 0, upgrade.output);
    assert.match(upgrade.output, /now requires the password \(open connections are unaffected\)/);
    assert.match(await anonymousCommand(box.port), /NOAUTH/);
    assert.equal(await before.get('kept'), 'yes', 'a connection opened before keeps working');

    // role users applied by `flint acl --apply` (run here against the sandbox)
    const acl = spawn(process.execPath, ['bin/flint.js', 'acl', '--cluster', 'setup-test', '--worker', 'w1', '--out', join(box.dir.path, 'acl'), '--apply', '--redis', `redis://127.0.0.1:${box.port}`, '--conf', `spark.flint.redis.passwordFile=${box.passwordFile}`], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let aclOutput = '';
    acl.stdout!.on('data', (chunk: Buffer) => (aclOutput += chunk.toString()));
    acl.stderr!.on('data', (chunk: Buffer) => (aclOutput += chunk.toString()));
    assert.equal(await new Promise((resolve) => acl.once('exit', resolve)), 0, aclOutput);
    assert.match(aclOutput, /applied 4 users to redis:\/\/(\S*@)?127\.0\.0\.1:\d+; the server has no aclfile, so they last until it restarts/);

    // restarted through the script: the aclfile keeps the password; users are saved from now on
    before.disconnect();
    before = undefined;
    const admin = authenticated(box);
    await admin.shutdown().catch(() => undefined);
    admin.disconnect();
    await stopRedis(box);
    const restart = runSetup(box);
    assert.equal(restart.code, 0, restart.output);
    assert.match(restart.output, /started redis-server/);
    assert.match(await anonymousCommand(box.port), /NOAUTH/);
    const again = authenticated(box);
    try {
      assert.equal(await again.get('kept'), 'yes', 'the data survived (AOF)');
      const reapply = spawnSync(process.execPath, ['bin/flint.js', 'acl', '--cluster', 'setup-test', '--worker', 'w1', '--out', join(box.dir.path, 'acl'), '--apply', '--redis', `redis://127.0.0.1:${box.port}`, '--conf', `spark.flint.redis.passwordFile=${box.passwordFile}`], { cwd: REPO_ROOT, encoding: 'utf8' });
      assert.equal(reapply.status, 0, reapply.stderr);
      assert.match(reapply.stdout, /applied 4 users to redis:\/\/(\S*@)?127\.0\.0\.1:\d+\n/, 'saved in the aclfile this time');
      assert.match(readFileSync(join(box.secretDir, 'redis-users.acl'), 'utf8'), /^user flint-setup-test-worker-w1 /m);
    } finally {
      await again.shutdown().catch(() => undefined);
      again.disconnect();
    }
    await stopRedis(box);
    const third = runSetup(box);
    assert.equal(third.code, 0, third.output);
    const workerPassword = readFileSync(join(box.dir.path, 'acl', 'flint-setup-test-worker-w1.password'), 'utf8').trim();
    const worker = authenticated(box, 'flint-setup-test-worker-w1', workerPassword);
    try {
      assert.equal(await worker.ping(), 'PONG', 'the worker user survived the restart');
      await assert.rejects(worker.get('kept'), /NOPERM/);
    } finally {
      worker.disconnect();
    }
  } finally {
    before?.disconnect();
    await stopRedis(box);
    await box.dir.cleanup();
  }
});

test('setup refuses a Redis with another password on its port, with a clear message', { timeout: 60_000 }, async () => {
  const box = await sandbox('foreign');
  try {
    const started = spawnSync('redis-server', ['--port', String(box.port), '--bind', '127.0.0.1', '--daemonize', 'yes', '--pidfile', box.pidFile, '--dir', box.dir.path, '--save', '', '--requirepass', 'someone-elses'], { encoding: 'utf8' });
    assert.equal(started.status, 0, started.stderr);
    await waitFor(async () => /NOAUTH/.test(await anonymousCommand(box.port)), { message: 'the foreign Redis answers' });
    const result = runSetup(box);
    assert.notEqual(result.code, 0);
    assert.match(result.output, /setup: ERROR: a Redis that does not accept the password in \S+ answers on 127\.0\.0\.1:\d+: stop it, or point FLINT_REDIS_URL at it/);
  } finally {
    await stopRedis(box);
    await box.dir.cleanup();
  }
});
