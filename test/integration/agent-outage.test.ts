/**
 * A short Redis outage seen by one agent: the agent reaches Redis through a TCP
 * relay on loopback that the test cuts for a few seconds (the master keeps its own
 * direct connection). An executor that exits during the outage is still reported,
 * once, with its exit code after the connection returns, and the agent stays up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { LABEL } from '../../workers/runtime/task-identity.ts';
import { waitFor } from '../helpers/isolation.ts';
import { appDescription, readAppEvents } from '../helpers/protocol.ts';
import { agentFixture } from '../helpers/agent-fixture.ts';
import { REDIS_URL, TEST_IMAGE } from '../helpers/env.ts';

interface Relay {
  url: string;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

/** startRelay forwards loopback TCP to the test Redis; cut() drops every connection and refuses new ones. */
async function startRelay(target: URL): Promise<Relay> {
  const sockets = new Set<Socket>();
  let cut = false;
  const server: Server = createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(target.port || 6379), target.hostname || '127.0.0.1');
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', close);
      socket.on('close', close);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = new URL(target.href);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.href,
    cut() {
      cut = true;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    restore() {
      cut = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

test('an exit during a short Redis outage is reported once, with its code, when Redis is back', { timeout: 120_000 }, async () => {
  const f = await agentFixture('agent-outage');
  const relay = await startRelay(new URL(REDIS_URL));
  try {
    const agent = await f.startAgent({ redisUrl: relay.url, workDir: await f.workDir(), cores: 1, memoryMB: 512 });
    const reply = await f.masterClient.ask<{ appId: string }>(
      'RegisterApplication',
      { clientId: `client-${randomUUID()}`, appDescription: appDescription({ image: TEST_IMAGE, command: ['sh', '-c', 'sleep 2; exit 6'], maxCores: 1, coresPerExecutor: 1, memoryPerExecutorMB: 32 }) },
      30_000,
    );
    const appId = reply.appId;
    const [container] = await waitFor(async () => {
      const list = await f.containers([`${LABEL.app}=${appId}`]);
      return list.length === 1 && list[0]!.State === 'running' ? list : undefined;
    }, { timeoutMs: 30_000, message: 'executor running' });
    const execId = Number(container!.Labels[LABEL.executor]);
    await waitFor(async () => (await readAppEvents(f.redis, f.keys, appId)).some((e) => e.body.id === execId && e.body.state === 'RUNNING'), { timeoutMs: 15_000, message: 'RUNNING reported' });

    relay.cut();
    // the executor exits (code 6) while the agent cannot reach Redis
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const during = await readAppEvents(f.redis, f.keys, appId);
    assert.equal(during.filter((e) => e.body.id === execId && e.body.state === 'EXITED').length, 0, 'nothing can be reported during the outage');
    relay.restore();

    const exited = await waitFor(
      async () => (await readAppEvents(f.redis, f.keys, appId)).find((e) => e.type === 'ExecutorUpdated' && e.body.id === execId && e.body.state === 'EXITED'),
      { timeoutMs: 30_000, message: 'EXITED reported after the outage' },
    );
    assert.equal(exited.body.exitStatus, 6);
    await f.masterClient.ask('KillApplication', { appId }, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const events = await readAppEvents(f.redis, f.keys, appId);
    assert.equal(events.filter((e) => e.body.id === execId && e.body.state === 'EXITED').length, 1, 'reported once');
    assert.deepEqual(f.fatal, [], 'the agent survived the outage');
    assert.ok(agent.view().registered);
  } finally {
    await f.cleanup();
    await relay.close();
  }
});
