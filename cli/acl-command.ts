/**
 * `flint acl`, as the command line sees it. Generating and applying the users
 * (acl.ts, ioredis) is imported only when the command runs.
 */
import type { Command } from 'commander';
import { DEFAULT_REDIS_URL } from '../protocol/config.ts';
import { processIo, type CommandIo } from './command-io.ts';
import { collectRepeatable } from '../lib/repeatable-option.ts';
import type { AclFlags } from './acl.ts';

/** registerAclCommand adds `flint acl`. */
export function registerAclCommand(program: Command, io: CommandIo = processIo()): Command {
  return program
    .command('acl')
    .description('generate Redis ACL users for a cluster (master, client, reader, and one user per worker): password files, an aclfile, and optionally apply them')
    .requiredOption('--out <dir>', 'directory for <user>.password files (0600) and users.acl (created 0700); existing passwords are kept')
    .option('--cluster <name>', 'cluster name (default spark.flint.cluster)')
    .option('--worker <id>', 'a worker id to create a user for (repeatable)', collectRepeatable, [])
    .option('--roles <list>', 'comma-separated fixed roles to generate: master, client, reader (default all three; "none" for workers only)')
    .option('--rotate', 'generate new passwords even where a password file exists', false)
    .option('--apply', 'also create or replace the users on the Redis (ACL SETUSER, then ACL SAVE when it has an aclfile)', false)
    .option('--redis <url>', `the Redis to apply to, as a user allowed to run ACL SETUSER (default spark.flint.redis.url or ${DEFAULT_REDIS_URL})`)
    .option('--properties-file <path>', 'Spark-style properties file')
    .option('--conf <key=value>', 'configuration override (repeatable)', collectRepeatable, [])
    .addHelpText(
      'after',
      '\nExample (two workers; each worker then runs with its own user):\n' +
        '  flint acl --cluster prod --worker w1 --worker w2 --out /etc/flint/acl/prod --apply\n' +
        '  flint worker --cluster prod --id w1 --conf spark.flint.redis.user=flint-prod-worker-w1 \\\n' +
        '    --conf spark.flint.redis.passwordFile=/etc/flint/acl/prod/flint-prod-worker-w1.password',
    )
    .action(async (flags: AclFlags) => {
      const { runAcl } = await import('./acl.ts');
      io.setExitCode(await runAcl(flags, io));
    });
}
