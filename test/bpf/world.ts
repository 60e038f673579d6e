/**
 * The world the eBPF datapath's packet tests run in (BPF_PROG_TEST_RUN): a
 * test namespace "h" with the host's uplink, bridges and sandbox-side
 * devices, the three programs loaded over a private bpffs, their maps filled
 * as the backend would, and the frames and cases the tests describe. Each
 * case is data: steps of (program, arrival device, input frame, expected
 * verdict, expected output bytes, the one drop reason counted), and every
 * frame a program hands on has its checksums recomputed from its bytes.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { BpfObject, type BpfProgram } from '../../src/bpf/object.js';
import {
  counter, ctKey, ctVal, dpCfg, dpEgress, dpEp, EGRESS_RULES, dpLinkKey, dpNet, dpPub, DropReason, DROP_REASON_SLOTS, dropReasonName, EpFlag, NetFlag, PubFlag,
  PUB_GEN_SHIFT, PUB_MAX, sumCounters, type CtKey, type CtVal, type DpPub,
} from '../../src/bpf/abi.js';
import { u32 } from '../../src/bpf/codec.js';
import type { RawMap } from '../../src/native/addon.js';
import { addr16, lpmKey, macBytes, pubWalks } from '../../src/datapath/bpf/compile.js';
import { bpfObjectPath } from '../../src/paths.js';
import { run } from '../../src/exec.js';
import type { Topology } from '../../harness/topology.js';
import { PrivateBpffs, testTopology } from '../helpers/kernel.js';
import { datagram, frame, verifyChecksums, type DatagramSpec, type FrameSpec } from '../../harness/packets.js';
import { checksum } from '../../src/datapath/checksum.js';

export const TC_ACT_OK = 0;
export const TC_ACT_SHOT = 2;
export const TC_ACT_REDIRECT = 7;

// ---- the host: addresses and MACs ----
export const HOST4 = '192.0.2.1'; // the uplink's addresses (masquerade source, published ports)
export const HOST6 = '2001:db8::1';
export const RTR4 = '192.0.2.254'; // the next hop
export const RTR6 = '2001:db8::fe';
export const EXT4 = '198.51.100.7'; // a client out there
export const EXT6 = '2001:db8:ffff::7';
export const UPMAC = '02:00:00:00:00:01';
export const RTRMAC = '02:00:00:00:fe:fe';
export const LOMAC = '00:00:00:00:00:00';

/** Networks: bridge device, flags, gateways; A has IPv6, B is icc=false with a link, C is internal. */
export const NETS = {
  A: { bridge: 'br0', mac: '02:42:0a:58:00:01', cidr4: '10.88.0.0/24', gw4: '10.88.0.1', cidr6: 'fd88::/64', gw6: 'fd88::1', flags: NetFlag.V4 | NetFlag.V6 | NetFlag.Icc | NetFlag.Masq },
  B: { bridge: 'br1', mac: '02:42:0a:59:00:01', cidr4: '10.89.0.0/24', gw4: '10.89.0.1', cidr6: undefined, gw6: undefined, flags: NetFlag.V4 | NetFlag.Masq },
  C: { bridge: 'br2', mac: '02:42:0a:5a:00:01', cidr4: '10.90.0.0/24', gw4: '10.90.0.1', cidr6: undefined, gw6: undefined, flags: NetFlag.V4 | NetFlag.Internal },
} as const;
export type NetName = keyof typeof NETS;
export const MTU = 1500;

