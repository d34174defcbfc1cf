/**
 * limitBody (lib/http/body-limit.ts): a declared length is judged by the header alone, a
 * chunked body by counting it as it streams; either way a body over the limit is 413 and a
 * body within it reaches the handler whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Hono } from 'hono';
import { limitBody } from '../../lib/http/body-limit.ts';

function app(): Hono {
  const app = new Hono();
  app.use('*', limitBody({ maxSize: 100, onError: (c) => c.text('too large', 413) }));
  app.post('/echo', async (c) => c.text(`got ${(await c.req.text()).length}`));
  return app;
}

function chunked(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return new ReadableStream({
    start(controller) {
      for (let at = 0; at < bytes.length; at += 10) controller.enqueue(bytes.subarray(at, at + 10));
      controller.close();
    },
  });
}

test('a declared length over the limit is 413; within it the body reaches the handler', async () => {
  const over = await app().request('/echo', { method: 'POST', body: 'x'.repeat(101), headers: { 'content-length': '101' } });
  assert.equal(over.status, 413);
  const within = await app().request('/echo', { method: 'POST', body: 'x'.repeat(100), headers: { 'content-length': '100' } });
  assert.equal(await within.text(), 'got 100');
  const bogus = await app().request('/echo', { method: 'POST', body: 'x', headers: { 'content-length': '1e3' } });
  assert.equal(bogus.status, 413, 'a length that is not a plain integer is refused');
});

test('a chunked body is counted as it streams: over the limit 413, within it whole', async () => {
  const init = (text: string) => ({ method: 'POST', body: chunked(text), duplex: 'half' as const, headers: { 'transfer-encoding': 'chunked' } });
  assert.equal((await app().request('/echo', init('y'.repeat(150)))).status, 413);
  assert.equal(await (await app().request('/echo', init('y'.repeat(95)))).text(), 'got 95');
});
