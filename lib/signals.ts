/**
 * waitForSignal resolves on the first SIGTERM or SIGINT, and removes its handlers,
 * so a long-running Flint command can stop cleanly (and a second signal gets
 * Node's default behaviour).
 */
export function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