/** Sandboxes: host-side device, network, addresses. c6's network is unknown to the maps. */
export const EPS = {
  c1: { dev: 'c1h', net: 'A', v4: '10.88.0.2', v6: 'fd88::2', mac: '02:42:0a:58:00:02' },
  c2: { dev: 'c2h', net: 'A', v4: '10.88.0.3', v6: 'fd88::3', mac: '02:42:0a:58:00:03' },
  c3: { dev: 'c3h', net: 'B', v4: '10.89.0.2', v6: undefined, mac: '02:42:0a:59:00:02' },
  c4: { dev: 'c4h', net: 'B', v4: '10.89.0.3', v6: undefined, mac: '02:42:0a:59:00:03' },
  c5: { dev: 'c5h', net: 'C', v4: '10.90.0.2', v6: undefined, mac: '02:42:0a:5a:00:02' },
  c6: { dev: 'c6h', net: undefined, v4: '10.91.0.2', v6: undefined, mac: '02:42:0a:5b:00:02' },
  c7: { dev: 'c7h', net: 'A', v4: '10.88.0.4', v6: undefined, mac: '02:42:0a:58:00:04' },
} as const;
export type EpName = keyof typeof EPS;
export const { c1, c2, c3, c4, c5, c6, c7 } = EPS;
/** c7 has an egress allow-list: TCP 443 to 198.51.100.0/24, anything to 192.0.2.0/24 (the host's uplink subnet). */
export const EGRESS: { ep: EpName; cidr: string; rules: number[] }[] = [
  { ep: 'c7', cidr: '198.51.100.0/24', rules: [(6 << 16) | 443] },
  { ep: 'c7', cidr: '192.0.2.0/24', rules: [] },
];
export const BRA = NETS.A.mac;

/** c3 may open connections to c4's port 5432, TCP and UDP (icc=false network B). */
export const LINKS = [{ client: c3.v4, target: c4.v4, port: 5432, proto: 6 }, { client: c3.v4, target: c4.v4, port: 5432, proto: 17 }];

/** Published ports, in no particular order: the table is sorted as the backend sorts it. */
export const PUBS: (Omit<DpPub, 'id' | 'hostIp' | 'target'> & { hostIp?: string; target: string; allow?: string[] })[] = [
  { proto: 6, start: 8080, end: 8080, flags: PubFlag.Any4, target: c1.v4, cport: 80 },
  { proto: 6, start: 8080, end: 8080, flags: PubFlag.Any6, target: c1.v6, cport: 80 },
  { proto: 6, start: 8443, end: 8443, flags: PubFlag.Loopback, hostIp: '127.0.0.1', target: c1.v4, cport: 443 },
  { proto: 6, start: 8444, end: 8444, flags: PubFlag.Loopback, hostIp: '::1', target: c1.v6, cport: 443 },
  { proto: 6, start: 9000, end: 9009, flags: PubFlag.Any4, target: c2.v4, cport: 7000 },
  { proto: 6, start: 9100, end: 9100, flags: PubFlag.Any4 | PubFlag.Allow, target: c1.v4, cport: 80, allow: ['203.0.113.0/24'] },
  { proto: 17, start: 5353, end: 5353, flags: PubFlag.Any4, target: c2.v4, cport: 53 },
  { proto: 17, start: 6000, end: 6009, flags: PubFlag.Any4, target: c1.v4, cport: 6100 },
  { proto: 132, start: 3868, end: 3868, flags: PubFlag.Any4, target: c1.v4, cport: 3868 },
  { proto: 132, start: 2905, end: 2910, flags: PubFlag.Any4, target: c2.v4, cport: 12905 },
  // A range on one host address, and single ports inside it on other addresses (allowed: different bind addresses).
  { proto: 6, start: 9200, end: 9299, flags: 0, hostIp: HOST4, target: c1.v4, cport: 9200 },
  ...Array.from({ length: 9 }, (_, i) => ({ proto: 6, start: 9201 + i, end: 9201 + i, flags: 0, hostIp: `192.0.2.${101 + i}`, target: c2.v4, cport: 80 })),
];

// ---- frames as the test describes them ----
export type Spec = Omit<FrameSpec, 'smac' | 'dmac'>;
/** From the outside, arriving at the uplink. */
export const ext = (s: Partial<Spec> & Pick<Spec, 'l4'>): Buffer => frame({ smac: RTRMAC, dmac: UPMAC, src: EXT4, dst: HOST4, ...s });
/** Leaving by the uplink towards the next hop (what the FIB lookup puts on). */
export const toExt = (s: Spec): Buffer => frame({ smac: UPMAC, dmac: RTRMAC, ...s });
/** Sent by sandbox @e to its gateway's MAC (routed), or to @dmac. */
export const from = (e: (typeof EPS)[EpName], s: Spec, dmac?: string): Buffer => frame({ smac: e.mac, dmac: dmac ?? NETS[(e.net ?? 'A') as NetName].mac, ...s });
/** Delivered into sandbox @e by the datapath: its MAC, the gateway's as the source. */
export const into = (e: (typeof EPS)[EpName], s: Spec): Buffer => frame({ smac: NETS[e.net as NetName].mac, dmac: e.mac, ...s });
/** On lo. */
export const lo = (s: Spec): Buffer => frame({ smac: LOMAC, dmac: LOMAC, ...s });

