/**
 * DriverGateway: what the REST submission server needs from the master, and
 * MasterGateway, its implementation over the master's BullMQ queue (asks through
 * client/master-client.ts; the replies are the protocol/messages.ts responses).
 *
 * The interface keeps the hono app free of Redis, so the HTTP protocol can be
 * tested in-process against any implementation.
 */
import { Queue } from '../../../lib/bullmq.ts';
import {
  DriverStatusResponse,
  KillAllDriversResponse,
  KillDriverResponse,
  SubmitDriverResponse,
  formatIssues,
  type DriverDescription,
  z,
} from '../../../protocol/messages.ts';
import { AskRejectedError, AskTimeoutError, MasterClient } from '../../../client/master-client.ts';
import { bullConnection, closeBull } from '../../../lib/redis.ts';

export interface DriverGateway {
  /**
   * submitDriver: RequestSubmitDriver. `requestId` (from an Idempotency-Key) makes it
   * idempotent: every submission with the same id gets the first one's answer.
   */
  submitDriver(desc: DriverDescription, options?: { requestId?: string }): Promise<SubmitDriverResponse>;
  killDriver(driverId: string): Promise<KillDriverResponse>;
  killAllDrivers(): Promise<KillAllDriversResponse>;
  driverStatus(driverId: string): Promise<DriverStatusResponse>;
  /** clearCompleted: forget completed drivers and applications; true when done */
  clearCompleted(): Promise<boolean>;
  /** ready: whether a master can serve requests now (readyz) */
  ready(): Promise<boolean>;
}

/** GatewayUnavailableError: no master answered in time; the server answers 503. */
export class GatewayUnavailableError extends Error {
  override name = 'GatewayUnavailableError';
}

/** DRIVER_ID: the id grammar of protocol/messages.ts; other ids cannot name a driver. */
const DRIVER_ID = /^[A-Za-z0-9._:@/-]{1,256}$/;

export interface MasterGatewayOptions {
  redisUrl: string;
  cluster: string;
  /** how long an ask waits for a master's reply (Spark's spark.rpc.askTimeout default for clients: 10 s) */
  askTimeoutMs?: number;
}

/**
 * MasterGateway asks the master through its queue. Readiness is "at least one
 * master process consumes the queue" (BullMQ's worker count), Flint's analogue
 * of Spark's `state != STANDBY`: with no consumer every ask would time out.
 */
export class MasterGateway implements DriverGateway {
  private readonly askTimeoutMs: number;

  constructor(
    private readonly client: MasterClient,
    private readonly probe: Pick<Queue, 'getWorkersCount' | 'close'>,
    askTimeoutMs = 10_000,
  ) {
    this.askTimeoutMs = askTimeoutMs;
  }

  /** connect: a gateway with its own MasterClient and readiness probe; close() releases both. */
  static connect(options: MasterGatewayOptions): MasterGateway {
    const client = new MasterClient(options.redisUrl, options.cluster, 'flint-rest');
    const probe = new Queue(client.keys.masterQueue, {
      connection: bullConnection(options.redisUrl, { name: 'flint-rest-probe' }),
      prefix: client.keys.bullPrefix,
    });
    return new MasterGateway(client, { getWorkersCount: () => probe.getWorkersCount(), close: () => closeBull(probe) }, options.askTimeoutMs);
  }

  async submitDriver(desc: DriverDescription, options: { requestId?: string } = {}): Promise<SubmitDriverResponse> {
    try {
      return await this.ask('RequestSubmitDriver', { driverDescription: desc }, SubmitDriverResponse, options.requestId);
    } catch (error) {
      // The master handled the submission and refused it: a logical failure (200, success false), as Spark reports refusals.
      if (error instanceof AskRejectedError) return { success: false, message: `The master refused the driver: ${error.message}` };
      throw error;
    }
  }

  async killDriver(driverId: string): Promise<KillDriverResponse> {
    // An id outside the grammar can name no driver; answer as the master does for an unknown id.
    if (!DRIVER_ID.test(driverId)) return { driverId, success: false, message: `Driver ${driverId} has already finished or does not exist` };
    return this.ask('RequestKillDriver', { driverId }, KillDriverResponse);
  }

  async killAllDrivers(): Promise<KillAllDriversResponse> {
    return this.ask('RequestKillAllDrivers', {}, KillAllDriversResponse);
  }

  async driverStatus(driverId: string): Promise<DriverStatusResponse> {
    if (!DRIVER_ID.test(driverId)) return { found: false };
    return this.ask('RequestDriverStatus', { driverId }, DriverStatusResponse);
  }

  async clearCompleted(): Promise<boolean> {
    return this.ask('RequestClearCompletedDriversAndApps', {}, z.boolean());
  }

  async ready(): Promise<boolean> {
    return (await this.probe.getWorkersCount()) > 0;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.client.close(), this.probe.close()]);
  }

  private async ask<S extends z.ZodType>(
    type: 'RequestSubmitDriver' | 'RequestKillDriver' | 'RequestKillAllDrivers' | 'RequestDriverStatus' | 'RequestClearCompletedDriversAndApps',
    body: Record<string, unknown>,
    replySchema: S,
    requestId?: string,
  ): Promise<z.infer<S>> {
    let reply: unknown;
    try {
      // The body was built for `type` above; MasterClient validates it again before enqueueing.
      reply = await this.client.ask(type, body as never, this.askTimeoutMs, { requestId });
    } catch (error) {
      if (error instanceof AskTimeoutError) throw new GatewayUnavailableError(error.message);
      throw error;
    }
    const parsed = replySchema.safeParse(reply);
    if (!parsed.success) throw new Error(`the master's reply to ${type} is not a valid response: ${formatIssues(parsed.error)}`);
    return parsed.data;
  }
}
