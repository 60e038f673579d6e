/**
 * The resolved intent (../desired.ts) as elements of berth's nftables sets
 * and maps (ruleset.ts declares them): the only part of the nftables
 * datapath that changes with the intent. Pure. Each element is keyed by its
 * key text, so two intents diff into the elements to delete and to add.
 */
import { familyOf, ipToBig, parsePrefix, containsPrefix } from '../../ipam/addr.js';
import type { DesiredDatapath, DpEndpoint, DpNetwork } from '../datapath.js';
import { linkLocalOfMac } from '../iptables/guard.js';
import { SETS } from './ruleset.js';

/** set name -> element key -> element text (the key, or "key : value" for maps) */
export type Elements = Record<string, Map<string, string>>;

export interface SetsResult {
  elements: Elements;
  /** berth's bridges (route_localnet) */
  bridges: string[];
  /** the sandboxes' bridge ports (hairpin mode) */
  ports: string[];
  warnings: string[];
}

type F = 4 | 6;
const ANY: Record<F, string> = { 4: '0.0.0.0/0', 6: '::/0' };
const q = (ifname: string) => `"${ifname}"`;
const range = (first: number, count: number) => (count > 1 ? `${first}-${first + count - 1}` : `${first}`);
const subnetOf = (n: DpNetwork, f: F) => (f === 4 ? n.subnet4 : n.subnet6);
const gatewayOf = (n: DpNetwork, f: F) => (f === 4 ? n.gateway4 : n.gateway6);
const addrOf = (e: { v4?: string; v6?: string }, f: F) => (f === 4 ? e.v4 : e.v6);
const prefixFamily = (p: string): F | null => {
  const f = familyOf(p.split('/')[0]!);
  return f === 4 || f === 6 ? f : null;
};

/** @prefixes without those another one of them contains: interval elements of one key may not overlap. */
export function outermost(prefixes: string[]): string[] {
  const parsed = [...new Set(prefixes)].map((p) => ({ text: p, p: parsePrefix(p, 'prefix', true) }));
  return parsed.filter((a, i) => !parsed.some((b, j) => j !== i && b.p.family === a.p.family && containsPrefix(b.p, a.p) && (!containsPrefix(a.p, b.p) || j < i))).map((a) => a.text);
}

/** An IPv6 address as the 128-bit integer a raw payload key holds. */
const hex128 = (ip: string) => `0x${ipToBig(ip).toString(16).padStart(32, '0')}`;

