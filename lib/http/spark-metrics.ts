/**
 * Spark's metric sources in Prometheus text, shared by the master UI (the `master`
 * and `applications` instances) and the worker UI (`worker`).
 *
 * Spark's PrometheusServlet writes one series per metric, with the source and the
 * metric name folded into the series name: `metrics_master_aliveWorkers_Value`,
 * `metrics_application_<name>_<startMillis>_runtime_ms_Value`,
 * `metrics_worker_memUsed_MB_Value`. Three of Spark's names break Prometheus's
 * naming rules (`runtime_ms`, `memUsed_MB`, `memFree_MB`: `promtool check metrics`
 * rejects abbreviated units), the application source makes a new series name per
 * application, and no family has HELP or TYPE. Flint keeps Spark's paths, source
 * names and metric names, but carries the names in labels of one gauge family per
 * instance, so every endpoint passes promtool:
 *
 *   metrics_master_Value{type="gauges",source="master",metric="aliveWorkers"} 2
 *   metrics_application_Value{type="gauges",source="application.SparkPi.1765090000000",app_id="app-…",metric="runtime_ms"} 5230
 *   metrics_worker_Value{type="gauges",source="worker",metric="memUsed_MB"} 1024
 *
 * Spark's `status` gauge (a string, which Spark's servlet drops) is the value 1 with
 * the state in a `state` label. docs/deploy.md shows the relabelling rule that
 * restores Spark's series names for dashboards that need them.
 */

/** SparkGauge: one metric of one Spark source. */
export interface SparkGauge {
  /** Spark's source name, e.g. `master`, `worker`, `application.SparkPi.1765090000000` */
  source: string;
  /** Spark's metric name, e.g. `aliveWorkers`, `runtime_ms`, `memUsed_MB` */
  metric: string;
  value: number;
  /** further labels (app_id, state) */
  labels?: Record<string, string>;
}

/** SPARK_METRICS_CONTENT_TYPE: Prometheus text exposition 0.0.4. */
export const SPARK_METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** escapeLabelValue: backslash, double quote and newline escaped, as the exposition format requires. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/**
 * renderSparkInstance: the exposition text of one metrics instance (`master`,
 * `application`, `worker`): one gauge family `metrics_<instance>_Value`, HELP and
 * TYPE first, then one line per gauge.
 */
export function renderSparkInstance(instance: 'master' | 'application' | 'worker', help: string, gauges: readonly SparkGauge[]): string {
  const family = `metrics_${instance}_Value`;
  const lines = [`# HELP ${family} ${help.replace(/\\/g, '\\\\').replace(/\n/g, ' ')}`, `# TYPE ${family} gauge`];
  for (const gauge of gauges) {
    const labels: Record<string, string> = { type: 'gauges', source: gauge.source, metric: gauge.metric, ...gauge.labels };
    const text = Object.entries(labels)
      .map(([name, value]) => `${name}="${escapeLabelValue(value)}"`)
      .join(',');
    lines.push(`${family}{${text}} ${formatValue(gauge.value)}`);
  }
  return lines.join('\n') + '\n';
}
