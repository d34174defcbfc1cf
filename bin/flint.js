#!/usr/bin/env node
// Entry point of the `flint` command.
// An installed package (npm pack holds no TypeScript) runs the compiled JavaScript in
// dist/. A git checkout (cli/main.ts beside bin/) runs the sources through tsx, a dev
// dependency, so a checkout can never run compiled code older than its sources.
// docs/packaging.md says why.
import { existsSync } from 'node:fs';

const sources = new URL('../cli/main.ts', import.meta.url);
let main;
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import(sources.href));
} else {
  ({ main } = await import('../dist/cli/main.js'));
}
process.exit(await main(process.argv.slice(2)));
