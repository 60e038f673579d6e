/** The sandbox end of an endpoint, the same for every driver: addresses, link up, default routes. */
import { nl } from '../netlink/index.js';
import { parsePrefix } from '../ipam/addr.js';
import { poolFor } from '../ipam/ipam.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord } from '../store/model.js';
import type { JoinContext } from './driver.js';

/**
 * A sandbox trusts no router advertisement and no redirect: its routes are
 * the ones berth gives it (the datapath also drops such packets from
 * sandboxes, but a macvlan parent's wire is not berth's). Set for `all`,
 * `default` and the endpoint's interface, before it is up. The link-local
 * address is the MAC's EUI-64 one: the datapath checks neighbour
 * advertisements against it. `-o router=external` (a real router on the
 * network) leaves the kernel's defaults.
 */
export function sandboxSysctls(n: NetworkRecord, ifname: string): { key: string; value: string }[] {
  const out = [{ key: `net.ipv6.conf.${ifname}.addr_gen_mode`, value: '0' }];
  if (n.options['router'] === 'external') return out;
  for (const dev of ['all', 'default', ifname]) {
    out.push(
      { key: `net.ipv6.conf.${dev}.accept_ra`, value: '0' },
      { key: `net.ipv6.conf.${dev}.accept_redirects`, value: '0' },
      { key: `net.ipv4.conf.${dev}.accept_redirects`, value: '0' },
      { key: `net.ipv4.conf.${dev}.secure_redirects`, value: '0' },
    );
  }
  return out;
}

export async function configureSandboxSide(n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord, ctx: JoinContext): Promise<void> {
  const addrs: { cidr: string; nodad: boolean }[] = [];
  const gateways: string[] = [];
  for (const [addr, family] of [[ep.v4, 4], [ep.v6, 6]] as const) {
    if (!addr) continue;
    const pool = poolFor(n.pools, family);
    if (!pool) continue;
    addrs.push({ cidr: `${addr}/${parsePrefix(pool.subnet).bits}`, nodad: family === 6 });
    // The default routes go on the gateway endpoint of a network with a way out.
    if (ctx.gateway && !n.internal) gateways.push(pool.gateway);
  }
  // One worker enters the namespace once for all of it (a round trip each cost most of an attach's addressing).
  await nl.sandboxSide({ netns: sb.netnsPath, ifname: ep.ifname, sysctls: sandboxSysctls(n, ep.ifname), addrs, gateways });
}

export async function sandboxHasLink(sb: SandboxRecord, ifname: string): Promise<boolean> {
  const links = await nl.linkList({ netns: sb.netnsPath });
  return links.some((l) => l.name === ifname);
}