/** @d with the L4 checksum of @orig: an ICMP error's embedded L4 checksum is left as it was sent. */
export function keepL4Csum(d: Buffer, orig: Buffer): Buffer {
  const out = Buffer.from(d);
  const v6 = (d[0]! >> 4) === 6;
  const l4off = v6 ? 40 : (d[0]! & 0x0f) * 4;
  const proto = v6 ? d[6]! : d[9]!;
  const off = l4off + (proto === 6 ? 16 : proto === 17 ? 6 : 2);
  orig.copy(out, off, off, off + 2);
  return out;
}

/** Two payload bytes that make datagram(@s)'s UDP checksum compute to 0, which UDP sends as 0xffff. */
export function zeroSumPayload(s: DatagramSpec): Buffer {
  const d = datagram({ ...s, payload: Buffer.alloc(2), udpNoChecksum: true });
  const src = d.subarray(12, 16), dst = d.subarray(16, 20), seg = d.subarray(20);
  const folded = ~checksum(Buffer.concat([src, dst, Buffer.from([0, 17, 0, seg.length]), seg])) & 0xffff;
  const w = 0xffff - folded;
  return Buffer.from([w >> 8, w & 0xff]);
}

// ---- cases ----
export type ProgName = 'container' | 'uplink' | 'host';
export interface Flow {
  /** values captured by earlier steps (a masquerade port the datapath picked) */
  vars: Record<string, number>;
  ct(k: CtKey): Promise<CtVal | undefined>;
}
export type Dyn<T> = T | ((f: Flow) => T);
export interface Step {
  prog: ProgName;
  /** the device the packet arrives on (ctx ifindex); default: up0 for the uplink, c1h for a sandbox, lo for the host */
  dev?: string;
  packet: Dyn<Buffer>;
  verdict: number;
  /** expected output; default: the input, untouched */
  output?: Dyn<Buffer>;
  drop?: keyof typeof DropReason;
  gso?: { size: number; segs: number };
  /** after the run, before the output is compared: read what the datapath chose */
  after?: (f: Flow, out: Buffer) => Promise<void>;
}
export interface Case {
  name: string;
  /** connection-table entries written before the first step (as user space would) */
  ct?: () => { key: CtKey; val: Partial<CtVal> & Pick<CtVal, 'saddr' | 'daddr' | 'sport' | 'dport' | 'flags'> }[];
  steps: Step[];
}

export const tcp = (sport: number, dport: number, x: Partial<DatagramSpec> = {}) => ({ l4: 'tcp' as const, sport, dport, ...x });
export const udp = (sport: number, dport: number, x: Partial<DatagramSpec> = {}) => ({ l4: 'udp' as const, sport, dport, ...x });
export const sctp = (sport: number, dport: number) => ({ l4: 'sctp' as const, sport, dport });
/** @p (an IPv6 frame) with an empty destination-options header (PadN) before its L4 header; the L4 checksum needs no change. */
export function withDestOpts(p: Buffer): Buffer {
  const h = Buffer.from(p.subarray(0, 54));
  const opts = Buffer.from([h[20]!, 0, 1, 4, 0, 0, 0, 0]);
  h[20] = 60;
  h.writeUInt16BE(h.readUInt16BE(18) + 8, 18);
  return Buffer.concat([h, opts, p.subarray(54)]);
}
export const SYNACK = { tcpFlags: 0x12, seq: 1000, ack: 2 };
/** An SCTP DATA chunk of @len bytes (a multiple of 4). */
export function sctpData(len: number): Buffer {
  const c = Buffer.alloc(len, 0x5a);
  c[0] = 0;
  c[1] = 3;
  c.writeUInt16BE(len, 2);
  c.writeUInt32BE(1001, 4);
  return c;
}
/** The masquerade port or ICMP id the datapath chose for flow @k (its forward entry's translated source). */
export const mapped = (name: string, k: CtKey, original: number) => async (f: Flow) => {
  const v = await f.ct(k);
  expect(v, `connection-table entry of ${name}`).toBeDefined();
  f.vars[name] = v!.sport;
  // The original was taken, so a fresh one from the masquerade range.
  expect(v!.sport).not.toBe(original);
  expect(v!.sport).toBeGreaterThanOrEqual(32768);
  expect(v!.sport).toBeLessThan(32768 + 28232);
};
export const key = (saddr: string, daddr: string, sport: number, dport: number, proto: number): CtKey => ({ saddr: addr16(saddr), daddr: addr16(daddr), sport, dport, proto });

