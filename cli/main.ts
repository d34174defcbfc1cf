/**
 * The `flint` command: one entry point for every process and client.
 *   flint master | worker | up | submit | status | kill | token | acl
 * Every command prints one clear line on error and exits non-zero.
 *
 * Only the commands' definitions (`*-command.ts`: names, options, help) are
 * loaded here; each action imports its implementation when it runs, so
 * `flint --help` or `flint status` does not pay for BullMQ, hono, dockerode,
 * zod or pino. A definition imports nothing heavier than commander and
 * protocol/config.ts.
 */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../protocol/config.ts';
import { registerMasterCommand } from '../functions/master-command.ts';
import { registerWorkerCommand } from '../workers/worker-command.ts';
import { registerSubmitCommand } from './submit-command.ts';
import { registerStatusCommand, registerKillCommand } from './status-kill-command.ts';
import { registerTokenCommand } from './token-command.ts';
import { registerUpCommand } from './up-command.ts';
import { registerAclCommand } from './acl-command.ts';

export function buildProgram(): Command {
  const program = new Command('flint')
    .description('Flint: Spark Standalone\'s deploy module as a leaderless, queue-driven cluster manager on Redis and Docker')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerMasterCommand(program);
  registerWorkerCommand(program);
  registerSubmitCommand(program);
  registerStatusCommand(program);
  registerKillCommand(program);
  registerTokenCommand(program);
  registerUpCommand(program);
  registerAclCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return 0;
      return error.exitCode || 1;
    }
    const message = error instanceof ConfigError ? error.message : (error as Error).message ?? String(error);
    process.stderr.write(`flint: ${message}\n`);
    return 1;
  }
}

const isEntry = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => {
      process.stderr.write(`flint: ${(error as Error).message}\n`);
      process.exit(1);
    },
  );
}
