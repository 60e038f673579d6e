/**
 * The whole desired datapath as rules in berth's chains: a pure function, one
 * place per decision. Where a packet is NAT-ed: BERTH-DNAT (published ports)
 * and BERTH-POSTROUTING (masquerade). Where a policy verdict is made:
 * BERTH-PREROUTING (raw: spoofing), BERTH-FORWARD and the chains it jumps to
 * (filter: publish, isolation, icc, links, egress allow-lists), BERTH-INPUT
 * (the host itself).
 *
 * Docker's iptables driver with userland-proxy=false is the model; where it
 * differs, on purpose:
 *  - published flows are accepted only when berth DNAT-ed them (conntrack
 *    state DNAT and the original port): no direct routing to a sandbox
 *    address from outside, and the published port reaches sandboxes of any
 *    network through the host address (hairpin), as it would with a proxy;
 *  - the default for traffic into a bridge is an explicit DROP in berth's own
 *    chain, so no built-in chain policy is ever changed;
 *  - links accept only the client's new connections to the exposed port; the
 *    target answers through conntrack, and cannot open connections itself;
 *  - a sandbox reaching another's published port keeps its own source address
 *    (masquerade only when a sandbox reaches itself, or the host's 127.0.0.1);
 *  - anti-spoofing (IP in raw, MAC and ARP in ebtables), the loopback guard,
 *    per-publish source allow-lists under the operator's publish policy
 *    (BERTH-PUBPOL-<network>), IPv6 of IPv4-only networks dropped;
 *  - per-sandbox egress allow-lists: matched on the sandbox's address, which
 *    anti-spoofing makes a sound key.
 */
import { familyOf } from '../../ipam/addr.js';
import type { DesiredDatapath, DpEgressRule, DpEndpoint, DpLink, DpNetwork } from '../datapath.js';
import type { Proto } from '../../store/model.js';
import { CHAIN, type Family } from './chains.js';
import { dnsGuard, routerGuard } from './guard.js';

/** table -> chain -> rule specs (what follows "-A CHAIN "), in order */
export type TableRules = Record<string, Record<string, string[]>>;

export interface Rendered {
  rules: Record<Family, TableRules>;
  /** berth's bridges: each gets route_localnet=1 (host -> 127.0.0.1:published port, iptables/sysctl.ts) */
  bridges: string[];
  /** the sandboxes' bridge ports: each in hairpin mode (a sandbox reaching its own published port) */
  ports: string[];
  /** things asked for that this datapath cannot do, said instead of silently skipped */
  warnings: string[];
}

type IpFamily = 'ip4' | 'ip6';

function emptyRules(family: Family): TableRules {
  if (family === 'eb') return { nat: { [CHAIN.antispoof]: [] } };
  return {
    raw: { [CHAIN.prerouting]: [] },
    nat: { [CHAIN.dnat]: [], [CHAIN.postrouting]: [] },
    filter: {
      [CHAIN.forward]: [],
      [CHAIN.publish]: [],
      [CHAIN.isolation1]: [],
      [CHAIN.isolation2]: [],
      [CHAIN.icc]: [],
      [CHAIN.egress]: [],
      [CHAIN.input]: [],
    },
  };
}

const fam = (ip: string): IpFamily | null => {
  const f = familyOf(ip.split('/')[0]!);
  return f === 4 ? 'ip4' : f === 6 ? 'ip6' : null;
};
const host = (ip: string, f: IpFamily) => `${ip}/${f === 'ip4' ? 32 : 128}`;
const subnetOf = (n: DpNetwork, f: IpFamily) => (f === 'ip4' ? n.subnet4 : n.subnet6);
const gatewayOf = (n: DpNetwork, f: IpFamily) => (f === 'ip4' ? n.gateway4 : n.gateway6);
const addrOf = (e: { v4?: string; v6?: string }, f: IpFamily) => (f === 'ip4' ? e.v4 : e.v6);
const ports = (first: number, count: number) => (count > 1 ? `${first}:${first + count - 1}` : `${first}`);
const l4 = (proto: Proto, dport: string) => `-p ${proto} -m ${proto} --dport ${dport}`;

