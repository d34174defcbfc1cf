/**
 * The pure parts of application liveness and tokens: Spark's HeartbeatReceiver keys
 * read from an application's conf, the app-bound tokens, redaction of what a
 * non-owner reads, the listener call for ExecutorLost, and the app's conf completed
 * by the client (driver link, heartbeat URL).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { APP_CONF_KEYS, ConfigError, HEARTBEAT_FAILURE_EXIT_CODE, parseAppConf } from '../../protocol/config.ts';
import { appToken, credentialHash, executorToken, isAppToken, isExecutorToken, newAppKey, tokenKind } from '../../lib/http/app-tokens.ts';
import { REDACTED, redactDescription, readCredential } from '../../functions/http/app-api-access.ts';
import { AppClientError, listenerCallFor, withClientConf, parseAppDescription } from '../../client/app-client.ts';
import { heartbeatTimeoutMessage } from '../../client/receiver-scripts.ts';
import { signToken } from '../../lib/http/auth.ts';

test("parseAppConf: Spark's defaults, units and the timeout-above-interval rule, with the key named on error", () => {
  assert.deepEqual(parseAppConf({}), {}, 'nothing on by default');
  assert.deepEqual(parseAppConf({ 'spark.flint.executor.heartbeat.enabled': 'true' }), {
    heartbeat: { intervalMs: 10_000, timeoutMs: 120_000, checkIntervalMs: 60_000, maxFailures: 60 },
  });
  // Spark's plain numbers: spark.network.timeout in seconds, the interval in ms
  assert.deepEqual(
    parseAppConf({ 'spark.flint.executor.heartbeat.enabled': 'true', 'spark.network.timeout': '3', 'spark.executor.heartbeatInterval': '500', 'spark.network.timeoutInterval': '1s', 'spark.flint.executor.heartbeat.url': 'http://h:1/' }),
    { heartbeat: { intervalMs: 500, timeoutMs: 3000, checkIntervalMs: 1000, maxFailures: 60, url: 'http://h:1' } },
  );
  assert.throws(() => parseAppConf({ 'spark.flint.executor.heartbeat.enabled': 'true', 'spark.network.timeout': '5s', 'spark.executor.heartbeatInterval': '5s' }), /spark\.network\.timeout=5000ms must be greater than spark\.executor\.heartbeatInterval=5000ms/);
  assert.throws(() => parseAppConf({ 'spark.executor.heartbeat.maxFailures': '0' }), (e: Error) => e instanceof ConfigError && /conf spark\.executor\.heartbeat\.maxFailures="0": '0' must be ≥ 1/.test(e.message));
  assert.throws(() => parseAppConf({ 'spark.flint.executor.heartbeat.url': 'ftp://x' }), /spark\.flint\.executor\.heartbeat\.url/);
  assert.throws(() => parseAppConf({ 'spark.flint.driver.id': 'a b' }), /spark\.flint\.driver\.id/);
  assert.deepEqual(parseAppConf({ 'spark.flint.driver.id': 'driver-20260101000000-0001', 'spark.app.name': 'unread' }), { driverId: 'driver-20260101000000-0001' });
  assert.equal(HEARTBEAT_FAILURE_EXIT_CODE, 56);
  for (const spec of APP_CONF_KEYS) assert.ok(spec.doc.length > 20, spec.key);
});

test('app tokens: bound to one app (or one executor), deterministic, constant-time checked, told apart by prefix', () => {
  const key = newAppKey();
  assert.match(key, /^[0-9a-f]{64}$/);
  assert.notEqual(newAppKey(), key);
  const owner = appToken(key, 'app-1');
  assert.equal(appToken(key, 'app-1'), owner, 'a retried registration gets the same token');
  assert.ok(isAppToken(owner, key, 'app-1'));
  assert.ok(!isAppToken(owner, key, 'app-2'), 'not for another app');
  assert.ok(!isAppToken(owner, newAppKey(), 'app-1'), 'not under another key');
  assert.ok(!isAppToken(owner.slice(0, -2), key, 'app-1'));
  const exec = executorToken(key, 'app-1', 3);
  // the text commit-placements.lua computes: HMAC-SHA1 over "executor\n<appId>/<execId>", hex
  assert.equal(exec, `fe1.${createHmac('sha1', key).update('executor\napp-1/3').digest('hex')}`);
  assert.ok(isExecutorToken(exec, key, 'app-1', 3));
  assert.ok(!isExecutorToken(exec, key, 'app-1', 4));
  assert.ok(!isExecutorToken(exec, key, 'app-2', 3));
  assert.deepEqual([tokenKind(owner), tokenKind(exec), tokenKind('eyJhbGciOiJIUzI1NiJ9.e30.x')], ['app', 'executor', 'jwt']);
  assert.match(credentialHash('x'), /^[0-9a-f]{64}$/);
  assert.notEqual(credentialHash('x'), credentialHash('y'));
});

test('readCredential: none, app, executor, a JWT only with a secret', () => {
  const secret = 's'.repeat(40);
  assert.deepEqual(readCredential(undefined, secret, Date.now()), { kind: 'none' });
  assert.equal((readCredential('Bearer fa1.abc', undefined, Date.now()) as { kind: string }).kind, 'app');
  assert.equal((readCredential('Bearer fe1.abc', undefined, Date.now()) as { kind: string }).kind, 'executor');
  const jwt = signToken(secret, { scope: 'kill', ttlSeconds: 60 });
  assert.equal((readCredential(`Bearer ${jwt}`, secret, Date.now()) as { kind: string }).kind, 'cluster');
  assert.match((readCredential(`Bearer ${jwt}`, undefined, Date.now()) as { message: string }).message, /accepts no cluster token/);
  assert.match((readCredential(`Bearer ${jwt}`, 'z'.repeat(40), Date.now()) as { message: string }).message, /bad signature/);
  assert.equal((readCredential('Basic dXNlcjpwYXNz', secret, Date.now()) as { status: number }).status, 401);
});

test('redactDescription: every env value, secret-looking conf, labels and arguments', () => {
  const redacted = redactDescription({
    name: 'n',
    env: { PATH: '/bin', API_KEY: 'k' },
    conf: { 'spark.executor.memory': '1g', 'spark.hadoop.fs.s3a.access.key': 'AKIA', 'spark.ssl.keyPassword': 'p', 'spark.authenticate.secret': 's' },
    labels: { team: 'data', 'vault-token': 't' },
    command: ['run', '--password=hunter2', 'TOKEN=abc', '--plain', 'x=1'],
  }) as Record<string, unknown>;
  assert.deepEqual(redacted.env, { PATH: REDACTED, API_KEY: REDACTED });
  assert.deepEqual(redacted.conf, { 'spark.executor.memory': '1g', 'spark.hadoop.fs.s3a.access.key': REDACTED, 'spark.ssl.keyPassword': REDACTED, 'spark.authenticate.secret': REDACTED });
  assert.deepEqual(redacted.labels, { team: 'data', 'vault-token': REDACTED });
  assert.deepEqual(redacted.command, ['run', `--password=${REDACTED}`, `TOKEN=${REDACTED}`, '--plain', 'x=1']);
  assert.equal(redacted.name, 'n');
  assert.equal(redactDescription('not an object'), 'not an object');
});

test('redactDescription: the argument after a secret-looking flag, and values holding a secret-looking assignment', () => {
  const redacted = redactDescription({
    conf: { 'spark.jdbc.url': 'jdbc:x?user=a&password=b', 'spark.app.tag': 'nightly' },
    command: ['run', '--password', 'hunter2', '--db-token', 'abc', '--user', 'bob', 'jdbc:x?user=a&password=b', '--token-file=/run/t', '-v'],
  }) as Record<string, unknown>;
  assert.deepEqual(redacted.conf, { 'spark.jdbc.url': REDACTED, 'spark.app.tag': 'nightly' });
  assert.deepEqual(redacted.command, ['run', '--password', REDACTED, '--db-token', REDACTED, '--user', 'bob', REDACTED, `--token-file=${REDACTED}`, '-v']);
});

test('listenerCallFor: ExecutorLost is executorLost with Spark\'s message', () => {
  const message = heartbeatTimeoutMessage(120_034);
  assert.equal(message, 'Executor heartbeat timed out after 120034 ms');
  assert.deepEqual(listenerCallFor('app-1', { id: '1-0', type: 'ExecutorLost', body: { id: 4, message, workerHost: '10.0.0.1' } }), {
    kind: 'executorLost',
    fullId: 'app-1/4',
    message,
    workerHost: '10.0.0.1',
  });
});

test('withClientConf: the driver link and the heartbeat URL are added unless set; heartbeats without a URL are refused', () => {
  const desc = parseAppDescription({ name: 'a', image: 'i' });
  assert.deepEqual(withClientConf(desc, {}).desc, desc, 'nothing to add');
  assert.deepEqual(withClientConf(desc, { driverId: 'driver-1', heartbeatUrl: 'http://h' }).desc.conf, { 'spark.flint.driver.id': 'driver-1' }, 'no URL without heartbeats');
  const withBeats = parseAppDescription({ name: 'a', image: 'i', conf: { 'spark.flint.executor.heartbeat.enabled': 'true' } });
  assert.equal(withClientConf(withBeats, { heartbeatUrl: 'http://h:1' }).desc.conf!['spark.flint.executor.heartbeat.url'], 'http://h:1');
  const own = parseAppDescription({ name: 'a', image: 'i', conf: { 'spark.flint.executor.heartbeat.enabled': 'true', 'spark.flint.executor.heartbeat.url': 'http://mine', 'spark.flint.driver.id': 'd-own' } });
  const completed = withClientConf(own, { driverId: 'd-env', heartbeatUrl: 'http://h:1' });
  assert.equal(completed.desc.conf!['spark.flint.executor.heartbeat.url'], 'http://mine');
  assert.equal(completed.desc.conf!['spark.flint.driver.id'], 'd-own');
  assert.throws(() => withClientConf(withBeats, {}), (e: Error) => e instanceof AppClientError && /needs spark\.flint\.executor\.heartbeat\.url/.test(e.message));
});
