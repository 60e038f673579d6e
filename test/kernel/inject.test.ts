/**
 * The addon's packetInject (native/inject.cc), what `berth explain` sends on
 * the iptables datapath with: a frame written to an interface inside a
 * namespace, or an IP packet through a raw socket there. Two namespaces with
 * IPv6 off and static neighbours: b0's receive counter moves by exactly the
 * packets sent, and a UDP listener in b gets the datagram.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addon } from '../../src/native/addon.js';
import { buildPacket } from '../../src/datapath/bpf/explain.js';
import { run } from '../../src/exec.js';
import type { Topology } from '../../harness/topology.js';
import { pairTopology } from '../helpers/kernel.js';

let topo: Topology;
let macA: string;
let macB: string;

const linkOf = async (ns: string, dev: string) =>
  (JSON.parse((await run('ip', ['-n', topo.ns(ns), '-j', '-s', 'link', 'show', 'dev', dev])).stdout) as { address: string; stats64: { rx: { packets: number } } }[])[0]!;

beforeAll(async () => {
  topo = await pairTopology();
  macA = (await linkOf('a', 'a0')).address;
  macB = (await linkOf('b', 'b0')).address;
});

afterAll(async () => {
  await topo?.destroy();
});

/** Runs @send while a UDP listener in b waits on 10.77.0.2:@port; resolves with the bytes it received. */
async function received(port: number, send: () => Promise<void>): Promise<number[]> {
  const listener = run('ip', ['netns', 'exec', topo.ns('b'), 'timeout', '1.5', 'socat', '-u', `UDP-RECV:${port},bind=10.77.0.2`, 'STDOUT'], { timeoutMs: 5000 }).then(
    (r) => r.stdout,
    (e: { stdout?: string }) => e.stdout ?? '',
  );
  await new Promise((r) => setTimeout(r, 300));
  await send();
  return [...Buffer.from(await listener, 'latin1')];
}

describe('packetInject', () => {
  it('writes an Ethernet frame to an interface inside a namespace: it arrives, once, and is delivered', async () => {
    const before = (await linkOf('b', 'b0')).stats64.rx.packets;
    const frame = buildPacket({ srcMac: macA, dstMac: macB, src: '10.77.0.1', dst: '10.77.0.2', proto: 'udp', sport: 40000, dport: 7101 });
    const got = await received(7101, () => addon().packetInject({ netns: topo.nsPath('a'), ifname: 'a0', frame }));
    // buildPacket's datagram carries 4 zero bytes: the checksum it wrote was right, or the kernel would have dropped it.
    expect(got).toEqual([0, 0, 0, 0]);
    expect((await linkOf('b', 'b0')).stats64.rx.packets - before).toBe(1);
  });

  it('sends the frame\'s IP packet through a raw socket (the host\'s own packet), routed as the namespace routes it', async () => {
    const before = (await linkOf('b', 'b0')).stats64.rx.packets;
    const frame = buildPacket({ srcMac: macA, dstMac: macB, src: '10.77.0.1', dst: '10.77.0.2', proto: 'udp', sport: 40001, dport: 7102, ttl: 251, mark: 0x1234 });
    const got = await received(7102, () => addon().packetInject({ netns: topo.nsPath('a'), frame }));
    expect(got).toEqual([0, 0, 0, 0]);
    expect((await linkOf('b', 'b0')).stats64.rx.packets - before).toBe(1);
  });

  it('refuses what is not a frame or an IP packet, naming it', async () => {
    await expect(addon().packetInject({ netns: topo.nsPath('a'), ifname: 'a0', frame: Buffer.alloc(6) })).rejects.toThrow(/6 bytes is shorter than an Ethernet header/);
    await expect(addon().packetInject({ netns: topo.nsPath('a'), frame: Buffer.alloc(20) })).rejects.toThrow(/IP version 0 is neither 4 nor 6/);
    const short6 = Buffer.alloc(14 + 30);
    short6[14] = 0x60;
    await expect(addon().packetInject({ netns: topo.nsPath('a'), frame: short6 })).rejects.toThrow(/30 bytes is shorter than an IPv6 header/);
    await expect(addon().packetInject({ netns: topo.nsPath('a'), ifname: 'nosuch0', frame: Buffer.alloc(60) })).rejects.toThrow(/nosuch0/);
  });
});
