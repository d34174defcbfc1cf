/**
 * Acceptance of the worker agent, point 6: the end-to-end run of point 1 with the
 * process runtime (`flint worker --runtime process`: agents built from the same flags
 * through workerSettings/agentOptions, so the runtime is chosen as the CLI chooses
 * it), and the application HTTP API (functions/http/app-api.ts) registering an app and
 * reading, as server-sent events, the events of executors a real agent runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { isProcessAlive } from '../../workers/runtime/process.ts';
import { agentOptions, workerSettings } from '../../workers/worker-main.ts';
import type { AgentHandle } from '../../workers/agent/agent.ts';
import { startAppHttpServer } from '../../functions/http/app-api.ts';
import { waitFor } from '../helpers/isolation.ts';
import { appDescription } from '../helpers/protocol.ts';
import { agentFixture, FAST_CONF } from '../helpers/agent-fixture.ts';
import { REDIS_URL, TEST_IMAGE } from '../helpers/env.ts';
import { execIdOf, tracedClient } from '../helpers/acceptance.ts';

/** environOf: a live process's environment (Linux /proc). */
async function environOf(pid: number): Promise<Map<string, string>> {
  const raw = await readFile(`/proc/${pid}/environ`, 'utf8');
  return new Map(raw.split('\0').filter(Boolean).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
}

/** killLeftoverTasks SIGKILLs the process group of every task of the process runtimes under `workDirs` that never recorded its exit. */
async function killLeftoverTasks(workDirs: string[]): Promise<void> {
  for (const workDir of workDirs) {
    const runtimeDir = join(workDir, '.flint-process-runtime');
    for (const cluster of await readdir(runtimeDir).catch(() => [] as string[])) {
      for (const worker of await readdir(join(runtimeDir, cluster)).catch(() => [] as string[])) {
        for (const name of await readdir(join(runtimeDir, cluster, worker)).catch(() => [] as string[])) {
          const dir = join(runtimeDir, cluster, worker, name);
          const task = await readFile(join(dir, 'task.json'), 'utf8').catch(() => undefined);
          const exited = await readFile(join(dir, 'exit.json'), 'utf8').catch(() => undefined);
          if (task === undefined || exited !== undefined) continue;
          const { pid, supervisorPid } = JSON.parse(task) as { pid: number; supervisorPid: number };
          for (const group of [pid, supervisorPid]) {
            try {
              process.kill(-group, 'SIGKILL');
            } catch {
              // already gone
            }
          }
        }
      }
    }
  }
}

test('point 6: the end-to-end run of point 1 also passes with --runtime process', { timeout: 60_000 }, async () => {
  const f = await agentFixture('acc-p6-process');
  const traced = tracedClient(
    f.cluster,
    appDescription({
      name: 'acceptance-process',
      image: TEST_IMAGE,
      command: ['sh', '-c', 'sleep 60'],
      env: { ACCEPTANCE: 'process' },
      maxCores: 2,
      coresPerExecutor: 1,
      memoryPerExecutorMB: 48,
      labels: { team: 'acceptance' },
    }),
  );
  const workDirs = [await f.workDir(), await f.workDir()];
  try {
    const conf = Object.entries(FAST_CONF).map(([key, value]) => `${key}=${value}`);
    const agents: AgentHandle[] = [];
    for (const workDir of workDirs) {
      // the flags `flint worker --runtime process --cores 1 --memory 256m --port 0 ...` resolve to these options
      const settings = workerSettings({ redis: REDIS_URL, cluster: f.cluster, workDir, port: '0', cores: '1', memory: '256m', runtime: 'process', conf }, {});
      agents.push(await f.startAgent({ ...agentOptions(settings), onFatal: (message) => f.fatal.push(message) }));
    }
    assert.deepEqual(agents.map((agent) => agent.view().runtime), ['process', 'process']);
    const appId = (await traced.client.start())!;
    assert.ok(appId);
    await waitFor(() => traced.listener.added.length === 2, { timeoutMs: 20_000, message: 'two executorAdded calls' });
    assert.deepEqual(traced.listener.added.map((call) => call.workerId).sort(), agents.map((agent) => agent.workerId).sort(), 'one executor on each 1-core agent');
    await waitFor(() => traced.events.filter((e) => e.type === 'ExecutorUpdated' && e.body.state === 'RUNNING').length === 2, { timeoutMs: 20_000, message: 'both RUNNING at the client' });

    const pids: number[] = [];
    for (const [index, agent] of agents.entries()) {
      const call = traced.listener.added.find((c) => c.workerId === agent.workerId)!;
      const execId = execIdOf(call.fullId);
      const execDir = join(workDirs[index]!, appId, String(execId));
      // the runtime's registry: one entry per task, with the identity labels and the app's own
      const registry = join(workDirs[index]!, '.flint-process-runtime', f.cluster, agent.workerId);
      const entries = (await readdir(registry)).filter((name) => name.endsWith('.json'));
      assert.equal(entries.length, 1, `one task registered for ${agent.workerId}: ${entries.join(', ')}`);
      const entry = JSON.parse(await readFile(join(registry, entries[0]!), 'utf8')) as { taskId: string; labels: Record<string, string> };
      assert.equal(entry.taskId, `executor:${appId}/${execId}`);
      assert.equal(entry.labels[LABEL.cluster], f.cluster);
      assert.equal(entry.labels[LABEL.worker], agent.workerId);
      assert.equal(entry.labels[LABEL.kind], 'executor');
      assert.equal(entry.labels[LABEL.app], appId);
      assert.equal(entry.labels[LABEL.executor], String(execId));
      assert.equal(entry.labels.team, 'acceptance');
      // a real local process, in its executor directory, with the requested sizes in its environment
      // the runtime's records are its own, beside the registry entry, never in the executor's directory
      const { pid } = JSON.parse(await readFile(join(registry, entries[0]!.replace(/\.json$/, ''), 'task.json'), 'utf8')) as { pid: number };
      assert.deepEqual((await readdir(execDir)).sort(), ['stderr', 'stdout']);
      assert.ok(isProcessAlive(pid), `executor ${execId} runs as pid ${pid}`);
      pids.push(pid);
      const env = await environOf(pid);
      assert.equal(env.get('FLINT_APP_ID'), appId);
      assert.equal(env.get('FLINT_EXECUTOR_ID'), String(execId));
      assert.equal(env.get('FLINT_WORKER_ID'), agent.workerId);
      assert.equal(env.get('FLINT_CORES'), '1');
      assert.equal(env.get('FLINT_MEMORY_MB'), '48');
      assert.equal(env.get('ACCEPTANCE'), 'process');
      assert.equal(await realpath(`/proc/${pid}/cwd`), await realpath(execDir), 'it runs in its executor directory');
      assert.ok(agent.view().executors.some((e) => e.appId === appId && e.execId === execId && e.state === 'RUNNING'));
    }
    assert.equal((await f.containers()).length, 0, 'no container: the process runtime ran them');

    // unregistering kills the processes (KILLED on the agents) and clears the registry
    await traced.client.stop();
    await waitFor(() => pids.every((pid) => !isProcessAlive(pid)), { timeoutMs: 10_000, message: 'executor processes ended' });
    const finished = await waitFor(
      () => {
        const all = agents.flatMap((agent) => agent.view().finishedExecutors).filter((e) => e.appId === appId);
        return all.length === 2 ? all : undefined;
      },
      { timeoutMs: 10_000, message: 'both executors finished on the agents' },
    );
    assert.ok(finished.every((e) => e.state === 'KILLED'), JSON.stringify(finished.map((e) => [e.execId, e.state, e.exitStatus])));
    for (const [index, agent] of agents.entries()) {
      const registry = join(workDirs[index]!, '.flint-process-runtime', f.cluster, agent.workerId);
      await waitFor(async () => (await readdir(registry)).length === 0, { timeoutMs: 10_000, message: `registry of ${agent.workerId} emptied` });
    }
    assert.deepEqual(f.fatal, []);
  } finally {
    await traced.client.stop();
    await killLeftoverTasks(workDirs);
    await f.cleanup();
  }
});

interface SseEvent {
  id: string;
  event: string;
  data: Record<string, unknown>;
}

/** readEvents reads an SSE stream until `enough` says so or the server ends it. */
async function readEvents(url: string, headers: Record<string, string>, enough: (events: SseEvent[]) => boolean, timeoutMs: number): Promise<{ events: SseEvent[]; ended: boolean }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const events: SseEvent[] = [];
  try {
    const response = await fetch(url, { signal: controller.signal, headers });
    assert.equal(response.status, 200);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { events, ended: true };
      buffer += value;
      let boundary: number;
      while ((boundary = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        const fields = new Map<string, string>();
        for (const line of block.split('\n')) {
          if (line.startsWith(':') || !line.includes(':')) continue;
          fields.set(line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).replace(/^ /, ''));
        }
        if (fields.has('event')) events.push({ id: fields.get('id') ?? '', event: fields.get('event')!, data: JSON.parse(fields.get('data') ?? 'null') as Record<string, unknown> });
      }
      if (enough(events)) {
        controller.abort();
        return { events, ended: false };
      }
    }
  } catch (error) {
    if (controller.signal.aborted) {
      if (enough(events)) return { events, ended: false };
      throw new Error(`SSE read timed out after ${timeoutMs} ms with ${JSON.stringify(events.map((e) => [e.event, e.data.state]))}`, { cause: error });
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

test('point 6: the HTTP client API registers an app and reads the events of executors a real agent runs', { timeout: 60_000 }, async () => {
  const f = await agentFixture('acc-p6-http');
  const server = await startAppHttpServer({ redisUrl: REDIS_URL, cluster: f.cluster, port: 0, pollMs: 200 });
  try {
    const agent = await f.startAgent({ workDir: await f.workDir(), cores: 1, memoryMB: 256 });
    const created = await fetch(`${server.url}/v1/apps`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...appDescription({ name: 'acceptance-http', image: TEST_IMAGE, command: ['sh', '-c', 'sleep 0.5; exit 3'], maxCores: 1, coresPerExecutor: 1, memoryPerExecutorMB: 32 }), clientId: `acc-http-${f.cluster}` }),
    });
    assert.equal(created.status, 201);
    const { appId, appToken } = (await created.json()) as { appId: string; appToken: string };
    const auth = { authorization: `Bearer ${appToken}` };

    // the first executor's whole life, as the agent reported it, over SSE
    const { events } = await readEvents(
      `${server.url}/v1/apps/${appId}/events`,
      auth,
      (seen) => seen.some((e) => e.event === 'ExecutorUpdated' && e.data.state === 'EXITED'),
      30_000,
    );
    assert.deepEqual(events.slice(0, 4).map((e) => [e.event, e.data.state ?? null]), [
      ['RegisteredApplication', null],
      ['ExecutorAdded', null],
      ['ExecutorUpdated', 'RUNNING'],
      ['ExecutorUpdated', 'EXITED'],
    ]);
    const [, added, running, exited] = events;
    assert.equal(added!.data.workerId, agent.workerId);
    assert.equal(added!.data.hostPort, `127.0.0.1:${agent.view().port}`);
    assert.equal(running!.data.id, added!.data.id);
    assert.deepEqual([exited!.data.id, exited!.data.exitStatus, exited!.data.message], [added!.data.id, 3, 'Command exited with code 3']);
    const streamIds = (await f.redis.xrange(f.keys.appEvents(appId), '-', '+')).map(([id]) => id);
    assert.deepEqual(events.map((e) => e.id), streamIds.slice(0, events.length), 'each SSE id is the stream id, in order');

    // the replacement runs on the agent; resuming after the EXITED event shows it
    const resumed = await readEvents(
      `${server.url}/v1/apps/${appId}/events?lastEventId=${exited!.id}`,
      auth,
      (seen) => seen.some((e) => e.event === 'ExecutorUpdated' && e.data.state === 'RUNNING'),
      30_000,
    );
    assert.deepEqual(resumed.events.slice(0, 2).map((e) => [e.event, e.data.state ?? null]), [['ExecutorAdded', null], ['ExecutorUpdated', 'RUNNING']]);
    assert.notEqual(resumed.events[0]!.data.id, added!.data.id);

    // DELETE unregisters: the stream ends and the agent's container goes away
    const following = readEvents(`${server.url}/v1/apps/${appId}/events?lastEventId=${resumed.events.at(-1)!.id}`, auth, () => false, 30_000);
    const removed = await fetch(`${server.url}/v1/apps/${appId}`, { method: 'DELETE', headers: auth });
    assert.equal(removed.status, 200);
    assert.equal((await following).ended, true, 'the server ends the stream once the app is over');
    await waitFor(async () => (await f.containers([`${LABEL.app}=${appId}`])).length === 0, { timeoutMs: 15_000, message: 'the app\'s containers removed' });
    assert.deepEqual(f.fatal, []);
  } finally {
    await server.close();
    await f.cleanup();
  }
});
