/**
 * `berth explain` on the eBPF datapath: a synthetic packet run through the
 * loaded programs with BPF_PROG_TEST_RUN, against the live maps, so the
 * answer is the datapath's own. The run carries BERTH_EXPLAIN_MARK: the
 * programs decide as for any packet but change no state, and leave what
 * decided in the __sk_buff cb words; the output packet shows any translation.
 */
import { dropReasons } from '../../bpf/abi.js';
import { familyOf, ipToBig } from '../../ipam/addr.js';
import { addrText } from './events.js';
import { checksum, crc32c, pseudoHeader } from '../checksum.js';

export const EXPLAIN_MARK = 0xbe7e0001;
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;
/** sizeof(struct __sk_buff) and the offsets test runs may set */
const SKB = { size: 192, mark: 8, ifindex: 40, cb: 48 };

export const RULES: Record<number, { name: string; what: string }> = {
  0: { name: 'none', what: 'no rule' },
  1: { name: 'flow', what: 'a packet of a flow the datapath already tracks' },
  2: { name: 'icc', what: 'the same network, which has icc=true' },
  3: { name: 'link', what: 'a link admits this client to the target\'s exposed port (icc=false network)' },
  4: { name: 'neighbour', what: 'ARP, neighbour discovery, broadcast or multicast within the network' },
  5: { name: 'publish', what: 'a published port' },
  6: { name: 'gateway', what: 'the network\'s gateway, which is the host' },
  7: { name: 'subnet', what: 'an address of its own subnet that no sandbox holds: the bridge decides' },
  8: { name: 'host', what: 'an address of the host' },
  9: { name: 'masquerade', what: 'outbound, masqueraded to the address of the interface the route leaves by' },
  10: { name: 'route', what: 'outbound, routed by the host without masquerade' },
  11: { name: 'not-ours', what: 'not berth\'s traffic: passed on untouched' },
  12: { name: 'icmp-error', what: 'an ICMP error about a translated flow' },
  13: { name: 'policy', what: 'a policy decision' },
};
const DELIVERY = ['none', 'sandbox', 'outside', 'host', 'host', 'dropped'] as const;

export type ExplainProto = 'tcp' | 'udp' | 'icmp' | 'sctp';

export interface ExplainPacket {
  srcMac: string;
  dstMac: string;
  src: string;
  dst: string;
  proto: ExplainProto;
  sport: number;
  dport: number;
  /** IPv4: the identification field; IPv6: the flow label (what a trace matches on) */
  mark?: number;
  /** TTL or hop limit (default 64) */
  ttl?: number;
}

export interface ExplainRun {
  verdict: 'pass' | 'drop';
  /** where the packet goes: into a sandbox, out of a host interface, to the host (stack or bridge), or nowhere */
  delivered: 'sandbox' | 'outside' | 'host' | 'dropped';
  ifindex?: number;
  rule: string;
  ruleText: string;
  reason?: string;
  reasonText?: string;
  /** the packet as it leaves, when the datapath translated it */
  translated?: { src: string; sport: number; dst: string; dport: number };
}

function addrBytes(ip: string): Buffer {
  const f = familyOf(ip)!;
  const v = ipToBig(ip);
  const b = Buffer.alloc(f === 4 ? 4 : 16);
  if (f === 4) b.writeUInt32BE(Number(v));
  else for (let i = 0; i < 16; i++) b[i] = Number((v >> BigInt(8 * (15 - i))) & 0xffn);
  return b;
}

