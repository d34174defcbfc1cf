/**
 * Reporter: how an agent tells the master what happened. Every report is an ask (as
 * Spark's Worker does since SPARK-34245): the next report of a task is sent only once the
 * master has applied this one, so RUNNING can never overtake its successor on a master
 * that handles messages concurrently. Reports of one task go one at a time, in order;
 * reports of different tasks go in parallel. Each is retried with back-off (1, 2, 4, ... s)
 * through short Redis outages, with the registration epoch current at delivery; after
 * spark.worker.executorStateSync.maxAttempts the agent exits (fatal), as Spark's does, so
 * that a restarted agent reports again from the runtime's truth.
 */
import type { MasterInboundMessage, MasterInboundType } from '../../protocol/messages.ts';
import { AskRejectedError } from '../../client/master-client.ts';
import type { Logger } from '../../lib/log.ts';
import { AgentStoppedError } from './errors.ts';

export interface ReporterDeps {
  ask(type: MasterInboundType, body: unknown, timeoutMs: number): Promise<unknown>;
  /** resolves once the agent is registered (rejects when it stops) */
  whenRegistered(): Promise<void>;
  epoch(): number | undefined;
  isStopping(): boolean;
  sleep(ms: number): Promise<void>;
  fatal(message: string): void;
  log: Logger;
  maxAttempts: number;
  backoffMs: number;
  attemptTimeoutMs: number;
}

export class Reporter {
  private readonly chains = new Map<string, Promise<void>>();

  constructor(private readonly deps: ReporterDeps) {}

  /** report delivers one report of a task after every earlier report of the same task. */
  report<T extends 'ExecutorStateChanged' | 'DriverStateChanged'>(taskId: string, type: T, build: (epoch: number) => MasterInboundMessage<T>): Promise<void> {
    const previous = this.chains.get(taskId) ?? Promise.resolve();
    const next = previous.then(() => this.deliver(type, build));
    const tail = next.catch(() => undefined);
    this.chains.set(taskId, tail);
    void tail.then(() => {
      if (this.chains.get(taskId) === tail) this.chains.delete(taskId);
    });
    return next;
  }

  /** pending: the reports still on their way. */
  pending(): Promise<void>[] {
    return [...this.chains.values()];
  }

  /** deliver sends a message until the master applies it; after the last attempt the agent exits (fatal) unless `fatalOnGiveUp` is false, then it throws. */
  async deliver<T extends MasterInboundType>(type: T, build: (epoch: number) => MasterInboundMessage<T>, { fatalOnGiveUp = true } = {}): Promise<void> {
    const { maxAttempts, backoffMs, attemptTimeoutMs, log } = this.deps;
    let lastError: unknown;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      await this.deps.whenRegistered();
      const body = build(this.deps.epoch()!);
      try {
        await this.deps.ask(type, body, attemptTimeoutMs);
        return;
      } catch (error) {
        if (this.deps.isStopping()) throw new AgentStoppedError('agent stopped');
        if (error instanceof AskRejectedError) {
          // the master refused this report for good (it is dead-lettered with the reason): retrying cannot help
          log.error({ type, error: error.message }, 'state report refused by the master');
          return;
        }
        lastError = error;
        log.warn({ type, attempt, maxAttempts, error: (error as Error).message }, 'state report not delivered; retrying');
        if (attempt < maxAttempts) await this.deps.sleep(backoffMs * 2 ** (attempt - 1));
      }
    }
    const message = `cannot deliver ${type} to the master after ${maxAttempts} attempts (last error: ${(lastError as Error)?.message})`;
    if (!fatalOnGiveUp) throw new Error(message);
    this.deps.fatal(`${message}; exiting so that a restarted agent reports it again`);
    throw new AgentStoppedError(message);
  }
}
