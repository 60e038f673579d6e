/**
 * berth's programs attached to a veth in test-made namespaces, counting real
 * packets that are read back through the addon. Namespaces have IPv6 off and
 * static neighbours, so the only packets on the wire are the test's own and
 * counts are exact: a ping of 56 data bytes is 98 bytes on the wire.
 */
import { unlink } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BpfLink, BpfObject, PerCpuMap, RingBuffer } from '../../src/bpf/index.js';
import { counter, Hook, ifCountKey, pktEvent, sumCounters, DropReason, type Counter, type PktEvent } from '../../src/bpf/abi.js';
import { u32 } from '../../src/bpf/codec.js';
import { addon } from '../../src/native/addon.js';
import { bpfObjectPath } from '../../src/paths.js';
import { run } from '../../src/exec.js';
import type { Topology } from '../../harness/topology.js';
import { pairTopology, ping, PrivateBpffs, udpDelivered } from '../helpers/kernel.js';

const PING_BYTES = 98n;

let topo: Topology;
let bpffs: PrivateBpffs;
let nsB: string;
let ifB: number;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  topo = await pairTopology();
  nsB = topo.nsPath('b');
  ifB = await topo.ifindex('b', 'b0');
  bpffs = await PrivateBpffs.create('berth-test-bpffs-');
});

afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

afterAll(async () => {
  await topo?.destroy();
  await bpffs?.release();
});

async function load(consts: Record<string, number> = {}, pinRoot?: string): Promise<BpfObject> {
  const o = await BpfObject.load(bpfObjectPath('count'), { consts, ...(pinRoot ? { pinRoot } : {}) });
  cleanup.push(() => o.close());
  return o;
}

function track(link: BpfLink): BpfLink {
  cleanup.push(() => link.detach());
  return link;
}

async function count(obj: BpfObject, hook: number): Promise<Counter> {
  const perCpu = await obj.perCpuMap('berth_counts', ifCountKey, counter).lookup({ ifindex: ifB, hook });
  return perCpu ? sumCounters(perCpu) : { packets: 0n, bytes: 0n };
}

describe('tc attachments count real packets', () => {
  it.each(['tcx', 'clsact'] as const)('%s: ingress and egress of b0 see exactly the pings', async (mode) => {
    const obj = await load();
    const ing = track(await obj.program('berth_count_tc_ingress').attachTc({ netns: nsB, ifname: 'b0', direction: 'ingress', mode }));
    track(await obj.program('berth_count_tc_egress').attachTc({ netns: nsB, ifname: 'b0', direction: 'egress', mode }));
    expect(ing.info).toMatchObject({ kind: mode, ifindex: ifB, direction: 'ingress', netns: nsB });

    await ping(topo, 'a', '10.77.0.2', 5);
    expect(await count(obj, Hook.TcIngress)).toEqual({ packets: 5n, bytes: 5n * PING_BYTES });
    expect(await count(obj, Hook.TcEgress)).toEqual({ packets: 5n, bytes: 5n * PING_BYTES });
  });

  it('tcx: detach removes only our program; another one on the same hook keeps counting', async () => {
    const ours = await load();
    const theirs = await load();
    const ourLink = await ours.program('berth_count_tc_ingress').attachTc({ netns: nsB, ifname: 'b0', direction: 'ingress', mode: 'tcx' });
    track(await theirs.program('berth_count_tc_ingress').attachTc({ netns: nsB, ifname: 'b0', direction: 'ingress', mode: 'tcx' }));
    await ping(topo, 'a', '10.77.0.2', 2);
    await ourLink.detach();
    await ping(topo, 'a', '10.77.0.2', 3);
    expect((await count(ours, Hook.TcIngress)).packets).toBe(2n);
    expect((await count(theirs, Hook.TcIngress)).packets).toBe(5n);
  });

  it("clsact: detach removes our filter and leaves another tool's filter and the qdisc", async () => {
    await run('ip', ['netns', 'exec', topo.ns('b'), 'tc', 'qdisc', 'replace', 'dev', 'b0', 'clsact']);
    await run('ip', ['netns', 'exec', topo.ns('b'), 'tc', 'filter', 'add', 'dev', 'b0', 'ingress', 'pref', '7', 'u32', 'match', 'u32', '0', '0', 'classid', '1:1']);
    cleanup.push(async () => {
      await run('ip', ['netns', 'exec', topo.ns('b'), 'tc', 'qdisc', 'del', 'dev', 'b0', 'clsact']);
    });
    const obj = await load();
    const link = await obj.program('berth_count_tc_ingress').attachTc({ netns: nsB, ifname: 'b0', direction: 'ingress', mode: 'clsact' });
    expect(link.info.qdiscCreated).toBe(false);
    const filters = async () => (await run('ip', ['netns', 'exec', topo.ns('b'), 'tc', 'filter', 'show', 'dev', 'b0', 'ingress'])).stdout;
    expect(await filters()).toMatch(/bpf/);
    await link.detach();
    const after = await filters();
    expect(after).not.toMatch(/bpf/);
    expect(after).toMatch(/u32/);
    await ping(topo, 'a', '10.77.0.2', 1);
    expect((await count(obj, Hook.TcIngress)).packets).toBe(0n);
  });
});

