/**
 * lib/prometheus.ts: the registry and the counter, gauge and histogram Flint uses work
 * without prom-client's index, so its process metrics (@opentelemetry/api), Summary,
 * Pushgateway and cluster aggregator never load. In a fresh Node process, so the
 * module cache starts empty as in a master.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runModuleScript } from '../helpers/flint-process.ts';

test('a registry with a counter, a gauge and a histogram renders Prometheus text without prom-client\'s index loaded', () => {
  const script = `
    import { createRequire } from 'node:module';
    import { Counter, Gauge, Histogram, Registry } from './lib/prometheus.ts';
    const require = createRequire(import.meta.url);
    const registry = new Registry();
    new Counter({ name: 't_total', help: 'c', registers: [registry] }).inc(3);
    new Gauge({ name: 't_gauge', help: 'g', labelNames: ['kind'], registers: [registry] }).set({ kind: 'a' }, 2);
    new Histogram({ name: 't_seconds', help: 'h', buckets: [0.1, 1], registers: [registry] }).observe(0.5);
    const text = await registry.metrics();
    const loaded = Object.keys(require.cache).filter((path) => path.endsWith('/prom-client/index.js') || path.includes('/@opentelemetry/') || path.includes('/prom-client/lib/summary.js') || path.includes('/prom-client/lib/pushgateway.js') || path.includes('/prom-client/lib/cluster.js'));
    process.stdout.write(JSON.stringify({ text, contentType: registry.contentType, loaded }));
  `;
  const run = runModuleScript(script);
  assert.equal(run.status, 0, run.stderr);
  const { text, contentType, loaded } = JSON.parse(run.stdout) as { text: string; contentType: string; loaded: string[] };
  assert.match(text, /^# TYPE t_total counter\nt_total 3$/m);
  assert.match(text, /^t_gauge\{kind="a"\} 2$/m);
  assert.match(text, /^t_seconds_bucket\{le="0.1"\} 0\nt_seconds_bucket\{le="1"\} 1\nt_seconds_bucket\{le="\+Inf"\} 1$/m);
  assert.match(contentType, /^text\/plain; version=0\.0\.4/);
  assert.deepEqual(loaded, []);
});

test("if a prom-client release moves a metric class's file, the class comes from its index instead", async () => {
  const { createRequire } = await import('node:module');
  const { metricClass } = await import('../../lib/prometheus.ts');
  const index = createRequire(import.meta.url)('prom-client') as { Gauge: unknown; Registry: unknown };
  assert.equal(metricClass('moved-away/gauge', 'Gauge'), index.Gauge);
  assert.equal(metricClass('moved-away/registry', 'Registry'), index.Registry);
  assert.notEqual(metricClass('moved-away/gauge', 'Gauge'), undefined);
});
