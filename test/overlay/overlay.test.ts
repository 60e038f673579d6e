/**
 * Overlay networks across three hosts (namespaces joined by an underlay
 * bridge), etcd in its own namespace, berthd in each host with
 * --store etcd://. Real packets: ping, TCP and UDP between sandboxes on
 * different hosts over VXLAN made by berth's BPF programs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OverlayLab, type LabHost } from './lab.js';
import type { NetworkView } from '../../src/api/views.js';
import { run } from '../../src/exec.js';

let lab: OverlayLab;
let h1: LabHost, h2: LabHost, h3: LabHost;

const json = async <T>(p: Promise<{ stdout: string }>): Promise<T> => JSON.parse((await p).stdout) as T;

/** Polls @fn until it returns true or @ms pass. */
async function eventually(fn: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const networkNames = async (h: LabHost) => (await json<NetworkView[]>(h.berth('network', 'ls', '--format', 'json'))).map((n) => n.Name);

beforeAll(async () => {
  lab = await OverlayLab.create(3);
  [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
}, 120_000);

afterAll(async () => {
  await lab?.destroy();
}, 60_000);

describe('overlay networks across three hosts', () => {
  it('a network created on one host appears on every host, global, with the underlay MTU less 50', async () => {
    await h1.berth('network', 'create', '-d', 'overlay', '--subnet', '10.0.5.0/24', '-o', 'vxlan.id=5005', 'ov1');
    for (const h of [h1, h2, h3]) await eventually(async () => (await networkNames(h)).includes('ov1'));
    const [n] = await json<NetworkView[]>(h3.berth('network', 'inspect', 'ov1'));
    expect(n!.Driver).toBe('overlay');
    expect(n!.Scope).toBe('global');
    expect(n!.VxlanId).toBe(5005);
    expect(n!.Options.mtu).toBe('1450');
    expect(n!.IPAM.Config[0]!.Subnet).toBe('10.0.5.0/24');
  });

  it('sandboxes on different hosts get distinct addresses and ping each other', async () => {
    await h1.berth('run', '-d', '--name', 'a1', '--network', 'ov1', '--', 'sleep', 'infinity');
    await h2.berth('run', '-d', '--name', 'a2', '--network', 'ov1', '--', 'sleep', 'infinity');
    await h3.berth('run', '-d', '--name', 'a3', '--network', 'ov1', '--', 'sleep', 'infinity');
    const ips = [await h1.ipOf('a1', 'ov1'), await h2.ipOf('a2', 'ov1'), await h3.ipOf('a3', 'ov1')];
    expect(new Set(ips).size).toBe(3);
    const [link] = JSON.parse((await h2.exec('a2', 'ip', '-j', 'link', 'show', 'eth0')).stdout) as { mtu: number }[];
    expect(link!.mtu).toBe(1450);
    await eventually(async () => (await h1.execTry('a1', 'ping', '-c', '1', '-W', '1', ips[1]!)).code === 0);
    await h1.exec('a1', 'ping', '-c', '3', '-i', '0.2', '-W', '2', ips[1]!);
    await h3.exec('a3', 'ping', '-c', '3', '-i', '0.2', '-W', '2', ips[0]!);
    await h2.exec('a2', 'ping', '-c', '3', '-i', '0.2', '-W', '2', ips[2]!);
  });
});

export { run };
