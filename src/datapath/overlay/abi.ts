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
