/**
 * `flint status <id>` and `flint kill <id>`: spark-submit's --status and --kill
 * against Flint's REST server. Status needs no token; kill needs the kill scope.
 */
import { Command } from 'commander';
import { ConfigError } from '../protocol/config.ts';
import { RestClientError, RestSubmissionClient, isErrorResponse, restBaseUrls } from '../client/rest-client.ts';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, oneLine, processIo, resolveMaster, resolveToken, type CommandIo } from './command-io.ts';
import { toSparkJson } from '../functions/http/rest/protocol.ts';

interface ConnectionFlags {
  master?: string;
  token?: string;
}

const MASTER_HELP = 'REST server of the master: http://host:6066 or spark://host:6066; default $FLINT_MASTER, else spark.master.rest.host:port';

/** registerStatusCommand adds `flint status <submissionId>`. */
export function registerStatusCommand(program: Command, io: CommandIo = processIo()): Command {
  return program
    .command('status')
    .description("Show a submitted driver's state (spark-submit --status).")
    .argument('<submissionId>', 'the id `flint submit` printed (driver-...)')
    .option('--master <url>', MASTER_HELP)
    .option('--json', "print the server's SubmissionStatusResponse JSON")
    .addHelpText('after', '\nExit codes: 0 found, 1 not found or unreachable, 2 bad arguments.')
    .action(async (submissionId: string, flags: ConnectionFlags & { json?: boolean }) => {
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
    .addHelpText('after', '\nExit codes: 0 kill requested, 1 refused (unknown or finished driver, bad token) or unreachable, 2 bad arguments.')
    .action(async (submissionId: string, flags: ConnectionFlags) => {
      io.setExitCode(await runKill(submissionId, flags, io));
    });
}

function connect(command: string, flags: ConnectionFlags, io: CommandIo): RestSubmissionClient | undefined {
  try {
    const master = resolveMaster(flags.master, io.env);
    restBaseUrls(master);
    return new RestSubmissionClient(master, { token: resolveToken(flags.token, io.env) });
  } catch (error) {
    if (error instanceof ConfigError || error instanceof RestClientError) {
      io.err(`flint ${command}: ${oneLine(error.message)}`);
      return undefined;
    }
    throw error;
  }
}

/** runStatus prints the driver's state, worker and any exception; returns the exit code. */
export async function runStatus(submissionId: string, flags: ConnectionFlags & { json?: boolean }, io: CommandIo): Promise<number> {
  const client = connect('status', flags, io);
  if (!client) return EXIT_USAGE;
  try {
    const { status, body } = await client.requestSubmissionStatus(submissionId);
    if (isErrorResponse(body)) {
      io.err(`flint status: the server refused the request (HTTP ${status}): ${oneLine(body.message)}`);
      return EXIT_FAILED;
    }
    if (flags.json) io.out(toSparkJson(body));
    if (!body.success) {
      if (!flags.json) io.err(`flint status: submission ${submissionId} was not found${body.message ? `: ${oneLine(body.message)}` : ''}`);
      return EXIT_FAILED;
    }
    if (!flags.json) {
      const where = body.workerId ? ` on ${body.workerId}${body.workerHostPort ? ` (${body.workerHostPort})` : ''}` : '';
      io.out(`${body.submissionId} ${body.driverState ?? 'UNKNOWN'}${where}`);
      if (body.message) io.out(body.message);
    }
    return EXIT_OK;
  } catch (error) {
    if (error instanceof RestClientError) {
      io.err(`flint status: ${oneLine(error.message)}`);
      return EXIT_FAILED;
    }
    throw error;
  }
}

/** runKill asks the server to kill the driver and prints the master's answer; returns the exit code. */
export async function runKill(submissionId: string, flags: ConnectionFlags, io: CommandIo): Promise<number> {
  const client = connect('kill', flags, io);
  if (!client) return EXIT_USAGE;
  try {
    const { status, body } = await client.killSubmission(submissionId);
    if (isErrorResponse(body)) {
      io.err(`flint kill: the server refused the request (HTTP ${status}): ${oneLine(body.message)}`);
      return EXIT_FAILED;
    }
    if (!body.success) {
      io.err(`flint kill: ${oneLine(body.message ?? `submission ${submissionId} was not killed`)}`);
      return EXIT_FAILED;
    }
    io.out(body.message ?? `Kill request for ${submissionId} submitted`);
    return EXIT_OK;
  } catch (error) {
    if (error instanceof RestClientError) {
      io.err(`flint kill: ${oneLine(error.message)}`);
      return EXIT_FAILED;
    }
    throw error;
  }
}
