/**
 * `node --import tsx demo/build-image.ts` (installed: `node dist/demo/build-image.js`): build flint-demo:latest if it is
 * missing or its inputs changed (infra/setup.sh runs this; prints one line).
 */
import { DEMO_IMAGE, ensureDemoImage } from './image.ts';

const started = Date.now();
ensureDemoImage().then(
  (outcome) => process.stdout.write(`setup: images: ${outcome} ${DEMO_IMAGE}${outcome === 'built' ? ` (${Math.round((Date.now() - started) / 1000)}s)` : ' (inputs unchanged)'}\n`),
  (error) => {
    process.stderr.write(`setup: ERROR: ${(error as Error).message}\n`);
    process.exit(1);
  },
);
