/**
 * Packet tests of the eBPF datapath (bpf/tc_container.c, bpf/tc_uplink.c,
 * bpf/tc_host.c) through BPF_PROG_TEST_RUN. Each case is data: one or more
 * steps of (program, arrival device, input frame, expected verdict, expected
 * output bytes, the one drop reason counted in berth_dp_drops). Every frame
 * a program hands on has its checksums recomputed here from its bytes (IPv4
 * header, TCP/UDP/ICMP/ICMPv6 with pseudo-headers, SCTP's CRC32c, an ICMP
 * error's embedded IPv4 header).
 *
 * The programs run inside a test namespace ("h", the host) where the
 * uplink, bridges and sandbox-side devices exist: the kernel resolves the
 * ctx's ifindex, and the programs do their FIB lookups, in the namespace of
 * the thread that calls test-run (testRun's netns option).
 *
 * What test-run cannot express: CHECKSUM_PARTIAL. It always builds a
 * CHECKSUM_NONE skb (the ctx has gso_size and gso_segs, no ip_summed), so the
 * GSO case below checks a GSO-marked skb's full checksums, not the partial
 * pseudo-header seed the csum helpers keep for hardware offload.
 */
import { describe, expect, it } from 'vitest';
import { CtFlag, DropReason } from '../../src/bpf/abi.js';
import { addr16 } from '../../src/datapath/bpf/compile.js';
import { arpFrame, datagram, frame, icmpErrorFrame, verifyChecksums } from '../../harness/packets.js';
import {
  BRA, c1, c2, c3, c4, c5, c6, c7, EXT4, EXT6, ext, from, HOST4, HOST6, into, keepL4Csum, key, lo, mapped, MTU, NETS, progs, runCase, RTR4, RTR6,
  RTRMAC, sctp, sctpData, SYNACK, tcp, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, toExt, udp, UPMAC, useWorld, withDestOpts, zeroSumPayload,
  type Case, type ProgName,
} from './world.js';

useWorld();

