/**
 * Registrar: the agent's registration with the master and its heartbeats.
 *
 *   registering  RegisterWorker asks on Spark's retry schedule (workers/registration.ts);
 *                meanwhile a gate holds inbox commands and state reports back.
 *                RegisterWorkerFailed or giving up is fatal.
 *   registered   the gate opens; a heartbeat every timeout/4 (lib/worker-heartbeat.ts); a
 *                beat answered 'reconnect' / 'unknown' / 'stale' (or a ReconnectWorker)
 *                registers again under the same worker id, closing the gate meanwhile.
 *
 * The registration carries the agent's instance token (state-file.ts), so a second agent
 * claiming a live worker id is refused with Spark's "Duplicate worker ID", while the same
 * agent restarted on its work dir is taken back with its epoch.
 */
import { parseReply, RegisterWorkerReply, type MasterInboundMessage } from '../../protocol/messages.ts';
import type { FlintConfig } from '../../protocol/config.ts';
import { recordHeartbeat, type HeartbeatOutcome } from '../../lib/worker-heartbeat.ts';
import { withDeadline } from '../../lib/deadline.ts';
import type { RedisConnection } from '../../lib/redis.ts';
import type { Logger } from '../../lib/log.ts';
import { GIVE_UP_MESSAGE, nextRegistrationStep, registrationFuzz, type RegistrationPlan } from '../registration.ts';
import { AgentStoppedError, FatalAgentError } from './errors.ts';

/** Gate: a promise the registration opens (resolve) or the stop closes for good (reject). */
class Gate {
  promise!: Promise<void>;
  settled = false;
  private resolveGate!: () => void;
  private rejectGate!: (error: Error) => void;

  constructor() {
    this.reset();
  }

  reset(): void {
    this.settled = false;
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolveGate = resolve;
      this.rejectGate = reject;
    });
    this.promise.catch(() => undefined);
  }

  open(): void {
    this.settled = true;
    this.resolveGate();
  }

  fail(error: Error): void {
    this.settled = true;
    this.rejectGate(error);
  }
}

export interface RegistrarDeps {
  config: FlintConfig;
  redis: RedisConnection;
  cluster: string;
  workerId: string;
  log: Logger;
  ask(type: 'RegisterWorker', body: MasterInboundMessage<'RegisterWorker'>, timeoutMs: number): Promise<unknown>;
  /** the RegisterWorker message as of now (what the agent runs) */
  body(): MasterInboundMessage<'RegisterWorker'>;
  /** called once per successful registration, after the gate opened */
  onRegistered(result: { epoch: number; duplicate: boolean }): void;
  /** the agent must exit */
  fatal(message: string): void;
  isStopping(): boolean;
  sleep(ms: number): Promise<void>;
  random?: () => number;
}

export class Registrar {
  epoch: number | undefined;
  registered = false;
  masterUrl = '';
  masterWebUiUrl = '';
  private readonly gate = new Gate();
  private registering: Promise<void> | undefined;

  constructor(private readonly deps: RegistrarDeps) {}

  /** whenRegistered resolves once registered (at once if it is), rejects when the agent stops. */
  whenRegistered(): Promise<void> {
    if (this.deps.isStopping()) return Promise.reject(new AgentStoppedError('agent stopped'));
    return this.gate.promise;
  }

  /** close fails everything waiting for the gate (the agent stops). */
  close(): void {
    if (!this.gate.settled) this.gate.fail(new AgentStoppedError('agent stopped'));
  }

  /**
   * register (Spark's registerWithMaster): a no-op while a registration is under way;
   * otherwise closes the gate (commands and reports wait) and registers.
   */
  register(reason: string): Promise<void> {
    if (this.registering !== undefined) return this.registering;
    if (this.registered) this.deps.log.warn({ reason }, 'registering with the master again');
    this.registered = false;
    if (this.gate.settled) this.gate.reset();
    this.registering = this.registerWithRetries()
      .then((result) => this.afterRegistered(result))
      .finally(() => {
        this.registering = undefined;
      });
    return this.registering;
  }

