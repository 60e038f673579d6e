/**
 * Packet tests of bpf/demo/count.c through BPF_PROG_TEST_RUN. Each scenario is
 * data: an input packet, the knobs, the expected verdict, the expected output
 * bytes and the drop reason the program must count.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { BpfObject, type ConstValue } from '../../src/bpf/index.js';
import { counter, DropReason, sumCounters } from '../../src/bpf/abi.js';
import { u32 } from '../../src/bpf/codec.js';
import { bpfObjectPath } from '../../src/paths.js';
import { arpRequest, badIhlIpv4, ipv4Packet, ipv6Packet, truncatedIpv4 } from '../../harness/packets.js';

const TC_ACT_UNSPEC = -1;
const TC_ACT_SHOT = 2;
const XDP_DROP = 1;
const XDP_PASS = 2;

type Program = 'berth_count_tc_ingress' | 'berth_count_tc_egress' | 'berth_count_xdp';

interface Fixture {
  name: string;
  program: Program;
  consts?: Record<string, ConstValue>;
  packet: Buffer;
  verdict: number;
  /** expected output; the counting program never rewrites, so default: the input */
  output?: Buffer;
  drop: keyof typeof DropReason;
}

const UDP_FILTER = { cfg_drop_l4proto: 17 };

const fixtures: Fixture[] = [
  { name: 'IPv4 TCP passes tc ingress', program: 'berth_count_tc_ingress', packet: ipv4Packet({ l4: 'tcp' }), verdict: TC_ACT_UNSPEC, drop: 'None' },
  { name: 'IPv4 UDP passes tc egress with no filter', program: 'berth_count_tc_egress', packet: ipv4Packet({ l4: 'udp' }), verdict: TC_ACT_UNSPEC, drop: 'None' },
  { name: 'IPv4 UDP dropped at tc ingress by the UDP filter', program: 'berth_count_tc_ingress', consts: UDP_FILTER, packet: ipv4Packet({ l4: 'udp' }), verdict: TC_ACT_SHOT, drop: 'ProtoFilter' },
  { name: 'IPv4 TCP passes the UDP filter', program: 'berth_count_tc_ingress', consts: UDP_FILTER, packet: ipv4Packet({ l4: 'tcp' }), verdict: TC_ACT_UNSPEC, drop: 'None' },
  { name: 'IPv6 UDP dropped at tc egress by the UDP filter', program: 'berth_count_tc_egress', consts: UDP_FILTER, packet: ipv6Packet({ l4: 'udp' }), verdict: TC_ACT_SHOT, drop: 'ProtoFilter' },
  { name: 'IPv6 ICMPv6 passes the UDP filter', program: 'berth_count_tc_egress', consts: UDP_FILTER, packet: ipv6Packet({ l4: 'icmpv6' }), verdict: TC_ACT_UNSPEC, drop: 'None' },
  { name: 'ARP passes the UDP filter', program: 'berth_count_tc_ingress', consts: UDP_FILTER, packet: arpRequest(), verdict: TC_ACT_UNSPEC, drop: 'None' },
  // The kernel refuses to test-run skb programs on a cut-short IPv4 header, so tc gets a bad IHL instead.
  { name: 'IPv4 with a header length under 20 bytes is dropped as malformed at tc', program: 'berth_count_tc_ingress', packet: badIhlIpv4(), verdict: TC_ACT_SHOT, drop: 'Malformed' },
  { name: 'ICMP echo passes XDP', program: 'berth_count_xdp', consts: UDP_FILTER, packet: ipv4Packet({ l4: 'icmp' }), verdict: XDP_PASS, drop: 'None' },
  { name: 'IPv4 UDP dropped at XDP by the UDP filter', program: 'berth_count_xdp', consts: UDP_FILTER, packet: ipv4Packet({ l4: 'udp' }), verdict: XDP_DROP, drop: 'ProtoFilter' },
  { name: 'IPv4 header cut short is dropped as malformed at XDP', program: 'berth_count_xdp', packet: truncatedIpv4(), verdict: XDP_DROP, drop: 'Malformed' },
];

const loaded = new Map<string, Promise<BpfObject>>();
function objectFor(consts: Record<string, ConstValue> = {}): Promise<BpfObject> {
  const key = JSON.stringify(consts);
  let o = loaded.get(key);
  if (!o) {
    o = BpfObject.load(bpfObjectPath('count'), { consts });
    loaded.set(key, o);
  }
  return o;
}

async function dropCount(obj: BpfObject, reason: number): Promise<bigint> {
  const perCpu = await obj.perCpuMap('berth_drops', u32, counter).lookup(reason);
  return perCpu ? sumCounters(perCpu).packets : 0n;
}

afterAll(async () => {
  for (const o of loaded.values()) (await o).close();
});

describe('bpf/demo/count.c under BPF_PROG_TEST_RUN', () => {
  it.each(fixtures)('$name', async (f) => {
    const obj = await objectFor(f.consts);
    const reason = DropReason[f.drop];
    const before = await Promise.all([1, 2].map((r) => dropCount(obj, r)));
    const res = await obj.program(f.program).testRun(f.packet);
    expect(res.retval).toBe(f.verdict);
    expect(res.data.toString('hex')).toBe((f.output ?? f.packet).toString('hex'));
    const after = await Promise.all([1, 2].map((r) => dropCount(obj, r)));
    // Exactly the expected reason counted once, no other reason touched.
    const delta = after.map((a, i) => a - (before[i] ?? 0n));
    expect(delta).toEqual([1, 2].map((r) => (r === reason ? 1n : 0n)));
  });

  it('knobs are fixed at load: a second copy without them keeps passing UDP', async () => {
    const plain = await objectFor();
    const filtered = await objectFor(UDP_FILTER);
    const pkt = ipv4Packet({ l4: 'udp' });
    expect((await plain.program('berth_count_tc_ingress').testRun(pkt)).retval).toBe(TC_ACT_UNSPEC);
    expect((await filtered.program('berth_count_tc_ingress').testRun(pkt)).retval).toBe(TC_ACT_SHOT);
  });
});
