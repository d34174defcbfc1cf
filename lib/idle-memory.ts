/**
 * Idle memory of the long-running processes (`flint master`, `flint worker`): what
 * their start-up leaves behind, given back once they idle.
 *
 * Loading Flint and its packages allocates objects that mostly live forever, so V8
 * grows its young generation to the largest size (2 × 16 MB semi-spaces) while they
 * load, and leaves the old generation with start-up garbage (about 7 MB). An idle
 * process allocates too little to need a full collection, and V8 starts its memory
 * reducer (the collector that shrinks both and gives pages back) only after one, so
 * without help an idle master or agent stays at its start-up peak of about 100 MB RSS
 * for as long as it idles. Two steps bring it to the high 70s (bench/startup.ts,
 * docs/benchmarks.md):
 *
 * 1. `holdYoungGenerationWhileLoading`, called by the command before it imports its
 *    implementation: the young generation keeps its initial size while modules
 *    load (the objects are promoted at once, as they would be anyway).
 * 2. `releaseStartupMemory`, called once the process is ready: young-generation
 *    growth is allowed again (under load it grows as usual, and the memory reducer
 *    shrinks it when the load is gone), and a few seconds later, when the process
 *    is idle, one full collection starts the memory reducer.
 *
 * Node has no API for a collection, so `gc` is taken from a fresh context created
 * while `--expose-gc` is briefly on; the main context never has a `gc` global.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** V8's default factor by which the young generation grows (--semi-space-growth-factor). */
const DEFAULT_YOUNG_GROWTH_FACTOR = 2;

/** RELEASE_DELAY_MS: how long after start-up the collection runs; by then start-up's allocation burst is over. */
const RELEASE_DELAY_MS = 5000;

/** holdYoungGenerationWhileLoading keeps V8's young generation at its initial size until releaseStartupMemory. */
export function holdYoungGenerationWhileLoading(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

/** releaseStartupMemory lets the young generation grow again and, a few seconds later, runs one full collection. */
export function releaseStartupMemory(): void {
  setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_YOUNG_GROWTH_FACTOR}`);
  setTimeout(collectGarbage, RELEASE_DELAY_MS).unref();
}

function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  try {
    (runInNewContext('gc') as () => void)();
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