  /** reregister: register again; a failure is fatal (unless the agent is stopping). */
  async reregister(reason: string): Promise<void> {
    try {
      await this.register(reason);
    } catch (error) {
      if (error instanceof AgentStoppedError || this.deps.isStopping()) return;
      this.deps.fatal((error as Error).message);
    }
  }

  private async registerWithRetries(): Promise<{ epoch: number; duplicate: boolean; masterUrl?: string; masterWebUiUrl?: string }> {
    const { config } = this.deps;
    const plan: RegistrationPlan = {
      baseIntervalMs: config.get<number>('spark.flint.worker.registrationInterval'),
      initialRetries: config.get<number>('spark.worker.initialRegistrationRetries'),
      maxRetries: config.get<number>('spark.worker.maxRegistrationRetries'),
      fuzz: registrationFuzz(this.deps.random),
    };
    for (let retriesDone = 0; ; retriesDone++) {
      if (this.deps.isStopping()) throw new AgentStoppedError('agent stopped while registering');
      const step = nextRegistrationStep(retriesDone, plan);
      const started = Date.now();
      try {
        const reply = await withDeadline(this.deps.ask('RegisterWorker', this.deps.body(), step.delayMs), step.delayMs + 1000, 'RegisterWorker');
        const parsed = parseReply(RegisterWorkerReply, 'RegisterWorker', reply);
        if (parsed.type === 'RegisteredWorker') return parsed;
        throw new FatalAgentError(`Worker registration failed: ${parsed.message}`);
      } catch (error) {
        if (error instanceof FatalAgentError) throw error;
        if (this.deps.isStopping()) throw new AgentStoppedError('agent stopped while registering');
        this.deps.log.warn({ attempt: retriesDone + 1, error: (error as Error).message }, 'no answer from the master; will retry');
        await this.deps.sleep(step.delayMs - (Date.now() - started));
      }
      if (step.action === 'give-up') throw new FatalAgentError(GIVE_UP_MESSAGE);
      this.deps.log.info({ retry: step.retry }, 'Retrying connection to master');
    }
  }

  private afterRegistered(result: { epoch: number; duplicate: boolean; masterUrl?: string; masterWebUiUrl?: string }): void {
    if (this.deps.isStopping()) throw new AgentStoppedError('agent stopped while registering');
    const { log } = this.deps;
    if (result.duplicate) log.warn({ epoch: result.epoch }, 'Duplicate registration at master: keeping epoch');
    if (this.epoch !== undefined && this.epoch !== result.epoch) {
      log.warn({ previous: this.epoch, epoch: result.epoch }, 'registered under a new epoch: commands for the old one will be refused');
    }
    this.epoch = result.epoch;
    this.masterUrl = result.masterUrl ?? this.masterUrl;
    this.masterWebUiUrl = result.masterWebUiUrl ?? this.masterWebUiUrl;
    this.registered = true;
    this.gate.open();
    log.info({ epoch: result.epoch, duplicate: result.duplicate }, 'Successfully registered with master');
    this.deps.onRegistered(result);
  }

  /** beat sends one heartbeat when registered, and registers again when the master asks for it. */
  async beat(): Promise<void> {
    if (!this.registered || this.epoch === undefined) return;
    let outcome: HeartbeatOutcome;
    try {
      outcome = await withDeadline(recordHeartbeat(this.deps.redis, this.deps.cluster, this.deps.workerId, this.epoch), 10_000, 'heartbeat');
    } catch (error) {
      if (!this.deps.isStopping()) this.deps.log.warn({ err: error }, 'heartbeat failed; retrying at the next beat');
      return;
    }
    if (outcome === 'ok' || !this.registered) return;
    if (outcome === 'stale') this.deps.log.warn({ epoch: this.epoch }, 'the master knows a newer registration of this worker id; registering again');
    else this.deps.log.warn({ outcome }, 'the master asked this worker to reconnect');
    void this.reregister(`heartbeat answered ${outcome}`);
  }
}