const natCases: Case[] = [
  {
    name: 'uplink → published TCP port: DNAT into the sandbox keeping the client; the answer leaves by the uplink from the host address',
    steps: [
      { prog: 'uplink', packet: ext(tcp(40000, 8080)), verdict: TC_ACT_REDIRECT, output: into(c1, { src: EXT4, dst: c1.v4, ...tcp(40000, 80) }) },
      { prog: 'container', packet: from(c1, { src: c1.v4, dst: EXT4, ...tcp(80, 40000, SYNACK) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST4, dst: EXT4, ...tcp(8080, 40000, SYNACK) }) },
    ],
  },
  {
    name: 'uplink → a TCP port inside a published range: container port is cport + (port - start)',
    steps: [
      { prog: 'uplink', packet: ext(tcp(40001, 9005)), verdict: TC_ACT_REDIRECT, output: into(c2, { src: EXT4, dst: c2.v4, ...tcp(40001, 7005) }) },
      { prog: 'container', dev: c2.dev, packet: from(c2, { src: c2.v4, dst: EXT4, ...tcp(7005, 40001, SYNACK) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST4, dst: EXT4, ...tcp(9005, 40001, SYNACK) }) },
    ],
  },
  {
    name: 'uplink → published UDP port, and its answer',
    steps: [
      { prog: 'uplink', packet: ext(udp(40002, 5353)), verdict: TC_ACT_REDIRECT, output: into(c2, { src: EXT4, dst: c2.v4, ...udp(40002, 53) }) },
      { prog: 'container', dev: c2.dev, packet: from(c2, { src: c2.v4, dst: EXT4, ...udp(53, 40002) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST4, dst: EXT4, ...udp(5353, 40002) }) },
    ],
  },
  {
    name: 'uplink → a UDP port inside a published range',
    steps: [{ prog: 'uplink', packet: ext(udp(40003, 6003)), verdict: TC_ACT_REDIRECT, output: into(c1, { src: EXT4, dst: c1.v4, ...udp(40003, 6103) }) }],
  },
  {
    name: 'UDP over IPv4 without a checksum (0) keeps 0 through DNAT and back',
    steps: [
      { prog: 'uplink', packet: ext(udp(40004, 5353, { udpNoChecksum: true })), verdict: TC_ACT_REDIRECT, output: into(c2, { src: EXT4, dst: c2.v4, ...udp(40004, 53, { udpNoChecksum: true }) }) },
      { prog: 'container', dev: c2.dev, packet: from(c2, { src: c2.v4, dst: EXT4, ...udp(53, 40004, { udpNoChecksum: true }) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST4, dst: EXT4, ...udp(5353, 40004, { udpNoChecksum: true }) }) },
    ],
  },
  {
    name: 'UDP whose translated checksum computes to 0 is sent as 0xffff (0 would mean "no checksum")',
    steps: [{
      prog: 'uplink', packet: ext(udp(40020, 5353, { payload: zeroSumPayload({ src: EXT4, dst: c2.v4, ...udp(40020, 53) }) })), verdict: TC_ACT_REDIRECT,
      output: into(c2, { src: EXT4, dst: c2.v4, ...udp(40020, 53, { payload: zeroSumPayload({ src: EXT4, dst: c2.v4, ...udp(40020, 53) }) }) }),
      after: async (_f, out) => expect(out.readUInt16BE(14 + 20 + 6)).toBe(0xffff),
    }],
  },
  {
    name: 'uplink → published SCTP port (same container port): addresses rewritten, CRC32c still valid; the answer back',
    steps: [
      { prog: 'uplink', packet: ext(sctp(40005, 3868)), verdict: TC_ACT_REDIRECT, output: into(c1, { src: EXT4, dst: c1.v4, ...sctp(40005, 3868) }) },
      { prog: 'container', packet: from(c1, { src: c1.v4, dst: EXT4, ...sctp(3868, 40005) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST4, dst: EXT4, ...sctp(3868, 40005) }) },
    ],
  },
  {
    name: 'uplink → an SCTP port inside a published range: port rewritten and CRC32c recomputed, both ways',
    steps: [
      { prog: 'uplink', packet: ext(sctp(40006, 2907)), verdict: TC_ACT_REDIRECT, output: into(c2, { src: EXT4, dst: c2.v4, ...sctp(40006, 12907) }) },
      { prog: 'container', dev: c2.dev, packet: from(c2, { src: c2.v4, dst: EXT4, ...sctp(12907, 40006) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST4, dst: EXT4, ...sctp(2907, 40006) }) },
    ],
  },
  {
    name: 'a 1400-byte SCTP packet (DATA chunk) inside a published range: CRC32c recomputed over all of it',
    steps: [{
      prog: 'uplink', packet: ext({ ...sctp(40021, 2906), payload: sctpData(1372) }), verdict: TC_ACT_REDIRECT,
      output: into(c2, { src: EXT4, dst: c2.v4, ...sctp(40021, 12906), payload: sctpData(1372) }),
    }],
  },
  {
    name: 'a port inside a published range, with more than eight single ports inside the same range published on other host addresses',
    steps: [
      { prog: 'uplink', packet: ext(tcp(40022, 9250)), verdict: TC_ACT_REDIRECT, output: into(c1, { src: EXT4, dst: c1.v4, ...tcp(40022, 9250) }) },
      { prog: 'uplink', packet: ext({ dst: '192.0.2.105', ...tcp(40023, 9205) }), verdict: TC_ACT_REDIRECT, output: into(c2, { src: EXT4, dst: c2.v4, ...tcp(40023, 80) }) },
    ],
  },
  {
    name: 'IPv6: uplink → published TCP port on every IPv6 address, and the answer',
    steps: [
      { prog: 'uplink', packet: ext({ src: EXT6, dst: HOST6, ...tcp(40007, 8080) }), verdict: TC_ACT_REDIRECT, output: into(c1, { src: EXT6, dst: c1.v6, ...tcp(40007, 80) }) },
      { prog: 'container', packet: from(c1, { src: c1.v6, dst: EXT6, ...tcp(80, 40007, SYNACK) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST6, dst: EXT6, ...tcp(8080, 40007, SYNACK) }) },
    ],
  },
  {
    name: 'GSO-marked skb (gso_size 1400, 2 segments) through DNAT: full checksums right (CHECKSUM_PARTIAL is not expressible in test-run)',
    steps: [{
      prog: 'uplink', gso: { size: 1400, segs: 2 }, packet: ext(tcp(40008, 8080, { tcpFlags: 0x18, payload: Buffer.alloc(2800, 0x61) })), verdict: TC_ACT_REDIRECT,
      output: into(c1, { src: EXT4, dst: c1.v4, ...tcp(40008, 80, { tcpFlags: 0x18, payload: Buffer.alloc(2800, 0x61) }) }),
    }],
  },
  {
    name: 'sandbox → host address:published port of another sandbox: DNAT keeping the client sandbox\'s address; the answer comes back from the host address',
    steps: [
      { prog: 'container', dev: c2.dev, packet: from(c2, { src: c2.v4, dst: HOST4, ...tcp(40009, 8080) }), verdict: TC_ACT_REDIRECT, output: into(c1, { src: c2.v4, dst: c1.v4, ...tcp(40009, 80) }) },
      { prog: 'container', packet: from(c1, { src: c1.v4, dst: c2.v4, ...tcp(80, 40009, SYNACK) }, c2.mac), verdict: TC_ACT_REDIRECT, output: into(c2, { src: HOST4, dst: c2.v4, ...tcp(8080, 40009, SYNACK) }) },
    ],
  },
  {
    name: 'sandbox → its own published port: DNAT and SNAT to its gateway',
    steps: [{ prog: 'container', packet: from(c1, { src: c1.v4, dst: HOST4, ...tcp(40010, 8080) }), verdict: TC_ACT_REDIRECT, output: into(c1, { src: NETS.A.gw4, dst: c1.v4, ...tcp(40010, 80) }) }],
  },
  {
    name: 'masquerade TCP from a sandbox (FIB: out of the uplink to the next hop), and the reply translated back',
    steps: [
      { prog: 'container', packet: from(c1, { src: c1.v4, dst: EXT4, ...tcp(41000, 443) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST4, dst: EXT4, ...tcp(41000, 443) }) },
      { prog: 'uplink', packet: ext({ src: EXT4, dst: HOST4, ...tcp(443, 41000, SYNACK) }), verdict: TC_ACT_REDIRECT, output: into(c1, { src: EXT4, dst: c1.v4, ...tcp(443, 41000, SYNACK) }) },
    ],
  },
  {
    name: 'masquerade UDP, and the reply',
    steps: [
      { prog: 'container', dev: c2.dev, packet: from(c2, { src: c2.v4, dst: EXT4, ...udp(41001, 53) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST4, dst: EXT4, ...udp(41001, 53) }) },
      { prog: 'uplink', packet: ext(udp(53, 41001)), verdict: TC_ACT_REDIRECT, output: into(c2, { src: EXT4, dst: c2.v4, ...udp(53, 41001) }) },
    ],
  },
  {
    name: 'masquerade TCP whose port is taken: a fresh port, and the reply to it put back to the sandbox\'s port',
    ct: () => [{ key: key(EXT4, HOST4, 443, 42000, 6), val: { saddr: addr16(EXT4), daddr: addr16('10.88.0.200'), sport: 443, dport: 42000, flags: CtFlag.Snat | CtFlag.Masq | CtFlag.Reply } }],
    steps: [
      {
        prog: 'container', packet: from(c1, { src: c1.v4, dst: EXT4, ...tcp(42000, 443) }), verdict: TC_ACT_REDIRECT,
        after: mapped('port', key(c1.v4, EXT4, 42000, 443, 6), 42000),
        output: (f) => toExt({ src: HOST4, dst: EXT4, ...tcp(f.vars.port!, 443) }),
      },
      { prog: 'uplink', packet: (f) => ext(tcp(443, f.vars.port!, SYNACK)), verdict: TC_ACT_REDIRECT, output: into(c1, { src: EXT4, dst: c1.v4, ...tcp(443, 42000, SYNACK) }) },
    ],
  },
  {
    name: 'masquerade SCTP (addresses only: CRC32c untouched and valid), and the reply',
    steps: [
      { prog: 'container', packet: from(c1, { src: c1.v4, dst: EXT4, ...sctp(41005, 3868) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST4, dst: EXT4, ...sctp(41005, 3868) }) },
      { prog: 'uplink', packet: ext(sctp(3868, 41005)), verdict: TC_ACT_REDIRECT, output: into(c1, { src: EXT4, dst: c1.v4, ...sctp(3868, 41005) }) },
    ],
  },
  {
    name: 'IPv6 masquerade TCP (FIB over IPv6), and the reply',
    steps: [
      { prog: 'container', packet: from(c1, { src: c1.v6, dst: EXT6, ...tcp(41002, 443) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST6, dst: EXT6, ...tcp(41002, 443) }) },
      { prog: 'uplink', packet: ext({ src: EXT6, dst: HOST6, ...tcp(443, 41002, SYNACK) }), verdict: TC_ACT_REDIRECT, output: into(c1, { src: EXT6, dst: c1.v6, ...tcp(443, 41002, SYNACK) }) },
    ],
  },
  {
    name: 'IPv6 UDP behind a destination-options header, masqueraded: source rewritten and the UDP checksum still right',
    steps: [{
      prog: 'container', packet: withDestOpts(from(c1, { src: c1.v6, dst: EXT6, ...udp(41006, 53) })), verdict: TC_ACT_REDIRECT,
      output: withDestOpts(toExt({ src: HOST6, dst: EXT6, ...udp(41006, 53) })),
    }],
  },
  {
    name: 'ICMP echo masqueraded, and the echo reply back',
    steps: [
      { prog: 'container', packet: from(c1, { src: c1.v4, dst: EXT4, l4: 'icmp', id: 0x1234 }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST4, dst: EXT4, l4: 'icmp', id: 0x1234 }) },
      { prog: 'uplink', packet: ext({ l4: 'icmp', icmpType: 0, id: 0x1234 }), verdict: TC_ACT_REDIRECT, output: into(c1, { src: EXT4, dst: c1.v4, l4: 'icmp', icmpType: 0, id: 0x1234 }) },
    ],
  },
  {
    name: 'ICMP echo whose id is taken: mapped to a fresh id, the echo reply mapped back',
    ct: () => [{ key: key(EXT4, HOST4, 0, 0x2345, 1), val: { saddr: addr16(EXT4), daddr: addr16('10.88.0.200'), sport: 0, dport: 0x2345, flags: CtFlag.Snat | CtFlag.Masq | CtFlag.Reply } }],
    steps: [
      {
        prog: 'container', packet: from(c1, { src: c1.v4, dst: EXT4, l4: 'icmp', id: 0x2345 }), verdict: TC_ACT_REDIRECT,
        after: mapped('id', key(c1.v4, EXT4, 0x2345, 0, 1), 0x2345),
        output: (f) => toExt({ src: HOST4, dst: EXT4, l4: 'icmp', id: f.vars.id! }),
      },
      { prog: 'uplink', packet: (f) => ext({ l4: 'icmp', icmpType: 0, id: f.vars.id! }), verdict: TC_ACT_REDIRECT, output: into(c1, { src: EXT4, dst: c1.v4, l4: 'icmp', icmpType: 0, id: 0x2345 }) },
    ],
  },
  {
    name: 'ICMPv6 echo masqueraded, and the reply',
    steps: [
      { prog: 'container', packet: from(c1, { src: c1.v6, dst: EXT6, l4: 'icmpv6', id: 0x3456 }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST6, dst: EXT6, l4: 'icmpv6', id: 0x3456 }) },
      { prog: 'uplink', packet: ext({ src: EXT6, dst: HOST6, l4: 'icmpv6', icmpType: 129, id: 0x3456 }), verdict: TC_ACT_REDIRECT, output: into(c1, { src: EXT6, dst: c1.v6, l4: 'icmpv6', icmpType: 129, id: 0x3456 }) },
    ],
  },
  {
    name: 'reply through connection-table entries written by user space (an established masqueraded UDP flow)',
    ct: () => [
      { key: key(c2.v4, EXT4, 41500, 53, 17), val: { saddr: addr16(HOST4), daddr: addr16(EXT4), sport: 41500, dport: 53, flags: CtFlag.Snat | CtFlag.Masq } },
      { key: key(EXT4, HOST4, 53, 41500, 17), val: { saddr: addr16(EXT4), daddr: addr16(c2.v4), sport: 53, dport: 41500, flags: CtFlag.Snat | CtFlag.Masq | CtFlag.Reply } },
    ],
    steps: [
      { prog: 'uplink', packet: ext(udp(53, 41500)), verdict: TC_ACT_REDIRECT, output: into(c2, { src: EXT4, dst: c2.v4, ...udp(53, 41500) }) },
      { prog: 'container', dev: c2.dev, packet: from(c2, { src: c2.v4, dst: EXT4, ...udp(41500, 53) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST4, dst: EXT4, ...udp(41500, 53) }) },
    ],
  },
  {
    name: 'host → 127.0.0.1:published port (lo egress): DNAT, SNAT to the gateway, MSS clamped to the bridge MTU - 40; the answer put back into lo',
    steps: [
      { prog: 'host', packet: lo({ src: '127.0.0.1', dst: '127.0.0.1', ...tcp(45000, 8443, { mss: 65495 }) }), verdict: TC_ACT_REDIRECT, output: into(c1, { src: NETS.A.gw4, dst: c1.v4, ...tcp(45000, 443, { mss: MTU - 40 }) }) },
      { prog: 'container', packet: from(c1, { src: c1.v4, dst: NETS.A.gw4, ...tcp(443, 45000, { ...SYNACK, mss: MTU - 40 }) }), verdict: TC_ACT_REDIRECT, output: lo({ src: '127.0.0.1', dst: '127.0.0.1', ...tcp(8443, 45000, { ...SYNACK, mss: MTU - 40 }) }) },
    ],
  },
  {
    name: 'host → [::1]:published port: DNAT, SNAT to the IPv6 gateway, MSS clamped to MTU - 60; the answer back into lo',
    steps: [
      { prog: 'host', packet: lo({ src: '::1', dst: '::1', ...tcp(45001, 8444, { mss: 65475 }) }), verdict: TC_ACT_REDIRECT, output: into(c1, { src: NETS.A.gw6, dst: c1.v6, ...tcp(45001, 443, { mss: MTU - 60 }) }) },
      { prog: 'container', packet: from(c1, { src: c1.v6, dst: NETS.A.gw6, ...tcp(443, 45001, SYNACK) }), verdict: TC_ACT_REDIRECT, output: lo({ src: '::1', dst: '::1', ...tcp(8444, 45001, SYNACK) }) },
    ],
  },
  {
    name: 'host → its own address:published port (lo egress): DNAT keeping the host address, MSS clamped',
    steps: [{ prog: 'host', packet: lo({ src: HOST4, dst: HOST4, ...tcp(45002, 8080, { mss: 65495 }) }), verdict: TC_ACT_REDIRECT, output: into(c1, { src: HOST4, dst: c1.v4, ...tcp(45002, 80, { mss: MTU - 40 }) }) }],
  },
];

