/** The whole desired datapath, derived from the controller's state: a pure function. */
import type { State } from '../store/model.js';
import { poolFor } from '../ipam/ipam.js';
import type { DesiredDatapath, DpLink, DpNetwork } from './datapath.js';

export function desiredDatapath(state: State, uplink?: string): DesiredDatapath {
  const networks: DpNetwork[] = Object.values(state.networks).map((n) => {
    const p4 = poolFor(n.pools, 4);
    const p6 = poolFor(n.pools, 6);
    return {
      id: n.id,
      name: n.name,
      ...((n.driver === 'bridge' || n.driver === 'overlay') && n.bridge ? { bridge: n.bridge } : {}),
      ...(p4 ? { subnet4: p4.subnet, gateway4: p4.gateway } : {}),
      ...(p6 ? { subnet6: p6.subnet, gateway6: p6.gateway } : {}),
      internal: n.internal,
      icc: n.options.icc !== 'false',
      masquerade: !n.internal && n.options.masquerade !== 'false',
    };
  });
  // -o egress=deny: a sandbox on such a network without a list of its own reaches nothing outside.
  const denying = new Set(Object.values(state.networks).filter((n) => n.options.egress === 'deny').map((n) => n.id));
  const endpoints = Object.values(state.sandboxes).flatMap((sb) => {
    const egress = sb.egressAllow ?? (sb.endpoints.some((e) => denying.has(e.network)) ? [] : undefined);
    return sb.endpoints.map((ep) => ({
      sandbox: sb.name,
      network: ep.network,
      ...(ep.hostIf ? { hostIf: ep.hostIf } : {}),
      mac: ep.mac,
      ...(ep.v4 ? { v4: ep.v4 } : {}),
      ...(ep.v6 ? { v6: ep.v6 } : {}),
      ...(egress ? { egress: egress.map((r) => ({ ...r })) } : {}),
    }));
  });
  const publishes = Object.values(state.sandboxes).flatMap((sb) => {
    // Published ports go to the sandbox's first endpoint, as Docker's do.
    const ep = sb.endpoints[0];
    if (!ep) return [];
    return sb.publish.map((p) => ({
      sandbox: sb.name,
      network: ep.network,
      hostIp: p.hostIp,
      hostPort: p.hostPort,
      count: p.count,
      ...(ep.v4 ? { containerV4: ep.v4 } : {}),
      ...(ep.v6 ? { containerV6: ep.v6 } : {}),
      containerPort: p.containerPort,
      proto: p.proto,
      allow: sb.publishAllow,
    }));
  });
  const links: DpLink[] = [];
  for (const sb of Object.values(state.sandboxes)) {
    for (const l of sb.links) {
      const t = state.sandboxes[l.target];
      if (!t) continue;
      for (const cep of sb.endpoints) {
        const tep = t.endpoints.find((e) => e.network === cep.network);
        if (!tep) continue;
        for (const x of t.expose) {
          links.push({
            network: cep.network, client: sb.name, target: t.name, port: x.port, proto: x.proto,
            ...(cep.v4 ? { clientV4: cep.v4 } : {}), ...(tep.v4 ? { targetV4: tep.v4 } : {}),
            ...(cep.v6 ? { clientV6: cep.v6 } : {}), ...(tep.v6 ? { targetV6: tep.v6 } : {}),
          });
        }
      }
    }
  }
  return { ...(uplink ? { uplink } : {}), networks, endpoints, publishes, links };
}