export function render(d: DesiredDatapath): Rendered {
  const rules: Record<Family, TableRules> = { ip4: emptyRules('ip4'), ip6: emptyRules('ip6'), eb: emptyRules('eb') };
  const warnings: string[] = [];
  // Only bridged networks pass through this host's tables; macvlan sandboxes sit on the parent's wire.
  const nets = d.networks.filter((n) => n.bridge);
  const netById = new Map(nets.map((n) => [n.id, n]));
  const endpoints = d.endpoints.filter((e) => e.hostIf && netById.has(e.network));
  // The intent holds only publishes that install a mapping (bridged, not internal), one per family.
  const publishes = d.publishes;
  for (const e of d.endpoints.filter((x) => x.egress && !(x.hostIf && netById.has(x.network)))) {
    warnings.push(`egress allow-list of '${e.sandbox}' not enforced on network '${e.network}': the iptables datapath filters bridged networks only`);
  }
  for (const p of publishes) {
    if (p.loopback && p.family === 6) warnings.push(`publish [::1]:${p.hostPort}/${p.proto} of '${p.sandbox}': IPv6 loopback cannot be forwarded without a proxy; use 127.0.0.1 or the host's address`);
  }

  for (const f of ['ip4', 'ip6'] as const) {
    const t = rules[f];
    const raw = t.raw![CHAIN.prerouting]!;
    const dnat = t.nat![CHAIN.dnat]!;
    const post = t.nat![CHAIN.postrouting]!;
    const selfHairpin: string[] = [];
    const fwd = t.filter![CHAIN.forward]!;
    const pub = t.filter![CHAIN.publish]!;
    const iso1 = t.filter![CHAIN.isolation1]!;
    const iso2 = t.filter![CHAIN.isolation2]!;
    const icc = t.filter![CHAIN.icc]!;
    const egress = t.filter![CHAIN.egress]!;
    const input = t.filter![CHAIN.input]!;

    // raw: guards before conntrack sees the packet.
    for (const n of nets) {
      const br = n.bridge!;
      // route_localnet=1 on the bridges would otherwise let a sandbox reach the host's loopback services.
      if (f === 'ip4') raw.push(`-d 127.0.0.0/8 -i ${br} -j DROP`);
      // A network without this family: its sandboxes' packets of it are dropped, never a way around policy.
      if (!subnetOf(n, f)) raw.push(`-i ${br} -j DROP`);
    }
    for (const e of endpoints) raw.push(...antiSpoof(e, netById.get(e.network)!, f));
    // A routed network's own block lives only on this host's bridge: a source of it arriving from the uplink is forged.
    if (f === 'ip4' && d.uplink) for (const n of nets.filter((x) => x.routed && x.block4)) raw.push(`-s ${n.block4} -i ${d.uplink} -j DROP`);
    // ... and one of an address no host holds routes back onto the bridge, not the uplink: forged too.
    if (d.uplink) for (const n of nets.filter((x) => x.routed && subnetOf(x, f))) raw.push(`-s ${subnetOf(n, f)} -i ${d.uplink} -m rpfilter --invert -j DROP`);

    // nat: published ports. PREROUTING jumps here only for non-loopback local addresses, OUTPUT for all.
    // Internal networks reach no host address but their gateway: their packets are never translated.
    for (const n of nets.filter((x) => x.internal)) dnat.push(`-i ${n.bridge} -j RETURN`);
    for (const p of publishes) {
      if (p.family !== (f === 'ip4' ? 4 : 6) || (f === 'ip6' && p.loopback)) continue;
      const cip = p.target;
      const br = netById.get(p.network)!.bridge!;
      const dst = p.hostIp ? `-d ${host(p.hostIp, f)} ` : '';
      const to = `${f === 'ip6' ? `[${cip}]` : cip}:${p.count > 1 ? `${p.containerPort}-${p.containerPort + p.count - 1}/${p.hostPort}` : p.containerPort}`;
      const hostPorts = ports(p.hostPort, p.count);
      // Allow-lists (the operator's policy narrowed by the publish's own, resolved in desired.ts) match the
      // original destination, before translation: a source not admitted is never DNAT-ed.
      const admit = p.admit ?? (p.restricted ? p.allow : undefined);
      const sources = admit ? admit.map((a) => `-s ${a} `) : [''];
      for (const s of sources) dnat.push(`${s}${dst}${l4(p.proto, hostPorts)} -j DNAT --to-destination ${to}`);
      // ... and does not reach the host port either (berth or anyone may listen there): the policy's refusal first.
      if (p.policy) input.push(`${dst}! -i lo ${l4(p.proto, hostPorts)} -j ${policyChain(t, p.network, p.policy.allow)}`);
      if (p.restricted && !p.loopback) input.push(`${dst}! -i lo ${l4(p.proto, hostPorts)} -j DROP`);
      // Only connections berth translated for this publish enter the bridge.
      const orig = `${p.hostIp ? ` --ctorigdst ${p.hostIp}` : ''} --ctorigdstport ${hostPorts}`;
      pub.push(`-d ${host(cip, f)} -o ${br} ${l4(p.proto, ports(p.containerPort, p.count))} -m conntrack --ctstate DNAT${orig} -j ACCEPT`);
      // A sandbox reaching its own published port would answer itself directly: masquerade that flow.
      selfHairpin.push(`-s ${host(cip, f)} -d ${host(cip, f)} ${l4(p.proto, ports(p.containerPort, p.count))} -j MASQUERADE`);
    }

    // nat: masquerade. Host -> 127.0.0.1:published port leaves through the bridge (route_localnet): the sandbox must see an address it can answer.
    if (f === 'ip4') for (const n of nets) post.push(`-s 127.0.0.0/8 -o ${n.bridge} -j MASQUERADE`);
    post.push(...selfHairpin);
    // A sandbox of another network reaching a published port keeps its address (replies return through the host).
    for (const n of nets) post.push(`-o ${n.bridge} -m conntrack --ctstate DNAT -j RETURN`);
    for (const n of nets) {
      const sn = subnetOf(n, f);
      // A routed network's members on other hosts see each other's own addresses.
      if (sn && n.masquerade && !n.internal) post.push(`-s ${sn}${n.routed ? ` ! -d ${sn}` : ''} ! -o ${n.bridge} -j MASQUERADE`);
    }

    // filter: forwarding.
    for (const n of nets) fwd.push(`-o ${n.bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);
    // Routed networks: members on other hosts, through the uplink both ways, with icc or by a link
    // (a link with an end on another host is held on both hosts: the client's lets it out, the target's in).
    for (const n of nets.filter((x) => x.routed && subnetOf(x, f))) {
      const sn = subnetOf(n, f)!;
      const verdict = n.icc ? 'ACCEPT' : 'DROP';
      if (!n.icc) {
        fwd.push(`-i ${n.bridge} -d ${sn} ! -o ${n.bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);
        for (const l of d.links.filter((x) => x.network === n.id)) fwd.push(...routedLinkRule(l, n.bridge!, f));
      }
      fwd.push(`-i ${n.bridge} -d ${sn} ! -o ${n.bridge} -j ${verdict}`, `! -i ${n.bridge} -s ${sn} -d ${sn} -o ${n.bridge} -j ${verdict}`);
    }
    if (nets.length) fwd.push(`-j ${CHAIN.publish}`, `-j ${CHAIN.isolation1}`);
    for (const n of nets) fwd.push(`-i ${n.bridge} -o ${n.bridge} -j ${n.icc ? 'ACCEPT' : CHAIN.icc}`);
    // Nothing else enters a network: no direct routing to sandbox addresses, and no built-in policy is relied on.
    for (const n of nets) fwd.push(`-o ${n.bridge} -j DROP`);
    // Egress allow-lists: only new connections are judged, so replies and flows already open pass,
    // and a changed list holds for the next connection. Same network, published ports and other networks were decided above.
    const limited = endpoints.filter((e) => e.egress && addrOf(e, f));
    const limitedNets = nets.filter((n) => limited.some((e) => e.network === n.id));
    for (const n of limitedNets) fwd.push(`-i ${n.bridge} -m conntrack --ctstate NEW -j ${CHAIN.egress}`);
    for (const e of limited) egress.push(...egressRules(e, netById.get(e.network)!, f));
    for (const n of nets) fwd.push(`-i ${n.bridge} -j ${n.internal ? 'DROP' : 'ACCEPT'}`);

    // filter: isolation between networks (Docker's two stages) and internal networks.
    for (const n of nets) {
      const br = n.bridge!;
      if (n.internal) {
        iso1.push(`-i ${br} ! -o ${br} -j DROP`, `! -i ${br} -o ${br} -j DROP`);
      } else {
        iso1.push(`-i ${br} ! -o ${br} -j ${CHAIN.isolation2}`);
      }
      iso2.push(`-o ${br} -j DROP`);
    }

    // filter: icc=false networks: links open one port from the client; the rest is dropped.
    for (const n of nets.filter((x) => !x.icc)) {
      const br = n.bridge!;
      for (const l of d.links.filter((x) => x.network === n.id)) icc.push(...linkRule(l, br, f));
      // Neighbour discovery must pass for links to resolve each other's MAC (ARP is not IP: it passes anyway).
      if (f === 'ip6') for (const type of [135, 136]) icc.push(`-i ${br} -o ${br} -p ipv6-icmp -m icmp6 --icmpv6-type ${type} -j ACCEPT`);
      icc.push(`-i ${br} -o ${br} -j DROP`);
    }

    // filter: a gateway's DNS port answers its own network only (no open resolver for the LAN or other networks).
    for (const n of nets) input.push(...dnsGuard(n, f));

    // filter: internal networks reach the host only at their gateway (the embedded DNS), not its other addresses.
    for (const n of nets.filter((x) => x.internal)) {
      const gw = gatewayOf(n, f);
      if (!gw) continue;
      if (f === 'ip6') input.push(`-i ${n.bridge} -p ipv6-icmp -j RETURN`);
      input.push(`! -d ${host(gw, f)} -i ${n.bridge} -j DROP`);
    }
    // ... and egress allow-lists hold for the host's addresses too (last: the drops above are not skipped by its RETURNs).
    for (const n of limitedNets) input.push(`-i ${n.bridge} -m conntrack --ctstate NEW -j ${CHAIN.egress}`);
  }

  // ebtables: a sandbox's port sends only the sandbox's MAC, and ARP only for its own address.
  const eb = rules.eb.nat![CHAIN.antispoof]!;
  for (const e of endpoints) {
    eb.push(`-s ! ${e.mac} -i ${e.hostIf} -j DROP`);
    eb.push(`-p ARP -i ${e.hostIf} --arp-mac-src ! ${e.mac} -j DROP`);
    eb.push(e.v4 ? `-p ARP -i ${e.hostIf} --arp-ip-src ! ${e.v4} -j DROP` : `-p ARP -i ${e.hostIf} -j DROP`);
  }

  return { rules, bridges: nets.map((n) => n.bridge!), ports: endpoints.map((e) => e.hostIf!), warnings };
}