// ICMP errors: the datagram as it left the host (embedded), and as the sandbox knows it.
const masqUdp = datagram({ src: HOST4, dst: EXT4, ...udp(41100, 53) });
const masqUdp6 = datagram({ src: HOST6, dst: EXT6, ...udp(41101, 53) });
const pubUdpInSandbox = datagram({ src: EXT4, dst: c2.v4, ...udp(40100, 53) });

/** ICMP "fragmentation needed" (MTU 1400) from @src about @about, cut to its header and 8 bytes, as a router sends it. */
function pmtu4(src: string, dst: string, about: Buffer, mac = { smac: RTRMAC, dmac: UPMAC }): Buffer {
  return frame({ ...mac, src, dst, l4: 'icmp', icmpType: 3, icmpCode: 4, rest: 1400, payload: about.subarray(0, 28) });
}
/** ICMPv6 "packet too big" (MTU 1280) from @src about @about, cut to fit the minimum MTU. */
function pmtu6(src: string, dst: string, about: Buffer, mac = { smac: RTRMAC, dmac: UPMAC }): Buffer {
  return frame({ ...mac, src, dst, l4: 'icmpv6', icmpType: 2, icmpCode: 0, rest: 1280, payload: about.subarray(0, 1280 - 48) });
}

const icmpCases: Case[] = [
  {
    name: 'ICMP port unreachable about a masqueraded UDP flow: outer destination and embedded source put back, checksums right',
    steps: [
      { prog: 'container', packet: from(c1, { src: c1.v4, dst: EXT4, ...udp(41100, 53) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST4, dst: EXT4, ...udp(41100, 53) }) },
      {
        prog: 'uplink', packet: icmpErrorFrame({ smac: RTRMAC, dmac: UPMAC, src: EXT4, dst: HOST4, type: 3, code: 3, about: masqUdp }), verdict: TC_ACT_REDIRECT,
        output: icmpErrorFrame({ smac: BRA, dmac: c1.mac, src: EXT4, dst: c1.v4, type: 3, code: 3, about: keepL4Csum(datagram({ src: c1.v4, dst: EXT4, ...udp(41100, 53) }), masqUdp) }),
      },
    ],
  },
  {
    name: 'ICMP time exceeded from a router about a masqueraded ping whose id was remapped: embedded id and source put back',
    ct: () => [{ key: key(EXT4, HOST4, 0, 0x4321, 1), val: { saddr: addr16(EXT4), daddr: addr16('10.88.0.200'), sport: 0, dport: 0x4321, flags: CtFlag.Snat | CtFlag.Masq | CtFlag.Reply } }],
    steps: [
      {
        prog: 'container', packet: from(c1, { src: c1.v4, dst: EXT4, l4: 'icmp', id: 0x4321, ttl: 1 }), verdict: TC_ACT_REDIRECT,
        after: mapped('id', key(c1.v4, EXT4, 0x4321, 0, 1), 0x4321),
        output: (f) => toExt({ src: HOST4, dst: EXT4, l4: 'icmp', id: f.vars.id!, ttl: 1 }),
      },
      {
        prog: 'uplink',
        packet: (f) => icmpErrorFrame({ smac: RTRMAC, dmac: UPMAC, src: RTR4, dst: HOST4, type: 11, code: 0, about: datagram({ src: HOST4, dst: EXT4, l4: 'icmp', id: f.vars.id!, ttl: 1 }) }),
        verdict: TC_ACT_REDIRECT,
        output: (f) => icmpErrorFrame({
          smac: BRA, dmac: c1.mac, src: RTR4, dst: c1.v4, type: 11, code: 0,
          about: keepL4Csum(datagram({ src: c1.v4, dst: EXT4, l4: 'icmp', id: 0x4321, ttl: 1 }), datagram({ src: HOST4, dst: EXT4, l4: 'icmp', id: f.vars.id!, ttl: 1 })),
        }),
      },
    ],
  },
  {
    name: 'ICMP time exceeded about a masqueraded TCP flow, embedding only the first 8 bytes of TCP',
    steps: [
      { prog: 'container', packet: from(c1, { src: c1.v4, dst: EXT4, ...tcp(41102, 443) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST4, dst: EXT4, ...tcp(41102, 443) }) },
      {
        prog: 'uplink', packet: icmpErrorFrame({ smac: RTRMAC, dmac: UPMAC, src: RTR4, dst: HOST4, type: 11, code: 0, about: datagram({ src: HOST4, dst: EXT4, ...tcp(41102, 443) }), embedBytes: 28 }),
        verdict: TC_ACT_REDIRECT,
        output: icmpErrorFrame({ smac: BRA, dmac: c1.mac, src: RTR4, dst: c1.v4, type: 11, code: 0, about: datagram({ src: c1.v4, dst: EXT4, ...tcp(41102, 443) }), embedBytes: 28 }),
      },
    ],
  },
  {
    name: 'ICMPv6 port unreachable about a masqueraded UDP flow: outer destination and embedded source put back, ICMPv6 checksum right',
    steps: [
      { prog: 'container', packet: from(c1, { src: c1.v6, dst: EXT6, ...udp(41101, 53) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST6, dst: EXT6, ...udp(41101, 53) }) },
      {
        prog: 'uplink', packet: icmpErrorFrame({ smac: RTRMAC, dmac: UPMAC, src: EXT6, dst: HOST6, type: 1, code: 4, about: masqUdp6 }), verdict: TC_ACT_REDIRECT,
        output: icmpErrorFrame({ smac: BRA, dmac: c1.mac, src: EXT6, dst: c1.v6, type: 1, code: 4, about: keepL4Csum(datagram({ src: c1.v6, dst: EXT6, ...udp(41101, 53) }), masqUdp6) }),
      },
    ],
  },
  {
    name: 'ICMP port unreachable from a sandbox about a published UDP flow: outer source and embedded destination become the host address and port',
    steps: [
      { prog: 'uplink', packet: ext(udp(40100, 5353)), verdict: TC_ACT_REDIRECT, output: into(c2, { src: EXT4, dst: c2.v4, ...udp(40100, 53) }) },
      {
        prog: 'container', dev: c2.dev, packet: icmpErrorFrame({ smac: c2.mac, dmac: BRA, src: c2.v4, dst: EXT4, type: 3, code: 3, about: pubUdpInSandbox }), verdict: TC_ACT_REDIRECT,
        output: icmpErrorFrame({ smac: UPMAC, dmac: RTRMAC, src: HOST4, dst: EXT4, type: 3, code: 3, about: keepL4Csum(datagram({ src: EXT4, dst: HOST4, ...udp(40100, 5353) }), pubUdpInSandbox) }),
      },
    ],
  },
  {
    name: 'an ICMP error about the host\'s own flow stays the host\'s, also while a sandbox pings the same peer with echo id 0',
    steps: [
      { prog: 'container', packet: from(c1, { src: c1.v4, dst: EXT4, l4: 'icmp', id: 0 }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST4, dst: EXT4, l4: 'icmp', id: 0 }) },
      { prog: 'uplink', packet: icmpErrorFrame({ smac: RTRMAC, dmac: UPMAC, src: EXT4, dst: HOST4, type: 3, code: 3, about: datagram({ src: HOST4, dst: EXT4, ...udp(5000, 53) }) }), verdict: TC_ACT_OK },
    ],
  },
  {
    name: 'ICMP fragmentation needed (PMTU, next-hop MTU kept) about a masqueraded TCP flow reaches the sandbox',
    steps: [
      { prog: 'container', packet: from(c1, { src: c1.v4, dst: EXT4, ...tcp(41103, 443, { payload: Buffer.alloc(1400, 1) }) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST4, dst: EXT4, ...tcp(41103, 443, { payload: Buffer.alloc(1400, 1) }) }) },
      {
        prog: 'uplink', packet: pmtu4(RTR4, HOST4, datagram({ src: HOST4, dst: EXT4, ...tcp(41103, 443, { payload: Buffer.alloc(1400, 1) }) })), verdict: TC_ACT_REDIRECT,
        output: pmtu4(RTR4, c1.v4, datagram({ src: c1.v4, dst: EXT4, ...tcp(41103, 443, { payload: Buffer.alloc(1400, 1) }) }), { smac: BRA, dmac: c1.mac }),
      },
    ],
  },
  {
    name: 'ICMPv6 packet too big about a masqueraded IPv6 TCP flow reaches the sandbox',
    steps: [
      { prog: 'container', packet: from(c1, { src: c1.v6, dst: EXT6, ...tcp(41104, 443, { payload: Buffer.alloc(1300, 1) }) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST6, dst: EXT6, ...tcp(41104, 443, { payload: Buffer.alloc(1300, 1) }) }) },
      {
        prog: 'uplink', packet: pmtu6(RTR6, HOST6, datagram({ src: HOST6, dst: EXT6, ...tcp(41104, 443, { payload: Buffer.alloc(1300, 1) }) })), verdict: TC_ACT_REDIRECT,
        output: pmtu6(RTR6, c1.v6, keepL4Csum(datagram({ src: c1.v6, dst: EXT6, ...tcp(41104, 443, { payload: Buffer.alloc(1300, 1) }) }), datagram({ src: HOST6, dst: EXT6, ...tcp(41104, 443, { payload: Buffer.alloc(1300, 1) }) })), { smac: BRA, dmac: c1.mac }),
      },
    ],
  },
  {
    name: 'ICMP port unreachable from the outside about a published flow\'s answer: outer destination and embedded source become the sandbox\'s',
    steps: [
      { prog: 'uplink', packet: ext(udp(40101, 5353)), verdict: TC_ACT_REDIRECT, output: into(c2, { src: EXT4, dst: c2.v4, ...udp(40101, 53) }) },
      {
        prog: 'uplink', packet: icmpErrorFrame({ smac: RTRMAC, dmac: UPMAC, src: EXT4, dst: HOST4, type: 3, code: 3, about: datagram({ src: HOST4, dst: EXT4, ...udp(5353, 40101) }) }),
        verdict: TC_ACT_REDIRECT,
        output: icmpErrorFrame({ smac: BRA, dmac: c2.mac, src: EXT4, dst: c2.v4, type: 3, code: 3, about: keepL4Csum(datagram({ src: c2.v4, dst: EXT4, ...udp(53, 40101) }), datagram({ src: HOST4, dst: EXT4, ...udp(5353, 40101) })) }),
      },
    ],
  },
  {
    name: 'ICMP port unreachable from a link\'s target about the link\'s UDP flow reaches the linker (a related reply, as with conntrack)',
    steps: [
      { prog: 'container', dev: c3.dev, packet: from(c3, { src: c3.v4, dst: c4.v4, ...udp(40102, 5432) }, c4.mac), verdict: TC_ACT_REDIRECT },
      { prog: 'container', dev: c4.dev, packet: icmpErrorFrame({ smac: c4.mac, dmac: c3.mac, src: c4.v4, dst: c3.v4, type: 3, code: 3, about: datagram({ src: c3.v4, dst: c4.v4, ...udp(40102, 5432) }) }), verdict: TC_ACT_REDIRECT },
    ],
  },
];

