/**
 * Redis ACL users per role for one Flint cluster: the rules are generated here from
 * the key names of protocol/keys.ts, so they can never drift from what the code
 * touches. Pure: no I/O (applying them is redis-acl-apply.ts; the command is `flint acl`).
 *
 * Roles (docs/security.md, infra/README.md):
 *   master  the handler processes (`flint master`): every key of the cluster, every
 *           command but the dangerous ones (no FLUSH*, KEYS, CONFIG SET, ACL, DEBUG, ...).
 *   client  the submission side (REST server, application HTTP API, web UI): adds jobs
 *           to the master queue and reads the cluster's state; writes no state key.
 *   reader  read-only dashboards: reads the cluster's state and queue, writes nothing.
 *   worker  one worker agent: its own inbox stream (read, ack, delete), its own worker
 *           hash (read), a beat in the heartbeats zset, its messages to the master
 *           through the BullMQ queue, and the entries it refuses to the dead letters
 *           (XADD, and HINCRBY of the stats hash that counts them). No other worker's
 *           inbox, no application state, no application secret.
 *
 * How the rules work (Redis 7 ACL selectors): a command runs if the root rules or one
 * selector `( ... )` allows the command together with every key it names. Scripts
 * (EVALSHA) are checked twice: their declared KEYS need read-write permission, and
 * every command a script runs is checked again against the same rules. So EVALSHA is
 * allowed on the keys a role's scripts declare (BullMQ's queue keys, the heartbeat
 * script's keys) while what a script may do to each key is decided by the selectors.
 * Users carry no channel permissions (Flint uses no pub/sub) and never SCAN (key
 * names of other clusters and tenants stay hidden).
 */
import { clusterKeys } from '../protocol/keys.ts';

export const ACL_ROLES = ['master', 'client', 'reader', 'worker'] as const;
export type AclRole = (typeof ACL_ROLES)[number];

/** AclUser: one generated user: its name and its rules (without the password). */
export interface AclUser {
  name: string;
  role: AclRole;
  cluster: string;
  workerId?: string;
  rules: string[];
}

/**
 * Commands without keys every Flint connection needs (connection set-up, ioredis and
 * BullMQ checks, MULTI). Placed after a role's `-@dangerous`, which would take INFO back.
 */
const CONNECTION_COMMANDS = [
  // @connection without its dangerous members: AUTH, HELLO, PING, SELECT, CLIENT SETNAME/GETNAME/ID/INFO (and SETINFO on 7.2+), ...
  '+@connection', '-@dangerous',
  // BullMQ reads the server version from INFO; ioredis asks ROLE and CLUSTER SLOTS behind Sentinel and Redis Cluster
  '+info', '+role', '+cluster|slots', '+cluster|shards', '+cluster|info', '+cluster|myid',
  '+multi', '+exec', '+discard', '+time',
];

/** Script commands: EVALSHA with EVAL as the fallback ioredis uses, and loading. Never SCRIPT FLUSH/KILL or FUNCTION. */
const SCRIPT_COMMANDS = ['+eval', '+evalsha', '+eval_ro', '+evalsha_ro', '+script|load', '+script|exists'];

/** What BullMQ runs on its queue's keys (its Lua scripts use hashes, lists, sorted sets, sets, strings and streams). */
const QUEUE_COMMANDS = ['+@hash', '+@list', '+@sortedset', '+@set', '+@string', '+@stream', '+@keyspace', '-@dangerous', '-scan', '-randomkey'];

/** What a worker does to its own inbox stream (the heartbeat script also appends ReconnectWorker to it). */
const INBOX_COMMANDS = [
  '+xreadgroup', '+xgroup|create', '+xgroup|createconsumer', '+xack', '+xdel', '+xadd', '+xpending',
  '+xclaim', '+xautoclaim', '+xinfo|stream', '+xinfo|groups', '+xinfo|consumers', '+xlen', '+xrange', '+xrevrange',
];

/** READ_COMMANDS: read-only data commands, for the client and reader roles. */
const READ_COMMANDS = ['+@read', '-@dangerous', '-scan', '-randomkey'];

