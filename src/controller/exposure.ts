/**
 * The effective exposure of a host, from the resolved datapath intent: every published
 * port with its bind address, protocol, allow-list and the sandbox behind it,
 * and which sandboxes can open connections to which others on which ports.
 * Stable ordering, so a security team can diff two days' reports.
 */
import type { DesiredDatapath } from '../datapath/datapath.js';

export interface PublishedExposure {
  sandbox: string;
  network: string;
  bind: string;
  hostPorts: string;
  containerPorts: string;
  proto: string;
  /** the sources that reach it (['any']: every source; [] none but the host's loopback, where it applies) */
  allow: string[];
  /** where each limit on those sources comes from: the operator's policy, the publish's own list; [] unlimited */
  limits: { by: string; allow: string[] }[];
}

export interface Reach {
  from: string;
  to: string;
  network: string;
  /** 'any' when icc allows everything, else the linked ports ("5432/tcp") */
  ports: string[];
}

export interface Exposure {
  published: PublishedExposure[];
  reachability: Reach[];
}

const range = (lo: number, count: number) => (count > 1 ? `${lo}-${lo + count - 1}` : String(lo));

export function exposure(d: DesiredDatapath): Exposure {
  const netName = new Map(d.networks.map((n) => [n.id, n.name]));
  // The intent holds only publishes that install a mapping, one per family: one line per publish, its families' allow-lists together.
  const byPublish = new Map<string, Omit<PublishedExposure, 'limits'> & { restricted: boolean; policy?: { from: string; allow: string[] }; own: string[]; admit?: string[] }>();
  for (const p of d.publishes) {
    const k = JSON.stringify([p.sandbox, p.network, p.proto, p.hostIp, p.hostPort, p.count, p.containerPort]);
    const e = byPublish.get(k) ?? {
      sandbox: p.sandbox,
      network: netName.get(p.network) ?? p.network,
      bind: p.hostIp || '*',
      hostPorts: range(p.hostPort, p.count),
      containerPorts: range(p.containerPort, p.count),
      proto: p.proto,
      allow: [],
      restricted: p.restricted,
      own: [],
    };
    e.own.push(...p.allow.filter((a) => !e.own.includes(a)));
    if (p.policy) {
      e.policy ??= { from: p.policy.from, allow: [] };
      e.policy.allow.push(...p.policy.allow.filter((a) => !e.policy!.allow.includes(a)));
      e.admit = [...(e.admit ?? []), ...p.admit!.filter((a) => !e.admit?.includes(a))];
    }
    byPublish.set(k, e);
  }
  const published = [...byPublish.values()]
    .map(({ restricted, allow: _a, own, policy, admit, ...e }) => ({
      ...e,
      // With a policy: what it and the publish's own list both admit; else the publish's list.
      allow: admit ? admit.sort() : restricted ? own.sort() : ['any'],
      limits: [
        ...(policy ? [{ by: policy.from, allow: policy.allow.sort() }] : []),
        ...(restricted ? [{ by: 'publish --publish-allow', allow: own.sort() }] : []),
      ],
    }))
    .sort((a, b) => a.proto.localeCompare(b.proto) || a.bind.localeCompare(b.bind) || Number(a.hostPorts.split('-')[0]) - Number(b.hostPorts.split('-')[0]));
  const reachability: Reach[] = [];
  for (const n of d.networks) {
    if (!n.bridge) continue;
    const members = [...new Set(d.endpoints.filter((e) => e.network === n.id).map((e) => e.sandbox))].sort();
    for (const from of members) {
      for (const to of members) {
        if (from === to) continue;
        if (n.icc) {
          reachability.push({ from, to, network: n.name, ports: ['any'] });
          continue;
        }
        const ports = [...new Set(d.links.filter((l) => l.network === n.id && l.client === from && l.target === to).map((l) => `${l.port}/${l.proto}`))].sort();
        if (ports.length) reachability.push({ from, to, network: n.name, ports });
      }
    }
  }
  return { published, reachability };
}
