/**
 * HandlerContext: what every master handler gets. Handlers are stateless: all
 * state is in Redis behind `store`; `now` is read once per message and passed down.
 */
import type { Logger } from '../../lib/log.ts';
import type { FlintConfig } from '../../protocol/config.ts';
import type { MasterInboundType, MasterInboundMessage } from '../../protocol/messages.ts';
import type { MasterStore } from '../store/master-store.ts';

export interface HandlerContext {
  store: MasterStore;
  config: FlintConfig;
  log: Logger;
  now: number;
  /** id of the inbound message (the BullMQ job id): the idempotency key of non-idempotent requests */
  requestId: string;
  /** masterUrl as Spark prints it (spark://host:port) */
  masterUrl: string;
  /** ask for a scheduling pass (coalesced; never waits) */
  kickScheduler(): void;
}

/** Handler: one per inbound message type; returns the reply of an ask (or nothing for a send). */
export type Handler<T extends MasterInboundType> = (ctx: HandlerContext, message: MasterInboundMessage<T>) => Promise<unknown>;

/** HandlerRejection: a valid message the master refuses (dead-lettered with this reason, never retried). */
export class HandlerRejection extends Error {
  override name = 'HandlerRejection';
}
