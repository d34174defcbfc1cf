/**
 * `flint` loads only what the command it runs needs: cli/main.ts registers every
 * command's definition, and each action imports its implementation when it runs.
 * These tests run `node bin/flint.js` with a module-resolution hook that records
 * every file it resolves, and check that `--help` and the REST commands load none
 * of the heavy packages (one static import in a definition would bring them back).
 * A checkout runs its TypeScript sources; .ci/packed-install runs this file against
 * the installed package's compiled dist/ (FLINT_TEST_BIN), so both hold.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FLINT_BIN, runFlintToEnd } from '../helpers/flint-process.ts';

/**
 * NODE_OPTIONS that register a resolve hook appending each resolved file URL to
 * `traceFile`. The hook runs on the loader's own thread and the process exits with
 * process.exit(): a synchronous append is written before the import goes on, where
 * output to stderr from that thread can be lost at exit.
 */
function tracingNodeOptions(traceFile: string): string {
  const hooks = `import { appendFileSync } from 'node:fs';
  export async function resolve(specifier, context, next) {
    const result = await next(specifier, context);
    if (result.url.startsWith('file:')) appendFileSync(${JSON.stringify(traceFile)}, result.url + '\\n');
    return result;
  }`;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
  return `--import=data:text/javascript,${encodeURIComponent(register)}`;
}

/** HEAVY: packages only the processes (master, worker, up) and the REST server need. */
const HEAVY = ['bullmq', 'ioredis', 'hono', '@hono', 'dockerode', 'prom-client', 'pino', 'zod', '@bull-board'];
/** HEAVY_LOADERS: Flint's modules that load BullMQ, dockerode and prom-client with require, which the resolve hook does not see. */
const HEAVY_LOADERS = ['lib/bullmq', 'lib/docker', 'lib/prometheus'];

/** loadedFiles runs flint with the tracing hook; returns its exit code, its stderr, and what it resolved. */
async function loadedFiles(args: string[]): Promise<{ code: number | null; stderr: string; files: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'flint-cli-startup-'));
  try {
    const traceFile = join(dir, 'resolved');
    const run = await runFlintToEnd(args, { NODE_OPTIONS: tracingNodeOptions(traceFile), FLINT_MASTER: '', FLINT_TOKEN: '' });
    const files = readFileSync(traceFile, 'utf8').split('\n').filter(Boolean);
    return { code: run.code, stderr: run.stderr.trim(), files };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** loaded: whether one of Flint's own modules was resolved, given without its extension (`cli/main`). */
function loaded(files: string[], module: string): boolean {
  return files.some((url) => url.endsWith(`/${module}.ts`) || url.endsWith(`/dist/${module}.js`));
}

function heavyPackages(files: string[]): string[] {
  return [...HEAVY.filter((name) => files.some((url) => url.includes(`/node_modules/${name}/`))), ...HEAVY_LOADERS.filter((module) => loaded(files, module))];
}

const SECRET = 'cli-startup-test-secret-0123456789abcdef';
// an address fetch refuses at once ("bad port"), so no connection is attempted
const UNREACHABLE = 'http://127.0.0.1:1';

const CASES: Array<{ args: string[]; code: number; implementation?: string }> = [
  { args: ['--help'], code: 0 },
  { args: ['master', '--help'], code: 0 },
  { args: ['status', 'driver-x', '--master', UNREACHABLE], code: 1, implementation: 'cli/status-kill' },
  { args: ['kill', 'driver-x', '--master', UNREACHABLE], code: 1, implementation: 'cli/status-kill' },
  { args: ['token', '--conf', `spark.flint.auth.secret=${SECRET}`], code: 0, implementation: 'cli/token' },
  { args: ['submit', '--master', UNREACHABLE, 'docker://flint-test-busybox:latest'], code: 1, implementation: 'cli/submit' },
];

for (const { args, code, implementation } of CASES) {
  test(`flint ${args.join(' ')} loads no heavy package`, async () => {
    const run = await loadedFiles(args);
    assert.equal(run.code, code, run.stderr);
    assert.ok(loaded(run.files, 'cli/main'), 'the hook saw the command load');
    if (implementation) assert.ok(loaded(run.files, implementation), `${implementation} is loaded when the command runs`);
    assert.deepEqual(heavyPackages(run.files), []);
  });
}

test('flint --help loads no command implementation', async () => {
  const run = await loadedFiles(['--help']);
  const implementations = ['functions/master-main', 'workers/worker-main', 'cli/up', 'cli/submit', 'cli/status-kill', 'cli/token'];
  assert.ok(loaded(run.files, 'cli/main'), 'the hook saw the command load');
  assert.deepEqual(implementations.filter((module) => loaded(run.files, module)), []);
});

test('flint master loads its implementation and its packages when it runs', async () => {
  // an invalid configuration stops it before it connects anywhere
  const run = await loadedFiles(['master', '--conf', 'spark.deploy.maxExecutorRetries=lots']);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^flint: invalid configuration:/);
  assert.ok(loaded(run.files, 'functions/master-main'));
  assert.ok(heavyPackages(run.files).includes('lib/bullmq'), 'the trace sees heavy packages when they are loaded');
  assert.ok(heavyPackages(run.files).includes('ioredis'), 'the trace sees heavy packages when they are loaded');
});

test('flint runs the TypeScript sources in a checkout and only compiled JavaScript when installed', async () => {
  const run = await loadedFiles(['--help']);
  const packageRoot = pathToFileURL(dirname(dirname(realpathSync(FLINT_BIN)))).href;
  const own = run.files.filter((url) => url.startsWith(`${packageRoot}/`) && !url.startsWith(`${packageRoot}/node_modules/`) && !url.endsWith('/bin/flint.js'));
  assert.ok(own.length >= 5, `the trace saw Flint's own modules: ${own.join(', ')}`);
  if (process.env.FLINT_TEST_BIN) {
    assert.deepEqual(own.filter((url) => !url.startsWith(`${packageRoot}/dist/`) || !url.endsWith('.js')), [], 'an installed package runs dist/ only');
    assert.deepEqual(run.files.filter((url) => url.includes('/node_modules/tsx/')), [], 'and never tsx');
  } else {
    assert.deepEqual(own.filter((url) => !url.endsWith('.ts')), [], 'a checkout runs its sources, never a dist/ that may be older');
  }
});
