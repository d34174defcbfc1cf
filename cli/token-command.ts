/**
 * `flint token`, as the command line sees it. Minting (token.ts) is imported
 * only when the command runs.
 */
import type { Command } from 'commander';
import { SCOPES, SECRET_KEY } from '../lib/http/auth.ts';
import { processIo, type CommandIo } from './command-io.ts';
import { collectRepeatable } from '../lib/repeatable-option.ts';
import type { TokenFlags } from './token.ts';

/** registerTokenCommand adds `flint token`. */
export function registerTokenCommand(program: Command, io: CommandIo = processIo()): Command {
  return program
    .command('token')
    .description(`Mint a bearer token for the REST server and UI, signed with ${SECRET_KEY}.`)
    .option('--scope <scopes>', `comma-separated scopes: ${SCOPES.join(', ')} (admin implies all)`, 'submit')
    .option('--ttl <duration>', 'lifetime, e.g. 30m, 1h, 7d (a plain number is seconds)', '1h')
    .option('--subject <name>', 'who the token is for (the sub claim, shown in logs)')
    .option('--properties-file <path>', `properties file holding ${SECRET_KEY} (spark-defaults.conf format)`)
    .option('--conf <key=value>', 'a configuration override, repeatable', collectRepeatable, [])
    .addHelpText('after', '\nExample:\n  export FLINT_TOKEN=$(flint token --scope submit,kill --ttl 1h)')
    .action(async (flags: TokenFlags) => {
      const { runToken } = await import('./token.ts');
      io.setExitCode(runToken(flags, io));
    });
}
