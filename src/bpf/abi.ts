/**
 * Mirrors bpf/include/berth_abi.h (and the demo's bpf/demo/count_abi.h) field
 * by field. test/unit/abi.test.ts checks these sizes against the addon
 * (compiled from the headers) and against the BTF of the loaded maps.
 */
import { structCodec, type Codec } from './codec.js';

// ---- shared by the demo and the datapath (bpf/include/berth_abi.h) ----

export { ABI_VERSION } from './abi-version.cjs';

export const DropReason = {
  None: 0, Malformed: 1, ProtoFilter: 2, SpoofMac: 3, SpoofIp: 4, SpoofArp: 5, Family: 6, L2: 7, Isolation: 8, Icc: 9,
  Internal: 10, Loopback: 11, Direct: 12, Allowlist: 13, CtFull: 14, NatExhausted: 15, Fragment: 16, NoConfig: 17, Egress: 19,
  RouterAdv: 20, Redirect: 21, DhcpServer: 22, SpoofNd: 23, DnsOutside: 24, PublishPolicy: 25, OverlaySource: 26,
} as const;
export const DROP_REASON_SLOTS = 32;
/** Each reason's name and what it means, for doctor, status and monitor. */
export const dropReasons: Record<number, { name: string; what: string }> = {
  0: { name: 'none', what: 'not dropped' },
  1: { name: 'malformed', what: 'headers shorter than they claim' },
  2: { name: 'proto-filter', what: 'the counting program\'s protocol filter' },
  3: { name: 'spoof-mac', what: 'a sandbox sent with a MAC not its own' },
  4: { name: 'spoof-ip', what: 'a sandbox sent from an address not its own' },
  5: { name: 'spoof-arp', what: 'a sandbox sent ARP for an address or MAC not its own' },
  6: { name: 'family', what: 'IPv6 on a network without IPv6 (or IPv4 without IPv4)' },
  7: { name: 'l2', what: 'neither IP nor ARP from a sandbox' },
  8: { name: 'isolation', what: 'between two networks' },
  9: { name: 'icc', what: 'within an icc=false network, without a link' },
  10: { name: 'internal', what: 'an internal network\'s traffic beyond it' },
  11: { name: 'loopback', what: 'to 127.0.0.0/8 or ::1 from off the host' },
  12: { name: 'direct', what: 'from outside straight to a sandbox address' },
  13: { name: 'allowlist', what: 'a published port\'s allow-list refused the source' },
  14: { name: 'ct-full', what: 'no room in the connection table' },
  15: { name: 'nat-exhausted', what: 'no free port to masquerade with' },
  16: { name: 'fragment', what: 'a fragment policy cannot place' },
  17: { name: 'no-config', what: 'a berth interface with no network known' },
  19: { name: 'egress', what: 'outside a sandbox\'s egress allow-list' },
  20: { name: 'router-adv', what: 'a sandbox sent an IPv6 router advertisement' },
  21: { name: 'redirect', what: 'a sandbox sent an ICMP or ICMPv6 redirect' },
  22: { name: 'dhcp-server', what: 'a sandbox sent a DHCP or DHCPv6 server reply' },
  23: { name: 'spoof-nd', what: 'a sandbox advertised a neighbour address not its own' },
  24: { name: 'dns-outside', what: 'to a gateway\'s DNS port from beyond its network' },
  25: { name: 'publish-policy', what: 'the operator\'s publish policy (berthd --publish-allow, -o publish.allow) refused the source' },
  26: { name: 'overlay-source', what: 'an overlay frame whose inner source the cluster store does not place on the host that sent it' },
};
export const dropReasonName: Record<number, string> = Object.fromEntries(Object.entries(dropReasons).map(([k, v]) => [k, v.name]));

export interface Counter {
  packets: bigint;
  bytes: bigint;
}
export const counter: Codec<Counter> = structCodec<Counter>('berth_counter', [
  ['packets', 'u64'],
  ['bytes', 'u64'],
]);

// ---- the demo's counting program (bpf/demo/count_abi.h) ----

/** enum berth_count_hook: where the demo's program runs. */
export const Hook = { TcIngress: 0, TcEgress: 1, Xdp: 2 } as const;
export type HookValue = (typeof Hook)[keyof typeof Hook];
export const hookName: Record<number, string> = { 0: 'tc-ingress', 1: 'tc-egress', 2: 'xdp' };

export interface IfCountKey {
  ifindex: number;
  hook: number;
}
export const ifCountKey: Codec<IfCountKey> = structCodec<IfCountKey & { pad: never }>('berth_ifcount_key', [
  ['ifindex', 'u32'],
  ['hook', 'u8'],
  ['pad', { pad: 3 }],
]);

