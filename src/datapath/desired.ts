/**
 * The datapath intent, resolved once from the controller's state (a pure
 * function): what every backend is told and only translates. Decided here,
 * and nowhere else:
 *  - which publishes install a mapping: those of bridged networks that are
 *    not internal (Docker ignores ports published on internal networks: they
 *    have no way in);
 *  - each publish per address family: its bind address's, or both for "every
 *    address", where the sandbox has an address of that family; its
 *    allow-list split the same way; loopback binds flagged;
 *  - the operator's publish policy (publish-policy.ts): per network, the
 *    host's and the network's lists combined; per publish, the sources its
 *    connections are translated for (the policy, loopback sources exempt,
 *    narrowed by the publish's own list). Loopback binds are the host's own:
 *    no policy;
 *  - the forwarding sysctls;
 *  - which publish front ends changed between two intents (changedFronts):
 *    the flows a backend flushes from its connection table.
 */
import type { State } from '../store/model.js';
import { poolFor } from '../ipam/ipam.js';
import { familyOf } from '../ipam/addr.js';
import type { DesiredDatapath, DpEndpoint, DpLink, DpNetwork, DpPublish } from './datapath.js';
import { forwardingSysctls } from './sysctl.js';
import { everyAddress, familyOfPrefix, intersectPrefixes, loopbackPrefix, networkPolicy, parsePublishAllow, policySource } from './publish-policy.js';

/** A publish as the state asks for it: a sandbox's port range, on its first endpoint; resolved into DpPublish. */
export interface DpPublishSpec {
  sandbox: string;
  network: string;
  /** '' = every host address; '127.0.0.1' / '::1' = localhost only */
  hostIp: string;
  hostPort: number;
  count: number;
  containerV4?: string;
  containerV6?: string;
  containerPort: number;
  proto: DpPublish['proto'];
  /** source prefixes allowed; empty = all */
  allow: string[];
}

/** The operator's publish policy of one network, resolved (publish-policy.ts). */
export interface PolicySpec {
  /** sources allowed to reach the network's published ports (both families) */
  allow: string[];
  /** where it comes from, for `berth exposure` */
  from: string;
}

/** The datapath as the state asks for it, before resolution. */
export interface DatapathSpec {
  uplink?: string;
  networks: DpNetwork[];
  endpoints: DpEndpoint[];
  publishes: DpPublishSpec[];
  links: DpLink[];
  /** network id -> its publish policy; absent: every source */
  policies?: Record<string, PolicySpec>;
}

/**
 * @publishAllow: berthd --publish-allow (normalised prefixes), absent: no host-wide policy;
 * @remoteLinks: links with one end on another host (routed networks, from the cluster store).
 */
export function desiredDatapath(state: State, uplink?: string, publishAllow?: string[], remoteLinks: DpLink[] = []): DesiredDatapath {
  const spec = datapathSpec(state, uplink, publishAllow);
  return resolveDatapath(remoteLinks.length ? { ...spec, links: [...spec.links, ...remoteLinks] } : spec);
}

/** Every decision of the intent made (see the top of this file). */
export function resolveDatapath(s: DatapathSpec): DesiredDatapath {
  const mapping = new Set(s.networks.filter((n) => n.bridge && !n.internal).map((n) => n.id));
  return {
    ...(s.uplink ? { uplink: s.uplink } : {}),
    networks: s.networks.map((n) => (s.policies?.[n.id] ? { ...n, publishAllow: s.policies[n.id]!.allow } : n)),
    endpoints: s.endpoints,
    publishes: s.publishes.filter((p) => mapping.has(p.network)).flatMap((p) => resolvePublish(p, s.policies?.[p.network])),
    links: s.links,
    sysctls: forwardingSysctls(s.networks.some((n) => n.bridge && n.subnet6)),
  };
}

export function isLoopback(ip: string): boolean {
  return ip === '::1' || /^127\./.test(ip);
}

