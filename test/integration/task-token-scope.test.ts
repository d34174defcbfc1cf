/**
 * A task cannot reach beyond what it owns (issue 11, acceptance 3, the app API part):
 * an executor container on the host network, started by a real worker agent, holds
 * only its own heartbeat token (no cluster token, no application token); with it, the
 * app API refuses to kill or unregister another application (403) and accepts the
 * executor's own heartbeat. Real Docker, real Redis, a real app API over HTTP.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { signToken } from '../../lib/http/auth.ts';
import { startAppHttpServer, type RunningAppHttpServer } from '../../functions/http/app-api.ts';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { agentFixture, type AgentFixture } from '../helpers/agent-fixture.ts';
import { REDIS_URL, TEST_IMAGE } from '../helpers/env.ts';
import { docker, waitFor } from '../helpers/isolation.ts';
import { appDescription } from '../helpers/protocol.ts';

const SECRET = 'task-token-scope-secret-0123456789abcdefghijkl';
let f: AgentFixture | undefined;
let api: RunningAppHttpServer | undefined;

after(async () => {
  await api?.close();
  await f?.cleanup();
});

/** PROBE: what a hostile task tries, printed one result per line. */
const PROBE = [
  'try() { wget -q -O - --post-data "" --header "Authorization: Bearer $FLINT_HEARTBEAT_TOKEN" "$1" 2>&1 | tr "\\n" " "; }',
  'echo "kill-other: $(try "$API/v1/apps/$TARGET/kill")"',
  'echo "unregister-other: $(try "$API/v1/apps/$TARGET/unregister")"',
  'echo "kill-own-app: $(try "$API/v1/apps/$FLINT_APP_ID/kill")"',
  'echo "own-beat: $(try "$FLINT_HEARTBEAT_URL")"',
  'echo done-probing',
  'sleep 300',
].join('\n');

test("from inside an executor container on the host network, the executor's token cannot kill another application (403)", async () => {
  f = await agentFixture('task-token', { conf: { 'spark.flint.auth.secret': SECRET } });
  const fx = f;
  await fx.startAgent({ workDir: await fx.workDir(), cores: 1, memoryMB: 1024, network: 'host' });
  api = await startAppHttpServer({ redisUrl: REDIS_URL, cluster: fx.cluster, port: 0, auth: { secret: SECRET } });
  const submit = signToken(SECRET, { scope: 'submit', ttlSeconds: 600 });
  const register = async (body: unknown) => {
    const response = await fetch(`${api!.url}/v1/apps`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${submit}` }, body: JSON.stringify(body) });
    assert.equal(response.status, 201, await response.clone().text());
    return (await response.json()) as { appId: string; appToken: string };
  };
  const victim = await register(appDescription({ name: 'victim', maxCores: 1, memoryPerExecutorMB: 64000 }));
  const attacker = await register({
    ...appDescription({ name: 'attacker', image: TEST_IMAGE, command: ['sh', '-c', PROBE], maxCores: 1, coresPerExecutor: 1, memoryPerExecutorMB: 64, env: { API: api.url, TARGET: victim.appId } }),
    conf: { 'spark.flint.executor.heartbeat.enabled': 'true' },
  });

  const container = await waitFor(async () => (await fx.containers([`${LABEL.app}=${attacker.appId}`]))[0], { message: "the attacker's executor container", timeoutMs: 30_000 });
  const logs = await waitFor(async () => {
    const text = (await docker().getContainer(container.Id).logs({ stdout: true, stderr: true })).toString('utf8');
    return text.includes('done-probing') ? text : undefined;
  }, { message: 'the probe finished', timeoutMs: 30_000 });
  const line = (name: string) => new RegExp(`^.*${name}: (.*)$`, 'm').exec(logs)?.[1] ?? '';
  assert.match(line('kill-other'), /403 Forbidden/, logs);
  assert.match(line('unregister-other'), /403 Forbidden/, logs);
  assert.match(line('kill-own-app'), /403 Forbidden/, 'the token sends heartbeats only');
  assert.match(line('own-beat'), /"ok":true/, logs);
  assert.equal(await fx.redis.hget(fx.keys.app(victim.appId), 'state'), 'WAITING', 'the other application is untouched');
  assert.equal(await fx.redis.hget(fx.keys.app(attacker.appId), 'state'), 'RUNNING');

  // what the task was given: its own heartbeat token and no control-plane credential
  const env = (await docker().getContainer(container.Id).inspect()).Config.Env ?? [];
  const token = env.find((e) => e.startsWith('FLINT_HEARTBEAT_TOKEN='))!.split('=')[1]!;
  assert.match(token, /^fe1\.[0-9a-f]{40}$/);
  for (const entry of env) {
    assert.ok(!entry.includes(SECRET), `no cluster secret in ${entry.split('=')[0]}`);
    assert.ok(!entry.includes(attacker.appToken) && !entry.includes(victim.appToken), `no application token in ${entry.split('=')[0]}`);
    assert.ok(!/eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\./.test(entry), `no cluster token (JWT) in ${entry.split('=')[0]}`);
  }
});
