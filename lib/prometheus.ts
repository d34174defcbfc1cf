/**
 * prom-client's registry and the three metric kinds Flint uses, loaded without the
 * rest of its index. Import them from here, never from 'prom-client' directly
 * (eslint.config.js forbids it elsewhere).
 *
 * prom-client's index also loads the process metrics (`collectDefaultMetrics`, which
 * brings @opentelemetry/api), the Pushgateway client, Summary (with tdigest and
 * bintrees) and the cluster aggregator: about 90 modules a master serving /metrics
 * compiled and kept, and about 11 MB of RSS in a fresh process against 0.5 MB for the
 * four used here (docs/packaging.md). Each of these files exports its class as the
 * module, as the index re-exports it.
 */
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

const require = createRequire(import.meta.url);

/**
 * metricClass: prom-client's lib/<file>.js, or the same class from its index if a
 * release moved that file or closed it with an `exports` map (then it costs memory,
 * never a start-up).
 */
export function metricClass<K extends 'Registry' | 'Counter' | 'Gauge' | 'Histogram'>(file: string, name: K): (typeof PromClient)[K] {
  try {
    return require(`prom-client/lib/${file}`) as (typeof PromClient)[K];
  } catch {
    return (require('prom-client') as typeof PromClient)[name];
  }
}

export const Registry = metricClass('registry', 'Registry');
export type Registry = PromClient.Registry;
export const Counter = metricClass('counter', 'Counter');
export const Gauge = metricClass('gauge', 'Gauge');
export const Histogram = metricClass('histogram', 'Histogram');
