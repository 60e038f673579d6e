/**
 * Names across hosts: the embedded DNS answers from the controller's state,
 * which holds this host's sandboxes only. This adds the other hosts'
 * endpoints on global networks as sandboxes of their own (mode 'external',
 * nothing of them is in this host's kernel), so names, aliases and short ids
 * of remote sandboxes resolve on every host as local ones do.
 */
import type { SandboxRecord, State } from '../store/model.js';
import type { Cluster } from './cluster.js';

export function withClusterEndpoints(state: State, cluster: Cluster | undefined): State {
  if (!cluster) return state;
  const remote: Record<string, SandboxRecord> = {};
  for (const { network, id, e } of cluster.allEndpoints()) {
    if (e.host === cluster.hostId || !state.networks[network]) continue;
    const sb = (remote[e.sandbox] ??= {
      id: e.sandbox, name: e.name, created: '', mode: 'external', netnsPath: '', hostname: e.hostname,
      dns: [], dnsSearch: [], addHosts: [], env: [], links: [], expose: [], publish: [], publishAll: false,
      publishAllow: [], endpoints: [], cmd: [],
    });
    sb.endpoints.push({ id, network, ifname: `eth${sb.endpoints.length}`, mac: e.mac, ...(e.v4 ? { v4: e.v4 } : {}), aliases: e.aliases });
  }
  if (!Object.keys(remote).length) return state;
  return { ...state, sandboxes: { ...remote, ...state.sandboxes } };
}