// ---- the host namespace and the programs ----
export let topo: Topology | undefined;
export let bpffs: PrivateBpffs | undefined;
export const objects: BpfObject[] = [];
export let NS = '';
export const ifindex = new Map<string, number>();
export const progs = {} as Record<ProgName, BpfProgram>;
export const maps = new Map<string, RawMap>();
export const map = (n: string) => {
  const m = maps.get(n);
  if (!m) throw new Error(`no map ${n}`);
  return m;
};
export const idx = (dev: string) => {
  const i = ifindex.get(dev);
  if (!i) throw new Error(`no device ${dev} in the test namespace`);
  return i;
};

export async function ip(batch: string[]): Promise<void> {
  await run('ip', ['-n', topo!.ns('h'), '-batch', '-'], { input: batch.join('\n') + '\n' });
}

export async function buildHost(): Promise<void> {
  topo = testTopology();
  await topo.addNetns('h');
  NS = topo.nsPath('h');
  await topo.exec('h', 'sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
  const cmds: string[] = [];
  for (const n of Object.values(NETS)) {
    // A bridge with a port (one end of a veth pair): carrier up, so its routes are usable.
    cmds.push(`link add ${n.bridge} address ${n.mac} type bridge`, `link add ${n.bridge}p type veth peer name ${n.bridge}q`, `link set ${n.bridge}p master ${n.bridge}`,
      `link set ${n.bridge}q up`, `link set ${n.bridge}p up`, `link set ${n.bridge} up`, `addr add ${n.gw4}/24 dev ${n.bridge}`);
    if (n.gw6) cmds.push(`addr add ${n.gw6}/64 dev ${n.bridge} nodad`);
  }
  // A sandbox's host-side veth; its peer stays here too: the programs only need the host side's ifindex.
  for (const e of Object.values(EPS)) cmds.push(`link add ${e.dev} type veth peer name ${e.dev}p`, `link set ${e.dev}p up`, `link set ${e.dev} up`);
  cmds.push(
    `link add up0 address ${UPMAC} type veth peer name upx address ${RTRMAC}`, 'link set up0 up', 'link set upx up',
    `addr add ${HOST4}/24 dev up0`, `addr add ${HOST6}/64 dev up0 nodad`,
    `route add default via ${RTR4} dev up0`, `route add ::/0 via ${RTR6} dev up0`,
    `neigh replace ${RTR4} lladdr ${RTRMAC} dev up0 nud permanent`, `neigh replace ${RTR6} lladdr ${RTRMAC} dev up0 nud permanent`,
  );
  await ip(cmds);
  const { stdout } = await run('ip', ['-n', topo.ns('h'), '-j', 'link', 'show']);
  for (const l of JSON.parse(stdout) as { ifname: string; ifindex: number }[]) ifindex.set(l.ifname, l.ifindex);
}

export async function loadPrograms(): Promise<void> {
  bpffs = await PrivateBpffs.create();
  // The first object pins the berth_dp_* maps; the other two reuse the pins: one state for all three.
  for (const [hook, object, program] of [['container', 'tc_container', 'berth_from_container'], ['uplink', 'tc_uplink', 'berth_from_uplink'], ['host', 'tc_host', 'berth_from_host']] as const) {
    const o = await BpfObject.load(bpfObjectPath(object), { pinRoot: bpffs.path });
    objects.push(o);
    progs[hook] = o.program(program);
  }
  for (const m of objects[0]!.maps()) if (!m.internal) maps.set(m.name, objects[0]!.rawMap(m.name));
}

export const ZERO16 = Buffer.alloc(16);

export async function fillMaps(): Promise<void> {
  for (const n of Object.values(NETS)) {
    const br = idx(n.bridge);
    await map('berth_dp_nets').update(u32.encode(br), dpNet.encode({ gw4: addr16(n.gw4), gw6: n.gw6 ? addr16(n.gw6) : ZERO16, gwMac: macBytes(n.mac), flags: n.flags, bridge: br, mtu: MTU }));
    for (const c of [n.cidr4, n.cidr6]) if (c) await map('berth_dp_subnets').update(lpmKey(c), u32.encode(br));
  }
  for (const e of Object.values(EPS)) {
    const v = dpEp.encode({
      v4: addr16(e.v4), v6: e.v6 ? addr16(e.v6) : ZERO16, mac: macBytes(e.mac),
      flags: EpFlag.HasV4 | (e.v6 ? EpFlag.HasV6 : 0) | (EGRESS.some((g) => EPS[g.ep] === e) ? EpFlag.Egress : 0),
      ifindex: idx(e.dev), net: e.net ? idx(NETS[e.net].bridge) : 4242,
    });
    await map('berth_dp_ep_if').update(u32.encode(idx(e.dev)), v);
    if (e.net) for (const a of [e.v4, e.v6]) if (a) await map('berth_dp_ep_ip').update(addr16(a), v);
  }
  for (const g of EGRESS) {
    const rules = Buffer.alloc(4 * EGRESS_RULES);
    g.rules.forEach((r, i) => rules.writeUInt32LE(r, i * 4));
    await map('berth_dp_egress').update(lpmKey(g.cidr, idx(EPS[g.ep].dev)), dpEgress.encode({ n: g.rules.length, rules }));
  }
  for (const l of LINKS) await map('berth_dp_links').update(dpLinkKey.encode({ client: addr16(l.client), target: addr16(l.target), port: l.port, proto: l.proto }), u32.encode(1));
  // The publish table as the backend writes it: generation 1 (the second half), ids (gen << 30) | (i + 1).
  const gen = 1;
  const rows = [...PUBS].map((p) => ({ ...p, host: p.hostIp ? addr16(p.hostIp) : ZERO16 }))
    .sort((a, b) => a.proto - b.proto || a.start - b.start || a.end - b.end || Buffer.compare(a.host, b.host));
  const walks = pubWalks(rows);
  for (const [i, p] of rows.entries()) {
    const id = ((gen << 30) | (i + 1)) >>> 0;
    await map('berth_dp_pub').update(u32.encode(gen * PUB_MAX + i), dpPub.encode({ hostIp: p.host, target: addr16(p.target), start: p.start, end: p.end, cport: p.cport, proto: p.proto, flags: p.flags, id, walk: walks[i]! }));
    for (const a of p.allow ?? []) await map('berth_dp_allow').update(lpmKey(a, id), u32.encode(1));
  }
  // A stale allow-list entry of the idle generation (generation 0's id of the allow-listed row) admitting the test's client:
  // the allow-list drop below proves entries are scoped by the live generation's id.
  const allowRow = rows.findIndex((p) => p.allow);
  await map('berth_dp_allow').update(lpmKey(`${EXT4}/32`, allowRow + 1), u32.encode(1));
  await map('berth_dp_pubsel').update(u32.encode(0), u32.encode(((gen << PUB_GEN_SHIFT) | rows.length) >>> 0));
  await map('berth_dp_cfg').update(u32.encode(0), dpCfg.encode({ uplink: idx('up0'), flags: 0, eventRate: 0 }));
  for (const [a, v6] of [[HOST4, 0], [HOST6, 1]] as const) {
    const k = Buffer.alloc(8);
    k.writeBigUInt64LE((BigInt(idx('up0')) << 1n) | BigInt(v6));
    await map('berth_dp_ifaddr').update(k, addr16(a));
  }
}

export async function cleanup(): Promise<void> {
  for (const m of maps.values()) m.close();
  maps.clear();
  for (const o of objects.splice(0)) o.close();
  await bpffs?.release();
  bpffs = undefined;
  const failures = (await topo?.destroy()) ?? [];
  topo = undefined;
  if (failures.length) throw new Error(`cleanup: ${failures.join('; ')}`);
}

/** Registers the host namespace, the programs and their maps around the calling test file. */
export function useWorld(): void {
  beforeAll(async () => {
    try {
      await buildHost();
      await loadPrograms();
      await fillMaps();
    } catch (e) {
      await cleanup().catch(() => undefined);
      throw e;
    }
  }, 60_000);

  afterAll(cleanup, 30_000);
}

// ---- running a case ----
/** struct __sk_buff for test-run: only ifindex, gso_segs and gso_size are set. */
export function skbCtx(ifidx: number, gso?: { size: number; segs: number }): Buffer {
  const b = Buffer.alloc(192);
  b.writeUInt32LE(ifidx, 40);
  if (gso) {
    b.writeUInt32LE(gso.segs, 164);
    b.writeUInt32LE(gso.size, 176);
  }
  return b;
}

export async function dropCounts(): Promise<bigint[]> {
  const m = map('berth_dp_drops');
  const ncpus = m.info().ncpus;
  const out: bigint[] = [];
  for (let r = 0; r < DROP_REASON_SLOTS; r++) {
    const v = await m.lookup(u32.encode(r));
    out.push(v ? sumCounters(Array.from({ length: ncpus }, (_, i) => counter.decode(v, i * counter.size))).packets : 0n);
  }
  return out;
}

export const CT_TABLES = ['berth_dp_ct', 'berth_dp_ct_new'];

export async function flushCt(): Promise<void> {
  for (const name of CT_TABLES) {
    const ct = map(name);
    const { keys, count } = await ct.entries();
    for (let i = 0; i < count; i++) await ct.delete(keys.subarray(i * ctKey.size, (i + 1) * ctKey.size));
  }
}

export const flow = (): Flow => ({
  vars: {},
  async ct(k) {
    for (const name of CT_TABLES) {
      const v = await map(name).lookup(ctKey.encode(k));
      if (v) return ctVal.decode(v);
    }
    return undefined;
  },
});

export const hex = (b: Buffer) => b.toString('hex');
export const DEFAULT_DEV: Record<ProgName, string | undefined> = { container: 'c1h', uplink: 'up0', host: undefined };

export async function runCase(c: Case): Promise<void> {
  await flushCt();
  const now = process.hrtime.bigint();
  for (const e of c.ct?.() ?? []) {
    await map('berth_dp_ct').update(ctKey.encode(e.key), ctVal.encode({ lastSeen: now, created: now, packets: 0n, bytes: 0n, pubId: 0, ack: 0, ...e.val }));
  }
  const f = flow();
  for (const [i, s] of c.steps.entries()) {
    const at = `step ${i + 1} (${s.prog})`;
    const packet = typeof s.packet === 'function' ? s.packet(f) : s.packet;
    const dev = s.dev ?? DEFAULT_DEV[s.prog];
    const before = await dropCounts();
    const res = await progs[s.prog].testRun(packet, { ctx: skbCtx(dev ? idx(dev) : 0, s.gso), netns: NS });
    const after = await dropCounts();
    const delta = after.map((a, r) => a - before[r]!);
    const want = delta.map((_, r) => (s.drop && r === DropReason[s.drop] ? 1n : 0n));
    const named = (d: bigint[]) => Object.fromEntries(d.flatMap((n, r) => (n ? [[dropReasonName[r] ?? String(r), Number(n)]] : [])));
    expect(named(delta), `${at}: drop reasons counted`).toEqual(named(want));
    expect(res.retval, `${at}: verdict`).toBe(s.verdict);
    await s.after?.(f, res.data);
    const output = s.output === undefined ? packet : typeof s.output === 'function' ? s.output(f) : s.output;
    expect(hex(res.data), `${at}: output bytes`).toBe(hex(output));
    if (s.verdict !== TC_ACT_SHOT) {
      const sums = verifyChecksums(res.data);
      expect(sums.problems, `${at}: checksums recomputed from the output (checked: ${sums.checked.join(', ')})`).toEqual([]);
    }
  }
}
