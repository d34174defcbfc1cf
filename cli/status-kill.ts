/**
 * `flint status <id>` and `flint kill <id>`: spark-submit's --status and --kill
 * against Flint's REST server. Status needs no token; kill needs the kill scope.
 * The commands' definitions are status-kill-command.ts, which imports this
 * module only when a command runs.
 */
import { ConfigError } from '../protocol/config.ts';
import { RestClientError, RestSubmissionClient, isErrorResponse, restBaseUrls } from '../client/rest-client.ts';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, oneLine, resolveCa, resolveMaster, resolveToken, type CommandIo } from './command-io.ts';
import { toSparkJson } from '../protocol/rest.ts';

/** ConnectionFlags: --master and --token, as commander hands them to the actions. */
export interface ConnectionFlags {
  master?: string;
  token?: string;
  caFile?: string;
}

function connect(command: string, flags: ConnectionFlags, io: CommandIo): RestSubmissionClient | undefined {
  try {
    const master = resolveMaster(flags.master, io.env);
    restBaseUrls(master);
    return new RestSubmissionClient(master, { token: resolveToken(flags.token, io.env), ca: resolveCa(flags.caFile, io.env) });
  } catch (error) {
    if (error instanceof ConfigError || error instanceof RestClientError || error instanceof UsageError) {
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
