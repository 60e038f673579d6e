/** The sandbox end of an endpoint, the same for every driver: addresses, link up, default routes. */
import { nl } from '../netlink/index.js';
import { parsePrefix } from '../ipam/addr.js';
import { poolFor } from '../ipam/ipam.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord } from '../store/model.js';
import { ignoring, type JoinContext } from './driver.js';

export async function configureSandboxSide(n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord, ctx: JoinContext): Promise<void> {
  const netns = sb.netnsPath;
  for (const [addr, family] of [[ep.v4, 4], [ep.v6, 6]] as const) {
    if (!addr) continue;
    const pool = poolFor(n.pools, family);
    if (!pool) continue;
    const bits = parsePrefix(pool.subnet).bits;
    await ignoring(['EEXIST'], () => nl.addrAdd({ netns, dev: ep.ifname, cidr: `${addr}/${bits}`, nodad: family === 6 }));
  }
  await nl.linkSet({ netns, name: ep.ifname, up: true });
  if (!ctx.gateway || n.internal) return;
  for (const family of [4, 6] as const) {
    const pool = poolFor(n.pools, family);
    if (pool && (family === 4 ? ep.v4 : ep.v6)) {
      await nl.routeReplace({ netns, dst: 'default', via: pool.gateway, dev: ep.ifname });
    }
  }
}

export async function sandboxHasLink(sb: SandboxRecord, ifname: string): Promise<boolean> {
  const links = await nl.linkList({ netns: sb.netnsPath });
  return links.some((l) => l.name === ifname);
}