export function renderSets(d: DesiredDatapath): SetsResult {
  const elements: Elements = Object.fromEntries(SETS.map((s) => [s.name, new Map<string, string>()]));
  const add = (set: string, key: string, value?: string) => {
    const m = elements[set];
    if (!m) throw new Error(`no nftables set ${set}`);
    m.set(key, value === undefined ? key : `${key} : ${value}`);
  };
  const warnings: string[] = [];
  // Only bridged networks pass through this host's tables; macvlan sandboxes sit on the parent's wire.
  const nets = d.networks.filter((n) => n.bridge);
  const netById = new Map(nets.map((n) => [n.id, n]));
  const endpoints = d.endpoints.filter((e) => e.hostIf && netById.has(e.network));
  for (const e of d.endpoints.filter((x) => x.egress && !(x.hostIf && netById.has(x.network)))) {
    warnings.push(`egress allow-list of '${e.sandbox}' not enforced on network '${e.network}': the nftables datapath filters bridged networks only`);
  }

  for (const n of nets) {
    const br = q(n.bridge!);
    add('bridges', br);
    if (n.internal) add('internal', br);
    add('intra', `${br} . ${br}`, n.icc ? 'accept' : 'jump icc_links');
    for (const f of [4, 6] as const) {
      const sn = subnetOf(n, f);
      const gw = gatewayOf(n, f);
      if (!sn) add(`nofam${f}`, br);
      if (gw) {
        add(`dnsgw${f}`, gw);
        add(`dnsown${f}`, `${gw} . ${br}`);
        if (n.internal) {
          add(`intgwbr${f}`, br);
          add(`intgw${f}`, `${br} . ${gw}`);
        }
      }
      if (sn && n.routed) {
        add(`routedout${f}`, `${br} . ${sn}`, n.icc ? 'accept' : 'drop');
        add(`routedin${f}`, `${br} . ${sn} . ${sn}`, n.icc ? 'accept' : 'drop');
      }
      if (sn && n.masquerade && !n.internal) {
        add(`masqsrc${f}`, sn);
        add(`masqown${f}`, `${sn} . ${br}`);
        if (n.routed) add(`masqrouted${f}`, `${sn} . ${sn}`);
      }
    }
    // A routed network's own block lives only on this host's bridge: a source of it arriving from the uplink is forged.
    if (n.routed && n.block4 && d.uplink) {
      add('uplink', q(d.uplink));
      add('routedblock4', n.block4);
    }
  }

  for (const e of endpoints) {
    const n = netById.get(e.network)!;
    const port = q(e.hostIf!);
    add('ports', port);
    add('ownmac', `${port} . ${e.mac}`);
    if (e.v4) add('ownarp', `${port} . ${e.v4}`);
    if (n.subnet4) {
      add('ports4', port);
      if (e.v4) add('own4', `${port} . ${e.v4}`);
    }
    if (n.subnet6) {
      add('ports6', port);
      if (e.v6) add('own6', `${port} . ${e.v6}`);
      for (const a of [linkLocalOfMac(e.mac), ...(e.v6 ? [e.v6] : [])]) add('natarget', `${port} . ${hex128(a)}`);
    }
    if (e.egress) for (const f of [4, 6] as const) egress(add, e, n, f);
  }

  for (const p of d.publishes) {
    const f = p.family;
    if (f === 6 && p.loopback) {
      warnings.push(`publish [::1]:${p.hostPort}/${p.proto} of '${p.sandbox}': IPv6 loopback cannot be forwarded without a proxy; use 127.0.0.1 or the host's address`);
      continue;
    }
    const dst = p.hostIp || ANY[f];
    const hostPorts = range(p.hostPort, p.count);
    const cports = range(p.containerPort, p.count);
    // Allow-lists (the operator's policy narrowed by the publish's own, resolved in desired.ts) match the
    // original destination, before translation: a source not admitted is never DNAT-ed.
    const admit = p.admit ?? (p.restricted ? p.allow : undefined);
    if (!admit && (p.count === 1 || p.containerPort !== p.hostPort)) {
      // Open to every source, port by port: the hash maps.
      for (let i = 0; i < p.count; i++) {
        if (p.hostIp) add(`pubhost${f}`, `${p.hostIp} . ${p.proto} . ${p.hostPort + i}`, `${p.target} . ${p.containerPort + i}`);
        else add(`pubany${f}`, `${p.proto} . ${p.hostPort + i}`, `${p.target} . ${p.containerPort + i}`);
      }
    } else for (const s of outermost((admit ?? [ANY[f]]).filter((a) => prefixFamily(a) === f))) {
      if (p.containerPort === p.hostPort) add(`dnat${f}`, `${dst} . ${s} . ${p.proto} . ${hostPorts}`, p.target);
      else if (p.count === 1) add(`dnatport${f}`, `${dst} . ${s} . ${p.proto} . ${hostPorts}`, `${p.target} . ${p.containerPort}`);
      // A shifted range: one element a port (nft maps cannot add an offset to the port).
      else for (let i = 0; i < p.count; i++) add(`dnatport${f}`, `${dst} . ${s} . ${p.proto} . ${p.hostPort + i}`, `${p.target} . ${p.containerPort + i}`);
    }
    // ... and does not reach the host port either (berth or anyone may listen there): the policy's refusal first.
    if (p.policy) {
      add(`pubpolports${f}`, `${dst} . ${p.proto} . ${hostPorts}`);
      for (const s of outermost(p.policy.allow.filter((a) => prefixFamily(a) === f))) add(`pubpolok${f}`, `${dst} . ${p.proto} . ${hostPorts} . ${s}`);
    }
    if (p.restricted && !p.loopback) add(`restricted${f}`, `${dst} . ${p.proto} . ${hostPorts}`);
    if (p.count > 1) add(`pubfwd${f}`, `${p.target} . ${p.proto} . ${cports} . ${dst}`);
    else if (p.hostIp) add(`pubfwdhost${f}`, `${p.target} . ${p.proto} . ${cports} . ${p.hostIp}`);
    else add(`pubfwdany${f}`, `${p.target} . ${p.proto} . ${cports}`);
    add(p.count > 1 ? `selfhair${f}` : `selfone${f}`, `${p.target} . ${p.target} . ${p.proto} . ${cports}`);
  }

  for (const n of nets.filter((x) => !x.icc)) {
    for (const l of d.links.filter((x) => x.network === n.id)) {
      for (const f of [4, 6] as const) {
        const c = addrOf({ v4: l.clientV4, v6: l.clientV6 }, f);
        const t = addrOf({ v4: l.targetV4, v6: l.targetV6 }, f);
        if (c && t) add(`links${f}`, `${c} . ${t} . ${l.proto} . ${l.port}`);
      }
    }
  }

  return { elements, bridges: nets.map((n) => n.bridge!), ports: endpoints.map((e) => e.hostIf!), warnings };
}

/** An endpoint's egress allow-list: its gateway and the listed destinations pass, the rest it opens drops. */
function egress(add: (set: string, key: string, value?: string) => void, e: DpEndpoint, n: DpNetwork, f: F): void {
  const me = addrOf(e, f);
  if (!me) return;
  add(`egressbr${f}`, q(n.bridge!));
  add(`egsrc${f}`, me);
  const gw = gatewayOf(n, f);
  if (gw) add(`eggw${f}`, `${me} . ${gw}`);
  const rules = e.egress!.filter((r) => prefixFamily(r.cidr) === f);
  for (const cidr of outermost(rules.filter((r) => r.port === undefined).map((r) => r.cidr))) add(`egnet${f}`, `${me} . ${cidr}`);
  for (const r of rules.filter((x) => x.port !== undefined)) add(`egport${f}`, `${me} . ${r.cidr} . ${r.proto ?? 'tcp'} . ${r.port}`);
}