export interface PktEvent {
  tsNs: bigint;
  ifindex: number;
  len: number;
  ethProto: number;
  hook: number;
  l4proto: number;
  dropReason: number;
  /** IPv4 addresses as 32-bit big-endian numbers */
  saddr4: number;
  daddr4: number;
}
export const pktEvent: Codec<PktEvent> = structCodec<PktEvent & { pad: never }>('berth_pkt_event', [
  ['tsNs', 'u64'],
  ['ifindex', 'u32'],
  ['len', 'u32'],
  ['ethProto', 'u16'],
  ['hook', 'u8'],
  ['l4proto', 'u8'],
  ['dropReason', 'u8'],
  ['pad', { pad: 3 }],
  ['saddr4', 'be32'],
  ['daddr4', 'be32'],
]);

// ---- the datapath (bpf/tc_*.c) ----
// Addresses are 16-byte Buffers: IPv6, or IPv4 mapped (::ffff:a.b.c.d).

export const NetFlag = { V4: 1, V6: 2, Icc: 4, Internal: 8, Masq: 16, Routed: 32, PubPolicy: 64 } as const;
export interface DpNet { gw4: Buffer; gw6: Buffer; gwMac: Buffer; flags: number; bridge: number; mtu: number }
export const dpNet: Codec<DpNet> = structCodec<DpNet>('berth_dp_net', [
  ['gw4', { bytes: 16 }], ['gw6', { bytes: 16 }], ['gwMac', { bytes: 6 }], ['flags', 'u16'], ['bridge', 'u32'], ['mtu', 'u32'],
]);

export const EpFlag = { HasV4: 1, HasV6: 2, Egress: 4 } as const;
export interface DpEp { v4: Buffer; v6: Buffer; mac: Buffer; flags: number; ifindex: number; net: number }
export const dpEp: Codec<DpEp> = structCodec<DpEp & { pad: never }>('berth_dp_ep', [
  ['v4', { bytes: 16 }], ['v6', { bytes: 16 }], ['mac', { bytes: 6 }], ['flags', 'u16'], ['ifindex', 'u32'], ['net', 'u32'], ['pad', { pad: 4 }],
]);

export interface DpLpmId { prefixlen: number; id: number; a: Buffer }
export const dpLpmId: Codec<DpLpmId> = structCodec<DpLpmId>('berth_dp_lpm_id', [
  ['prefixlen', 'u32'], ['id', 'be32'], ['a', { bytes: 16 }],
]);

export const EGRESS_RULES = 7;
export interface DpEgress { n: number; rules: Buffer }
/** rules: EGRESS_RULES little-endian u32s, each (protocol << 16) | port, 0 for any */
export const dpEgress: Codec<DpEgress> = structCodec<DpEgress>('berth_dp_egress', [['n', 'u32'], ['rules', { bytes: 4 * EGRESS_RULES }]]);

export interface DpLinkKey { client: Buffer; target: Buffer; port: number; proto: number }
export const dpLinkKey: Codec<DpLinkKey> = structCodec<DpLinkKey & { pad: never }>('berth_dp_link_key', [
  ['client', { bytes: 16 }], ['target', { bytes: 16 }], ['port', 'be16'], ['proto', 'u8'], ['pad', { pad: 1 }],
]);

export const PubFlag = { Any4: 1, Any6: 2, Loopback: 4, Allow: 8 } as const;
/** berth_dp_pub entries a generation by default (berthd --pub-max), and the most it may be */
export const PUB_MAX = 65536;
export const PUB_MAX_LIMIT = 1 << 20;
export const PUB_GEN_SHIFT = 31;
export const PUB_WALK = 64;
export interface DpPub { hostIp: Buffer; target: Buffer; start: number; end: number; cport: number; proto: number; flags: number; id: number; walk: number }
export const dpPub: Codec<DpPub> = structCodec<DpPub>('berth_dp_pub', [
  ['hostIp', { bytes: 16 }], ['target', { bytes: 16 }], ['start', 'u16'], ['end', 'u16'], ['cport', 'u16'], ['proto', 'u8'], ['flags', 'u8'], ['id', 'u32'], ['walk', 'u32'],
]);

export const CfgFlag = { EventsDrop: 1, EventsFlow: 2 } as const;
export interface DpCfg { uplink: number; flags: number; eventRate: number }
export const dpCfg: Codec<DpCfg> = structCodec<DpCfg & { pad: never }>('berth_dp_cfg', [
  ['uplink', 'u32'], ['flags', 'u32'], ['eventRate', 'u32'], ['pad', { pad: 4 }],
]);