const shot = (name: string, prog: ProgName, packet: Buffer, drop: keyof typeof DropReason, dev?: string): Case => ({ name, steps: [{ prog, dev, packet, verdict: TC_ACT_SHOT, drop }] });
/** @p with its Ethernet type replaced. */
const ethType = (p: Buffer, t: number) => Buffer.concat([p.subarray(0, 12), Buffer.from([t >> 8, t & 0xff]), p.subarray(14)]);
const badIhl = (p: Buffer) => {
  const b = Buffer.from(p);
  b[14] = 0x44;
  return b;
};

/** @p (an IPv6 frame) as the first fragment: a fragment header between IPv6 and its payload, more fragments to come. */
function ipv6Fragment(p: Buffer): Buffer {
  const h = Buffer.from(p.subarray(0, 54));
  const fh = Buffer.alloc(8);
  fh[0] = h[20]!; // next header: what the IPv6 header said
  fh.writeUInt16BE(1, 2); // offset 0, M=1
  fh.writeUInt32BE(0x1234, 4);
  h[20] = 44;
  h.writeUInt16BE(h.readUInt16BE(18) + 8, 18);
  return Buffer.concat([h, fh, p.subarray(54)]);
}

const dropCases: Case[] = [
  shot('spoof-mac: a sandbox sending with a MAC not its own', 'container', frame({ smac: '02:42:0a:58:00:99', dmac: BRA, src: c1.v4, dst: EXT4, ...udp(1, 53) }), 'SpoofMac'),
  shot('spoof-ip: a sandbox sending from an address not its own', 'container', from(c1, { src: '10.88.0.99', dst: EXT4, ...udp(1, 53) }), 'SpoofIp'),
  shot('spoof-ip: IPv6 from an address not its own', 'container', from(c1, { src: 'fd88::99', dst: EXT6, ...udp(1, 53) }), 'SpoofIp'),
  shot('spoof-arp: ARP speaking for another address', 'container', arpFrame({ smac: c1.mac, spa: '10.88.0.77', tpa: NETS.A.gw4 }), 'SpoofArp'),
  shot('spoof-arp: ARP whose sender MAC is not the sandbox\'s', 'container', arpFrame({ smac: c1.mac, sha: '02:42:0a:58:00:99', spa: c1.v4, tpa: NETS.A.gw4 }), 'SpoofArp'),
  shot('family: IPv6 from a sandbox on an IPv4-only network', 'container', from(c3, { src: 'fd89::2', dst: EXT6, ...udp(1, 53) }), 'Family', c3.dev),
  shot('l2: neither IP nor ARP (LLDP) from a sandbox', 'container', ethType(from(c1, { src: c1.v4, dst: EXT4, ...udp(1, 53) }), 0x88cc), 'L2'),
  shot('isolation: to a sandbox of another network', 'container', from(c1, { src: c1.v4, dst: c3.v4, ...tcp(40200, 80) }), 'Isolation'),
  shot('isolation: to another network\'s subnet where no sandbox is', 'container', from(c1, { src: c1.v4, dst: '10.89.0.77', ...tcp(40201, 80) }), 'Isolation'),
  shot('icc: TCP within an icc=false network without a link', 'container', from(c3, { src: c3.v4, dst: c4.v4, ...tcp(40202, 80) }, c4.mac), 'Icc', c3.dev),
  shot('icc: ping within an icc=false network', 'container', from(c3, { src: c3.v4, dst: c4.v4, l4: 'icmp' }, c4.mac), 'Icc', c3.dev),
  shot('icc: the link target opening a connection to its linker', 'container', from(c4, { src: c4.v4, dst: c3.v4, ...tcp(40203, 5432) }, c3.mac), 'Icc', c4.dev),
  shot('internal: an internal network\'s sandbox to the outside', 'container', from(c5, { src: c5.v4, dst: EXT4, ...udp(40204, 53) }), 'Internal', c5.dev),
  shot('loopback: from the outside to 127.0.0.1 (a 127.0.0.1-bound published port)', 'uplink', ext({ dst: '127.0.0.1', ...tcp(40205, 8443) }), 'Loopback'),
  shot('loopback: from the outside to ::1', 'uplink', ext({ src: EXT6, dst: '::1', ...tcp(40206, 8444) }), 'Loopback'),
  shot('loopback: from a sandbox to 127.0.0.1', 'container', from(c1, { src: c1.v4, dst: '127.0.0.1', ...tcp(40207, 8443) }), 'Loopback'),
  shot('direct: from the outside straight to a sandbox address', 'uplink', ext({ dst: c1.v4, ...tcp(40208, 80) }), 'Direct'),
  shot('direct: IPv6 straight to a sandbox address', 'uplink', ext({ src: EXT6, dst: c1.v6, ...tcp(40209, 80) }), 'Direct'),
  shot('allowlist: a published port\'s allow-list refuses the source', 'uplink', ext(tcp(40210, 9100)), 'Allowlist'),
  shot('fragment: a first fragment that would need masquerading', 'container', from(c1, { src: c1.v4, dst: EXT4, ...udp(40211, 53), frag: { more: true } }), 'Fragment'),
  shot('fragment: a later fragment that would need masquerading', 'container', from(c1, { src: c1.v4, dst: EXT4, ...udp(40212, 53), frag: { offset: 185 } }), 'Fragment'),
  shot('fragment: an IPv6 fragment that would need masquerading', 'container', ipv6Fragment(from(c1, { src: c1.v6, dst: EXT6, ...udp(40216, 53) })), 'Fragment'),
  shot('egress: a sandbox with an egress allow-list to a port the list does not admit', 'container', from(c7, { src: c7.v4, dst: EXT4, ...tcp(40217, 80) }), 'Egress', c7.dev),
  shot('egress: ... to a prefix the list does not name', 'container', from(c7, { src: c7.v4, dst: '203.0.113.9', ...udp(40218, 53) }), 'Egress', c7.dev),
  shot('egress: ... a ping to a prefix admitted for TCP 443 only', 'container', from(c7, { src: c7.v4, dst: EXT4, l4: 'icmp' }), 'Egress', c7.dev),
  shot('no-config: a berth interface whose network is not known', 'container', from(c6, { src: c6.v4, dst: EXT4, ...udp(40213, 53) }, BRA), 'NoConfig', c6.dev),
  shot('malformed: IPv4 header length under 20 bytes', 'container', badIhl(from(c1, { src: c1.v4, dst: EXT4, ...udp(40214, 53) })), 'Malformed'),
  shot('malformed: TCP header cut short', 'container', from(c1, { src: c1.v4, dst: EXT4, ...tcp(40215, 443, { l4Truncate: 10 }) }), 'Malformed'),
];

