/** Errors that steer the agent's control flow (not failures of a task). */

/** FatalAgentError: the agent must exit (registration refused or given up). */
export class FatalAgentError extends Error {
  override name = 'FatalAgentError';
}

/** AgentStoppedError: the agent is stopping; work in progress gives up quietly (an inbox entry stays pending). */
export class AgentStoppedError extends Error {
  override name = 'AgentStoppedError';
}
