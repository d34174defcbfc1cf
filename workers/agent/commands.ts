/**
 * The agent's command table: what each command of the inbox does, one entry per command a
 * worker receives, typed so that a command without a handler does not compile (the
 * master's HANDLERS table in functions/handlers/index.ts is built the same way).
 */
import type { Logger } from '../../lib/log.ts';
import type { InboxHandlers } from './inbox.ts';
import type { Registrar } from './registrar.ts';
import type { AgentStateStore } from './state-file.ts';
import type { TaskTable } from './task-table.ts';

export interface CommandDeps {
  table: TaskTable;
  registrar: Registrar;
  state: AgentStateStore;
  log: Logger;
  /** Spark's decommissionSelf: true when the worker (now) is decommissioned */
  decommissionSelf(): boolean;
}

export function agentCommands({ table, registrar, state, log, decommissionSelf }: CommandDeps): InboxHandlers {
  return {
    LaunchExecutor: (launch) => table.launchExecutor(launch),
    KillExecutor: ({ appId, execId }) => table.killExecutor(appId, execId),
    LaunchDriver: (launch) => table.launchDriver(launch),
    KillDriver: ({ driverId }) => table.killDriver(driverId),
    ApplicationFinished: async ({ id }) => {
      table.finishedApps.add(id);
      log.info({ appId: id }, 'application finished');
    },
    ReconnectWorker: async () => {
      void registrar.reregister('the master sent ReconnectWorker');
    },
    // remembered, so that a restarted agent registers and at once decommissions again
    DecommissionWorker: async () => {
      if (decommissionSelf()) await state.markDecommissioned();
    },
  };
}
