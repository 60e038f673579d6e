/**
 * What the overlay enforces across hosts, from this host's state and the
 * cluster's endpoints (a pure function): each overlay network's checks
 * (icc=false, internal) and the links that cross hosts. A link is a client
 * endpoint whose sandbox names the target's sandbox in --link, on the same
 * network, to each of the target's exposed TCP/UDP ports; only pairs with
 * one end on this host are this host's to enforce (two local ends never
 * tunnel, two remote ones never pass here).
 */
import type { State } from '../store/model.js';
import type { OverlayNetPolicy } from '../datapath/overlay/policy.js';
import type { OvlLinkKey, OvlProto } from '../datapath/overlay/abi.js';
import type { EndpointEntry } from './cluster.js';

interface Member {
  sandbox: string;
  v4?: string;
  links: string[];
  expose: { port: number; proto: string }[];
  local: boolean;
}

export interface OverlayPolicy {
  nets: Map<number, OverlayNetPolicy>;
  links: OvlLinkKey[];
}

export function overlayPolicy(state: State, hostId: string, endpoints: { network: string; e: EndpointEntry }[]): OverlayPolicy {
  const nets = new Map<number, OverlayNetPolicy>();
  const members = new Map<string, Member[]>();
  for (const n of Object.values(state.networks)) {
    if (n.driver !== 'overlay' || !n.vxlan) continue;
    nets.set(n.vxlan.vni, { icc: n.options.icc !== 'false', internal: n.internal });
    members.set(n.id, []);
  }
  for (const sb of Object.values(state.sandboxes)) {
    for (const ep of sb.endpoints) {
      members.get(ep.network)?.push({ sandbox: sb.id, ...(ep.v4 ? { v4: ep.v4 } : {}), links: sb.links.map((l) => l.target), expose: sb.expose, local: true });
    }
  }
  for (const { network, e } of endpoints) {
    if (e.host === hostId) continue;
    members.get(network)?.push({ sandbox: e.sandbox, ...(e.v4 ? { v4: e.v4 } : {}), links: e.links ?? [], expose: e.expose ?? [], local: false });
  }
  const links: OvlLinkKey[] = [];
  for (const [netId, ms] of members) {
    const n = state.networks[netId]!;
    if (n.options.icc !== 'false') continue;
    const vni = n.vxlan!.vni;
    for (const c of ms) {
      if (!c.v4 || !c.links.length) continue;
      for (const t of ms) {
        if (!t.v4 || t.local === c.local || !c.links.includes(t.sandbox)) continue;
        for (const x of t.expose) {
          if (x.proto === 'tcp' || x.proto === 'udp') links.push({ vni, client: c.v4, target: t.v4, port: x.port, proto: x.proto as OvlProto });
        }
      }
    }
  }
  return { nets, links };
}