/**
 * The filter chain of network @network's publish policy (one per network and
 * family, made on first use): the policy's sources RETURN, the rest drops.
 */
function policyChain(t: TableRules, network: string, allow: string[]): string {
  const name = `${CHAIN.pubpolicy}${network.slice(0, 12)}`;
  t.filter![name] ??= [...allow.map((a) => `-s ${a} -j RETURN`), '-j DROP'];
  return name;
}

/** raw rules: @e sends nothing only a router sends (guard.ts), and only with its own address (link-local and DAD too for IPv6). */
function antiSpoof(e: DpEndpoint, n: DpNetwork, f: IpFamily): string[] {
  const port = `-m physdev --physdev-in ${e.hostIf}`;
  const br = n.bridge!;
  if (!subnetOf(n, f)) return []; // the whole bridge is dropped for this family
  const own = addrOf(e, f);
  const guard = routerGuard(e, n, f);
  if (f === 'ip4') return [...guard, own ? `! -s ${host(own, f)} -i ${br} ${port} -j DROP` : `-i ${br} ${port} -j DROP`];
  const out: string[] = [...guard];
  if (own) out.push(`-s ${host(own, f)} -i ${br} ${port} -j RETURN`);
  out.push(`-s fe80::/10 -i ${br} ${port} -j RETURN`);
  // Duplicate address detection sends from :: to a solicited-node group.
  out.push(`-s ::/128 -d ff02::/16 -i ${br} -p ipv6-icmp ${port} -j RETURN`);
  out.push(`-i ${br} ${port} -j DROP`);
  return out;
}

