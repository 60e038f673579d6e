/**
 * Mirrors bpf/include/berth_overlay.h field by field: the keys and values of
 * the overlay programs' maps. Underlay addresses in the tunnel maps are in
 * host byte order (what bpf_skb_set_tunnel_key takes); endpoint addresses in
 * ARP keys are in network byte order (what the ARP payload carries).
 */
import { structCodec, type Codec } from '../../bpf/codec.js';

export const OvlStat = {
  TxEncap: 0,
  TxArpReply: 1,
  TxPass: 2,
  RxDecap: 3,
  RxNoKey: 4,
  RxUnknownHost: 5,
  RxUnknownVni: 6,
  RxMalformed: 7,
} as const;
export const OVL_STAT_SLOTS = 8;

export const u32: Codec<number> = {
  name: '__u32',
  size: 4,
  encode: (v) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return b;
  },
  decode: (b, off = 0) => b.readUInt32LE(off),
};

export interface OvlPort {
  vni: number;
  vxlanIfindex: number;
}
export const ovlPort = structCodec<OvlPort>('berth_ovl_port', [
  ['vni', 'u32'],
  ['vxlanIfindex', 'u32'],
]);

export interface OvlNet {
  bridgeIfindex: number;
}
export const ovlNet = structCodec<OvlNet & { pad: never }>('berth_ovl_net', [
  ['bridgeIfindex', 'u32'],
  ['pad', { pad: 4 }],
]);

/** MAC as 6 bytes: the codec fields are numbers, so a MAC is split into a u32 and a u16 (big-endian both). */
export interface OvlMacKey {
  vni: number;
  mac: string;
}
const macKeyRaw = structCodec<{ vni: number; hi: number; lo: number; pad: never }>('berth_ovl_mac_key', [
  ['vni', 'u32'],
  ['hi', 'be32'],
  ['lo', 'be16'],
  ['pad', { pad: 2 }],
]);
export const ovlMacKey: Codec<OvlMacKey> = {
  name: 'berth_ovl_mac_key',
  size: macKeyRaw.size,
  encode: (k) => {
    const b = macBytes(k.mac);
    return macKeyRaw.encode({ vni: k.vni, hi: b.readUInt32BE(0), lo: b.readUInt16BE(4) } as never);
  },
  decode: (buf, off = 0) => {
    const r = macKeyRaw.decode(buf, off);
    const b = Buffer.alloc(6);
    b.writeUInt32BE(r.hi);
    b.writeUInt16BE(r.lo, 4);
    return { vni: r.vni, mac: macString(b) };
  },
};

export interface OvlRemote {
  /** underlay IPv4 as dotted quad */
  hostIp: string;
}
const remoteRaw = structCodec<{ hostIp: number; pad: never }>('berth_ovl_remote', [
  ['hostIp', 'u32'],
  ['pad', { pad: 4 }],
]);
export const ovlRemote: Codec<OvlRemote> = {
  name: 'berth_ovl_remote',
  size: remoteRaw.size,
  encode: (v) => remoteRaw.encode({ hostIp: ip4ToHost(v.hostIp) } as never),
  decode: (b, off = 0) => ({ hostIp: hostToIp4(remoteRaw.decode(b, off).hostIp) }),
};

export interface OvlLocal {
  ifindex: number;
}
export const ovlLocal = structCodec<OvlLocal & { pad: never }>('berth_ovl_local', [
  ['ifindex', 'u32'],
  ['pad', { pad: 4 }],
]);

export interface OvlIpKey {
  vni: number;
  ip: string;
}
const ipKeyRaw = structCodec<{ vni: number; ip: number }>('berth_ovl_ip_key', [
  ['vni', 'u32'],
  ['ip', 'be32'],
]);
export const ovlIpKey: Codec<OvlIpKey> = {
  name: 'berth_ovl_ip_key',
  size: ipKeyRaw.size,
  encode: (k) => ipKeyRaw.encode({ vni: k.vni, ip: ip4ToHost(k.ip) }),
  decode: (b, off = 0) => {
    const r = ipKeyRaw.decode(b, off);
    return { vni: r.vni, ip: hostToIp4(r.ip) };
  },
};

export interface OvlNeigh {
  mac: string;
}
export const ovlNeigh: Codec<OvlNeigh> = {
  name: 'berth_ovl_neigh',
  size: 8,
  encode: (v) => Buffer.concat([macBytes(v.mac), Buffer.alloc(2)]),
  decode: (b, off = 0) => ({ mac: macString(b.subarray(off, off + 6)) }),
};