/** glob-escapes a literal for an ACL key pattern (cluster names and ids never hold these, but a pattern must not be widened). */
function literal(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** anyId: a key pattern from a key-name function, any id in place of the argument. */
function anyId(keyOf: (id: string) => string): string {
  const MARK = '\u0001';
  return literal(keyOf(MARK)).replace(MARK, '*');
}

/** SECRET_FAMILY: where application secrets live (`flint{c}:secret:*`): only masters and the client side read them. */
const SECRET_FAMILY = 'secret';

/**
 * stateFamilies: a pattern pair (`ns:family`, `ns:family:*`) for every key family of the
 * cluster (protocol/keys.ts: worker, app, apps, driver, events, ...) but its secrets,
 * derived from the key names so a new family is covered without touching this file.
 */
function stateFamilies(cluster: string): string[] {
  const keys = clusterKeys(cluster) as Record<string, unknown>;
  const ns = `flint{${cluster}}:`;
  const families = new Set<string>();
  for (const value of Object.values(keys)) {
    const name = typeof value === 'string' ? value : typeof value === 'function' ? (value as (id: string) => string)('x') : '';
    if (name.startsWith(ns)) families.add(name.slice(ns.length).split(':')[0]!);
  }
  families.delete(SECRET_FAMILY);
  const base = literal(ns);
  return [...families].sort().flatMap((family) => [`${base}${literal(family)}`, `${base}${literal(family)}:*`]);
}

/** aclUserName: `flint-<cluster>-<role>`, or `flint-<cluster>-worker-<workerId>`. */
export function aclUserName(cluster: string, role: AclRole, workerId?: string): string {
  clusterKeys(cluster);
  if (role === 'worker') {
    if (!workerId) throw new Error('a worker user needs the worker id');
    return `flint-${cluster}-worker-${workerId}`;
  }
  return `flint-${cluster}-${role}`;
}

/** WORKER_ID: the characters protocol/messages.ts accepts in an id (none of them is special in a pattern or a user name). */
const WORKER_ID = /^[A-Za-z0-9._:@/-]{1,256}$/;

/**
 * aclRules: the rules of `role` on `cluster` (and `workerId` for a worker), in the
 * order ACL SETUSER takes them after the password. They start from nothing
 * (`reset` clears a user's earlier rules and passwords, so the caller adds the
 * password after these).
 */
export function aclRules(cluster: string, role: AclRole, workerId?: string): string[] {
  const keys = clusterKeys(cluster);
  const ns = literal(`flint{${cluster}}`);
  const queue = `${ns}:${literal(keys.masterQueue)}:*`;
  const base = ['reset', 'on', 'resetchannels', '-@all'];
  switch (role) {
    case 'master':
      // every key of the cluster; every command but the dangerous ones, with the few safe ones among them back
      return [...base, `~${ns}*`, '+@all', '-@dangerous', '-scan', '-randomkey', '-function', '-script|flush', '-script|kill', '-script|debug', ...CONNECTION_COMMANDS, '+config|get', '+client|list', ...SCRIPT_COMMANDS];
    case 'client':
      return [
        ...base,
        // reads everything of the cluster, its applications' secrets included (it verifies their tokens)
        `%R~${ns}*`,
        ...READ_COMMANDS,
        ...CONNECTION_COMMANDS,
        // BullMQ's getWorkers (the REST server's readiness: is any master consuming?) lists connections
        '+client|list',
        ...SCRIPT_COMMANDS,
        // scripts may declare any key of the cluster; what they do is checked per command
        `(~${ns}* ${SCRIPT_COMMANDS.join(' ')})`,
        `(~${queue} ${QUEUE_COMMANDS.join(' ')})`,
        // the application API is the applications' heartbeat receiver: client leases, executor beats, their expiry claims and metrics
        `(~${literal(keys.appLeases)} ~${literal(keys.executorBeatChecks)} ~${anyId(keys.appExecutorBeats)} +zadd +zrem +zscore +zrangebyscore +zrange)`,
        `(~${anyId(keys.appExecutorExpiries)} ~${anyId(keys.appExecutorMetrics)} +hset +hget +hdel)`,
      ];
    case 'reader':
      // every key family but the applications' secrets (a reader must not be able to mint an application's token)
      return [...base, ...stateFamilies(cluster).map((pattern) => `%R~${pattern}`), `%R~${queue}`, ...READ_COMMANDS, ...CONNECTION_COMMANDS, '+client|list', `(~${queue} ${SCRIPT_COMMANDS.join(' ')})`];
    case 'worker': {
      if (!workerId || !WORKER_ID.test(workerId)) throw new Error(`worker id '${workerId ?? ''}' is invalid: use 1-256 letters, digits and . _ : @ / -`);
      const own = literal(keys.worker(workerId));
      const inbox = literal(keys.workerInbox(workerId));
      const beats = literal(keys.heartbeats);
      return [
        ...base,
        // the keys its scripts declare: BullMQ's queue, and record-heartbeat's (its hash, the zset, its inbox)
        `~${queue}`, `~${own}`, `~${beats}`, `~${inbox}`,
        ...CONNECTION_COMMANDS,
        ...SCRIPT_COMMANDS,
        `(~${queue} ${QUEUE_COMMANDS.join(' ')})`,
        `(~${inbox} ${INBOX_COMMANDS.join(' ')})`,
        `(%R~${own} +hmget +hget +hgetall +exists)`,
        `(~${beats} +zadd)`,
        // an inbox entry it refuses goes to the dead letters (lib/dead-letters.ts), counted in the stats hash
        `(~${literal(keys.deadLetters)} +xadd)`,
        `(~${literal(keys.stats)} +hincrby)`,
      ];
    }
  }
}

/** aclUser: the user of `role` with its name and rules. */
export function aclUser(cluster: string, role: AclRole, workerId?: string): AclUser {
  return { name: aclUserName(cluster, role, workerId), role, cluster, workerId: role === 'worker' ? workerId : undefined, rules: aclRules(cluster, role, workerId) };
}

/**
 * clusterAclUsers: the users of a cluster: master, client and reader, and one
 * worker user per id in `workerIds` (duplicates ignored).
 */
export function clusterAclUsers(cluster: string, workerIds: readonly string[], roles: readonly Exclude<AclRole, 'worker'>[] = ['master', 'client', 'reader']): AclUser[] {
  return [...roles.map((role) => aclUser(cluster, role)), ...[...new Set(workerIds)].map((id) => aclUser(cluster, 'worker', id))];
}

/**
 * aclFileLine: the user as an aclfile line (`user <name> <rules> #<sha256>`), with the
 * password as its SHA-256 so the file never holds a password. `reset` is left out: an
 * aclfile line starts from a blank user.
 */
export function aclFileLine(user: AclUser, passwordSha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(passwordSha256)) throw new Error('a password hash is 64 hex digits');
  return ['user', user.name, ...user.rules.filter((rule) => rule !== 'reset'), `#${passwordSha256}`].join(' ');
}
