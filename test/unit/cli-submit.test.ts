/**
 * The spark-submit-style commands (submit, status, kill, token), run in-process
 * through their register functions with a captured CommandIo: help text,
 * argument errors (one stderr line, exit code 2), and a round trip against a
 * real REST server on 127.0.0.1 whose DriverGateway is a small in-memory one
 * written here. That gateway only exercises the CLI ↔ HTTP protocol; it is not
 * a stand-in for Redis or the master.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Command, CommanderError } from 'commander';
import { registerSubmitCommand } from '../../cli/submit-command.ts';
import { registerKillCommand, registerStatusCommand } from '../../cli/status-kill-command.ts';
import { registerTokenCommand } from '../../cli/token-command.ts';
import type { CommandIo } from '../../cli/command-io.ts';
import { createRestApp, startRestServer } from '../../functions/http/rest/server.ts';
import type { DriverGateway } from '../../functions/http/rest/gateway.ts';
import { signToken, verifyToken } from '../../lib/http/auth.ts';
import type { DriverDescription } from '../../protocol/messages.ts';

const SECRET = 'cli-test-secret-0123456789abcdef0123456789ab';

interface Run {
  code: number | undefined;
  out: string[];
  err: string[];
  help: string;
}

/** run parses argv with a fresh program holding the four commands; commander's own exits become a CommanderError. */
async function run(argv: string[], env: Record<string, string | undefined> = {}): Promise<Run & { commanderError?: CommanderError }> {
  const result: Run = { code: undefined, out: [], err: [], help: '' };
  const io: CommandIo = {
    out: (line) => result.out.push(line),
    err: (line) => result.err.push(line),
    env: { FLINT_MASTER: undefined, ...env },
    setExitCode: (code) => {
      result.code = code;
    },
  };
  const program = new Command('flint').exitOverride();
  program.configureOutput({ writeOut: (s) => (result.help += s), writeErr: (s) => (result.help += s) });
  for (const register of [registerSubmitCommand, registerStatusCommand, registerKillCommand, registerTokenCommand]) {
    register(program, io).exitOverride().configureOutput({ writeOut: (s) => (result.help += s), writeErr: (s) => (result.help += s) });
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return { ...result, commanderError: error };
    throw error;
  }
  return result;
}

/** memoryGateway: records submitted drivers (CLI ↔ HTTP protocol test only). */
function memoryGateway() {
  const drivers = new Map<string, { desc: DriverDescription; state: 'SUBMITTED' | 'KILLED' }>();
  const gateway: DriverGateway = {
    async submitDriver(desc) {
      const driverId = `driver-20260101120000-${String(drivers.size).padStart(4, '0')}`;
      drivers.set(driverId, { desc, state: 'SUBMITTED' });
      return { success: true, driverId, message: `Driver successfully submitted as ${driverId}` };
    },
    async killDriver(driverId) {
      const driver = drivers.get(driverId);
      if (!driver) return { driverId, success: false, message: `Driver ${driverId} has already finished or does not exist` };
      driver.state = 'KILLED';
      return { driverId, success: true, message: `Kill request for ${driverId} submitted` };
    },
    async killAllDrivers() {
      return { success: true, message: 'Kill request for all drivers submitted' };
    },
    async driverStatus(driverId) {
      const driver = drivers.get(driverId);
      return driver ? { found: true, state: driver.state, workerId: 'worker-1', workerHostPort: '127.0.0.1:7078' } : { found: false };
    },
    async clearCompleted() {
      return true;
    },
    async ready() {
      return true;
    },
  };
  return { gateway, drivers };
}

test('flint submit --help explains every flag and the arguments', async () => {
  const result = await run(['submit', '--help']);
  assert.equal(result.commanderError?.code, 'commander.helpDisplayed');
  for (const flag of [
    '--master <url>',
    '--deploy-mode <mode>',
    '--name <name>',
    '--class <mainClass>',
    '--image <image>',
    '--driver-cores <n>',
    '--driver-memory <mem>',
    '--executor-cores <n>',
    '--executor-memory <mem>',
    '--total-executor-cores <n>',
    '--supervise',
    '--conf <key=value>',
    '--token <token>',
    'appResource',
    'appArgs...',
  ]) {
    assert.ok(result.help.includes(flag), `help mentions ${flag}`);
  }
  assert.match(result.help, /docker:\/\/flint-test-busybox:latest/);
  assert.match(result.help, /FLINT_TOKEN/);
});

