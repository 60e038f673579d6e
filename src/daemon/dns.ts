/**
 * One embedded DNS server per user-defined bridge network, on the network's
 * gateway address in berthd's namespace. Sandboxes' resolv.conf points there;
 * the controller's state decides who sees which name.
 */
import type { Logger } from 'pino';
import { EmbeddedDns, type DnsStats, type Lookup } from '../dns/resolver.js';
import { resolveName, reverseName, sandboxByAddress } from '../controller/names.js';
import type { NetworkRecord, State } from '../store/model.js';
import { hostResolvConf, usableNameservers } from '../sandbox/files.js';
import { poolFor } from '../ipam/ipam.js';

export class DnsManager {
  private readonly servers = new Map<string, EmbeddedDns>();

  constructor(
    private readonly state: () => State,
    private readonly log: Logger,
    private readonly resolvConf: string,
    private readonly port = 53,
  ) {}

  private lookup(networkId: string): Lookup {
    return {
      // Only this network's sandboxes: never the LAN, other networks or the host (no open resolver).
      admits: (client) => Object.values(this.state().sandboxes).some((sb) => sb.endpoints.some((e) => e.network === networkId && (e.v4 === client || e.v6 === client))),
      resolve: (client, name, type) => {
        const s = this.state();
        const sb = sandboxByAddress(s, client);
        if (!sb) return null;
        const addrs = resolveName(s, sb, name, type === 'A' ? 4 : 6);
        return addrs ? { addresses: addrs } : null;
      },
      reverse: (client, ip) => {
        const s = this.state();
        const sb = sandboxByAddress(s, client);
        return sb ? reverseName(s, sb, ip) : null;
      },
      // A sandbox's --dns servers are the upstreams of its queries, as in Docker.
      upstreams: (client) => sandboxByAddress(this.state(), client)?.dns ?? null,
    };
  }

  async networkUp(n: NetworkRecord): Promise<void> {
    if (n.isDefault || (n.driver !== 'bridge' && n.driver !== 'overlay' && n.driver !== 'routed') || this.servers.has(n.id)) return;
    const gw = poolFor(n.pools, 4)?.gateway;
    if (!gw) return;
    const upstreams = usableNameservers((await hostResolvConf(this.resolvConf)).nameservers);
    const server = await EmbeddedDns.start({ bind: gw, port: this.port, lookup: this.lookup(n.id), upstreams, logger: this.log });
    this.servers.set(n.id, server);
    this.log.info({ network: n.name, bind: gw }, 'embedded DNS listening');
  }

  async networkDown(n: NetworkRecord): Promise<void> {
    const s = this.servers.get(n.id);
    this.servers.delete(n.id);
    if (s) addStats(this.retired, s.stats());
    await s?.close();
  }

  /** Every server's counters, summed since berthd started (those of servers already closed too: they are counters). */
  stats(): DnsStats {
    const out: DnsStats = { ...this.retired };
    for (const s of this.servers.values()) addStats(out, s.stats());
    return out;
  }

  /** the counters of servers closed so far */
  private readonly retired: DnsStats = { notAdmitted: 0, rateLimited: 0, forwarded: 0, unanswered: 0 };

  async closeAll(): Promise<void> {
    for (const s of this.servers.values()) await s.close();
    this.servers.clear();
  }
}

function addStats(into: DnsStats, x: DnsStats): void {
  for (const k of Object.keys(into) as (keyof DnsStats)[]) into[k] += x[k];
}
