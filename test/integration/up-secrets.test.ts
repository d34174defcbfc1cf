/**
 * Issue 11's acceptance 8: a running `flint up` (embedded Redis, process runtime) and
 * every process it started show no secret on their command lines: not the Redis
 * password of any user (read from the run's owner-only password files), no URL with
 * credentials. The password files are readable by their owner only, and the child
 * processes do not carry the passwords in their environment either.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/flint-process.ts';
import { waitFor } from '../helpers/isolation.ts';

/** descendants: every live process below `root`, from /proc. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const queue = [...(children.get(root) ?? [])];
  while (queue.length) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

function readProc(pid: number, file: 'cmdline' | 'environ'): string {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

test('no secret on the command line of a running flint up or any process it started', { timeout: 180_000 }, async () => {
  const up = spawn(process.execPath, ['bin/flint.js', 'up', '--runtime', 'process', '--rest-port', '0', '--ui-port', '0', '--workers', '2'], {
    cwd: REPO_ROOT,
    env: { ...process.env, FLINT_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  up.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  up.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));
  try {
    await waitFor(() => output.includes('flint up: cluster running') || up.exitCode !== null, { timeoutMs: 120_000, message: 'flint up says the cluster is running' });
    assert.match(output, /flint up: cluster running/, output);
    const secretsDir = /passwords in (\/\S+) \(owner only/.exec(output)?.[1];
    assert.ok(secretsDir, `flint up said where the passwords are:\n${output}`);
    assert.equal(statSync(secretsDir).mode & 0o777, 0o700);
    const files = readdirSync(secretsDir).filter((name) => name.endsWith('.password'));
    // the master user, the client user and one user per worker
    assert.equal(files.length, 4, files.join(', '));
    const passwords = files.map((name) => {
      assert.equal(statSync(join(secretsDir, name)).mode & 0o777, 0o600, `${name} is owner-only`);
      return readFileSync(join(secretsDir, name), 'utf8').trim();
    });

    const pids = [up.pid!, ...descendants(up.pid!)];
    const commandLines = pids.map((pid) => ({ pid, cmdline: readProc(pid, 'cmdline') })).filter((p) => p.cmdline);
    const kinds = commandLines.map((p) => (/redis-server/.test(p.cmdline) ? 'redis-server' : (/flint\.js (\w+)/.exec(p.cmdline)?.[1] ?? 'other')));
    for (const kind of ['up', 'master', 'worker', 'redis-server']) assert.ok(kinds.includes(kind), `a ${kind} process is among ${kinds.join(', ')}`);
    assert.equal(kinds.filter((k) => k === 'master').length, 2);
    assert.equal(kinds.filter((k) => k === 'worker').length, 2);
    for (const { pid, cmdline } of commandLines) {
      for (const password of passwords) assert.ok(!cmdline.includes(password), `process ${pid} (${cmdline}) shows a Redis password`);
      assert.doesNotMatch(cmdline, /rediss?:\/\/[^ ]*@/, `process ${pid} shows a Redis URL with credentials`);
      assert.doesNotMatch(cmdline, /requirepass|auth\.secret/i, `process ${pid} shows a secret setting`);
      // nor in the environment the children inherit (and pass on to nothing but themselves)
      const environ = readProc(pid, 'environ');
      for (const password of passwords) assert.ok(!environ.includes(password), `process ${pid} has a Redis password in its environment`);
    }
    // each child was told where its password is, as its own user
    const workerLines = commandLines.filter((p) => /flint\.js worker/.test(p.cmdline)).map((p) => p.cmdline);
    for (const line of workerLines) assert.match(line, /--conf spark\.flint\.redis\.user=flint-\S+-worker-\S+ --conf spark\.flint\.redis\.passwordFile=\S+\.password/);
    assert.notEqual(/redis\.user=(\S+)/.exec(workerLines[0]!)?.[1], /redis\.user=(\S+)/.exec(workerLines[1]!)?.[1], 'each worker has its own user');
  } finally {
    if (up.exitCode === null) up.kill('SIGINT');
    const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('timeout'), 60_000))]);
    if (code === 'timeout') up.kill('SIGKILL');
  }
  assert.match(output, /flint up: stopped; nothing left running/, output);
});