test('status, kill and token have help too', async () => {
  for (const command of ['status', 'kill', 'token']) {
    const result = await run([command, '--help']);
    assert.equal(result.commanderError?.code, 'commander.helpDisplayed', command);
    assert.match(result.help, /--(master|scope) </, command);
  }
});

test('argument errors: one clear stderr line and exit code 2, nothing sent', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--deploy-mode', 'client'], /^flint submit: --deploy-mode client is not supported: Flint runs every driver on a worker/],
    [['--deploy-mode', 'yarn'], /is not a deploy mode/],
    [['--driver-memory', 'lots'], /--driver-memory expects a memory size/],
    [['--driver-cores', '1.5'], /--driver-cores expects a positive integer, got '1\.5'/],
    [['--total-executor-cores', '0'], /--total-executor-cores expects a positive integer/],
    [['--conf', 'novalue'], /--conf 'novalue' must be key=value/],
    [['--master', 'ftp://host:6066'], /must start with spark:\/\/, http:\/\/ or https:\/\//],
  ];
  for (const [flags, message] of cases) {
    const result = await run(['submit', '--master', 'http://127.0.0.1:1', ...flags, 'docker://flint-test-busybox:latest', 'true']);
    assert.equal(result.code, 2, flags.join(' '));
    assert.equal(result.err.length, 1, flags.join(' '));
    assert.match(result.err[0]!, message);
    assert.deepEqual(result.out, []);
  }
  const noImage = await run(['submit', '--master', 'http://127.0.0.1:1', '/jobs/app.jar']);
  assert.equal(noImage.code, 2);
  assert.match(noImage.err[0]!, /no container image: give the appResource as docker:\/\/<image> or pass --image <image>/);
  const missing = await run(['submit']);
  assert.equal(missing.commanderError?.code, 'commander.missingArgument');
});

