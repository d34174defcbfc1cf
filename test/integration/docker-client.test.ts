/**
 * lib/docker.ts: a client of the local engine works without loading dockerode's
 * SSH transport (ssh2) or its BuildKit session support (@grpc/grpc-js,
 * protobufjs), and an `ssh://` engine still loads the real transport when it is
 * first used. Each case runs in a fresh Node process, so the module cache starts
 * empty as in an agent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runModuleScript } from '../helpers/flint-process.ts';

const DEFERRED = ['ssh2', '@grpc/grpc-js', 'protobufjs'];

/** inFreshProcess runs an ES module body (with `Docker` imported from lib/docker.ts) and returns what it printed as JSON. */
function inFreshProcess(body: string): { loaded: string[]; [key: string]: unknown } {
  const script = `
    import { createRequire } from 'node:module';
    import { Docker } from './lib/docker.ts';
    const require = createRequire(import.meta.url);
    const loaded = () => ${JSON.stringify(DEFERRED)}.filter((name) => Object.keys(require.cache).some((path) => path.includes('/node_modules/' + name + '/')));
    const result = {};
    ${body}
    process.stdout.write(JSON.stringify({ ...result, loaded: loaded() }));
  `;
  const run = runModuleScript(script);
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as { loaded: string[] };
}

test('a client of the local engine answers without ssh2 or the gRPC session modules loaded', () => {
  const result = inFreshProcess(`
    const docker = new Docker({ socketPath: '/var/run/docker.sock' });
    result.ping = String(await docker.ping());
    result.containers = Array.isArray(await docker.listContainers({ all: true, filters: { label: ['flint.test=docker-client-none'] } }));
  `);
  assert.equal(result.ping, 'OK');
  assert.equal(result.containers, true);
  assert.deepEqual(result.loaded, []);
});

test('an ssh:// engine loads the real SSH transport on first use', () => {
  const result = inFreshProcess(`
    result.before = loaded();
    // nothing listens on port 1: the SSH client fails to connect, after loading ssh2
    const docker = new Docker({ protocol: 'ssh', host: '127.0.0.1', port: 1, username: 'nobody', timeout: 5000 });
    result.error = await docker.ping().then(() => 'none', (error) => String(error.code ?? error.message));
  `);
  assert.deepEqual(result.before, []);
  assert.equal(result.error, 'ECONNREFUSED');
  assert.ok(result.loaded.includes('ssh2'), `ssh2 is loaded once used: ${JSON.stringify(result)}`);
});
