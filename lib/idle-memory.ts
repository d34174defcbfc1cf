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
 * for as long as it idles. And code that runs often while modules load (zod building
 * schemas, configuration parsing) gets hot enough for V8's optimizing compiler, whose
 * background compile jobs take several MB from the C allocator, which keeps them, and
 * touch several MB of the compiler's own code in the node binary: all for code that
 * never runs again. Two steps (bench/startup.ts, docs/benchmarks.md):
 *
 * 1. `holdStartupMemory`, called by the command before it imports its
 *    implementation: the young generation keeps its initial size while modules
 *    load (the objects are promoted at once, as they would be anyway), and the
 *    optimizing compiler (TurboFan) is off; start-up code runs in the interpreter
 *    and the baseline compiler, as code that runs once should.
 * 2. `releaseStartupMemory`, called once the process is ready (or by the hold itself
 *    after HOLD_LIMIT_MS, for a process that waits long to be ready): the optimizing
 *    compiler is on again (code that gets hot under load is optimized as usual) and
 *    young-generation growth is allowed again (under load it grows as usual, and the
 *    memory reducer shrinks it when the load is gone); a few seconds later, when the
 *    process is idle, one full collection starts the memory reducer.
 *
 * When node was started with a choice of its own about the optimizing compiler
 * (`--no-turbofan`, `--jitless`, `--lite-mode`, in its arguments or NODE_OPTIONS),
 * that choice is left alone.
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

/** OPTIMIZER_FLAGS: node options by which a user chooses how V8 optimizes; given any, the optimizer is left as it is. */
const OPTIMIZER_FLAGS = /^--(no-)?(turbofan|opt|jitless|lite-mode|maglev)\b/;

/** optimizerChosenByUser: node's arguments or NODE_OPTIONS say how V8 should optimize. */
export function optimizerChosenByUser(execArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env.NODE_OPTIONS ?? ''): boolean {
  return [...execArgv, ...nodeOptions.split(/\s+/)].some((option) => OPTIMIZER_FLAGS.test(option.replace(/_/g, '-')));
}

/**
 * HOLD_LIMIT_MS: the longest the hold lasts without a release. A process can wait long
 * before it is ready (an agent that no master answers retries its registration for up
 * to about 18 minutes; a master waits for Redis): whatever it does meanwhile, it does
 * with the optimizing compiler, as usual, after this.
 */
const HOLD_LIMIT_MS = 30_000;

let phase: 'loading' | 'held' | 'released' = 'loading';
let optimizerHeld = false;
let holdLimit: NodeJS.Timeout | undefined;

/**
 * holdStartupMemory keeps V8's young generation at its initial size and its optimizing
 * compiler off until releaseStartupMemory, or for at most `limitMs`.
 */
export function holdStartupMemory(options: { limitMs?: number } = {}): void {
  if (phase !== 'loading') return;
  phase = 'held';
  setFlagsFromString('--semi-space-growth-factor=1');
  if (!optimizerChosenByUser()) {
    setFlagsFromString('--no-turbofan');
    optimizerHeld = true;
  }
  holdLimit = setTimeout(releaseStartupMemory, options.limitMs ?? HOLD_LIMIT_MS).unref();
}

/**
 * releaseStartupMemory turns the optimizing compiler on again, lets the young
 * generation grow again and, a few seconds later, runs one full collection. Once per
 * process: later calls do nothing.
 */
export function releaseStartupMemory(): void {
  if (phase === 'released') return;
  phase = 'released';
  clearTimeout(holdLimit);
  if (optimizerHeld) {
    setFlagsFromString('--turbofan');
    optimizerHeld = false;
  }
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