/** The underlay host map's key: an IPv4 address in host byte order. */
export const hostKey: Codec<string> = {
  name: '__u32',
  size: 4,
  encode: (ip) => u32.encode(ip4ToHost(ip)),
  decode: (b, off = 0) => hostToIp4(b.readUInt32LE(off)),
};

export function ip4ToHost(ip: string): number {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new TypeError(`'${ip}' is not an IPv4 address`);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

export function hostToIp4(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
}

function macBytes(mac: string): Buffer {
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(mac)) throw new TypeError(`'${mac}' is not a MAC address`);
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

function macString(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

// ---- policy across hosts (bpf/lib/overlay_policy.h) ----

/** enum berth_ovl_policy_flag */
export const OvlPolicyFlag = { NoIcc: 1, Internal: 2 } as const;
/** enum berth_ovl_guard_flag */
export const OvlGuardFlag = { Egress: 1 } as const;

export interface OvlPolicy {
  flags: number;
}
export const ovlPolicy = structCodec<OvlPolicy & { pad: never }>('berth_ovl_policy', [
  ['flags', 'u32'],
  ['pad', { pad: 4 }],
]);

export interface OvlGuard {
  mac: string;
  flags: number;
  /** '' = none */
  v4: string;
}
const guardRaw = structCodec<{ mac: Buffer; flags: number; v4: number; pad: never }>('berth_ovl_guard', [
  ['mac', { bytes: 6 }],
  ['flags', 'u16'],
  ['v4', 'be32'],
  ['pad', { pad: 4 }],
]);
export const ovlGuard: Codec<OvlGuard> = {
  name: 'berth_ovl_guard',
  size: guardRaw.size,
  encode: (g) => guardRaw.encode({ mac: macBytes(g.mac), flags: g.flags, v4: g.v4 ? ip4ToHost(g.v4) : 0 } as never),
  decode: (b, off = 0) => {
    const r = guardRaw.decode(b, off);
    return { mac: macString(r.mac), flags: r.flags, v4: r.v4 ? hostToIp4(r.v4) : '' };
  },
};

export type OvlProto = 'tcp' | 'udp';
const PROTO_NUM: Record<OvlProto, number> = { tcp: 6, udp: 17 };
const protoName = (n: number): OvlProto => (n === 6 ? 'tcp' : 'udp');

export interface OvlLinkKey {
  vni: number;
  client: string;
  target: string;
  port: number;
  proto: OvlProto;
}
const linkRaw = structCodec<{ vni: number; client: number; target: number; port: number; proto: number; pad: never }>('berth_ovl_link_key', [
  ['vni', 'u32'],
  ['client', 'be32'],
  ['target', 'be32'],
  ['port', 'be16'],
  ['proto', 'u8'],
  ['pad', { pad: 1 }],
]);
export const ovlLinkKey: Codec<OvlLinkKey> = {
  name: 'berth_ovl_link_key',
  size: linkRaw.size,
  encode: (k) => linkRaw.encode({ vni: k.vni, client: ip4ToHost(k.client), target: ip4ToHost(k.target), port: k.port, proto: PROTO_NUM[k.proto] } as never),
  decode: (b, off = 0) => {
    const r = linkRaw.decode(b, off);
    return { vni: r.vni, client: hostToIp4(r.client), target: hostToIp4(r.target), port: r.port, proto: protoName(r.proto) };
  },
};

export interface OvlCtKey {
  vni: number;
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  proto: OvlProto;
}
const ctRaw = structCodec<{ vni: number; saddr: number; daddr: number; sport: number; dport: number; proto: number; pad: never }>('berth_ovl_ct_key', [
  ['vni', 'u32'],
  ['saddr', 'be32'],
  ['daddr', 'be32'],
  ['sport', 'be16'],
  ['dport', 'be16'],
  ['proto', 'u8'],
  ['pad', { pad: 3 }],
]);
export const ovlCtKey: Codec<OvlCtKey> = {
  name: 'berth_ovl_ct_key',
  size: ctRaw.size,
  encode: (k) => ctRaw.encode({ vni: k.vni, saddr: ip4ToHost(k.saddr), daddr: ip4ToHost(k.daddr), sport: k.sport, dport: k.dport, proto: PROTO_NUM[k.proto] } as never),
  decode: (b, off = 0) => {
    const r = ctRaw.decode(b, off);
    return { vni: r.vni, saddr: hostToIp4(r.saddr), daddr: hostToIp4(r.daddr), sport: r.sport, dport: r.dport, proto: protoName(r.proto) };
  },
};

export const u64: Codec<bigint> = {
  name: '__u64',
  size: 8,
  encode: (v) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    return b;
  },
  decode: (b, off = 0) => b.readBigUInt64LE(off),
};
