/**
 * `flint status <id>` and `flint kill <id>`, as the command line sees them. What
 * they do (status-kill.ts: ask the REST server, print the answer) is imported
 * only when a command runs.
 */
import type { Command } from 'commander';
import { processIo, type CommandIo } from './command-io.ts';
import type { ConnectionFlags } from './status-kill.ts';

const MASTER_HELP = 'REST server of the master: http://host:6066, https://host:6066 or spark://host:6066; default $FLINT_MASTER, else spark.master.rest.host:port';
/** CA_HELP: the --ca-file option's help, shared with `flint submit`. */
export const CA_HELP = 'PEM file of CA certificates to trust for an https:// master, besides the system\'s (default spark.ssl.standalone.trustStore)';

/** registerStatusCommand adds `flint status <submissionId>`. */
export function registerStatusCommand(program: Command, io: CommandIo = processIo()): Command {
  return program
    .command('status')
    .description("Show a submitted driver's state (spark-submit --status).")
    .argument('<submissionId>', 'the id `flint submit` printed (driver-...)')
    .option('--master <url>', MASTER_HELP)
    .option('--json', "print the server's SubmissionStatusResponse JSON")
    .option('--ca-file <pem>', CA_HELP)
    .addHelpText('after', '\nExit codes: 0 found, 1 not found or unreachable, 2 bad arguments.')
    .action(async (submissionId: string, flags: ConnectionFlags & { json?: boolean }) => {
      const { runStatus } = await import('./status-kill.ts');
      io.setExitCode(await runStatus(submissionId, flags, io));
    });
}

/** registerKillCommand adds `flint kill <submissionId>`. */
export function registerKillCommand(program: Command, io: CommandIo = processIo()): Command {
  return program
    .command('kill')
    .description('Kill a submitted driver (spark-submit --kill).')
    .argument('<submissionId>', 'the id `flint submit` printed (driver-...)')
    .option('--master <url>', MASTER_HELP)
    .option('--token <token>', 'bearer token with the kill scope (default $FLINT_TOKEN); mint one with `flint token --scope kill`')
    .option('--ca-file <pem>', CA_HELP)
    .addHelpText('after', '\nExit codes: 0 kill requested, 1 refused (unknown or finished driver, bad token) or unreachable, 2 bad arguments.')
    .action(async (submissionId: string, flags: ConnectionFlags) => {
      const { runKill } = await import('./status-kill.ts');
      io.setExitCode(await runKill(submissionId, flags, io));
    });
}