describe('XDP attachments count real packets', () => {
  it.each(['native', 'generic'] as const)('%s mode on b0', async (mode) => {
    const obj = await load();
    const link = track(await obj.program('berth_count_xdp').attachXdp({ netns: nsB, ifname: 'b0', mode }));
    expect(link.info).toMatchObject({ kind: 'xdp', mode, ifindex: ifB });
    const q = await addon().xdpQuery({ netns: nsB, ifname: 'b0' });
    expect(q.progId).toBe(link.info.progId);
    await ping(topo, 'a', '10.77.0.2', 5);
    expect(await count(obj, Hook.Xdp)).toEqual({ packets: 5n, bytes: 5n * PING_BYTES });
    await link.detach();
    expect((await addon().xdpQuery({ netns: nsB, ifname: 'b0' })).progId).toBe(0);
  });
});

describe('verdicts on real traffic', () => {
  it('the UDP-drop knob drops datagrams before they reach a listener, counting the reason', async () => {
    const obj = await load({ cfg_drop_l4proto: 17 });
    const link = await obj.program('berth_count_tc_ingress').attachTc({ netns: nsB, ifname: 'b0', direction: 'ingress' });
    try {
      expect(await udpDelivered(topo, 'a', 'b', '10.77.0.2', 5353, 3)).toBe(0);
    } finally {
      await link.detach();
    }
    const drops = sumCounters((await obj.perCpuMap('berth_drops', u32, counter).lookup(DropReason.ProtoFilter)) ?? []);
    expect(drops.packets).toBe(3n);
    // Control: the same datagrams arrive once the program is gone.
    expect(await udpDelivered(topo, 'a', 'b', '10.77.0.2', 5353, 3)).toBe(3);
  });
});

describe('pins survive the process that made them', () => {
  it('maps pinned by name are reused on reload, keeping their counts', async () => {
    const root = bpffs.path;
    cleanup.push(async () => {
      for (const m of ['berth_counts', 'berth_drops']) await unlink(`${root}/${m}`).catch(() => undefined);
    });
    const first = await BpfObject.load(bpfObjectPath('count'), { pinRoot: root });
    const link = await first.program('berth_count_tc_ingress').attachTc({ netns: nsB, ifname: 'b0', direction: 'ingress' });
    await ping(topo, 'a', '10.77.0.2', 4);
    await link.detach();
    first.close();

    const pinned = await PerCpuMap.fromPin(`${root}/berth_counts`, ifCountKey, counter);
    cleanup.push(() => pinned.close());
    expect(sumCounters((await pinned.lookup({ ifindex: ifB, hook: Hook.TcIngress }))!).packets).toBe(4n);

    const second = await load({}, root);
    track(await second.program('berth_count_tc_ingress').attachTc({ netns: nsB, ifname: 'b0', direction: 'ingress' }));
    await ping(topo, 'a', '10.77.0.2', 2);
    expect((await count(second, Hook.TcIngress)).packets).toBe(6n);
  });

  it('a pinned tcx link keeps counting after berth lets go, and can be adopted and detached', async () => {
    const root = bpffs.path;
    const linkPin = `${root}/link_b0_ingress`;
    cleanup.push(async () => {
      for (const f of ['berth_counts', 'berth_drops', 'link_b0_ingress']) await unlink(`${root}/${f}`).catch(() => undefined);
    });
    const obj = await BpfObject.load(bpfObjectPath('count'), { pinRoot: root });
    const link = await obj.program('berth_count_tc_ingress').attachTc({ netns: nsB, ifname: 'b0', direction: 'ingress', mode: 'tcx' });
    await link.pin(linkPin);
    link.close();
    obj.close();

    await ping(topo, 'a', '10.77.0.2', 3);
    const counts = await PerCpuMap.fromPin(`${root}/berth_counts`, ifCountKey, counter);
    cleanup.push(() => counts.close());
    const read = async () => sumCounters((await counts.lookup({ ifindex: ifB, hook: Hook.TcIngress })) ?? []).packets;
    expect(await read()).toBe(3n);

    const adopted = await BpfLink.fromPin(linkPin);
    expect(adopted.info).toMatchObject({ kind: 'tcx', ifindex: ifB, direction: 'ingress' });
    await adopted.detach();
    adopted.close();
    await ping(topo, 'a', '10.77.0.2', 2);
    expect(await read()).toBe(3n);
  });
});

describe('ring buffer', () => {
  let seen: PktEvent[];
  let rb: RingBuffer<PktEvent> | undefined;
  beforeEach(() => {
    seen = [];
  });
  afterEach(() => rb?.close());

  it('delivers sampled packets to a JS callback with their addresses', async () => {
    const obj = await load({ cfg_event_sample: 1 });
    rb = new RingBuffer(obj.rawMap('berth_events'), pktEvent, (e) => seen.push(e));
    track(await obj.program('berth_count_tc_ingress').attachTc({ netns: nsB, ifname: 'b0', direction: 'ingress' }));
    await ping(topo, 'a', '10.77.0.2', 3);
    for (let i = 0; i < 50 && seen.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    expect(seen).toHaveLength(3);
    for (const e of seen) {
      expect(e).toMatchObject({ ifindex: ifB, hook: Hook.TcIngress, ethProto: 0x0800, l4proto: 1, saddr4: 0x0a4d0001, daddr4: 0x0a4d0002, len: 98 });
    }
    expect(rb.stats()).toEqual({ delivered: 3, lost: 0 });
  });
});