export interface CtKey { saddr: Buffer; daddr: Buffer; sport: number; dport: number; proto: number }
export const ctKey: Codec<CtKey> = structCodec<CtKey & { pad: never }>('berth_ct_key', [
  ['saddr', { bytes: 16 }], ['daddr', { bytes: 16 }], ['sport', 'be16'], ['dport', 'be16'], ['proto', 'u8'], ['pad', { pad: 3 }],
]);

export const CtFlag = { Reply: 1, Snat: 2, Dnat: 4, ToHost: 8, Closing: 16, Masq: 32, Publish: 64, Link: 128, New: 256 } as const;
export interface CtVal {
  saddr: Buffer; daddr: Buffer; sport: number; dport: number; flags: number;
  lastSeen: bigint; created: bigint; packets: bigint; bytes: bigint; pubId: number;
  /** an unconfirmed reply entry: the SYN-ACK's sequence + 1 (TCP), 1 once a reply passed (others) */
  ack: number;
}
export const ctVal: Codec<CtVal> = structCodec<CtVal & { pad: never }>('berth_ct_val', [
  ['saddr', { bytes: 16 }], ['daddr', { bytes: 16 }], ['sport', 'be16'], ['dport', 'be16'], ['flags', 'u16'], ['pad', { pad: 2 }],
  ['lastSeen', 'u64'], ['created', 'u64'], ['packets', 'u64'], ['bytes', 'u64'], ['pubId', 'u32'], ['ack', 'u32'],
]);

export const DpStat = {
  CtCreated: 0, CtExpiredHit: 1, CtInsertFail: 2, NatRetry: 3, Redirect: 4, RedirectPeer: 5, RedirectNeigh: 6, ToStack: 7, EventsLost: 8, CtConfirmed: 9,
} as const;
export const DP_STAT_SLOTS = 16;

/** enum berth_hook: which datapath program saw a packet. */
export const DpHook = { Container: 0, Uplink: 1, Host: 2 } as const;
export const dpHookName: Record<number, string> = { 0: 'container', 1: 'uplink', 2: 'host' };
/** enum berth_event_kind */
export const EventKind = { Drop: 1, Flow: 2 } as const;

export interface DpEvent {
  tsNs: bigint; saddr: Buffer; daddr: Buffer; sport: number; dport: number; proto: number; kind: number; reason: number; hook: number;
  ifindex: number; nsaddr: Buffer; ndaddr: Buffer; nsport: number; ndport: number;
}
export const dpEvent: Codec<DpEvent> = structCodec<DpEvent & { pad: never }>('berth_dp_event', [
  ['tsNs', 'u64'], ['saddr', { bytes: 16 }], ['daddr', { bytes: 16 }], ['sport', 'be16'], ['dport', 'be16'], ['proto', 'u8'], ['kind', 'u8'],
  ['reason', 'u8'], ['hook', 'u8'], ['ifindex', 'u32'], ['nsaddr', { bytes: 16 }], ['ndaddr', { bytes: 16 }], ['nsport', 'be16'], ['ndport', 'be16'], ['pad', { pad: 8 }],
]);

/** Every codec by its C struct name, for the size check. */
export const abiCodecs: Record<string, Codec<unknown>> = {
  berth_ifcount_key: ifCountKey as Codec<unknown>,
  berth_counter: counter as Codec<unknown>,
  berth_pkt_event: pktEvent as Codec<unknown>,
  berth_dp_net: dpNet as Codec<unknown>,
  berth_dp_ep: dpEp as Codec<unknown>,
  berth_dp_lpm_id: dpLpmId as Codec<unknown>,
  berth_dp_link_key: dpLinkKey as Codec<unknown>,
  berth_dp_egress: dpEgress as Codec<unknown>,
  berth_dp_pub: dpPub as Codec<unknown>,
  berth_dp_cfg: dpCfg as Codec<unknown>,
  berth_ct_key: ctKey as Codec<unknown>,
  berth_ct_val: ctVal as Codec<unknown>,
  berth_dp_event: dpEvent as Codec<unknown>,
};

export function sumCounters(perCpu: Counter[]): Counter {
  return perCpu.reduce((a, c) => ({ packets: a.packets + c.packets, bytes: a.bytes + c.bytes }), {
    packets: 0n,
    bytes: 0n,
  });
}

export function ipv4ToString(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
}
