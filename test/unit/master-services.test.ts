/**
 * The pure parts of a master's HTTP services: which services a configuration asks
 * for and where they bind (planMasterServices: Spark's defaults, the REST and app
 * API hosts falling back to spark.master.host, no public bind without a secret, TLS
 * checked before anything listens), and Spark's metric sources rendered from a
 * cluster state (names, values, label escaping).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, ConfigError } from '../../protocol/config.ts';
import { AuthConfigError } from '../../lib/http/auth.ts';
import { escapeLabelValue } from '../../lib/http/spark-metrics.ts';
import { planMasterServices } from '../../functions/http/master-services.ts';
import { applicationsSourceText, masterSourceText } from '../../functions/http/spark-sources.ts';
import { workerSourceText } from '../../workers/worker-ui.ts';
import type { AppRecord, WorkerRecord } from '../../protocol/records.ts';

const SECRET = 'plan-secret-0123456789abcdef0123456789abcdef';
const plan = (overrides: Record<string, string> = {}, env: Record<string, string> = {}) => planMasterServices(loadConfig({ env, overrides }));

test("Spark's defaults: REST on 6066 and the UI on 8080 at spark.master.host, the application API off", () => {
  assert.deepEqual(plan(), { secret: undefined, rest: { host: '127.0.0.1', port: 6066 }, ui: { host: '127.0.0.1', port: 8080 }, tls: undefined });
});

test('REST and app API hosts default to spark.master.host (SPARK_MASTER_HOST); their own keys win', () => {
  const fromEnv = plan({ 'spark.flint.master.appApi.enabled': 'true', 'spark.flint.auth.secret': SECRET }, { SPARK_MASTER_HOST: '198.51.100.4', SPARK_MASTER_WEBUI_PORT: '0' });
  assert.deepEqual([fromEnv.rest, fromEnv.ui, fromEnv.appApi], [
    { host: '198.51.100.4', port: 6066 },
    { host: '198.51.100.4', port: 0 },
    { host: '198.51.100.4', port: 6067 },
  ]);
  const own = plan({ 'spark.master.rest.host': '127.0.0.2', 'spark.flint.master.appApi.enabled': 'true', 'spark.flint.master.appApi.host': '127.0.0.3', 'spark.flint.master.appApi.port': '0' });
  assert.deepEqual([own.rest?.host, own.appApi], ['127.0.0.2', { host: '127.0.0.3', port: 0 }]);
});

test('turning services off leaves them out; a handlers-only process needs no secret and reads no TLS files', () => {
  const handlersOnly = plan({
    'spark.master.rest.enabled': 'false',
    'spark.flint.master.ui.enabled': 'false',
    'spark.master.host': '0.0.0.0',
    'spark.ssl.standalone.enabled': 'true',
    'spark.ssl.standalone.privateKey': '/nonexistent/key.pem',
    'spark.ssl.standalone.certChain': '/nonexistent/chain.pem',
  });
  assert.deepEqual(handlersOnly, { secret: undefined });
});

test('a non-loopback bind of any service without a secret is refused; a short secret too', () => {
  assert.throws(() => plan({ 'spark.master.host': '198.51.100.4' }), (error: unknown) => error instanceof AuthConfigError && /refusing to listen on 198\.51\.100\.4 without spark\.flint\.auth\.secret/.test(error.message));
  assert.throws(() => plan({ 'spark.flint.master.ui.enabled': 'false', 'spark.master.rest.host': '0.0.0.0' }), /refusing to listen on 0\.0\.0\.0/);
  assert.throws(() => plan({ 'spark.master.rest.enabled': 'false', 'spark.flint.master.ui.enabled': 'false', 'spark.flint.master.appApi.enabled': 'true', 'spark.flint.master.appApi.host': '::' }), /refusing to listen on ::/);
  assert.throws(() => plan({ 'spark.flint.auth.secret': 'short' }), /at least 32/);
  assert.equal(plan({ 'spark.master.host': '198.51.100.4', 'spark.flint.auth.secret': SECRET }).rest?.host, '198.51.100.4');
});

test('TLS turned on without a key, or with an unreadable one, fails the plan naming the key', () => {
  assert.throws(() => plan({ 'spark.ssl.enabled': 'true' }), (error: unknown) => error instanceof ConfigError && /no key is configured/.test(error.message));
  assert.throws(() => plan({ 'spark.ssl.standalone.enabled': 'true', 'spark.ssl.standalone.privateKey': '/nonexistent/k.pem', 'spark.ssl.standalone.certChain': '/nonexistent/c.pem' }), /spark\.ssl\.standalone\.privateKey=\/nonexistent\/k\.pem: cannot read the file/);
  // the standalone namespace overrides the global one: disabled there, no TLS
  assert.equal(plan({ 'spark.ssl.enabled': 'true', 'spark.ssl.standalone.enabled': 'false' }).tls, undefined);
});

const worker = (id: string, state: string): WorkerRecord => ({ id, state }) as WorkerRecord;
const app = (id: string, name: string, state: string, startTime: number, coresGranted: number): AppRecord => ({ id, name, state, startTime, endTime: -1, coresGranted }) as AppRecord;

test("the master source counts workers as Spark's MasterSource does (DEAD ones included in workers)", () => {
  const text = masterSourceText({ workers: [worker('w1', 'ALIVE'), worker('w2', 'DEAD'), worker('w3', 'ALIVE')], activeApps: [app('a1', 'x', 'WAITING', 0, 0), app('a2', 'y', 'RUNNING', 0, 4)] });
  const value = (metric: string) => Number(new RegExp(`^metrics_master_Value\\{type="gauges",source="master",metric="${metric}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
  assert.deepEqual(['workers', 'aliveWorkers', 'apps', 'waitingApps'].map(value), [3, 2, 2, 1]);
  assert.match(text, /^# TYPE metrics_master_Value gauge$/m);
});

test("the applications source names each app as Spark does and escapes what the app's name may hold", () => {
  const text = applicationsSourceText({ readAt: 10_000, activeApps: [app('app-1', 'evil" name\\\nx', 'RUNNING', 4_000, 3)] });
  const source = 'source="application.evil\\" name\\\\\\nx.4000"';
  assert.ok(text.includes(`metrics_application_Value{type="gauges",${source},metric="status",app_id="app-1",state="RUNNING"} 1\n`), text);
  assert.ok(text.includes(`metrics_application_Value{type="gauges",${source},metric="runtime_ms",app_id="app-1"} 6000\n`), text);
  assert.ok(text.includes(`metrics_application_Value{type="gauges",${source},metric="cores",app_id="app-1"} 3\n`), text);
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
});

test("the worker source: Spark's five WorkerSource metrics", () => {
  const text = workerSourceText({ workerId: 'w-1', cores: 8, memoryMB: 4096, coresUsed: 3, memoryUsed: 1024, executors: 2 });
  const value = (metric: string) => Number(new RegExp(`metric="${metric}",worker_id="w-1"\\} (\\d+)$`, 'm').exec(text)?.[1]);
  assert.deepEqual(['executors', 'coresUsed', 'memUsed_MB', 'coresFree', 'memFree_MB'].map(value), [2, 3, 1024, 5, 3072]);
});