/** closedPort: a loopback port that was free a moment ago and has nothing listening now. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('an unreachable master is exit code 1 with one line naming it', async () => {
  const port = await closedPort();
  const result = await run(['submit', '--master', `spark://127.0.0.1:${port}`, 'docker://flint-test-busybox:latest']);
  assert.equal(result.code, 1);
  assert.equal(result.err.length, 1);
  assert.equal(result.err[0], `flint submit: cannot reach the REST server (http://127.0.0.1:${port}: ECONNREFUSED)`);
});

test('submit, status and kill against a real REST server', async () => {
  const { gateway, drivers } = memoryGateway();
  const app = createRestApp({ gateway, auth: { secret: SECRET }, serverSparkVersion: '4.0.0', masterUrl: 'spark://127.0.0.1:7077' });
  const server = await startRestServer(app, { host: '127.0.0.1', port: 0, secret: SECRET });
  const master = server.url.replace('http://', 'spark://');
  const submitToken = signToken(SECRET, { scope: 'submit', ttlSeconds: 600 });
  const killToken = signToken(SECRET, { scope: 'kill', ttlSeconds: 600 });
  try {
    const submitted = await run(
      [
        'submit', '--master', master, '--token', submitToken, '--name', 'hello', '--driver-memory', '256m', '--driver-cores', '2',
        '--executor-memory', '1g', '--total-executor-cores', '4', '--supervise', '--conf', 'spark.flint.command=["/bin/sh","-c"]',
        '--conf', 'spark.driver.memory=2g', 'docker://flint-test-busybox:latest', 'echo hi', '-x', '--not-a-flint-flag',
      ],
      { SPARK_USER_SETTING: 'on', SPARK_HOME: '/opt/spark' },
    );
    assert.deepEqual(submitted.err, []);
    assert.equal(submitted.code, 0);
    assert.deepEqual(submitted.out, ['driver-20260101120000-0000']);
    const desc = drivers.get('driver-20260101120000-0000')!.desc;
    // options after the appResource belong to the application, as in spark-submit
    assert.deepEqual(desc.command, ['/bin/sh', '-c', 'echo hi', '-x', '--not-a-flint-flag']);
    assert.equal(desc.image, 'flint-test-busybox:latest');
    assert.equal(desc.name, 'hello');
    assert.equal(desc.memoryMB, 256, '--driver-memory wins over --conf spark.driver.memory');
    assert.equal(desc.cores, 2);
    assert.equal(desc.supervise, true);
    assert.deepEqual(desc.env, { SPARK_USER_SETTING: 'on' });
    assert.equal(desc.sparkProperties['spark.cores.max'], '4');
    assert.equal(desc.sparkProperties['spark.executor.memory'], '1g');
    assert.equal(desc.sparkProperties['spark.submit.deployMode'], 'cluster');

    const status = await run(['status', '--master', master, 'driver-20260101120000-0000']);
    assert.equal(status.code, 0);
    assert.deepEqual(status.out, ['driver-20260101120000-0000 SUBMITTED on worker-1 (127.0.0.1:7078)']);
    const json = await run(['status', '--master', master, '--json', 'driver-20260101120000-0000']);
    assert.equal(JSON.parse(json.out.join('\n')).action, 'SubmissionStatusResponse');

    const refused = await run(['kill', '--master', master, 'driver-20260101120000-0000']);
    assert.equal(refused.code, 1);
    assert.match(refused.err[0]!, /^flint kill: the server refused the request \(HTTP 401\): Missing bearer token/);
    const wrongScope = await run(['kill', '--master', master, '--token', submitToken, 'driver-20260101120000-0000']);
    assert.equal(wrongScope.code, 1);
    assert.match(wrongScope.err[0]!, /HTTP 403/);

    const killed = await run(['kill', '--master', master, 'driver-20260101120000-0000'], { FLINT_TOKEN: killToken });
    assert.equal(killed.code, 0);
    assert.deepEqual(killed.out, ['Kill request for driver-20260101120000-0000 submitted']);
    assert.equal(drivers.get('driver-20260101120000-0000')!.state, 'KILLED');

    const unknown = await run(['status', '--master', master, 'driver-nope']);
    assert.equal(unknown.code, 1);
    assert.deepEqual(unknown.err, ['flint status: submission driver-nope was not found']);
    const unknownKill = await run(['kill', '--master', master, '--token', killToken, 'driver-nope']);
    assert.equal(unknownKill.code, 1);
    assert.deepEqual(unknownKill.err, ['flint kill: Driver driver-nope has already finished or does not exist']);

    // a refused submission: the server's multi-line reason becomes one line
    const badServerSide = await run(['submit', '--master', master, '--token', submitToken, '--conf', 'spark.flint.command=sh', 'docker://flint-test-busybox:latest']);
    assert.equal(badServerSide.code, 1);
    assert.equal(badServerSide.err.length, 1);
    assert.match(badServerSide.err[0]!, /HTTP 400\): Malformed request: Property 'spark\.flint\.command' expected a non-empty JSON array/);
  } finally {
    await server.close();
  }
});

test('flint token prints a verifiable token from the configured secret, and refuses without one', async () => {
  const minted = await run(['token', '--scope', 'submit,kill', '--ttl', '2h', '--subject', 'ci'], { FLINT_SPARK_FLINT_AUTH_SECRET: SECRET });
  assert.equal(minted.code, 0);
  assert.equal(minted.out.length, 1);
  const verified = verifyToken(minted.out[0]!, SECRET);
  assert.ok(verified.ok);
  assert.equal(verified.claims.scope, 'submit kill');
  assert.equal(verified.claims.sub, 'ci');
  assert.equal(verified.claims.exp - verified.claims.iat!, 7200);

  const viaConf = await run(['token', '--conf', `spark.flint.auth.secret=${SECRET}`, '--ttl', '90']);
  assert.equal(viaConf.code, 0);
  assert.ok(verifyToken(viaConf.out[0]!, SECRET).ok);

  const noSecret = await run(['token']);
  assert.equal(noSecret.code, 2);
  assert.match(noSecret.err[0]!, /^flint token: no spark\.flint\.auth\.secret is configured/);
  const badScope = await run(['token', '--scope', 'root'], { FLINT_SPARK_FLINT_AUTH_SECRET: SECRET });
  assert.equal(badScope.code, 2);
  assert.match(badScope.err[0]!, /unknown scope 'root'/);
  const badTtl = await run(['token', '--ttl', 'forever'], { FLINT_SPARK_FLINT_AUTH_SECRET: SECRET });
  assert.equal(badTtl.code, 2);
  assert.match(badTtl.err[0]!, /not a duration/);
  const shortSecret = await run(['token'], { FLINT_SPARK_FLINT_AUTH_SECRET: 'short' });
  assert.equal(shortSecret.code, 2);
  assert.match(shortSecret.err[0]!, /at least 32/);
});
