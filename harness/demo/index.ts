/**
 * `berth demo` (`npm run demo`, ./main.ts): berth at work in a topology of
 * its own, then gone. It builds namespaces and runs berthd as tests do, so it
 * lives in the harness.
 *
 *   ext (198.18.0.2) ──veth── host (198.18.0.1 | 198.19.0.1) ──veth── c1 (198.19.0.2)
 *
 * "host" plays the machine berthd runs on, "ext" the outside world, "c1" a
 * container. berth's counting program runs at tc ingress and egress of the
 * host's uplink and at XDP of the host's container-side veth; real pings and
 * UDP datagrams cross them, and the counters, drop reasons and sampled events
 * are read back through the addon. A second copy of the program, loaded with
 * its UDP-drop knob set, shows a verdict with its reason. Then berthd runs in
 * "host" (./berthd.ts). Nothing touches the root network namespace;
 * everything is removed at the end, also on failure.
 */
import { BpfObject, type BpfLink, RingBuffer } from '../../src/bpf/index.js';
import { counter, dropReasonName, hookName, ifCountKey, ipv4ToString, pktEvent, sumCounters, type PktEvent } from '../../src/bpf/abi.js';
import { u32 } from '../../src/bpf/codec.js';
import { PrivateBpffs } from '../../src/bpf/bpffs.js';
import { bpfObjectPath } from '../../src/paths.js';
import { Topology, listNetns } from '../topology.js';
import { run, tryRun } from '../../src/exec.js';
import { doctor, formatDoctor, type DoctorReport } from '../../src/doctor/doctor.js';
import { controlPlaneDemo, type ControlPlaneDemo } from './berthd.js';

export const DEMO_PREFIX = 'berth-demo-';

export interface DemoResult {
  doctor: DoctorReport;
  counts: { ns: string; ifname: string; hook: string; packets: number; bytes: number }[];
  drops: { reason: string; packets: number }[];
  events: { hook: string; ifname: string; src: string; dst: string; l4proto: number; drop: string; what: string }[];
  udpDelivered: boolean;
  attachments: string[];
  controlPlane: ControlPlaneDemo;
}

type Say = (line: string) => void;

const L4: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6', 132: 'sctp' };

function describe(e: PktEvent): string {
  if (e.ethProto === 0x0806) return 'arp';
  if (e.ethProto === 0x86dd) return `ipv6 ${L4[e.l4proto] ?? e.l4proto}`;
  if (e.ethProto !== 0x0800) return `ethertype 0x${e.ethProto.toString(16)}`;
  return `${ipv4ToString(e.saddr4)} -> ${ipv4ToString(e.daddr4)} ${L4[e.l4proto] ?? `proto ${e.l4proto}`}`;
}

