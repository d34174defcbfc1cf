#!/usr/bin/env node
// Entry point of the `flint` command: runs cli/main.ts through tsx (no build step).
import { register } from 'tsx/esm/api';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

register();
const here = dirname(fileURLToPath(import.meta.url));
const { main } = await import(join(here, '..', 'cli', 'main.ts'));
process.exit(await main(process.argv.slice(2)));