/**
 * BERTH-EGRESS rules of one endpoint with an allow-list: its gateway (the
 * embedded DNS) and the listed destinations RETURN to the verdict of the
 * calling chain; everything else it opens is dropped.
 */
function egressRules(e: DpEndpoint, n: DpNetwork, f: IpFamily): string[] {
  const me = `-s ${host(addrOf(e, f)!, f)} -i ${n.bridge}`;
  const out: string[] = [];
  const gw = gatewayOf(n, f);
  if (gw) out.push(`${me} -d ${host(gw, f)} -j RETURN`);
  // Neighbour discovery towards the host is the link working, not a connection.
  if (f === 'ip6') for (const type of [133, 135, 136]) out.push(`${me} -p ipv6-icmp -m icmp6 --icmpv6-type ${type} -j RETURN`);
  for (const r of e.egress!.filter((x) => fam(x.cidr) === f)) out.push(`${me} -d ${r.cidr}${egressPort(r)} -j RETURN`);
  out.push(`${me} -j DROP`);
  return out;
}

const egressPort = (r: DpEgressRule) => (r.port !== undefined ? ` ${l4(r.proto ?? 'tcp', String(r.port))}` : '');

/** A link on a routed network across the uplink: out from the client's host, in at the target's. */
function routedLinkRule(l: DpLink, br: string, f: IpFamily): string[] {
  const c = addrOf({ v4: l.clientV4, v6: l.clientV6 }, f);
  const t = addrOf({ v4: l.targetV4, v6: l.targetV6 }, f);
  if (!c || !t) return [];
  const m = `-s ${host(c, f)} -d ${host(t, f)} ${l4(l.proto, String(l.port))}`;
  return [`${m} -i ${br} ! -o ${br} -m conntrack --ctstate NEW -j ACCEPT`, `${m} ! -i ${br} -o ${br} -m conntrack --ctstate NEW -j ACCEPT`];
}

/** Docker's link pair without its flaw: the client opens to the exposed port; replies pass as ESTABLISHED. */
function linkRule(l: DpLink, br: string, f: IpFamily): string[] {
  const c = addrOf({ v4: l.clientV4, v6: l.clientV6 }, f);
  const t = addrOf({ v4: l.targetV4, v6: l.targetV6 }, f);
  if (!c || !t) return [];
  return [`-s ${host(c, f)} -d ${host(t, f)} -i ${br} -o ${br} ${l4(l.proto, String(l.port))} -j ACCEPT`];
}
