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

export const Registry = require('prom-client/lib/registry') as typeof PromClient.Registry;
export type Registry = PromClient.Registry;
export const Counter = require('prom-client/lib/counter') as typeof PromClient.Counter;
export const Gauge = require('prom-client/lib/gauge') as typeof PromClient.Gauge;
export const Histogram = require('prom-client/lib/histogram') as typeof PromClient.Histogram;
