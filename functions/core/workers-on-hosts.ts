/**
 * workersOnHosts: which workers a `DecommissionWorkersOnHosts` request names.
 *
 * Spark's Master matches the hostnames, lower-cased, against the host of every
 * worker in `addressToWorker`, which holds each registration that has not been
 * removed: ALIVE, UNKNOWN and already DECOMMISSIONED workers, never DEAD ones.
 * Matching decommissioned workers again is deliberate: a repeated request names
 * the same workers, so its count (the reply, and the UI's 200 / 404) is stable.
 */

/** WorkerHost: the fields of a worker the match needs. */
export interface WorkerHost {
  id: string;
  host: string;
  /** ALIVE, DEAD, DECOMMISSIONED or UNKNOWN */
  state: string;
}

/** workersOnHosts returns the ids (sorted) of the workers that are not DEAD and whose host is one of `hostnames`, ignoring case. */
export function workersOnHosts(workers: readonly WorkerHost[], hostnames: readonly string[]): string[] {
  const wanted = new Set(hostnames.map((h) => h.toLowerCase()));
  return workers
    .filter((w) => w.state !== 'DEAD' && wanted.has(w.host.toLowerCase()))
    .map((w) => w.id)
    .sort();
}