/** An Ethernet frame: a TCP SYN, a UDP datagram, an ICMP echo request or an SCTP packet. */
export function buildPacket(p: ExplainPacket): Buffer {
  const v4 = familyOf(p.src) === 4;
  const proto = p.proto === 'tcp' ? 6 : p.proto === 'udp' ? 17 : p.proto === 'sctp' ? 132 : v4 ? 1 : 58;
  let l4: Buffer;
  if (p.proto === 'tcp') {
    l4 = Buffer.alloc(20);
    l4.writeUInt16BE(p.sport, 0);
    l4.writeUInt16BE(p.dport, 2);
    l4.writeUInt32BE(1, 4);
    l4[12] = 5 << 4;
    l4[13] = 0x02;
    l4.writeUInt16BE(64240, 14);
  } else if (p.proto === 'udp') {
    l4 = Buffer.alloc(12);
    l4.writeUInt16BE(p.sport, 0);
    l4.writeUInt16BE(p.dport, 2);
    l4.writeUInt16BE(l4.length, 4);
  } else if (p.proto === 'sctp') {
    // An INIT chunk, as a connecting endpoint sends first (conntrack takes nothing else as a new association).
    l4 = Buffer.alloc(32);
    l4.writeUInt16BE(p.sport, 0);
    l4.writeUInt16BE(p.dport, 2);
    l4[12] = 1;
    l4.writeUInt16BE(20, 14);
    l4.writeUInt32BE(0x4a5b6c7d, 16);
    l4.writeUInt32BE(65535, 20);
    l4.writeUInt16BE(1, 24);
    l4.writeUInt16BE(1, 26);
    l4.writeUInt32BE(1, 28);
    l4.writeUInt32LE(crc32c(l4), 8);
  } else {
    l4 = Buffer.alloc(12);
    l4[0] = v4 ? 8 : 128;
    l4.writeUInt16BE(p.sport, 4);
    l4.writeUInt16BE(1, 6);
    if (v4) l4.writeUInt16BE(checksum(l4), 2);
  }
  // TCP, UDP and ICMPv6 checksums cover a pseudo-header: real packets built from this frame must be valid for conntrack.
  const csumAt = p.proto === 'tcp' ? 16 : p.proto === 'udp' ? 6 : p.proto === 'icmp' && !v4 ? 2 : -1;
  if (csumAt >= 0) {
    const pseudo = pseudoHeader(addrBytes(p.src), addrBytes(p.dst), proto, l4.length);
    l4.writeUInt16BE(checksum(Buffer.concat([pseudo, l4])) || 0xffff, csumAt);
  }
  const eth = Buffer.alloc(14);
  Buffer.from(p.dstMac.split(':').map((x) => parseInt(x, 16))).copy(eth, 0);
  Buffer.from(p.srcMac.split(':').map((x) => parseInt(x, 16))).copy(eth, 6);
  eth.writeUInt16BE(v4 ? 0x0800 : 0x86dd, 12);
  let ip: Buffer;
  if (v4) {
    ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + l4.length, 2);
    ip.writeUInt16BE((p.mark ?? 0) & 0xffff, 4);
    ip.writeUInt16BE(0x4000, 6);
    ip[8] = p.ttl ?? 64;
    ip[9] = proto;
    addrBytes(p.src).copy(ip, 12);
    addrBytes(p.dst).copy(ip, 16);
    ip.writeUInt16BE(checksum(ip), 10);
  } else {
    ip = Buffer.alloc(40);
    ip.writeUInt32BE((0x6 << 28 | ((p.mark ?? 0) & 0xfffff)) >>> 0, 0);
    ip.writeUInt16BE(l4.length, 4);
    ip[6] = proto;
    ip[7] = p.ttl ?? 64;
    addrBytes(p.src).copy(ip, 8);
    addrBytes(p.dst).copy(ip, 24);
  }
  return Buffer.concat([eth, ip, l4]);
}

/** The __sk_buff a test run starts with: the interface it arrives on, and the explain mark. */
export function explainCtx(ifindex: number): Buffer {
  const b = Buffer.alloc(SKB.size);
  b.writeUInt32LE(EXPLAIN_MARK, SKB.mark);
  b.writeUInt32LE(ifindex, SKB.ifindex);
  return b;
}

function tuple(frame: Buffer): { src: string; dst: string; sport: number; dport: number } {
  const v4 = frame.readUInt16BE(12) === 0x0800;
  const map = (b: Buffer) => addrText(v4 ? Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]), b]) : b);
  const l4 = v4 ? 14 + (frame[14]! & 0xf) * 4 : 54;
  const proto = v4 ? frame[23] : frame[20];
  const ports = proto === 6 || proto === 17 || proto === 132;
  return {
    src: map(frame.subarray(v4 ? 26 : 22, v4 ? 30 : 38)),
    dst: map(frame.subarray(v4 ? 30 : 38, v4 ? 34 : 54)),
    sport: ports ? frame.readUInt16BE(l4) : frame.readUInt16BE(l4 + 4),
    dport: ports ? frame.readUInt16BE(l4 + 2) : 0,
  };
}

/** What a test run's verdict, cb words and output say. */
export function readRun(input: Buffer, retval: number, ctxOut: Buffer | undefined, output: Buffer): ExplainRun {
  const cb = (i: number) => ctxOut?.readUInt32LE(SKB.cb + 4 * i) ?? 0;
  const reason = cb(0);
  const rule = RULES[cb(1)] ?? { name: String(cb(1)), what: 'unknown rule' };
  const delivery = cb(3);
  const where = DELIVERY[delivery];
  const out: ExplainRun = {
    verdict: retval === TC_ACT_SHOT ? 'drop' : 'pass',
    delivered: retval === TC_ACT_SHOT ? 'dropped' : (retval === TC_ACT_REDIRECT || retval === TC_ACT_OK) && where && where !== 'none' ? where : 'host',
    rule: rule.name,
    ruleText: rule.what,
  };
  if (cb(2)) out.ifindex = cb(2);
  if (retval === TC_ACT_SHOT) {
    out.reason = dropReasons[reason]?.name ?? String(reason);
    out.reasonText = dropReasons[reason]?.what ?? 'unknown reason';
  }
  const a = tuple(input);
  const b = tuple(output);
  if (retval !== TC_ACT_SHOT && (a.src !== b.src || a.dst !== b.dst || a.sport !== b.sport || a.dport !== b.dport)) out.translated = b;
  return out;
}
