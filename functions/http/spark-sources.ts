/**
 * Spark's master-side metric sources over the cluster state read from Redis:
 * MasterSource (`workers`, `aliveWorkers`, `apps`, `waitingApps`) and one
 * ApplicationSource per active application (`status`, `runtime_ms`, `cores`), as
 * the master UI serves them at `/metrics/master/prometheus` and
 * `/metrics/applications/prometheus`. Pure: state in, text out (lib/http/spark-metrics.ts
 * says how Spark's names are carried).
 */
import type { MasterState } from '../../protocol/records.ts';
import { renderSparkInstance, type SparkGauge } from '../../lib/http/spark-metrics.ts';

/** masterSourceText: Spark's MasterSource. `workers` counts every known worker (DEAD ones until culled), as Spark's. */
export function masterSourceText(state: Pick<MasterState, 'workers' | 'activeApps'>): string {
  const gauges: SparkGauge[] = [
    { source: 'master', metric: 'workers', value: state.workers.length },
    { source: 'master', metric: 'aliveWorkers', value: state.workers.filter((w) => w.state === 'ALIVE').length },
    { source: 'master', metric: 'apps', value: state.activeApps.length },
    { source: 'master', metric: 'waitingApps', value: state.activeApps.filter((a) => a.state === 'WAITING').length },
  ];
  return renderSparkInstance('master', "Spark's master source (MasterSource); metric is Spark's metric name.", gauges);
}

/**
 * applicationsSourceText: Spark's ApplicationSource of every active application.
 * Its source name is Spark's `application.<name>.<startTime ms>`; runtime_ms is
 * Spark's ApplicationInfo.duration (now − start while active).
 */
export function applicationsSourceText(state: Pick<MasterState, 'activeApps' | 'readAt'>): string {
  const gauges: SparkGauge[] = [];
  for (const app of state.activeApps) {
    const source = `application.${app.name}.${app.startTime}`;
    const labels = { app_id: app.id };
    const runtime = app.endTime > 0 ? app.endTime - app.startTime : Math.max(0, state.readAt - app.startTime);
    gauges.push(
      { source, metric: 'status', value: 1, labels: { ...labels, state: app.state } },
      { source, metric: 'runtime_ms', value: runtime, labels },
      { source, metric: 'cores', value: app.coresGranted, labels },
    );
  }
  return renderSparkInstance('application', "Spark's application sources (ApplicationSource), one per active application; metric is Spark's metric name (status: 1, with the state in the state label).", gauges);
}
