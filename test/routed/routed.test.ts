/**
 * Routed networks across two hosts (namespaces on an underlay bridge), etcd
 * in its own namespace, berthd in each host with --store etcd://: each host
 * takes a block of the subnet through the store and routes the other's via
 * its underlay address. Real packets, on both datapaths: ping and TCP between
 * sandboxes on different hosts by address and by name, seen on the underlay
 * with their own addresses and no VXLAN; masquerade only towards the
 * outside; a killed berthd loses nothing; a removed network's routes are
 * withdrawn.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OverlayLab, type LabHost } from '../../harness/overlay-lab.js';
import type { NetworkView } from '../../src/api/views.js';
import { capture, drops, eventually, json, networkNames, routesVia, sendUdpFrom, sleep, stats } from './helpers.js';
import { run, tryRun } from '../../src/exec.js';
import { BerthHost } from '../../harness/berthd.js';
import { testTopology } from '../helpers/kernel.js';

for (const datapath of ['iptables', 'bpf'] as const) {
  let lab: OverlayLab;
  let h1: LabHost, h2: LabHost;
  const ip: Record<string, string> = {};

  describe(`routed networks across two hosts (${datapath} datapath)`, () => {
    beforeAll(async () => {
      lab = await OverlayLab.create(2, { plain: true, datapath });
      [h1, h2] = lab.hosts as [LabHost, LabHost];
    }, 120_000);

    afterAll(async () => {
      for (const h of lab?.hosts ?? []) if (h.daemon && !h.daemon.running) console.error(`${h.short} berthd exited:\n${h.daemon.logs.slice(-6000)}`);
      await lab?.destroy();
    }, 60_000);

    it('refuses bad routed requests naming the values, and makes nothing of them', async () => {
      const refused = async (args: string[], msg: RegExp) => {
        const r = await h1.berthTry('network', 'create', '-d', 'routed', ...args);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(msg);
      };
      await refused(['--subnet', '10.91.0.0/28', 'x1'], /the default block \/26 does not fit subnet 10.91.0.0\/28/);
      await refused(['--subnet', '10.91.0.0/24', '-o', 'routed.block=/20', 'x1'], /block \/20 does not fit subnet 10.91.0.0\/24/);
      await refused(['--subnet', '10.91.0.0/24', '-o', 'routed.block=/31', 'x1'], /block \/31 of subnet 10.91.0.0\/24 is too small/);
      await refused(['--subnet', '10.91.0.0/24', '-o', 'routed.block=big', 'x1'], /option routed.block=big is invalid: expected a prefix length/);
      await refused(['--subnet', '10.91.0.0/24', '-o', 'vxlan.id=9', 'x1'], /unknown option 'vxlan.id' for the routed driver/);
      await refused(['x1'], /a routed network needs one IPv4 --subnet/);
      await refused(['--subnet', '10.91.0.0/24', '--gateway', '10.91.0.1', 'x1'], /--gateway 10.91.0.1: a routed network has a gateway per host/);
      await refused(['--subnet', 'fd00::/64', '--ipv6', 'x1'], /IPv4 only/);
      expect(await networkNames(h1)).not.toContain('x1');
      expect((await lab.etcdctl('get', '--prefix', '/berth/v1/names/x1')).stdout).toBe('');
    });

    it('a routed network made on one host is on both, each with a block of its own routed via its underlay address', async () => {
      await h1.berth('network', 'create', '-d', 'routed', '--subnet', '10.90.0.0/24', 'rnet');
      await eventually(async () => (await networkNames(h2)).includes('rnet'));
      const [n1] = await json<NetworkView[]>(h1.berth('network', 'inspect', 'rnet'));
      const [n2] = await json<NetworkView[]>(h2.berth('network', 'inspect', 'rnet'));
      expect(n1!.Driver).toBe('routed');
      expect(n1!.Scope).toBe('global');
      expect(n1!.IPAM.Config[0]!.Subnet).toBe('10.90.0.0/24');
      // The creating host takes the first block; the other host the next, through the store.
      expect(n1!.RoutedBlock).toBe('10.90.0.0/26');
      expect(n2!.RoutedBlock).toBe('10.90.0.64/26');
      expect(n1!.IPAM.Config[0]!.Gateway).toBe('10.90.0.1');
      expect(n2!.IPAM.Config[0]!.Gateway).toBe('10.90.0.65');
      // No encapsulation: the underlay's MTU.
      expect(n2!.Options.mtu).toBe('1500');
      const blocks = (await lab.etcdctl('get', '--prefix', `/berth/v1/blocks/${n1!.Id}/`)).stdout;
      expect(blocks).toContain(`"underlay":"${h1.ip}","block":"10.90.0.0/26"`);
      expect(blocks).toContain(`"underlay":"${h2.ip}","block":"10.90.0.64/26"`);
      // Each host routes the other's block via its underlay address (h1's route came from the watch when h2 joined).
      await eventually(async () => (await routesVia(lab, h1, '10.90.')).join() === `10.90.0.64/26 via ${h2.ip}`);
      await eventually(async () => (await routesVia(lab, h2, '10.90.')).join() === `10.90.0.0/26 via ${h1.ip}`);
    });

    it('sandboxes on different hosts reach each other by address and by name, with their own addresses', async () => {
      await h1.berth('run', '-d', '--name', 'ra', '--network', 'rnet', '--', 'sleep', 'infinity');
      await h2.berth('run', '-d', '--name', 'rb', '--network', 'rnet', '--', 'sleep', 'infinity');
      ip.ra = await h1.ipOf('ra', 'rnet');
      ip.rb = await h2.ipOf('rb', 'rnet');
      expect(ip.ra).toMatch(/^10\.90\.0\.([2-9]|[1-5]\d|6[0-2])$/);
      expect(ip.rb).toMatch(/^10\.90\.0\.(6[6-9]|[7-9]\d|1[01]\d|12[0-6])$/);
      await eventually(async () => (await h1.execTry('ra', 'ping', '-c', '1', '-W', '1', ip.rb!)).code === 0);
      expect((await h1.exec('ra', 'ping', '-c', '3', '-i', '0.2', '-W', '2', ip.rb!)).stdout).toContain(' 0% packet loss');
      expect((await h2.exec('rb', 'ping', '-c', '3', '-i', '0.2', '-W', '2', ip.ra!)).stdout).toContain(' 0% packet loss');
      // By name, through berth's DNS, as on overlays.
      expect((await h1.exec('ra', 'getent', 'hosts', 'rb')).stdout.split(/\s+/)[0]).toBe(ip.rb);
      await h2.exec('rb', 'ping', '-c', '1', '-W', '2', 'ra');
      // TCP: the server sees the client's own address (nothing masqueraded between members).
      const peer = h2.execTry('rb', 'timeout', '8', 'socat', 'TCP-LISTEN:7000,reuseaddr', 'SYSTEM:echo $SOCAT_PEERADDR');
      await eventually(async () => (await h2.exec('rb', 'ss', '-Hltn', 'sport = :7000')).stdout.includes('7000'));
      const got = await h1.exec('ra', 'socat', '-T', '3', '-', `TCP:${ip.rb}:7000`);
      expect(got.stdout.trim()).toBe(ip.ra);
      await peer;
      // A bulk transfer at the underlay MTU.
      const bulk = h2.execTry('rb', 'timeout', '8', 'socat', '-u', 'TCP-LISTEN:7001,reuseaddr', 'STDOUT');
      await eventually(async () => (await h2.exec('rb', 'ss', '-Hltn', 'sport = :7001')).stdout.includes('7001'));
      await h1.exec('ra', 'bash', '-c', `head -c 2000000 /dev/zero | tr '\\0' x | socat -u STDIN TCP:${ip.rb}:7001`);
      expect((await bulk).stdout.length).toBe(2_000_000);
    });

    // The eBPF datapath only: the iptables one forwards through the bridge and the stack.
    if (datapath === 'bpf') it('eBPF: packets between hosts are redirected, out of the underlay device and into the sandbox', async () => {
      const [a0, b0] = [await stats(h1), await stats(h2)];
      await h1.exec('ra', 'ping', '-c', '5', '-i', '0.2', '-W', '2', ip.rb!);
      const [a1, b1] = [await stats(h1), await stats(h2)];
      // Each way: out by the FIB on the sending host (Redirect, or RedirectNeigh before the neighbour is known), into the namespace on the other (RedirectPeer).
      const out = (x: Record<string, number>) => (x.Redirect ?? 0) + (x.RedirectNeigh ?? 0);
      expect(out(a1) - out(a0)).toBeGreaterThanOrEqual(5);
      expect(out(b1) - out(b0)).toBeGreaterThanOrEqual(5);
      expect((a1.RedirectPeer ?? 0) - (a0.RedirectPeer ?? 0)).toBeGreaterThanOrEqual(5);
      expect((b1.RedirectPeer ?? 0) - (b0.RedirectPeer ?? 0)).toBeGreaterThanOrEqual(5);
    });

    it('the underlay carries the sandboxes\' own addresses, and no VXLAN', async () => {
      const cap = await capture(lab.topo.ns(lab.ns('ul')), `u-${h1.short.replace(lab.prefix, '')}`, 3, async () => {
        await sleep(200);
        await h1.exec('ra', 'ping', '-c', '5', '-i', '0.2', '-W', '2', ip.rb!);
      });
      expect(cap.flows[`${ip.ra}>${ip.rb}/1`]).toBeGreaterThanOrEqual(5);
      expect(cap.flows[`${ip.rb}>${ip.ra}/1`]).toBeGreaterThanOrEqual(5);
      expect(cap.vxlan).toBe(0);
    });

    it('masquerades towards the outside only, and the outside reaches no sandbox directly', async () => {
      const plain = lab.topo.ns(lab.ns('plain'));
      const peer = tryRun('ip', ['netns', 'exec', plain, 'timeout', '8', 'socat', 'TCP-LISTEN:7100,reuseaddr', 'SYSTEM:echo $SOCAT_PEERADDR']);
      await eventually(async () => (await run('ip', ['netns', 'exec', plain, 'ss', '-Hltn', 'sport = :7100'])).stdout.includes('7100'));
      const got = await h1.exec('ra', 'socat', '-T', '3', '-', 'TCP:198.19.0.50:7100');
      expect(got.stdout.trim()).toBe(h1.ip);
      await peer;
      // A host of the underlay that is no member, routing the subnet via h2: its ping is dropped.
      await run('ip', ['-n', plain, 'route', 'add', '10.90.0.0/24', 'via', h2.ip]);
      try {
        expect((await tryRun('ip', ['netns', 'exec', plain, 'ping', '-c', '2', '-W', '1', ip.rb!])).code).not.toBe(0);
        // The control: the same address answers a member at once.
        await h1.exec('ra', 'ping', '-c', '1', '-W', '2', ip.rb!);
      } finally {
        await run('ip', ['-n', plain, 'route', 'del', '10.90.0.0/24']);
      }
    });

    it('gives out only this host\'s block, naming the address and the block', async () => {
      const r = await h1.berthTry('run', '-d', '--name', 'rx', '--network', 'rnet', '--ip', '10.90.0.70', '--', 'sleep', 'infinity');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/--ip 10.90.0.70 is not in this host's block 10.90.0.0\/26 of routed network 'rnet'/);
      expect((await h1.berthTry('inspect', 'rx')).code).not.toBe(0);
    });

    it('kill -9 of a host\'s berthd keeps its sandboxes reachable, and a restart loses nothing', async () => {
      await h2.kill();
      expect((await h1.exec('ra', 'ping', '-c', '5', '-i', '0.2', '-W', '2', ip.rb!)).stdout).toContain(' 0% packet loss');
      await h2.start();
      expect(await h2.ipOf('rb', 'rnet')).toBe(ip.rb);
      const [n2] = await json<NetworkView[]>(h2.berth('network', 'inspect', 'rnet'));
      expect(n2!.RoutedBlock).toBe('10.90.0.64/26');
      expect(await routesVia(lab, h1, '10.90.')).toEqual([`10.90.0.64/26 via ${h2.ip}`]);
      expect(await routesVia(lab, h2, '10.90.')).toEqual([`10.90.0.0/26 via ${h1.ip}`]);
      await h2.exec('rb', 'ping', '-c', '2', '-W', '2', ip.ra!);
      await h2.exec('rb', 'ping', '-c', '1', '-W', '2', 'ra');
      // A sandbox made after the restart takes its address from the same block and is reached from h1.
      await h2.berth('run', '-d', '--name', 'rc', '--network', 'rnet', '--', 'sleep', 'infinity');
      ip.rc = await h2.ipOf('rc', 'rnet');
      expect(ip.rc).not.toBe(ip.rb);
      expect(ip.rc.startsWith('10.90.0.')).toBe(true);
      expect(Number(ip.rc.split('.')[3])).toBeGreaterThan(64);
      await eventually(async () => (await h1.execTry('ra', 'ping', '-c', '1', '-W', '1', 'rc')).code === 0);
    }, 60_000);

    it('an internal routed network joins its members across hosts and nothing outside', async () => {
      await h2.berth('network', 'create', '-d', 'routed', '--internal', '--subnet', '10.94.0.0/24', '-o', 'routed.block=/28', 'rinner');
      await eventually(async () => (await networkNames(h1)).includes('rinner'));
      await h1.berth('run', '-d', '--name', 'ia', '--network', 'rinner', '--', 'sleep', 'infinity');
      await h2.berth('run', '-d', '--name', 'ib', '--network', 'rinner', '--', 'sleep', 'infinity');
      ip.ia = await h1.ipOf('ia', 'rinner');
      ip.ib = await h2.ipOf('ib', 'rinner');
      // h2 made it: the first /28 is h2's.
      expect(ip.ib).toMatch(/^10\.94\.0\.([2-9]|1[0-4])$/);
      expect(ip.ia).toMatch(/^10\.94\.0\.(1[89]|2\d|30)$/);
      await eventually(async () => (await h1.execTry('ia', 'ping', '-c', '1', '-W', '1', ip.ib!)).code === 0);
      await h2.exec('ib', 'ping', '-c', '1', '-W', '2', 'ia');
      // The control: on rnet, ra reaches the plain host; on the internal network, ia does not.
      await h1.exec('ra', 'ping', '-c', '1', '-W', '2', '198.19.0.50');
      expect((await h1.execTry('ia', 'ping', '-c', '2', '-W', '1', '198.19.0.50')).code).not.toBe(0);
      await h1.berth('rm', '-f', 'ia');
      await h2.berth('rm', '-f', 'ib');
      await h1.berth('network', 'rm', 'rinner');
      await eventually(async () => !(await networkNames(h2)).includes('rinner'));
    }, 60_000);

    it('icc=false holds across hosts: a same-host link reaches the port, a member on another host reaches nothing', async () => {
      await h1.berth('network', 'create', '-d', 'routed', '--subnet', '10.93.0.0/24', '-o', 'icc=false', 'rquiet');
      await eventually(async () => (await networkNames(h2)).includes('rquiet'));
      await h1.berth('run', '-d', '--name', 'qa', '--network', 'rquiet', '--', 'sleep', 'infinity');
      await h2.berth('run', '-d', '--name', 'qb', '--network', 'rquiet', '--expose', '7200', '--', 'socat', 'TCP-LISTEN:7200,reuseaddr,fork', 'SYSTEM:echo hello');
      await h2.berth('run', '-d', '--name', 'qc', '--network', 'rquiet', '--link', 'qb', '--', 'sleep', 'infinity');
      ip.qa = await h1.ipOf('qa', 'rquiet');
      ip.qb = await h2.ipOf('qb', 'rquiet');
      await eventually(async () => (await h2.exec('qb', 'ss', '-Hltn', 'sport = :7200')).stdout.includes('7200'));
      await eventually(async () => (await routesVia(lab, h1, '10.93.')).length === 1);
      // The control: the probe succeeds where policy allows it (a link on qb's host).
      expect((await h2.exec('qc', 'socat', '-T', '3', '-', `TCP:${ip.qb}:7200,connect-timeout=3`)).stdout.trim()).toBe('hello');
      const before = await drops(h1, 'icc');
      const r = await h1.execTry('qa', 'socat', '-T', '3', '-', `TCP:${ip.qb}:7200,connect-timeout=3`);
      expect(r.stdout.trim()).not.toBe('hello');
      expect((await h1.execTry('qa', 'ping', '-c', '2', '-W', '1', ip.qb!)).code).not.toBe(0);
      expect((await h2.execTry('qb', 'ping', '-c', '2', '-W', '1', ip.qa!)).code).not.toBe(0);
      expect(await drops(h1, 'icc')).toBeGreaterThan(before);
      for (const [h, s] of [[h1, 'qa'], [h2, 'qc'], [h2, 'qb']] as const) await h.berth('rm', '-f', s);
      await h1.berth('network', 'rm', 'rquiet');
    }, 60_000);

    it('a source of the receiving host\'s own block arriving from the underlay is dropped there as forged', async () => {
      const got = h2.execTry('rb', 'timeout', '5', 'socat', '-u', 'UDP-RECV:7300', 'STDOUT').then((x) => x.stdout);
      await eventually(async () => (await h2.exec('rb', 'ss', '-Hlun', 'sport = :7300')).stdout.includes('7300'));
      const before = await drops(h2, 'spoof-ip');
      // The control: a source of h1's block, sent from h1, is delivered.
      await sendUdpFrom(lab, h1, ip.ra!, ip.rb!, 7300, 'legit\n');
      // h1 (as if a sandbox there got past its own checks) claims an address of h2's block.
      await sendUdpFrom(lab, h1, ip.rc!, ip.rb!, 7300, 'forged\n');
      const text = await got;
      expect(text).toContain('legit');
      expect(text).not.toContain('forged');
      expect(await drops(h2, 'spoof-ip')).toBeGreaterThan(before);
    });

    it('a host that leaves with no sandboxes on the network has its route withdrawn, and back when it returns', async () => {
      await h2.berth('rm', '-f', 'rb');
      await h2.berth('rm', '-f', 'rc');
      // The control: with h2 registered, h1 routes h2's block.
      expect(await routesVia(lab, h1, '10.90.')).toEqual([`10.90.0.64/26 via ${h2.ip}`]);
      await h2.kill();
      // Its registration lapses (a 10 s lease): the route goes.
      await eventually(async () => (await routesVia(lab, h1, '10.90.')).length === 0, 30_000);
      await h2.start();
      await eventually(async () => (await routesVia(lab, h1, '10.90.')).join() === `10.90.0.64/26 via ${h2.ip}`);
      const [n2] = await json<NetworkView[]>(h2.berth('network', 'inspect', 'rnet'));
      expect(n2!.RoutedBlock).toBe('10.90.0.64/26');
      await h2.berth('run', '-d', '--name', 'rb', '--network', 'rnet', '--', 'sleep', 'infinity');
      const rb = await h2.ipOf('rb', 'rnet');
      await eventually(async () => (await h1.execTry('ra', 'ping', '-c', '1', '-W', '1', rb)).code === 0);
    }, 90_000);

    it('a removed network has its routes withdrawn from the other host, and its blocks given back', async () => {
      const [n] = await json<NetworkView[]>(h1.berth('network', 'inspect', 'rnet'));
      for (const [h, s] of [[h1, 'ra'], [h2, 'rb']] as const) await h.berth('rm', '-f', s);
      await h2.berth('network', 'rm', 'rnet');
      await eventually(async () => !(await networkNames(h1)).includes('rnet'));
      await eventually(async () => (await routesVia(lab, h1, '10.90.')).length === 0);
      expect(await routesVia(lab, h2, '10.90.')).toEqual([]);
      expect((await lab.etcdctl('get', '--prefix', `/berth/v1/blocks/${n!.Id}/`)).stdout).toBe('');
      // Nothing of the subnet is left on either host.
      for (const h of [h1, h2]) {
        expect((await run('ip', ['-n', lab.topo.ns(h.short), '-4', 'route', 'show', 'match', '10.90.0.0/24'])).stdout).not.toMatch(/10\.90\./);
      }
    });
  });
}

describe('routed without a cluster store', () => {
  it('is refused, saying how to get one', async () => {
    const topo = testTopology();
    let h: BerthHost | undefined;
    try {
      h = await BerthHost.create(topo, 'host', ['--datapath', 'iptables']);
      const r = await h.berthTry('network', 'create', '-d', 'routed', '--subnet', '10.95.0.0/24', 'rt');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/routed and overlay networks need a cluster store: start berthd with --store etcd:\/\/HOST:PORT/);
    } finally {
      await h?.destroy();
      await topo.destroy();
    }
  });
});