export async function runDemo(say: Say = () => {}): Promise<DemoResult> {
  // A demo that crashed earlier may have left its namespaces: they are ours by name.
  for (const stale of await listNetns(DEMO_PREFIX)) await tryRun('ip', ['netns', 'del', stale]);

  const report = await doctor();
  say('== berth doctor\n' + formatDoctor(report) + '\n');

  const topo = new Topology(DEMO_PREFIX);
  let bpffs: PrivateBpffs | undefined;
  const objects: BpfObject[] = [];
  const links: BpfLink[] = [];
  let events: RingBuffer<PktEvent> | undefined;
  try {
    say('== topology: namespaces ext, host, c1 (the root namespace is not touched)');
    await topo.addNetns('host');
    await topo.addNetns('ext');
    await topo.addNetns('c1');
    await topo.veth({ ns: 'host', name: 'uplink0', addr: '198.18.0.1/24' }, { ns: 'ext', name: 'eth0', addr: '198.18.0.2/24' });
    await topo.veth({ ns: 'host', name: 'c1-host', addr: '198.19.0.1/24' }, { ns: 'c1', name: 'eth0', addr: '198.19.0.2/24' });
    const names = new Map<number, string>([
      [await topo.ifindex('host', 'uplink0'), 'uplink0'],
      [await topo.ifindex('host', 'c1-host'), 'c1-host'],
    ]);
    bpffs = await PrivateBpffs.create('berth-demo-bpffs-');

    say('== loading build/bpf/count.bpf.o (knob cfg_event_sample=1) and attaching it in netns host');
    const count = await BpfObject.load(bpfObjectPath('count'), { pinRoot: bpffs.path, consts: { cfg_event_sample: 1 } });
    objects.push(count);
    const hostNs = topo.nsPath('host');
    links.push(await count.program('berth_count_tc_ingress').attachTc({ netns: hostNs, ifname: 'uplink0', direction: 'ingress' }));
    links.push(await count.program('berth_count_tc_egress').attachTc({ netns: hostNs, ifname: 'uplink0', direction: 'egress' }));
    links.push(await count.program('berth_count_xdp').attachXdp({ netns: hostNs, ifname: 'c1-host', mode: 'native' }));

    say('== a second copy with knob cfg_drop_l4proto=17 (UDP) at tc ingress of c1-host');
    const filter = await BpfObject.load(bpfObjectPath('count'), { consts: { cfg_drop_l4proto: 17 } });
    objects.push(filter);
    links.push(await filter.program('berth_count_tc_ingress').attachTc({ netns: hostNs, ifname: 'c1-host', direction: 'ingress' }));
    const attachments = links.map((l) => {
      const i = l.info;
      return `${i.kind}${i.direction ? ` ${i.direction}` : ''}${i.mode ? ` ${i.mode}` : ''} on ${names.get(i.ifindex) ?? i.ifindex} (prog ${i.progId})`;
    });
    for (const a of attachments) say(`   attached: ${a}`);

    const seen: PktEvent[] = [];
    events = new RingBuffer(count.rawMap('berth_events'), pktEvent, (e) => seen.push(e));

    say('\n== traffic: 5 pings ext -> host, 3 pings c1 -> host, 3 UDP datagrams c1 -> host:9');
    await topo.exec('ext', 'ping', ['-c', '5', '-i', '0.05', '-W', '1', '198.18.0.1']);
    await topo.exec('c1', 'ping', ['-c', '3', '-i', '0.05', '-W', '1', '198.19.0.1']);
    // A UDP listener in host proves the datagrams were dropped, not merely unanswered.
    const listener = run('ip', ['netns', 'exec', topo.ns('host'), 'timeout', '2', 'socat', '-u', 'UDP-RECV:9,bind=198.19.0.1', 'STDOUT'], { timeoutMs: 5000 }).then(
      (r) => r.stdout,
      (e: { stdout?: string }) => e.stdout ?? '',
    );
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 3; i++) await topo.exec('c1', 'bash', ['-c', 'echo berth > /dev/udp/198.19.0.1/9']);
    const udpDelivered = (await listener).length > 0;
    await new Promise((r) => setTimeout(r, 200));

    const counts = (await count.perCpuMap('berth_counts', ifCountKey, counter).entries())
      .map(([k, perCpu]) => ({ k, c: sumCounters(perCpu) }))
      .filter(({ k }) => names.has(k.ifindex))
      .map(({ k, c }) => ({ ns: topo.ns('host'), ifname: names.get(k.ifindex) ?? String(k.ifindex), hook: hookName[k.hook] ?? String(k.hook), packets: Number(c.packets), bytes: Number(c.bytes) }))
      .sort((a, b) => (a.ifname + a.hook).localeCompare(b.ifname + b.hook));
    const drops = (await filter.perCpuMap('berth_drops', u32, counter).entries())
      .map(([reason, perCpu]) => ({ reason: dropReasonName[reason] ?? String(reason), packets: Number(sumCounters(perCpu).packets) }))
      .filter((d) => d.packets > 0);

    say('\n== packet counters, read back through the addon (count.bpf.o)');
    say('   interface   hook         packets   bytes');
    for (const c of counts) say(`   ${c.ifname.padEnd(11)} ${c.hook.padEnd(12)} ${String(c.packets).padStart(7)} ${String(c.bytes).padStart(7)}`);
    say('\n== drop reasons (the UDP-filter copy)');
    for (const d of drops) say(`   ${d.reason.padEnd(14)} ${d.packets} packets`);
    say(`   UDP datagrams reached the listener in host: ${udpDelivered ? 'yes' : 'no (dropped by the filter)'}`);

    const ev = seen.slice(0, 6).map((e) => ({
      hook: hookName[e.hook] ?? String(e.hook),
      ifname: names.get(e.ifindex) ?? String(e.ifindex),
      src: ipv4ToString(e.saddr4),
      dst: ipv4ToString(e.daddr4),
      l4proto: e.l4proto,
      drop: dropReasonName[e.dropReason] ?? String(e.dropReason),
      what: describe(e),
    }));
    say(`\n== sampled events from the ring buffer (${seen.length} in all, first ${ev.length})`);
    for (const e of ev) say(`   ${e.hook.padEnd(11)} ${e.ifname.padEnd(8)} ${e.what}`);

    const controlPlane = await controlPlaneDemo(topo, say);
    return { doctor: report, counts, drops, events: ev, udpDelivered, attachments, controlPlane };
  } finally {
    events?.close();
    for (const l of links) await l.detach().catch(() => undefined);
    for (const o of objects) o.close();
    const failures = await topo.destroy();
    await bpffs?.release();
    say(`\n== cleaned up: namespaces, links, programs and pins removed${failures.length ? ` (FAILED: ${failures.join('; ')})` : ''}`);
  }
}