function resolvePublish(p: DpPublishSpec, policy: PolicySpec | undefined): DpPublish[] {
  const families: (4 | 6)[] = p.hostIp ? [familyOf(p.hostIp)].filter((f): f is 4 | 6 => f === 4 || f === 6) : [4, 6];
  const out: DpPublish[] = [];
  for (const family of families) {
    const target = family === 4 ? p.containerV4 : p.containerV6;
    if (!target) continue;
    const loopback = isLoopback(p.hostIp);
    const own = p.allow.filter((a) => familyOfPrefix(a) === family);
    const restricted = p.allow.length > 0;
    const pub: DpPublish = {
      sandbox: p.sandbox, network: p.network, family, hostIp: p.hostIp, loopback,
      hostPort: p.hostPort, count: p.count, target, containerPort: p.containerPort, proto: p.proto,
      restricted, allow: own,
    };
    // The policy admits its prefixes and the host's loopback sources; the publish's own list narrows that.
    if (policy && !loopback) {
      const mine = policy.allow.filter((a) => familyOfPrefix(a) === family);
      pub.policy = { allow: mine, from: policy.from };
      pub.admit = intersectPrefixes([...mine, loopbackPrefix(family)], restricted ? own : [everyAddress(family)]);
    }
    out.push(pub);
  }
  return out;
}

/** What identifies a publish's front end: the connection-table entries it owns. */
export interface FrontEnd {
  proto: DpPublish['proto'];
  /** '' = every host address */
  hostIp: string;
  hostPort: number;
  count: number;
}

export const frontKey = (p: FrontEnd) => `${p.proto}|${p.hostIp}|${p.hostPort}|${p.count}`;

/** front end -> what it translates to (every family's target, ports and allow-list). */
function publishTargets(d: DesiredDatapath): Map<string, { front: FrontEnd; target: string }> {
  const out = new Map<string, { front: FrontEnd; target: string }>();
  for (const p of d.publishes) {
    const front: FrontEnd = { proto: p.proto, hostIp: p.hostIp, hostPort: p.hostPort, count: p.count };
    // a plain join (not JSON): 10,000 publishes are compared on every apply; '|' and ',' appear in none of these values
    const target = `${p.network}|${p.sandbox}|${p.family}|${p.target}|${p.containerPort}|${p.restricted}|${[...p.allow].sort().join(',')}|${p.admit ? [...p.admit].sort().join(',') : '*'}`;
    const k = frontKey(front);
    const prev = out.get(k);
    out.set(k, { front, target: prev ? `${prev.target};${target}` : target });
  }
  return out;
}

/** Front ends added, removed or changed from @before to @after (undefined before: everything in @after; after: everything before). */
export function changedFronts(before: DesiredDatapath | undefined, after: DesiredDatapath | undefined): FrontEnd[] {
  const a = before ? publishTargets(before) : new Map<string, { front: FrontEnd; target: string }>();
  const b = after ? publishTargets(after) : new Map<string, { front: FrontEnd; target: string }>();
  const out: FrontEnd[] = [];
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(k);
    const y = b.get(k);
    if (x?.target !== y?.target) out.push((y ?? x)!.front);
  }
  return out;
}

/**
 * Front ends removed or changed from @before to @after, not the added ones:
 * only a front end that led somewhere before can have flows to flush (a
 * removal flushes its flows, and a process's first apply flushes every flow
 * the table no longer makes, so none of a new front end's can be left).
 */
export function staleFronts(before: DesiredDatapath, after: DesiredDatapath): FrontEnd[] {
  const a = publishTargets(before);
  const b = publishTargets(after);
  const out: FrontEnd[] = [];
  for (const [k, x] of a) if (x.target !== b.get(k)?.target) out.push(x.front);
  return out;
}

/** The state's networks, endpoints, publishes and links as the datapath sees them, not yet resolved. */
function datapathSpec(state: State, uplink?: string, publishAllow?: string[]): DatapathSpec {
  const networks: DpNetwork[] = Object.values(state.networks).map((n) => {
    const p4 = poolFor(n.pools, 4);
    const p6 = poolFor(n.pools, 6);
    return {
      id: n.id,
      name: n.name,
      ...((n.driver === 'bridge' || n.driver === 'overlay' || n.driver === 'routed') && n.bridge ? { bridge: n.bridge } : {}),
      // A routed network's subnet is the whole address space (every host's block); its gateway is this host's.
      ...(p4 ? { subnet4: n.routed?.subnet ?? p4.subnet, gateway4: p4.gateway } : {}),
      ...(n.routed ? { routed: true, block4: n.routed.block } : {}),
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
  const policies: Record<string, PolicySpec> = {};
  for (const n of Object.values(state.networks)) {
    const own = n.options['publish.allow'] ? parsePublishAllow(n.options['publish.allow'], `network ${n.name} option publish.allow`) : undefined;
    const allow = networkPolicy(publishAllow, own);
    if (allow) policies[n.id] = { allow, from: policySource(!!publishAllow, own ? n.name : undefined) };
  }
  return { ...(uplink ? { uplink } : {}), networks, endpoints, publishes, links, policies };
}
