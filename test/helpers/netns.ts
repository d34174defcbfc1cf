/**
 * Network "hosts" for multi-host tests: Linux network namespaces the test creates,
 * each joined to the root namespace by a veth pair, with addresses only from the
 * documentation range 198.51.100.0/24 (RFC 5737), never a private range, and no
 * bridge. The root namespace holds one address of the block (where a test runs
 * Redis), on the root end of the first host's veth (some kernels have no dummy
 * links); the root namespace accepts it on every link, so each host reaches it, and
 * the root namespace reaches each host, by /32 routes over the host's veth. Hosts
 * do not reach each other: Flint's processes talk only to Redis, which is the point
 * of the test.
 *
 *   root ns:  fl<id>a0 198.51.100.<b+1>/32; routes <b+2>/32 dev fl<id>a0 src <b+1>, <b+3>/32 dev fl<id>b0 src <b+1>
 *   host a:   fl<id>a1 198.51.100.<b+2>/32, lo up; route <b+1>/32 dev fl<id>a1
 *   host b:   fl<id>b1 198.51.100.<b+3>/32, lo up; route <b+1>/32 dev fl<id>b1
 *
 * A block of 16 addresses not used on this machine is picked, so concurrent runs do
 * not collide. `remove()` kills every process left in the namespaces, deletes the
 * namespaces and their veth pairs; it is idempotent,
 * runs on failure paths, and also runs synchronously at process exit in case the
 * test is cancelled before its own cleanup runs. Needs root and iproute2.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface NetnsHost {
  name: string;
  /** the namespace (for `nsenter --net=/run/netns/<ns>`) */
  ns: string;
  address: string;
  /** argv prefix that runs a command inside the namespace (network only: cgroups and mounts stay the host's) */
  exec: string[];
}

export interface NetnsHosts {
  /** the root namespace's address (Redis listens there) */
  rootAddress: string;
  hosts: NetnsHost[];
  /** pids of every process inside a host's namespace */
  pids(host: NetnsHost): number[];
  /** the command lines of every process inside a host's namespace */
  commands(host: NetnsHost): string[];
  /** SIGKILL every process of a host; returns what it killed (pid and command line) */
  killAll(host: NetnsHost): string[];
  remove(): void;
}

const PREFIX = '198.51.100.';

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function usedAddresses(): Set<string> {
  const used = new Set<string>();
  for (const match of ip('-o', '-4', 'addr', 'show').matchAll(/inet (198\.51\.100\.\d+)/g)) used.add(match[1]!);
  for (const match of ip('-4', 'route', 'show').matchAll(/^(198\.51\.100\.\d+)/gm)) used.add(match[1]!);
  return used;
}

/** createNetnsHosts makes `names.length` hosts (at most 13) and the root address. */
export function createNetnsHosts(names: string[]): NetnsHosts {
  if (process.getuid?.() !== 0) throw new Error('network namespace hosts need root (CI runs the tests as root)');
  if (names.length < 1 || names.length > 13) throw new Error('between 1 and 13 hosts');
  const id = randomBytes(3).toString('hex');
  const used = usedAddresses();
  const blocks = [...Array(16).keys()].sort(() => Math.random() - 0.5);
  const base = blocks.map((k) => k * 16).find((b) => [...Array(names.length + 2).keys()].every((i) => !used.has(`${PREFIX}${b + i}`)));
  if (base === undefined) throw new Error('no free block of 198.51.100.0/24 on this machine');
  const rootAddress = `${PREFIX}${base + 1}`;
  const hosts: NetnsHost[] = names.map((name, index) => {
    const ns = `flint-${id}-${name}`;
    return { name, ns, address: `${PREFIX}${base + 2 + index}`, exec: ['nsenter', `--net=/run/netns/${ns}`, '--'] };
  });
  const links = hosts.map((_, index) => `fl${id}${String.fromCharCode(97 + index)}0`);

  let removed = false;
  const pids = (host: NetnsHost): number[] => {
    try {
      return ip('netns', 'pids', host.ns).split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const commandLine = (pid: number): string => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      return '';
    }
  };
  const commands = (host: NetnsHost): string[] => pids(host).map(commandLine);
  const killAll = (host: NetnsHost): string[] => {
    const killed: string[] = [];
    const seen = new Set<number>();
    // processes may fork while we kill: repeat until the namespace is empty (bounded)
    for (let round = 0; round < 20; round++) {
      // a killed process may linger as a zombie until its parent reaps it: count each once
      const found = pids(host).filter((pid) => !seen.has(pid));
      if (found.length === 0) break;
      for (const pid of found) {
        seen.add(pid);
        const command = commandLine(pid);
        try {
          process.kill(pid, 'SIGKILL');
          killed.push(`${pid} ${command}`);
        } catch {
          // gone already
        }
      }
      execFileSync('sleep', ['0.05']);
    }
    return killed;
  };
  const remove = () => {
    if (removed) return;
    removed = true;
    process.off('exit', remove);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const host of hosts) {
      killAll(host);
      try {
        ip('netns', 'del', host.ns);
      } catch {
        // never created
      }
    }
    for (const link of links) {
      try {
        ip('link', 'del', link);
      } catch {
        // gone with its namespace, or never created
      }
    }
  };
  // a cancelled or interrupted test must not leave namespaces behind either
  const onSignal = (signal: NodeJS.Signals) => {
    remove();
    process.kill(process.pid, signal);
  };
  process.on('exit', remove);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    hosts.forEach((host, index) => {
      const outside = links[index]!;
      const inside = `${outside.slice(0, -1)}1`;
      ip('netns', 'add', host.ns);
      ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
      ip('link', 'set', inside, 'netns', host.ns);
      if (index === 0) ip('addr', 'add', `${rootAddress}/32`, 'dev', outside);
      ip('link', 'set', outside, 'up');
      // src: replies from the host come back to the root address, not to whatever eth0 has
      ip('route', 'add', `${host.address}/32`, 'dev', outside, 'src', rootAddress);
      const inNs = (...args: string[]) => ip('-n', host.ns, ...args);
      inNs('link', 'set', 'lo', 'up');
      inNs('addr', 'add', `${host.address}/32`, 'dev', inside);
      inNs('link', 'set', inside, 'up');
      inNs('route', 'add', `${rootAddress}/32`, 'dev', inside);
    });
  } catch (error) {
    remove();
    throw new Error(`could not create the namespace hosts: ${(error as { stderr?: string }).stderr?.trim() || (error as Error).message}`, { cause: error });
  }
  return { rootAddress, hosts, pids, commands, killAll, remove };
}
