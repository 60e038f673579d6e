/**
 * The resolved intent as the contents of the eBPF datapath's maps: a pure
 * translation of the intent and the host's interfaces, testable without a
 * kernel. Keys and values are the exact bytes
 * bpf/include/berth_abi.h lays out (src/bpf/abi.ts), keyed here by their hex
 * so the backend can diff them against what the kernel holds.
 */
import type { NlAddr, NlLink } from '../../native/addon.js';
import type { DesiredDatapath } from '../datapath.js';
import { bigToIp, familyOf, ipToBig, parsePrefix } from '../../ipam/addr.js';
import type { Proto } from '../../store/model.js';
import { dpCfg, dpEgress, dpEp, dpLinkKey, dpLpmId, dpNet, EGRESS_RULES, EpFlag, NetFlag, PubFlag, PUB_WALK, type DpPub } from '../../bpf/abi.js';
import { u32 as u32Codec } from '../../bpf/codec.js';

export const PROTO: Record<Proto, number> = { tcp: 6, udp: 17, sctp: 132 };
const ZERO16 = Buffer.alloc(16);

/** An address as the datapath keys it: IPv6, or IPv4 mapped into IPv6. */
export function addr16(ip: string): Buffer {
  return addr16Of(ip);
}

function addr16Of(ip: string): Buffer {
  const f = familyOf(ip);
  if (!f) throw new TypeError(`'${ip}' is not an IP address`);
  const b = Buffer.alloc(16);
  let v = ipToBig(ip);
  if (f === 4) {
    b[10] = 0xff;
    b[11] = 0xff;
    b.writeUInt32BE(Number(v), 12);
    return b;
  }
  for (let i = 15; i >= 0; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return b;
}

/** The LPM key of a prefix (IPv4 prefixes sit under ::ffff:0:0/96). */
export function lpmKey(cidr: string, id = 0): Buffer {
  const p = parsePrefix(cidr, 'prefix', true);
  return dpLpmId.encode({ prefixlen: 32 + (p.family === 4 ? 96 + p.bits : p.bits), id, a: addr16(bigToIp(p.base, p.family)) });
}

export function macBytes(mac: string): Buffer {
  const b = Buffer.from(mac.split(':').map((x) => parseInt(x, 16)));
  if (b.length !== 6 || mac.split(':').some((x) => !/^[0-9a-fA-F]{1,2}$/.test(x))) throw new TypeError(`'${mac}' is not a MAC address`);
  return b;
}

export type Entries = Map<string, Buffer>;
const put = (m: Entries, k: Buffer, v: Buffer) => m.set(k.toString('hex'), v);

export interface CompiledMaps {
  egress: Entries;
  nets: Entries;
  epIp: Entries;
  epIf: Entries;
  links: Entries;
  subnets: Entries;
  allow: Entries;
  /** the operator's publish policy: (bridge ifindex, source prefix) -> 1 */
  pubpol: Entries;
  ifaddr: Entries;
  /** the publish table in lookup order (proto, start, end), without generation */
  pubs: DpPub[];
  /** allow-list entries per publish index (keys built with the generation when written) */
  pubAllow: { index: number; cidr: string }[];
  cfg: Buffer;
  /** host-side veths to attach the sandbox program to */
  attach: { ifname: string; ifindex: number }[];
  /** interfaces the outside reaches the host by: the uplink, or every addressed interface berth does not own */
  uplinks: { ifname: string; ifindex: number }[];
  uplinkIfindex: number;
  warnings: string[];
}

const u32 = (n: number) => u32Codec.encode(n);

/**
 * For each entry of a publish table sorted by (proto, start, end): how many
 * entries before it a lookup landing on it must look back at, to reach every
 * range (of other bind addresses) that still covers its start. The first
 * such range is found by binary search over the running maximum of ends.
 */
export function pubWalks(rows: { proto: number; start: number; end: number }[]): number[] {
  const prefMax: number[] = [];
  rows.forEach((r, i) => {
    const prev = i > 0 && rows[i - 1]!.proto === r.proto ? prefMax[i - 1]! : -1;
    prefMax.push(Math.max(prev, r.end));
  });
  return rows.map((r, i) => {
    let first = i;
    let a = 0;
    let b = i;
    while (a <= b) {
      const m = (a + b) >> 1;
      if (rows[m]!.proto === r.proto && prefMax[m]! >= r.start) {
        first = m;
        b = m - 1;
      } else a = m + 1;
    }
    return i - first;
  });
}

export function compile(d: DesiredDatapath, links: NlLink[], addrs: NlAddr[]): CompiledMaps {
  // 10,000 publishes to one sandbox name its address 10,000 times: parsed once (the buffers are only read)
  const seen = new Map<string, Buffer>();
  const addr16 = (ip: string): Buffer => {
    let b = seen.get(ip);
    if (!b) seen.set(ip, (b = addr16Of(ip)));
    return b;
  };
  const byName = new Map(links.map((l) => [l.name, l]));
  const warnings: string[] = [];
  const out: CompiledMaps = {
    egress: new Map(), nets: new Map(), epIp: new Map(), epIf: new Map(), links: new Map(), subnets: new Map(), allow: new Map(), pubpol: new Map(), ifaddr: new Map(),
    pubs: [], pubAllow: [], cfg: Buffer.alloc(0), attach: [], uplinks: [], uplinkIfindex: 0, warnings,
  };
  const netIndex = new Map<string, number>();
  for (const n of d.networks) {
    if (!n.bridge) continue; // macvlan sandboxes sit on the parent's wire: not this datapath's
    const br = byName.get(n.bridge);
    if (!br) {
      warnings.push(`network '${n.name}': bridge ${n.bridge} does not exist`);
      continue;
    }
    netIndex.set(n.id, br.ifindex);
    const flags = (n.subnet4 ? NetFlag.V4 : 0) | (n.subnet6 ? NetFlag.V6 : 0) | (n.icc ? NetFlag.Icc : 0) |
      (n.internal ? NetFlag.Internal : 0) | (n.masquerade && !n.internal ? NetFlag.Masq : 0) | (n.routed ? NetFlag.Routed : 0) | (n.publishAllow ? NetFlag.PubPolicy : 0);
    put(out.nets, u32(br.ifindex), dpNet.encode({
      gw4: n.gateway4 ? addr16(n.gateway4) : ZERO16, gw6: n.gateway6 ? addr16(n.gateway6) : ZERO16,
      gwMac: macBytes(br.mac), flags, bridge: br.ifindex, mtu: br.mtu,
    }));
    for (const sn of [n.subnet4, n.subnet6]) if (sn) put(out.subnets, lpmKey(sn), u32(br.ifindex));
    // A routed network's own block, keyed by its bridge: a source of it arriving from the uplink is forged.
    if (n.routed && n.block4) put(out.subnets, lpmKey(n.block4, br.ifindex), u32(br.ifindex));
    for (const cidr of n.publishAllow ?? []) put(out.pubpol, lpmKey(cidr, br.ifindex), u32(1));
  }
  const epNet = new Map<string, number>(); // "sandbox/network" -> bridge ifindex
  for (const e of d.endpoints) {
    const net = netIndex.get(e.network);
    if (net === undefined || !e.hostIf) continue;
    const l = byName.get(e.hostIf);
    if (!l) {
      warnings.push(`sandbox '${e.sandbox}': interface ${e.hostIf} does not exist`);
      continue;
    }
    epNet.set(`${e.sandbox}/${e.network}`, net);
    const v = dpEp.encode({
      v4: e.v4 ? addr16(e.v4) : ZERO16, v6: e.v6 ? addr16(e.v6) : ZERO16, mac: macBytes(e.mac),
      flags: (e.v4 ? EpFlag.HasV4 : 0) | (e.v6 ? EpFlag.HasV6 : 0) | (e.egress ? EpFlag.Egress : 0), ifindex: l.ifindex, net,
    });
    if (e.egress) {
      // One trie entry per prefix, holding that prefix's port rules.
      const byPrefix = new Map<string, number[]>();
      for (const r of e.egress) {
        const k = lpmKey(r.cidr, l.ifindex).toString('hex');
        const rules = byPrefix.get(k) ?? [];
        const rule = ((r.proto ? PROTO[r.proto] : 0) << 16) | (r.port ?? 0);
        // A rule for any port of any protocol admits everything that prefix can: no port list.
        if (rule === 0) byPrefix.set(k, []);
        else if (!byPrefix.has(k) || rules.length) byPrefix.set(k, [...rules, rule]);
      }
      for (const [k, rules] of byPrefix) {
        if (rules.length > EGRESS_RULES) {
          warnings.push(`sandbox '${e.sandbox}': more than ${EGRESS_RULES} port rules for one prefix; only the first ${EGRESS_RULES} apply`);
        }
        const buf = Buffer.alloc(4 * EGRESS_RULES);
        rules.slice(0, EGRESS_RULES).forEach((r, i) => buf.writeUInt32LE(r >>> 0, i * 4));
        out.egress.set(k, dpEgress.encode({ n: Math.min(rules.length, EGRESS_RULES), rules: buf }));
      }
    }
    put(out.epIf, u32(l.ifindex), v);
    for (const a of [e.v4, e.v6]) if (a) put(out.epIp, addr16(a), v);
    out.attach.push({ ifname: e.hostIf, ifindex: l.ifindex });
  }
  for (const l of d.links) {
    // A routed network's link may have one end on another host: held where either end is.
    if (!epNet.has(`${l.client}/${l.network}`) && !epNet.has(`${l.target}/${l.network}`)) continue;
    for (const [c, t] of [[l.clientV4, l.targetV4], [l.clientV6, l.targetV6]] as const) {
      if (!c || !t) continue;
      put(out.links, dpLinkKey.encode({ client: addr16(c), target: addr16(t), port: l.port, proto: PROTO[l.proto] }), u32(1));
    }
  }
  // Published ports: the intent holds those that install a mapping, one per family; a sandbox whose veth is missing carries none.
  const rows: { pub: DpPub; allow: string[] }[] = [];
  for (const p of d.publishes) {
    if (!epNet.has(`${p.sandbox}/${p.network}`)) continue;
    const flags = p.loopback ? PubFlag.Loopback : !p.hostIp ? (p.family === 4 ? PubFlag.Any4 : PubFlag.Any6) : 0;
    rows.push({
      pub: {
        hostIp: p.hostIp ? addr16(p.hostIp) : ZERO16, target: addr16(p.target), start: p.hostPort, end: p.hostPort + p.count - 1, cport: p.containerPort,
        proto: PROTO[p.proto], flags: flags | (p.restricted ? PubFlag.Allow : 0), id: 0, walk: 0,
      },
      allow: p.allow,
    });
  }
  rows.sort((a, b) => a.pub.proto - b.pub.proto || a.pub.start - b.pub.start || a.pub.end - b.pub.end || Buffer.compare(a.pub.hostIp, b.pub.hostIp));
  pubWalks(rows.map((r) => r.pub)).forEach((w, i) => {
    const r = rows[i]!;
    r.pub.walk = w;
    if (w > PUB_WALK) warnings.push(`published port ${r.pub.start}/${r.pub.proto}: ${w} ranges of other bind addresses overlap it; lookups look back ${PUB_WALK} entries at most`);
  });
  rows.forEach((r, i) => {
    r.pub.id = i + 1;
    out.pubs.push(r.pub);
    for (const cidr of r.allow) out.pubAllow.push({ index: i, cidr: cidr.includes('/') ? cidr : `${cidr}/${familyOf(cidr) === 4 ? 32 : 128}` });
  });
  // Masquerade addresses: the first global address of each family on every interface berth does not own.
  const berthIf = new Set([...netIndex.values(), ...out.attach.map((a) => a.ifindex)]);
  for (const a of addrs) {
    if (a.scope !== 'global' || berthIf.has(a.ifindex)) continue;
    const k = Buffer.alloc(8);
    k.writeBigUInt64LE((BigInt(a.ifindex) << 1n) | (a.family === 6 ? 1n : 0n));
    if (!out.ifaddr.has(k.toString('hex'))) put(out.ifaddr, k, addr16(a.cidr.split('/')[0]!));
  }
  out.uplinkIfindex = d.uplink ? byName.get(d.uplink)?.ifindex ?? 0 : 0;
  if (d.uplink && !out.uplinkIfindex) warnings.push(`uplink ${d.uplink} does not exist: published ports are reachable only from the host and sandboxes`);
  if (out.uplinkIfindex) out.uplinks.push({ ifname: d.uplink!, ifindex: out.uplinkIfindex });
  else {
    // No uplink named: every interface with a global address that is not berth's, a bridge's port or lo.
    const addressed = new Set(addrs.filter((a) => a.scope === 'global').map((a) => a.ifindex));
    for (const l of links) {
      if (!addressed.has(l.ifindex) || berthIf.has(l.ifindex) || l.master || l.name === 'lo') continue;
      out.uplinks.push({ ifname: l.name, ifindex: l.ifindex });
    }
  }
  out.cfg = dpCfg.encode({ uplink: out.uplinkIfindex, flags: 0, eventRate: 0 });
  return out;
}
