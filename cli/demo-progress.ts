/**
 * runDemoWithProgress: the `flint up --demo` front end — runs the Pi demo on the
 * local cluster, draws a progress bar while the executors compute their slices,
 * and prints the result and the time taken. Returns the exit code.
 */
import { runDemo, type DemoProgress } from '../demo/run-demo.ts';
import { ProgressLine } from './progress-bar.ts';
import type { CommandIo } from './command-io.ts';
import type { RunningCluster } from './up.ts';

export async function runDemoWithProgress(cluster: RunningCluster, options: { slices: number }, io: CommandIo): Promise<number> {
  const isTty = Boolean(process.stdout.isTTY) && io.env.CI !== 'true';
  const bar = new ProgressLine((text) => process.stdout.write(text), isTty);
  let lastPhase: DemoProgress['phase'] | undefined;
  io.out(`demo      SparkPi: pi = ∫₀¹ 4/(1+x²) dx in ${options.slices} slices on ${cluster.runtime === 'docker' ? 'executor containers' : 'executor processes'}`);
  try {
    const result = await runDemo({
      redisUrl: cluster.redisUrl,
      cluster: cluster.cluster,
      slices: options.slices,
      onProgress: (p) => {
        if (p.phase !== lastPhase && p.phase !== 'computing') io.out(`demo      ${p.phase}${p.executorsRunning ? ` (${p.executorsRunning} executors running)` : ''}`);
        lastPhase = p.phase;
        if (p.phase === 'computing') bar.update(p.slicesDone, p.slices, `slices, ${p.executorsRunning} executors`);
      },
    });
    bar.finish();
    io.out(`Pi is roughly ${result.pi.toFixed(12)} (error ${result.error.toExponential(2)}, bound ${result.errorBound.toExponential(2)})`);
    io.out(`computed by ${result.executors} executors in ${result.slices} slices of ${result.intervals} intervals; took ${(result.elapsedMs / 1000).toFixed(2)} s`);
    return 0;
  } catch (error) {
    bar.finish();
    io.err(`flint up: the demo failed: ${(error as Error).message}`);
    return 1;
  }
}
