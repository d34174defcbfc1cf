/**
 * `flint token`: mints a bearer token (HS256 JWT) for the REST server and the
 * UI from `spark.flint.auth.secret`, read from the configuration (properties
 * file, FLINT_SPARK_FLINT_AUTH_SECRET, or --conf). The token is printed on
 * stdout alone, so `export FLINT_TOKEN=$(flint token --scope submit)` works.
 * The command's definition is token-command.ts, which imports this module only
 * when the command runs.
 */
import { ConfigError, loadConfig, parseConfFlags, parseDurationMs } from '../protocol/config.ts';
import { AuthConfigError, SECRET_KEY, parseScopes, signToken } from '../lib/http/auth.ts';
import { EXIT_OK, EXIT_USAGE, oneLine, type CommandIo } from './command-io.ts';

export interface TokenFlags {
  scope: string;
  ttl: string;
  subject?: string;
  propertiesFile?: string;
  conf: string[];
}

/** runToken prints a token; returns the exit code. */
export function runToken(flags: TokenFlags, io: CommandIo, now: number = Date.now()): number {
  try {
    const config = loadConfig({ propertiesFile: flags.propertiesFile, env: io.env, overrides: parseConfFlags(flags.conf ?? []) });
    const secret = config.authSecret;
    if (!secret) {
      throw new AuthConfigError(`no ${SECRET_KEY} is configured: set it in the properties file, as FLINT_SPARK_FLINT_AUTH_SECRET, or with --conf`);
    }
    const ttlMs = parseDurationMs(flags.ttl, 's');
    if (ttlMs < 1000) throw new AuthConfigError(`--ttl '${flags.ttl}' is shorter than one second`);
    io.out(signToken(secret, { scope: parseScopes(flags.scope), ttlSeconds: Math.floor(ttlMs / 1000), subject: flags.subject, now }));
    return EXIT_OK;
  } catch (error) {
    if (error instanceof ConfigError || error instanceof AuthConfigError) {
      io.err(`flint token: ${oneLine(error.message)}`);
      return EXIT_USAGE;
    }
    throw error;
  }
}
