/**
 * TLS with a certificate the test makes (openssl): a private CA signs a server
 * certificate for 127.0.0.1; a `flint master` + `flint worker` cluster configured
 * with Spark's spark.ssl.standalone.* keys serves the REST server, the web UI and
 * the application API over HTTPS (one implementation: lib/http-listen.ts). Clients
 * verify: the REST client and `flint status` refuse the unknown certificate and
 * accept it given the CA file; plain HTTP to an HTTPS port gets nothing; the worker agent's own UI is HTTPS too. The worker
 * UI serves HTTPS through the same listener, from a PKCS#12 keystore.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig } from '../../protocol/config.ts';
import { signToken } from '../../lib/http/auth.ts';
import { serverTlsFromConfig } from '../../lib/http/tls.ts';
import { RestSubmissionClient, RestClientError } from '../../client/rest-client.ts';
import { fetchTrusting } from '../../client/trusting-fetch.ts';
import { startWorkerUi } from '../../workers/worker-ui.ts';
import { REDIS_ARGV_URL, REDIS_URL } from '../helpers/env.ts';
import { makeTempDir, uniqueCluster, type TempDir } from '../helpers/isolation.ts';
import { startProcessCluster, type ProcessCluster } from '../helpers/flint-cluster.ts';
import { runFlintToEnd } from '../helpers/flint-process.ts';

const SECRET = 'tls-test-secret-0123456789abcdef0123456789abcdef';
let dir: TempDir;
let files: { caCert: string; key: string; cert: string; p12: string; otherCa: string };

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir.path, stdio: ['ignore', 'ignore', 'pipe'] });
}

before(async () => {
  dir = await makeTempDir('tls');
  await writeFile(join(dir.path, 'san.ext'), 'subjectAltName = IP:127.0.0.1, DNS:localhost\n');
  // a private CA, and a server certificate it signs for 127.0.0.1 and localhost
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Flint test CA');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext');
  openssl('pkcs12', '-export', '-inkey', 'server.key', '-in', 'server.pem', '-out', 'server.p12', '-passout', 'pass:keystore-pass');
  // another CA, which did not sign the server's certificate
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other.pem', '-days', '2', '-subj', '/CN=Some other CA');
  files = { caCert: join(dir.path, 'ca.pem'), key: join(dir.path, 'server.key'), cert: join(dir.path, 'server.pem'), p12: join(dir.path, 'server.p12'), otherCa: join(dir.path, 'other.pem') };
});
after(() => dir?.cleanup());

test('REST server, web UI and application API over HTTPS; clients reject an unknown certificate and accept it with the CA file', { timeout: 120_000 }, async () => {
  const redis = new Redis(REDIS_URL);
  const cluster = uniqueCluster('tls');
  let procs: ProcessCluster | undefined;
  try {
    procs = await startProcessCluster(redis, {
      cluster,
      redisUrl: REDIS_ARGV_URL,
      secret: SECRET,
      conf: { 'spark.ssl.standalone.enabled': 'true', 'spark.ssl.standalone.privateKey': files.key, 'spark.ssl.standalone.certChain': files.cert, 'spark.ssl.standalone.protocol': 'TLSv1.2' },
      workers: [{ cores: 1, memory: '128m' }],
    });
    const { rest, ui, appApi } = procs.urls;
    for (const url of [rest, ui, appApi]) assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/, 'every service is HTTPS and says so');
    const ca = readFileSync(files.caCert);
    const admin = signToken(SECRET, { scope: 'admin', ttlSeconds: 600 });

    // REST: the client refuses the certificate without the CA, and works with it
    await assert.rejects(new RestSubmissionClient(rest, { token: admin }).readyz(), (error: unknown) => {
      assert.ok(error instanceof RestClientError);
      assert.match(error.message, /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
      assert.match(error.message, /--ca-file/);
      return true;
    });
    await assert.rejects(new RestSubmissionClient(rest, { token: admin, ca: readFileSync(files.otherCa) }).readyz(), /certificate is not trusted/, 'a CA that did not sign it is no help');
    const trusted = new RestSubmissionClient(rest, { token: admin, ca });
    assert.equal((await trusted.readyz()).status, 200);
    assert.equal((await trusted.requestSubmissionStatus('driver-20260101000000-0000')).body.action, 'SubmissionStatusResponse');

    // the CLI: the same, with --ca-file (and the configured trustStore)
    const refused = await runFlintToEnd(['status', 'driver-20260101000000-0000', '--master', rest], { FLINT_TOKEN: admin });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /certificate is not trusted/);
    const accepted = await runFlintToEnd(['status', 'driver-20260101000000-0000', '--master', rest, '--ca-file', files.caCert]);
    assert.equal(accepted.code, 1, 'reached the server: an unknown submission is exit 1');
    assert.doesNotMatch(accepted.stderr, /certificate|cannot reach/, accepted.stderr);
    assert.match(`${accepted.stdout}${accepted.stderr}`, /driver-20260101000000-0000/);
    const viaConfig = await runFlintToEnd(['status', 'driver-20260101000000-0000', '--master', rest], { FLINT_SPARK_SSL_STANDALONE_TRUSTSTORE: files.caCert });
    assert.doesNotMatch(viaConfig.stderr, /certificate|cannot reach/, viaConfig.stderr);

    // web UI and application API: global fetch (system CAs only) refuses; with the CA it works
    await assert.rejects(fetch(`${ui}/json`), (error: Error) => /SELF_SIGNED|UNABLE_TO_VERIFY/.test(String((error.cause as { code?: string })?.code)));
    const secureFetch = fetchTrusting(ca);
    const json = (await (await secureFetch(`${ui}/json`)).json()) as { aliveworkers: number; workers: { webuiaddress: string }[] };
    assert.equal(json.aliveworkers, 1);
    // the worker's own UI, served by the agent through the same listener, is HTTPS too
    const workerUi = json.workers[0]!.webuiaddress;
    assert.match(workerUi, /^https:\/\/127\.0\.0\.1:\d+$/);
    await assert.rejects(fetch(`${workerUi}/`));
    assert.equal((await secureFetch(`${workerUi}/`)).status, 200);
    assert.equal((await secureFetch(`${ui}/metrics/master/prometheus`)).status, 200);
    const unknownApp = await secureFetch(`${appApi}/v1/apps/app-20260101000000-0000`);
    assert.equal(unknownApp.status, 404, 'the application API answers over HTTPS');
    const registered = await secureFetch(`${appApi}/v1/apps`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'tls-app', image: 'flint-test-busybox:latest', command: ['sleep', '1'], env: {}, memoryPerExecutorMB: 512, resourcesPerExecutor: [], user: 'test', appUiUrl: '', maxCores: 1 }),
    });
    assert.equal(registered.status, 201, await registered.clone().text());

    // plain HTTP to the HTTPS port gets no HTTP answer
    await assert.rejects(fetch(ui.replace('https://', 'http://') + '/json'));
  } finally {
    await procs?.stop();
    await redis.quit();
  }
});

test('the worker UI serves HTTPS through the same listener, from a PKCS#12 keystore; a JKS keystore and a missing key are start-up errors', async () => {
  const config = loadConfig({
    env: {},
    overrides: { 'spark.ssl.enabled': 'true', 'spark.ssl.keyStore': files.p12, 'spark.ssl.keyStorePassword': 'keystore-pass', 'spark.ssl.keyStoreType': 'PKCS12' },
  });
  const tls = serverTlsFromConfig(config);
  assert.ok(tls?.pfx, 'spark.ssl.* applies to the standalone servers when spark.ssl.standalone.* is unset');
  const source = {
    workerId: 'worker-tls',
    masterUrl: 'spark://127.0.0.1:7077',
    workDir: dir.path,
    cores: 2,
    memoryMB: 1024,
    coresUsed: () => 1,
    memoryUsed: () => 256,
    executors: () => [],
    finishedExecutors: () => [],
    drivers: () => [],
    finishedDrivers: () => [],
  };
  const server = await startWorkerUi(source, { port: 0, tls });
  try {
    assert.match(server.url, /^https:\/\//);
    const text = await (await fetchTrusting(readFileSync(files.caCert))(`${server.url}/metrics/prometheus`)).text();
    assert.match(text, /metric="coresFree",worker_id="worker-tls"\} 1$/m);
  } finally {
    await server.close();
  }
  assert.throws(
    () => serverTlsFromConfig(loadConfig({ env: {}, overrides: { 'spark.ssl.standalone.enabled': 'true', 'spark.ssl.standalone.keyStore': files.p12, 'spark.ssl.standalone.keyStoreType': 'JKS' } })),
    /Node cannot read Java keystores; convert it \(keytool -importkeystore/,
  );
  assert.throws(() => serverTlsFromConfig(loadConfig({ env: {}, overrides: { 'spark.ssl.standalone.enabled': 'true' } })), /no key is configured/);
  assert.throws(
    () => serverTlsFromConfig(loadConfig({ env: {}, overrides: { 'spark.ssl.standalone.enabled': 'true', 'spark.ssl.standalone.privateKey': join(dir.path, 'nope.key'), 'spark.ssl.standalone.certChain': files.cert } })),
    /spark\.ssl\.standalone\.privateKey=.*nope\.key: cannot read the file/,
  );
  assert.equal(serverTlsFromConfig(loadConfig({ env: {} })), undefined, 'plain HTTP by default');
});