const passCases: Case[] = [
  { name: 'icc: sandbox to sandbox within a network is redirected to the peer untouched', steps: [{ prog: 'container', packet: from(c1, { src: c1.v4, dst: c2.v4, ...tcp(40300, 80) }, c2.mac), verdict: TC_ACT_REDIRECT }] },
  { name: 'icc over IPv6 too', steps: [{ prog: 'container', packet: from(c1, { src: c1.v6, dst: c2.v6, ...udp(40301, 53) }, c2.mac), verdict: TC_ACT_REDIRECT }] },
  {
    name: 'a link admits its port on an icc=false network, its reply passes, both untouched',
    steps: [
      { prog: 'container', dev: c3.dev, packet: from(c3, { src: c3.v4, dst: c4.v4, ...tcp(40302, 5432) }, c4.mac), verdict: TC_ACT_REDIRECT },
      { prog: 'container', dev: c4.dev, packet: from(c4, { src: c4.v4, dst: c3.v4, ...tcp(5432, 40302, SYNACK) }, c3.mac), verdict: TC_ACT_REDIRECT },
    ],
  },
  {
    name: 'allowlist: a source inside the allow-list is DNAT-ed',
    steps: [{ prog: 'uplink', packet: ext({ src: '203.0.113.5', ...tcp(40303, 9100) }), verdict: TC_ACT_REDIRECT, output: into(c1, { src: '203.0.113.5', dst: c1.v4, ...tcp(40303, 80) }) }],
  },
  {
    name: 'duplicate address detection (a neighbour solicitation from ::) goes to the bridge',
    steps: [{ prog: 'container', packet: frame({ smac: c1.mac, dmac: '33:33:ff:00:00:02', src: '::', dst: 'ff02::1:ff00:2', l4: 'icmpv6', icmpType: 135, rest: 0, payload: Buffer.concat([Buffer.from('fd880000000000000000000000000002', 'hex')]) }), verdict: TC_ACT_OK }],
  },
  { name: 'ARP for the sandbox\'s own address goes to the bridge', steps: [{ prog: 'container', packet: arpFrame({ smac: c1.mac, spa: c1.v4, tpa: NETS.A.gw4 }), verdict: TC_ACT_OK }] },
  { name: 'a sandbox to its gateway goes to the host stack', steps: [{ prog: 'container', packet: from(c1, { src: c1.v4, dst: NETS.A.gw4, ...udp(40304, 53) }), verdict: TC_ACT_OK }] },
  { name: 'an internal network\'s sandbox reaches its gateway', steps: [{ prog: 'container', dev: c5.dev, packet: from(c5, { src: c5.v4, dst: NETS.C.gw4, ...udp(40305, 53) }), verdict: TC_ACT_OK }] },
  {
    name: 'an expired connection-table entry (UDP, last seen 200 s ago) is not used: the reply is the host\'s',
    ct: () => [{ key: key(EXT4, HOST4, 53, 41600, 17), val: { saddr: addr16(EXT4), daddr: addr16(c2.v4), sport: 53, dport: 41600, flags: CtFlag.Snat | CtFlag.Masq | CtFlag.Reply, lastSeen: process.hrtime.bigint() - 200_000_000_000n } }],
    steps: [{ prog: 'uplink', packet: ext(udp(53, 41600)), verdict: TC_ACT_OK }],
  },
  {
    name: 'egress: what the allow-list admits is masqueraded; within the network and to a prefix with any port it does not apply',
    steps: [
      { prog: 'container', dev: c7.dev, packet: from(c7, { src: c7.v4, dst: EXT4, ...tcp(40310, 443) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST4, dst: EXT4, ...tcp(40310, 443) }) },
      { prog: 'container', dev: c7.dev, packet: from(c7, { src: c7.v4, dst: c1.v4, ...tcp(40311, 80) }, c1.mac), verdict: TC_ACT_REDIRECT },
      { prog: 'container', dev: c7.dev, packet: from(c7, { src: c7.v4, dst: HOST4, ...udp(40312, 53) }), verdict: TC_ACT_OK },
    ],
  },
  { name: 'uplink: traffic for the host that no publish covers passes untouched', steps: [{ prog: 'uplink', packet: ext(tcp(40306, 22)), verdict: TC_ACT_OK }] },
  { name: 'lo: the host\'s own traffic to an unpublished port passes untouched', steps: [{ prog: 'host', packet: lo({ src: '127.0.0.1', dst: '127.0.0.1', ...tcp(40307, 22) }), verdict: TC_ACT_OK }] },
  { name: 'an interface that is not a berth sandbox\'s passes everything', steps: [{ prog: 'container', dev: 'up0', packet: ext(tcp(40308, 22)), verdict: TC_ACT_OK }] },
];

