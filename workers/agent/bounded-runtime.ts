/**
 * boundRuntime: the runtime as the agent uses it, with a deadline on every call, so no
 * command, kill or removal can hold one of the agent's in-flight slots for ever. The
 * runtimes bound their own calls too; this is the agent's guarantee, whatever the runtime.
 * A call that runs out rejects with a DeadlineError; the caller falls back (a launch is
 * reported failed and its task removed, a kill removes by force).
 */
import { withDeadline } from '../../lib/deadline.ts';
import type { Runtime } from '../runtime/types.ts';

/** RuntimeDeadlines: how long each kind of call may take, in ms. */
export interface RuntimeDeadlines {
  /** start: image checks, create, program check, start (spark.flint.worker.launchTimeout) */
  launchMs: number;
  /** stop: added to the stop's grace period */
  stopMs: number;
  /** remove, inspect, list, recover */
  callMs: number;
}

export function boundRuntime(runtime: Runtime, deadlines: RuntimeDeadlines): Runtime {
  return {
    name: runtime.name,
    start: (spec) => withDeadline(runtime.start(spec), deadlines.launchMs, `starting ${spec.taskId}`),
    stop: (taskId, graceMs) => withDeadline(runtime.stop(taskId, graceMs), graceMs + deadlines.stopMs, `stopping ${taskId}`),
    remove: (taskId) => withDeadline(runtime.remove(taskId), deadlines.stopMs + deadlines.callMs, `removing ${taskId}`),
    inspect: (taskId) => withDeadline(runtime.inspect(taskId), deadlines.callMs, `inspecting ${taskId}`),
    list: (workerId, cluster) => withDeadline(runtime.list(workerId, cluster), deadlines.callMs, 'listing tasks'),
    recover: (status) => withDeadline(runtime.recover(status), deadlines.callMs, `recovering ${status.taskId}`),
    // the agent never waits on wait(): its one exit source is onExit
    wait: (taskId) => runtime.wait(taskId),
    watches: (taskId) => runtime.watches(taskId),
    onExit: (listener) => runtime.onExit(listener),
    close: () => withDeadline(runtime.close(), deadlines.callMs, 'closing the runtime'),
  };
}
