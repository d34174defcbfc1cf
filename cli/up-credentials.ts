/**
 * The Redis users of a `flint up` run: its masters run as the cluster's master user,
 * each worker as its own worker user, and the in-process servers (REST, application
 * API, web UI) as the client user (lib/redis-acl.ts). Passwords live in an owner-only
 * directory of the run and reach the child processes as a file path, never on a
 * command line; every URL that may be printed or passed on is without credentials.
 *
 * On an external Redis the users are created with the given credentials and deleted
 * at exit. Where that is not possible (the given user may not run ACL SETUSER, a
 * Redis older than 7.0 without ACL selectors, or a Sentinel deployment, whose
 * replicas would not have the users after a failover) every process uses the given
 * credentials, and `up` says so.
 */
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { clusterAclUsers, aclUserName } from '../lib/redis-acl.ts';
import { applyAclUsers, deleteAclUsers, writeCredentials, type UserCredential } from '../lib/redis-acl-apply.ts';
import { connectRedisOrCluster, everyNode, redisTargetFromUrl } from '../lib/redis.ts';
import { stripCredentials, withCredentials } from '../lib/redis-credentials.ts';

/** ProcessCredential: how one process of the run reaches Redis. */
export interface ProcessCredential {
  /** the URL with credentials, for this process's own connections (memory only) */
  url: string;
  /** command-line flags for a child process: the URL without credentials, the user and the password file */
  args: string[];
}

export interface RunCredentials {
  master: ProcessCredential;
  client: ProcessCredential;
  worker(workerId: string): ProcessCredential;
  /** why role users are not used (every process uses the given credentials), or undefined */
  fallbackReason?: string;
  /** deletes the users it created (external Redis); idempotent */
  remove(): Promise<void>;
}

function credentialOf(baseUrl: string, credential: UserCredential): ProcessCredential {
  return {
    url: withCredentials(baseUrl, credential.user.name, credential.password),
    args: ['--redis', baseUrl, '--conf', `spark.flint.redis.user=${credential.user.name}`, '--conf', `spark.flint.redis.passwordFile=${credential.passwordFile}`],
  };
}

/**
 * sharedCredential: every process with the given URL's credentials; a password goes
 * to a file in `dir` so that children never see it on a command line.
 */
async function sharedCredential(adminUrl: string, dir: string): Promise<ProcessCredential> {
  const baseUrl = stripCredentials(adminUrl);
  const target = redisTargetFromUrl(adminUrl);
  const { username: user, password } = target.kind === 'cluster' ? (target.options.redisOptions ?? {}) : target.options;
  if (!password) return { url: adminUrl, args: ['--redis', baseUrl] };
  const file = join(dir, 'shared.password');
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  const args = ['--redis', baseUrl, '--conf', `spark.flint.redis.passwordFile=${file}`];
  if (user) args.push('--conf', `spark.flint.redis.user=${user}`);
  return { url: adminUrl, args };
}

/**
 * setUpRunCredentials creates the run's users on the Redis `adminUrl` reaches (its
 * credentials must allow ACL SETUSER) and keeps their passwords in `dir`.
 */
export async function setUpRunCredentials(options: { adminUrl: string; cluster: string; workerIds: string[]; dir: string }): Promise<RunCredentials> {
  const { adminUrl, cluster, workerIds, dir } = options;
  const baseUrl = stripCredentials(adminUrl);
  const fallback = async (reason: string): Promise<RunCredentials> => {
    const shared = await sharedCredential(adminUrl, dir);
    return { master: shared, client: shared, worker: () => shared, fallbackReason: reason, remove: async () => undefined };
  };
  if (/^sentinel:/i.test(adminUrl)) return fallback('ACL users are per server and a Sentinel failover would promote a replica without them');
  const users = clusterAclUsers(cluster, workerIds, ['master', 'client']);
  const credentials = await writeCredentials(dir, users);
  const redis = await connectRedisOrCluster(adminUrl, { name: 'flint-up-acl' });
  // failures surface on the commands below; a reconnect attempt must not print as unhandled
  redis.on('error', () => undefined);
  const servers = everyNode(redis);
  try {
    for (const server of servers) await applyAclUsers(server, credentials);
  } catch (error) {
    // e.g. NOPERM for ACL, or an older Redis without selectors: nothing half-made is left
    await Promise.all(servers.map((server) => deleteAclUsers(server, users.map((u) => u.name)).catch(() => undefined)));
    redis.disconnect();
    return fallback(`cannot create ACL users (${(error as Error).message.split('\n')[0]})`);
  }
  const byName = new Map(credentials.map((c) => [c.user.name, c]));
  const of = (name: string) => credentialOf(baseUrl, byName.get(name)!);
  let removed = false;
  return {
    master: of(aclUserName(cluster, 'master')),
    client: of(aclUserName(cluster, 'client')),
    worker: (workerId) => of(aclUserName(cluster, 'worker', workerId)),
    async remove() {
      if (removed) return;
      removed = true;
      try {
        for (const server of servers) await deleteAclUsers(server, users.map((u) => u.name));
      } finally {
        redis.disconnect();
      }
    },
  };
}
