/**
 * Can this host's underlay carry its routed networks? Each other host's block
 * is routed via that host's underlay address; that works without help only
 * when the address is on one of this host's segments (a connected route) and
 * answers ARP. Reached through a gateway, the underlay's routers must carry
 * the blocks' addresses themselves (a cloud network that drops unknown
 * sources does not): `berth doctor` says so, naming the network, the block,
 * the next hop and what is in the way, so the operator can choose an overlay.
 * Read-only: routes and neighbours as the kernel holds them.
 */
import { nl } from '../netlink/index.js';
import { containsPrefix, parseIp, parsePrefix, contains } from '../ipam/addr.js';
import type { NlNeigh, NlRoute } from '../native/addon.js';
import type { State } from '../store/model.js';

export interface RoutedHop {
  network: string;
  /** another host's block */
  block: string;
  /** that host's underlay address, the route's next hop */
  via: string;
  /** the device the next hop is reached on */
  dev?: string;
  /** the next hop is on a segment of this host (a connected route) */
  onLink: boolean;
  /** not on-link: the gateway this host reaches it through */
  gateway?: string;
  /** the kernel's neighbour state of the next hop (absent: never resolved) */
  neigh?: string;
  /** what is wrong, in words; absent when nothing is */
  warning?: string;
}

/** The route the kernel would pick for @ip among @routes (longest prefix, lowest metric; main table, unicast). */
function routeFor(routes: NlRoute[], ip: string): NlRoute | undefined {
  const a = parseIp(ip);
  let best: NlRoute | undefined;
  let bestBits = -1;
  for (const r of routes) {
    if (r.type !== 'unicast' || r.table !== 254) continue;
    const bits = r.dst === 'default' ? 0 : parsePrefix(r.dst, 'route', true).bits;
    if (r.dst !== 'default' && !contains(parsePrefix(r.dst, 'route', true), a.value, 4)) continue;
    if (bits > bestBits || (bits === bestBits && (r.metric ?? 0) < (best?.metric ?? 0))) {
      best = r;
      bestBits = bits;
    }
  }
  return best;
}

function judge(network: string, block: string, via: string, routes: NlRoute[], neighs: NlNeigh[]): RoutedHop {
  const r = routeFor(routes, via);
  const hop: RoutedHop = { network, block, via, onLink: !!r && !r.via, ...(r?.dev ? { dev: r.dev } : {}), ...(r?.via ? { gateway: r.via } : {}) };
  const n = neighs.find((x) => x.ip === via && (!r?.dev || x.dev === r.dev));
  if (n) hop.neigh = n.state;
  const what = `routed network '${network}': block ${block} via ${via}`;
  if (!r) hop.warning = `${what}: no route to the next hop`;
  else if (r.via) hop.warning = `${what} is not on this host's segment (reached through gateway ${r.via}${r.dev ? ` on ${r.dev}` : ''}): the underlay's routers must carry the blocks' addresses, which a network that drops unknown sources (many clouds) does not; use an overlay network (-d overlay) there`;
  else if (n && (n.state === 'failed' || n.state === 'incomplete')) hop.warning = `${what}: the next hop does not answer ARP on ${r.dev ?? 'the underlay'} (neighbour ${n.state}): that host is down or not on this segment`;
  return hop;
}

/** Every routed network's route to another host's block, judged (IPv4). */
export async function routedHops(state: State): Promise<RoutedHop[]> {
  const nets = Object.values(state.networks).filter((n) => n.driver === 'routed' && n.routed);
  if (!nets.length) return [];
  const [routes, neighs] = await Promise.all([nl.routeList({ family: 4 }), nl.neighList({ family: 4 })]);
  const out: RoutedHop[] = [];
  for (const n of nets) {
    const subnet = parsePrefix(n.routed!.subnet);
    for (const r of routes) {
      if (!r.via || r.dst === 'default' || r.dst === subnet.text) continue;
      const dst = parsePrefix(r.dst, 'route', true);
      if (dst.family !== 4 || !containsPrefix(subnet, dst)) continue;
      out.push(judge(n.name, dst.text, r.via, routes, neighs));
    }
  }
  return out;
}
