/**
 * Network namespaces and veth pairs for the demo, tests and benchmarks. Every
 * link and address lives in a namespace this object created; destroy()
 * removes them all (links die with their namespace), also after a failure.
 * Nothing here ever touches the root network namespace.
 */
import { run } from '../src/exec.js';
import { NETNS_DIR } from '../src/paths.js';

export interface VethEnd {
  ns: string;
  name: string;
  /** CIDR address to assign, e.g. "198.18.0.1/24" */
  addr?: string;
  /** IPv6 CIDR, assigned with nodad */
  addr6?: string;
}

export class Topology {
  private readonly namespaces: string[] = [];

  /** @prefix names everything this topology makes (e.g. "berth-demo-"). */
  constructor(readonly prefix: string) {
    if (!/^[a-z0-9-]{1,12}$/.test(prefix)) {
      throw new TypeError(`topology prefix '${prefix}' must be 1-12 characters of a-z, 0-9 and '-'`);
    }
  }

  /** The full name of namespace @short. */
  ns(short: string): string {
    return this.prefix + short;
  }

  nsPath(short: string): string {
    return `${NETNS_DIR}/${this.ns(short)}`;
  }

  /** Creates namespace @short with loopback up. */
  async addNetns(short: string): Promise<string> {
    const name = this.ns(short);
    await run('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /**
   * A veth pair between two namespaces of this topology (short names), both
   * ends up, with optional addresses. The pair is created inside a's
   * namespace and b's end is moved, so it never exists in the root namespace.
   */
  async veth(a: VethEnd, b: VethEnd): Promise<void> {
    const nsA = this.ns(a.ns);
    const nsB = this.ns(b.ns);
    await run('ip', ['-n', nsA, 'link', 'add', a.name, 'type', 'veth', 'peer', 'name', b.name, 'netns', nsB]);
    for (const [ns, end] of [[nsA, a], [nsB, b]] as const) {
      if (end.addr) await run('ip', ['-n', ns, 'addr', 'add', end.addr, 'dev', end.name]);
      if (end.addr6) await run('ip', ['-n', ns, 'addr', 'add', end.addr6, 'dev', end.name, 'nodad']);
      await run('ip', ['-n', ns, 'link', 'set', end.name, 'up']);
    }
  }

  /** Runs @cmd inside namespace @short. */
  exec(short: string, cmd: string, args: string[], opts: { timeoutMs?: number } = {}) {
    return run('ip', ['netns', 'exec', this.ns(short), cmd, ...args], opts);
  }

  /** The interface index of @ifname inside namespace @short. */
  async ifindex(short: string, ifname: string): Promise<number> {
    const { stdout } = await run('ip', ['-n', this.ns(short), '-j', 'link', 'show', 'dev', ifname]);
    const parsed = JSON.parse(stdout) as { ifindex: number }[];
    const idx = parsed[0]?.ifindex;
    if (!idx) throw new Error(`no interface '${ifname}' in netns ${this.ns(short)}`);
    return idx;
  }

  /** Removes every namespace this topology made; never throws. */
  async destroy(): Promise<string[]> {
    const failures: string[] = [];
    for (const name of this.namespaces.splice(0).reverse()) {
      try {
        await run('ip', ['netns', 'del', name]);
      } catch (e) {
        failures.push(`${name}: ${(e as Error).message}`);
      }
    }
    return failures;
  }
}

/** Namespaces present now whose names start with @prefix. */
export async function listNetns(prefix = ''): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n && n.startsWith(prefix));
}
