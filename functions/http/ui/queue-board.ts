/**
 * loadQueueBoard: bull-board over the master's BullMQ queue, built on its first request.
 * It is the heaviest part of the UI to load (its React bundle's server side and adapters,
 * about 14 MB of resident memory), and most masters never serve it: an idle master does
 * not pay for it.
 */
import type { Queue } from '../../../lib/bullmq.ts';
import { Hono } from 'hono';

/** QueueBoard: a hono app serving bull-board under /queues, once built. */
export type QueueBoard = () => Promise<Hono>;

export function lazyQueueBoard(queue: Queue, title: string): QueueBoard {
  let board: Promise<Hono> | undefined;
  return () =>
    (board ??= (async () => {
      const [{ createBullBoard }, { BullMQAdapter }, { HonoAdapter }, { serveStatic }] = await Promise.all([
        import('@bull-board/api'),
        import('@bull-board/api/bullMQAdapter'),
        import('@bull-board/hono'),
        import('@hono/node-server/serve-static'),
      ]);
      const adapter = new HonoAdapter(serveStatic);
      adapter.setBasePath('/queues');
      createBullBoard({ queues: [new BullMQAdapter(queue)], serverAdapter: adapter, options: { uiConfig: { boardTitle: title } } });
      // mounted at its base path, so it answers the request's full path
      return new Hono().route('/queues', adapter.registerPlugin() as unknown as Hono);
    })());
}
