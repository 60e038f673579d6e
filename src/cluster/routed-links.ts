/**
 * Links across hosts on routed networks. A link's two ends may sit on
 * different hosts: each host writes its routed members' exposed ports and
 * links to the store, and every host turns the pairs with one end of its
 * own into datapath links (the same entries as a link on one host), so the
 * linker's host lets the connection out and the target's host lets it in.
 *
 * Keys under /berth/v1/:
 *   rmembers/<network id>/<sandbox id>   RoutedMember
 */
import type { Logger } from 'pino';
import type { DpLink } from '../datapath/datapath.js';
import type { State } from '../store/model.js';
import { byRef } from '../controller/names.js';
import type { Cluster } from './cluster.js';

export interface RoutedMember {
  host: string;
  sandbox: string;
  name: string;
  v4?: string;
  /** exposed ports, "7200/tcp" */
  expose: string[];
  /** ids of the sandboxes it links to */
  links: string[];
}

const key = (netId: string, sandbox: string) => `rmembers/${netId}/${sandbox}`;

/** This host's members of routed networks in @state, by key. */
function localMembers(cluster: Cluster, state: State): Map<string, RoutedMember> {
  const out = new Map<string, RoutedMember>();
  for (const sb of Object.values(state.sandboxes)) {
    for (const ep of sb.endpoints) {
      if (state.networks[ep.network]?.driver !== 'routed') continue;
      out.set(key(ep.network, sb.id), {
        host: cluster.hostId, sandbox: sb.id, name: sb.name, ...(ep.v4 ? { v4: ep.v4 } : {}),
        expose: sb.expose.map((x) => `${x.port}/${x.proto}`), links: sb.links.map((l) => l.target),
      });
    }
  }
  return out;
}

/** Makes this host's member entries in the store match @state (writes only what changed). */
export async function publishMembers(cluster: Cluster, state: State): Promise<void> {
  const want = localMembers(cluster, state);
  for (const [k, m] of cluster.store.list<RoutedMember>('rmembers/')) {
    if (m.host === cluster.hostId && !want.has(`rmembers/${k}`)) await cluster.store.delete(`rmembers/${k}`);
  }
  for (const [k, m] of want) {
    if (JSON.stringify(cluster.store.get(k)) !== JSON.stringify(m)) await cluster.store.put(k, m);
  }
}

/** A sandbox of another host on a routed network of @state, by name, id or id prefix (a --link target). */
export function remoteMember(cluster: Cluster, state: State, ref: string): { id: string; name: string } | undefined {
  const all = [...cluster.store.list<RoutedMember>('rmembers/')].filter(([k, m]) => m.host !== cluster.hostId && state.networks[k.split('/')[0]!]);
  const m = byRef(all.map(([, x]) => ({ id: x.sandbox, name: x.name })), ref);
  return m;
}

/**
 * The links of @state's icc=false routed networks with exactly one end on
 * this host (links with both ends here come from the state itself).
 */
export function remoteLinks(cluster: Cluster, state: State, log?: Logger): DpLink[] {
  const out: DpLink[] = [];
  for (const n of Object.values(state.networks)) {
    if (n.driver !== 'routed' || n.options.icc !== 'false') continue;
    const members = new Map<string, RoutedMember>();
    for (const m of cluster.store.list<RoutedMember>(`rmembers/${n.id}/`).values()) if (m.host !== cluster.hostId) members.set(m.sandbox, m);
    for (const [k, m] of localMembers(cluster, state)) if (k.startsWith(`rmembers/${n.id}/`)) members.set(m.sandbox, m);
    for (const c of members.values()) {
      for (const tid of c.links) {
        const t = members.get(tid);
        // Both ends here: the state's own link; both elsewhere: not this host's to enforce.
        if (!t || !c.v4 || !t.v4 || (c.host === cluster.hostId) === (t.host === cluster.hostId)) continue;
        for (const x of t.expose) {
          const [port, proto] = x.split('/');
          if (proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') {
            log?.warn({ network: n.name, sandbox: t.name, expose: x }, 'exposed port of a routed member not understood');
            continue;
          }
          out.push({ network: n.id, client: c.name, target: t.name, port: Number(port), proto, clientV4: c.v4, targetV4: t.v4 });
        }
      }
    }
  }
  return out.sort((a, b) => `${a.clientV4}>${a.targetV4}:${a.port}/${a.proto}`.localeCompare(`${b.clientV4}>${b.targetV4}:${b.port}/${b.proto}`));
}
