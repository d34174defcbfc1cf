/**
 * `flint acl`: the Redis ACL users of one cluster (lib/redis-acl.ts) as files an
 * operator deploys: `<out>/<user>.password` per user (0600, kept across runs unless
 * --rotate) and `<out>/users.acl` (aclfile lines with SHA-256 passwords, for
 * `aclfile` in redis.conf). With --apply it also creates the users on the Redis it
 * connects to (every node of a Redis Cluster: ACLs are not replicated). It prints
 * user names and file paths, never a password. The definition is acl-command.ts.
 */
import { join } from 'node:path';
import { ConfigError, DEFAULT_REDIS_URL, loadConfig, parseConfFlags } from '../protocol/config.ts';
import { ACL_ROLES, clusterAclUsers, type AclRole } from '../lib/redis-acl.ts';
import { applyAclUsers, mergeAclFile, writeCredentials } from '../lib/redis-acl-apply.ts';
import { connectRedisOrCluster, everyNode, redactRedisUrl } from '../lib/redis.ts';
import { credentialsFromConfig, resolveRedisUrl } from '../lib/redis-credentials.ts';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, oneLine, type CommandIo } from './command-io.ts';

export interface AclFlags {
  out: string;
  cluster?: string;
  worker: string[];
  roles?: string;
  rotate: boolean;
  apply: boolean;
  redis?: string;
  propertiesFile?: string;
  conf: string[];
}

type FixedRole = Exclude<AclRole, 'worker'>;

function parseRoles(text: string | undefined): FixedRole[] {
  if (text === undefined) return ['master', 'client', 'reader'];
  if (text.trim() === 'none') return [];
  const roles = text.split(',').map((role) => role.trim()).filter(Boolean);
  for (const role of roles) {
    if (!ACL_ROLES.includes(role as AclRole) || role === 'worker') throw new ConfigError(`--roles: '${role}' is not one of master, client, reader (workers come from --worker)`);
  }
  return [...new Set(roles)] as FixedRole[];
}

/** runAcl writes (and with --apply, applies) the users; returns the exit code. */
export async function runAcl(flags: AclFlags, io: CommandIo): Promise<number> {
  let users;
  let config;
  try {
    const overrides = parseConfFlags(flags.conf ?? []);
    if (flags.cluster) overrides['spark.flint.cluster'] = flags.cluster;
    if (flags.redis) overrides['spark.flint.redis.url'] = flags.redis;
    config = loadConfig({ propertiesFile: flags.propertiesFile, env: io.env, overrides });
    users = clusterAclUsers(config.cluster, flags.worker ?? [], parseRoles(flags.roles));
    if (users.length === 0) throw new ConfigError('nothing to generate: give --worker ids or --roles');
  } catch (error) {
    io.err(`flint acl: ${oneLine((error as Error).message)}`);
    return EXIT_USAGE;
  }
  try {
    const credentials = await writeCredentials(flags.out, users, { rotate: flags.rotate });
    const aclFile = join(flags.out, 'users.acl');
    await mergeAclFile(aclFile, credentials);
    for (const { user, passwordFile } of credentials) io.out(`${user.name}  ${user.role}${user.workerId ? ` ${user.workerId}` : ''}  ${passwordFile}`);
    io.out(`aclfile lines: ${aclFile}`);
    if (!flags.apply) return EXIT_OK;
    const url = resolveRedisUrl(config.redisUrl ?? DEFAULT_REDIS_URL, credentialsFromConfig(config));
    const redis = await connectRedisOrCluster(url, { name: 'flint-acl' });
    try {
      // ACLs are per server: every node of a Redis Cluster gets them
      const servers = everyNode(redis);
      let saved = true;
      for (const server of servers) saved = (await applyAclUsers(server, credentials)).saved && saved;
      io.out(`applied ${credentials.length} users to ${redactRedisUrl(url)}${servers.length > 1 ? ` (${servers.length} nodes)` : ''}${saved ? '' : '; the server has no aclfile, so they last until it restarts'}`);
    } finally {
      redis.disconnect();
    }
    return EXIT_OK;
  } catch (error) {
    io.err(`flint acl: ${oneLine((error as Error).message)}`);
    return EXIT_FAILED;
  }
}
