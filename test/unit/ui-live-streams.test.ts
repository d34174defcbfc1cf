/**
 * The master UI's live-update stream (/events) is open to any reader, so it is bounded:
 * at most maxLiveStreams at once (429 past it, a closed one gives its place back), and a
 * reader that does not keep up holds at most MAX_QUEUED_LIVE_EVENTS events.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMasterUiApp, MAX_QUEUED_LIVE_EVENTS, type MasterUiBindings } from '../../functions/http/ui/app.ts';
import { clusterKeys } from '../../protocol/keys.ts';
import type { ClusterEventListener } from '../../functions/http/ui/event-feed.ts';

function uiWithFeed(maxLiveStreams: number) {
  const listeners = new Set<ClusterEventListener>();
  const feed = {
    subscribe(listener: ClusterEventListener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
  };
  const bindings = {
    redis: undefined as never,
    keys: clusterKeys('ui-live-test'),
    masterUrl: 'flint://test',
    killEnabled: false,
    auth: {},
    killer: {} as never,
    events: feed as never,
    maxLiveStreams,
    keepAliveMs: 60_000,
  } satisfies MasterUiBindings;
  return { app: createMasterUiApp(bindings), listeners };
}

async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, done: (text: string) => boolean): Promise<string> {
  let text = '';
  const decoder = new TextDecoder();
  while (!done(text)) {
    const chunk = await reader.read();
    if (chunk.done) break;
    text += decoder.decode(chunk.value);
  }
  return text;
}

test('live-update streams are capped; a closed one gives its place back', async () => {
  const { app } = uiWithFeed(2);
  const first = new AbortController();
  const second = new AbortController();
  const a = await app.request('/events', { signal: first.signal });
  const b = await app.request('/events', { signal: second.signal });
  assert.equal(a.status, 200);
  assert.equal(b.status, 200);
  const readerA = a.body!.getReader();
  await readUntil(readerA, (t) => t.includes('event: hello'));
  const refused = await app.request('/events');
  assert.equal(refused.status, 429);
  assert.match(await refused.text(), /serves 2 live-update streams at once/);
  await readerA.cancel();
  first.abort();
  let reopened: Response | undefined;
  for (let attempt = 0; attempt < 100 && reopened?.status !== 200; attempt++) {
    await reopened?.body?.cancel().catch(() => undefined);
    reopened = await app.request('/events');
    if (reopened.status !== 200) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(reopened?.status, 200, 'the closed stream gave its place back');
  await reopened!.body!.cancel().catch(() => undefined);
  await b.body!.cancel().catch(() => undefined);
  second.abort();
});

test('a reader that does not keep up is sent at most the latest MAX_QUEUED_LIVE_EVENTS events', async () => {
  const { app, listeners } = uiWithFeed(4);
  const response = await app.request('/events');
  const reader = response.body!.getReader();
  await readUntil(reader, (t) => t.includes('event: hello'));
  // one burst far larger than the bound, delivered while the stream waits
  const burst = Array.from({ length: MAX_QUEUED_LIVE_EVENTS * 4 }, (_, i) => ({ id: `${i + 1}-0`, type: 'Tick', body: {}, at: i }));
  for (const listener of listeners) listener(burst as never);
  const last = `${burst.length}-0`;
  const text = await readUntil(reader, (t) => t.includes(`id: ${last}\n`));
  const sent = text.split('\n').filter((line) => line.startsWith('id: '));
  assert.equal(sent.length, MAX_QUEUED_LIVE_EVENTS);
  assert.equal(sent[0], `id: ${burst.length - MAX_QUEUED_LIVE_EVENTS + 1}-0`);
  await reader.cancel();
});
