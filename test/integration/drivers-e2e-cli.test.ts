/**
 * `flint token`, `flint submit`, `flint status` and `flint kill` as a new user
 * runs them (acceptance point 6 of the drivers/submission issue): `node
 * bin/flint.js ...` child processes against a real cluster (master, REST server
 * and a Docker agent in this process, the real Redis and Docker engine); the
 * tests read only what the commands print and their exit codes, plus the
 * driver's own output file to see that the command really ran.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TEST_IMAGE } from '../helpers/env.ts';
import { waitFor } from '../helpers/isolation.ts';
import { SECRET, driverCluster, runFlintToEnd } from './drivers-e2e-cluster.ts';

/** flintStatusUntil runs `flint status` until its line shows `state`; returns that line. */
async function flintStatusUntil(id: string, master: string, state: string): Promise<string> {
  let last = '';
  return waitFor(
    async () => {
      const result = await runFlintToEnd(['status', id, '--master', master]);
      assert.equal(result.code, 0, `flint status exit code (stderr: ${result.stderr})`);
      last = result.stdout.trim();
      return last.startsWith(`${id} ${state}`) ? last : undefined;
    },
    { timeoutMs: 40_000, intervalMs: 200, message: `flint status ${id} to print ${state} (last: ${last})` },
  );
}

test('6. flint submit && flint status work from the CLI against a real cluster: the driver runs, FINISHED with its worker; flint kill ends KILLED; a missing image ends ERROR with the reason', { timeout: 120_000 }, async () => {
  const c = await driverCluster('drv-e2e-6');
  try {
    const agent = await c.startAgent({ workDir: await c.workDir(), cores: 2, memoryMB: 1024 });
    const hostPort = `127.0.0.1:${agent.view().port}`;
    const master = c.rest.url;

    // the token a user mints from the configured secret
    const minted = await runFlintToEnd(['token', '--scope', 'submit,kill', '--ttl', '10m', '--subject', 'e2e'], { FLINT_SPARK_FLINT_AUTH_SECRET: SECRET });
    assert.equal(minted.code, 0, minted.stderr);
    const token = minted.stdout.trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);

    const submitted = await runFlintToEnd([
      'submit', '--master', master, '--token', token, '--name', 'pi', '--driver-cores', '1', '--driver-memory', '256m',
      `docker://${TEST_IMAGE}`, 'sh', '-c', 'echo hello',
    ]);
    assert.equal(submitted.code, 0, submitted.stderr);
    assert.equal(submitted.stderr, '');
    assert.match(submitted.stdout, /^driver-\d{14}-\d{4}\n$/, 'submit prints the submission id alone');
    const id = submitted.stdout.trim();

    const finished = await flintStatusUntil(id, master, 'FINISHED');
    assert.equal(finished, `${id} FINISHED on ${agent.workerId} (${hostPort})`);
    assert.equal(await readFile(join(agent.view().workDir, id, 'stdout'), 'utf8'), 'hello\n');
    const json = await runFlintToEnd(['status', '--json', id, '--master', master.replace(/^http:/, 'spark:')]);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), {
      action: 'SubmissionStatusResponse',
      driverState: 'FINISHED',
      serverSparkVersion: '4.0.0',
      submissionId: id,
      success: true,
      workerHostPort: hostPort,
      workerId: agent.workerId,
    });

    // kill: master and token from the environment, as `export FLINT_TOKEN=$(flint token ...)` sets them
    const env = { FLINT_MASTER: master, FLINT_TOKEN: token };
    const long = await runFlintToEnd(['submit', '--name', 'long', '--driver-memory', '64m', `docker://${TEST_IMAGE}`, 'sleep', '300'], env);
    assert.equal(long.code, 0, long.stderr);
    const longId = long.stdout.trim();
    assert.notEqual(longId, id);
    assert.equal(await flintStatusUntil(longId, master, 'RUNNING'), `${longId} RUNNING on ${agent.workerId} (${hostPort})`);
    await waitFor(async () => (await c.driverContainers(longId)).some((info) => info.State === 'running'), { timeoutMs: 20_000, message: 'long driver container running' });
    const killed = await runFlintToEnd(['kill', longId, '--master', master, '--token', token]);
    assert.equal(killed.code, 0, killed.stderr);
    assert.equal(killed.stdout, `Kill request for ${longId} submitted\n`);
    assert.match(await flintStatusUntil(longId, master, 'KILLED'), new RegExp(`^${longId} KILLED on ${agent.workerId}`));
    await waitFor(async () => (await c.driverContainers(longId)).length === 0, { timeoutMs: 15_000, message: 'killed driver container gone' });

    // a typo in the image: accepted, then ERROR with the worker's exception (Flint never pulls)
    const typo = await runFlintToEnd(['submit', '--driver-memory', '64m', 'docker://flint-no-such-image:1', 'true'], env);
    assert.equal(typo.code, 0, typo.stderr);
    const typoId = typo.stdout.trim();
    await flintStatusUntil(typoId, master, 'ERROR');
    const typoStatus = await runFlintToEnd(['status', typoId], env);
    assert.equal(typoStatus.code, 0);
    assert.equal(
      typoStatus.stdout,
      `${typoId} ERROR on ${agent.workerId} (${hostPort})\nException from the cluster:\nImageNotFoundError: image flint-no-such-image:1 not found locally (Flint never pulls: build or load it on this host first)\n`,
    );

    // refusals: one line on stderr and exit code 1
    const again = await runFlintToEnd(['kill', longId], env);
    assert.equal(again.code, 1);
    assert.equal(again.stderr, `flint kill: Driver ${longId} has already finished or does not exist\n`);
    const unknown = await runFlintToEnd(['status', 'driver-20000101000000-9999', '--master', master]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^flint status: submission driver-20000101000000-9999 was not found/);
    const noToken = await runFlintToEnd(['submit', '--master', master, `docker://${TEST_IMAGE}`, 'true']);
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr, /^flint submit: the server refused the submission \(HTTP 401\)/);
    assert.equal(await c.redis.scard(c.keys.driversActive), 0, 'the refused submission created no driver');
  } finally {
    await c.cleanup();
  }
});
