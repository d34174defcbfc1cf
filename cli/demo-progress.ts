/**
 * runDemoWithProgress: the `flint up --demo` front end. It submits the Pi demo's
 * driver in cluster mode to the local cluster (demo/pi-demo.ts), echoes what the
 * driver says, draws a progress bar from its `progress k/N` lines, and prints the
 * result and the time taken once the driver is FINISHED. Returns the exit code.
 */
import { runPiDemo, type PiDemoEvent } from '../demo/pi-demo.ts';
import { DEMO_IMAGE, DEMO_IMAGE_DIR } from '../demo/image.ts';
import { ProgressLine } from './progress-bar.ts';
import type { CommandIo } from './command-io.ts';
import type { RunningCluster } from './up.ts';

export async function runDemoWithProgress(cluster: RunningCluster, options: { slices: number; signal?: AbortSignal }, io: CommandIo): Promise<number> {
  const isTty = Boolean(process.stdout.isTTY) && io.env.CI !== 'true';
  const bar = new ProgressLine((text) => process.stdout.write(text), isTty);
  let barShown = false;
  // a line printed while the bar is drawn in place must start on a line of its own
  const say = (line: string) => {
    if (barShown && isTty) process.stdout.write('\n');
    barShown = false;
    io.out(line);
  };
  io.out(`demo      SparkPi in cluster mode: pi = ∫₀¹ 4/(1+x²) dx in ${options.slices} slices`);
  if (cluster.runtime === 'docker') {
    io.out(`demo      the driver and its executors are ${DEMO_IMAGE} containers (NetworkMode host)`);
  } else {
    io.out(`demo      process runtime, no containers: the driver and its executors run as local processes (busybox sh with the scripts in ${DEMO_IMAGE_DIR})`);
  }
  const onEvent = (event: PiDemoEvent) => {
    switch (event.type) {
      case 'image':
        say(`demo      image ${DEMO_IMAGE} ${event.outcome === 'built' ? 'built' : 'up to date'}`);
        break;
      case 'submitted':
        say(`demo      submitted driver ${event.driverId} through ${cluster.restUrl}`);
        break;
      case 'state':
        say(`demo      driver ${event.state}${event.workerHostPort ? ` on the worker at ${event.workerHostPort}` : ''}`);
        break;
      case 'output':
        if (event.line.kind === 'progress') {
          bar.update(event.line.done, event.line.total, 'slices');
          barShown = true;
        } else if (event.line.kind === 'note') {
          say(`driver    ${event.line.text}`);
        }
        break;
    }
  };
  try {
    const result = await runPiDemo({
      runtime: cluster.runtime,
      restUrl: cluster.restUrl,
      token: cluster.token,
      appApiUrl: cluster.appApiUrl,
      driverToken: cluster.driverToken,
      slices: options.slices,
      signal: options.signal,
      onEvent,
    });
    bar.finish();
    barShown = false;
    io.out(`Pi is roughly ${result.pi} (error ${result.error.toExponential(2)}, midpoint-rule bound ${result.errorBound.toExponential(2)})`);
    io.out(`computed by ${result.executors} executors in ${result.slices} slices of ${result.intervals} intervals; took ${(result.elapsedMs / 1000).toFixed(2)} s from submission to FINISHED`);
    return 0;
  } catch (error) {
    bar.finish();
    io.err(`flint up: the demo failed: ${(error as Error).message}`);
    return 1;
  }
}