describe('eBPF datapath under BPF_PROG_TEST_RUN', () => {
  describe('NAT rewriting and checksums', () => {
    it.each(natCases)('$name', runCase);
  });
  describe('ICMP error translation', () => {
    it.each(icmpCases)('$name', runCase);
  });
  describe('drops: TC_ACT_SHOT and exactly that reason counted', () => {
    it.each(dropCases)('$name', runCase);
    it('every drop reason the three programs produce has a case here', () => {
      const covered = new Set(dropCases.flatMap((c) => c.steps.map((s) => s.drop)));
      // ct-full and nat-exhausted need a full table or nine taken ports in a row; no program returns fib.
      const produced = ['SpoofMac', 'SpoofIp', 'SpoofArp', 'Family', 'L2', 'Isolation', 'Icc', 'Internal', 'Loopback', 'Direct', 'Allowlist', 'Fragment', 'NoConfig', 'Malformed', 'Egress'] as const;
      expect(produced.filter((r) => !covered.has(r))).toEqual([]);
    });
  });
  describe('what passes', () => {
    it.each(passCases)('$name', runCase);
  });
  it('testRun in a namespace that does not exist fails naming it', async () => {
    await expect(progs.uplink.testRun(ext(tcp(1, 2)), { netns: '/var/run/netns/berth-no-such-ns' })).rejects.toThrow(/berth-no-such-ns/);
  });
  it('the checksum verifier catches a wrong checksum (it is not vacuous)', () => {
    const good = ext(tcp(1, 2));
    expect(verifyChecksums(good).problems).toEqual([]);
    const bad = Buffer.from(good);
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 1;
    expect(verifyChecksums(bad).problems).toEqual(['TCP checksum']);
    const sc = ext(sctp(1, 2));
    expect(verifyChecksums(sc).checked).toContain('sctp-crc32c');
    sc[sc.length - 1] = sc[sc.length - 1]! ^ 1;
    expect(verifyChecksums(sc).problems).toEqual(['SCTP CRC32c']);
  });
});

