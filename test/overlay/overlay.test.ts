/**
 * Overlay networks across three hosts (namespaces joined by an underlay
 * bridge), etcd in its own namespace, berthd in each host with
 * --store etcd://. Real packets: ping, TCP and UDP between sandboxes on
 * different hosts over VXLAN made by berth's BPF programs.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OverlayLab, type LabHost } from '../../harness/overlay-lab.js';
import type { NetworkView } from '../../src/api/views.js';
import { BerthHost as TestHost } from '../../harness/berthd.js';
import { testTopology } from '../helpers/kernel.js';
import { run, tryRun } from '../../src/exec.js';
import { PerCpuMap } from '../../src/bpf/map.js';
import { counter } from '../../src/bpf/abi.js';
import { ovlIpKey, ovlNeigh, u32, OvlStat } from '../../src/datapath/overlay/abi.js';
import { BpfMap } from '../../src/bpf/map.js';


const json = async <T>(p: Promise<{ stdout: string }>): Promise<T> => JSON.parse((await p).stdout) as T;

/** Polls @fn until it returns true or @ms pass. */
async function eventually(fn: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The overlay program's counter @which on host @h, summed over CPUs, read from its pinned map. */
async function stat(h: LabHost, which: number): Promise<bigint> {
  const id = (await readFile(join(h.stateDir, 'cluster-host-id'), 'utf8')).trim();
  const m = await PerCpuMap.fromPin(join(h.bpffs.path, `berth-${id}`, 'overlay', 'berth_ovl_stats'), u32, counter);
  try {
    return ((await m.lookup(which)) ?? []).reduce((a, c) => a + c.packets, 0n);
  } finally {
    m.close();
  }
}

/** The remote endpoint addresses host @h answers ARP for, from its pinned map. */
async function arpAnswered(h: LabHost): Promise<string[]> {
  const id = (await readFile(join(h.stateDir, 'cluster-host-id'), 'utf8')).trim();
  const m = await BpfMap.fromPin(join(h.bpffs.path, `berth-${id}`, 'overlay', 'berth_ovl_remote_ips'), ovlIpKey, ovlNeigh);
  try {
    return (await m.entries()).map(([k]) => k.ip);
  } finally {
    m.close();
  }
}

/** Starts a one-shot listener in sandbox @name on @h, returning what it received once it exits. */
function listen(h: LabHost, name: string, spec: string, secs = 8): Promise<string> {
  return h.execTry(name, 'timeout', String(secs), 'socat', '-u', spec, 'STDOUT').then((r) => r.stdout);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const networkNames = async (h: LabHost) => (await json<NetworkView[]>(h.berth('network', 'ls', '--format', 'json'))).map((n) => n.Name);

// The overlay's programs sit beside either datapath's: the same cases run with each.
for (const datapath of ['iptables', 'bpf'] as const) {
  let lab: OverlayLab;
  let h1: LabHost, h2: LabHost, h3: LabHost;
  const ip: Record<string, string> = {};

  describe(`overlay networks across three hosts (${datapath} datapath)`, () => {
    beforeAll(async () => {
      lab = await OverlayLab.create(3, { plain: true, datapath });
      [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
    }, 120_000);

    afterAll(async () => {
      // A berthd that died on its own is a bug: show why.
      for (const h of lab?.hosts ?? []) if (h.daemon && !h.daemon.running) console.error(`${h.short} berthd exited:\n${h.daemon.logs.slice(-6000)}`);
      await lab?.destroy();
    }, 60_000);

    it('a network created on one host appears on every host, global, with the underlay MTU less 50', async () => {
      await h1.berth('network', 'create', '-d', 'overlay', '--subnet', '10.0.5.0/24', '--aux-address', 'plain=10.0.5.200', '-o', 'vxlan.id=5005', 'ov1');
      for (const h of [h1, h2, h3]) await eventually(async () => (await networkNames(h)).includes('ov1'));
      const [n] = await json<NetworkView[]>(h3.berth('network', 'inspect', 'ov1'));
      expect(n!.Driver).toBe('overlay');
      expect(n!.Scope).toBe('global');
      expect(n!.VxlanId).toBe(5005);
      expect(n!.Options.mtu).toBe('1450');
      expect(n!.IPAM.Config[0]!.Subnet).toBe('10.0.5.0/24');
      expect(n!.Peers!.map((p) => p.IP).sort()).toEqual([h1.ip, h2.ip, h3.ip].sort());
    });

    it('refuses bad overlay requests, naming the bad value, on any host', async () => {
      const refused = async (h: LabHost, args: string[], msg: RegExp) => {
        const r = await h.berthTry('network', 'create', '-d', 'overlay', ...args);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(msg);
      };
      await refused(h2, ['-o', 'vxlan.id=0', 'x1'], /option vxlan.id=0 is invalid: expected a VXLAN network identifier from 1 to 16777215/);
      await refused(h2, ['-o', 'vxlan.port=70000', 'x1'], /option vxlan.port=70000 is invalid/);
      await refused(h2, ['-o', 'parent=eth0', 'x1'], /unknown option 'parent' for the overlay driver/);
      await refused(h2, ['-o', 'vxlan.id=5005', 'x1'], /VXLAN id 5005 is used by another overlay network/);
      await refused(h3, ['--subnet', '10.0.5.128/25', 'x1'], /overlaps 10.0.5.0\/24/);
      await refused(h3, ['ov1'], /network 'ov1' already exists/);
      await refused(h3, ['--ipv6', 'x1'], /IPv4 only/);
      await refused(h3, ['--subnet', 'fd00::/64', 'x1'], /is not IPv4|without --ipv6/);
    });

    it('sandboxes on different hosts get distinct addresses and ping each other', async () => {
      await h1.berth('run', '-d', '--name', 'a1', '--network', 'ov1', '--', 'sleep', 'infinity');
      await h2.berth('run', '-d', '--name', 'a2', '--network', 'ov1', '--', 'sleep', 'infinity');
      await h3.berth('run', '-d', '--name', 'a3', '--network', 'ov1', '--', 'sleep', 'infinity');
      const ips = [await h1.ipOf('a1', 'ov1'), await h2.ipOf('a2', 'ov1'), await h3.ipOf('a3', 'ov1')];
      expect(new Set(ips).size).toBe(3);
      [ip.a1, ip.a2, ip.a3] = ips as [string, string, string];
      const encap = await stat(h1, OvlStat.TxEncap);
      const decap = await stat(h2, OvlStat.RxDecap);
      const [link] = JSON.parse((await h2.exec('a2', 'ip', '-j', 'link', 'show', 'eth0')).stdout) as { mtu: number }[];
      expect(link!.mtu).toBe(1450);
      await eventually(async () => (await h1.execTry('a1', 'ping', '-c', '1', '-W', '1', ips[1]!)).code === 0);
      await h1.exec('a1', 'ping', '-c', '3', '-i', '0.2', '-W', '2', ips[1]!);
      await h3.exec('a3', 'ping', '-c', '3', '-i', '0.2', '-W', '2', ips[0]!);
      await h2.exec('a2', 'ping', '-c', '3', '-i', '0.2', '-W', '2', ips[2]!);
      // The packets went through berth's programs: encapsulated on h1, decapsulated on h2.
      expect(await stat(h1, OvlStat.TxEncap)).toBeGreaterThanOrEqual(encap + 3n);
      expect(await stat(h2, OvlStat.RxDecap)).toBeGreaterThanOrEqual(decap + 3n);
      // ARP for remote endpoints is answered by the program on the sandbox's port, not flooded.
      expect(await stat(h1, OvlStat.TxArpReply)).toBeGreaterThan(0n);
      const neigh = (await h1.exec('a1', 'ip', 'neigh', 'show', ips[1]!)).stdout;
      expect(neigh).toMatch(/lladdr 02:b7:/);
    });

    it('exchange TCP (a bulk transfer at the overlay MTU) and UDP across hosts', async () => {
      const tcp = listen(h2, 'a2', 'TCP-LISTEN:7000,reuseaddr');
      await sleep(400);
      // 2 MB: full-size segments every way; a wrong MTU would stall this, not shorten it.
      await h1.exec('a1', 'bash', '-c', `head -c 2000000 /dev/zero | tr '\\0' x | socat -u STDIN TCP:${ip.a2}:7000`);
      expect((await tcp).length).toBe(2_000_000);

      const udp = listen(h3, 'a3', 'UDP-RECV:7001', 6);
      // Datagrams sent before the listener binds are lost by design: wait until it listens.
      await eventually(async () => (await h3.exec('a3', 'ss', '-Hlun', 'sport = :7001')).stdout.includes('7001'));
      for (let i = 0; i < 5; i++) await h1.exec('a1', 'bash', '-c', `echo m${i} > /dev/udp/${ip.a3}/7001`);
      const got = (await udp).split('\n').filter((l) => /^m\d$/.test(l));
      expect(got).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    });

    it('an oversize packet gets "fragmentation needed" instead of vanishing', async () => {
      // DF set, larger than the overlay MTU: the sandbox's own stack refuses it with EMSGSIZE (its MTU is the overlay's).
      const r = await h1.execTry('a1', 'ping', '-c', '1', '-W', '1', '-M', 'do', '-s', '1500', ip.a2!);
      expect(r.code).not.toBe(0);
      expect(r.stdout + r.stderr).toMatch(/message too long|mtu ?= ?1450/i);
      await h1.exec('a1', 'ping', '-c', '1', '-W', '2', '-M', 'do', '-s', String(1450 - 28), ip.a2!);
    });

    it('names resolve across hosts, only among members of the network', async () => {
      const r = await h1.exec('a1', 'getent', 'hosts', 'a2');
      expect(r.stdout.split(/\s+/)[0]).toBe(ip.a2);
      await h3.exec('a3', 'ping', '-c', '1', '-W', '2', 'a1');
    });

    it('two overlay networks are isolated from each other', async () => {
      // On a UDP port of its own: a second collect-metadata vxlan device.
      await h2.berth('network', 'create', '-d', 'overlay', '--subnet', '10.0.6.0/24', '-o', 'vxlan.port=4790', '-o', 'mtu=1400', 'ov2');
      await eventually(async () => (await networkNames(h1)).includes('ov2') && (await networkNames(h3)).includes('ov2'));
      await h1.berth('run', '-d', '--name', 'b1', '--network', 'ov2', '--', 'sleep', 'infinity');
      await h3.berth('run', '-d', '--name', 'b3', '--network', 'ov2', '--', 'sleep', 'infinity');
      ip.b1 = await h1.ipOf('b1', 'ov2');
      ip.b3 = await h3.ipOf('b3', 'ov2');
      // -o mtu overrides the derived MTU, on every host.
      const [l3] = JSON.parse((await h3.exec('b3', 'ip', '-j', 'link', 'show', 'eth0')).stdout) as { mtu: number }[];
      expect(l3!.mtu).toBe(1400);
      // The probe can succeed: b1 reaches b3 on their own network.
      await eventually(async () => (await h1.execTry('b1', 'ping', '-c', '1', '-W', '1', ip.b3!)).code === 0);
      // Across networks, on other hosts: nothing.
      expect((await h1.execTry('a1', 'ping', '-c', '2', '-W', '1', ip.b3!)).code).not.toBe(0);
      expect((await h3.execTry('b3', 'ping', '-c', '2', '-W', '1', ip.a1!)).code).not.toBe(0);
      // And no name of the other network resolves.
      expect((await h3.execTry('b3', 'getent', 'hosts', 'a1')).code).not.toBe(0);
      // Connected to ov2 as well (an address from the cluster's IPAM), a1 reaches b3; disconnected, no more.
      await h1.berth('network', 'connect', 'ov2', 'a1');
      const a1on2 = await h1.ipOf('a1', 'ov2');
      expect(a1on2).not.toBe(ip.b1);
      expect(a1on2).not.toBe(ip.b3);
      await eventually(async () => (await h1.execTry('a1', 'ping', '-c', '1', '-W', '1', ip.b3!)).code === 0);
      await h1.berth('network', 'disconnect', 'ov2', 'a1');
      expect((await h1.execTry('a1', 'ping', '-c', '2', '-W', '1', ip.b3!)).code).not.toBe(0);
      // b3 claiming a1's address and MAC-less probes: a frame of ov2 never reaches ov1's bridge (VNI decides).
      const [n1] = await json<NetworkView[]>(h1.berth('network', 'inspect', 'ov1'));
      const [n2] = await json<NetworkView[]>(h1.berth('network', 'inspect', 'ov2'));
      expect(n1!.VxlanId).not.toBe(n2!.VxlanId);
    });

    it('a host with a plain Linux vxlan device on the same VNI interoperates, once registered', async () => {
      const t = lab.topo;
      const plain = (...a: string[]) => run('ip', ['netns', 'exec', t.ns('plain'), ...a]);
      await plain('ip', 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '5005', 'dstport', '4789', 'local', '198.19.0.50');
      await plain('bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vx0', 'dst', h1.ip);
      await plain('ip', 'addr', 'add', '10.0.5.200/24', 'dev', 'vx0');
      await plain('ip', 'link', 'set', 'vx0', 'mtu', '1450', 'up');
      // Not registered yet: its VXLAN is dropped by h1's receive program.
      const unknown = await stat(h1, OvlStat.RxUnknownHost);
      expect((await tryRun('ip', ['netns', 'exec', t.ns('plain'), 'ping', '-c', '2', '-W', '1', ip.a1!])).code).not.toBe(0);
      expect(await stat(h1, OvlStat.RxUnknownHost)).toBeGreaterThan(unknown);
      // Registered in the cluster store (as a host without berth): accepted.
      await lab.etcdctl('put', '/berth/v1/hosts/plain', JSON.stringify({ id: 'plain', name: 'plain', underlay: '198.19.0.50', since: new Date().toISOString() }));
      await eventually(async () => (await tryRun('ip', ['netns', 'exec', t.ns('plain'), 'ping', '-c', '1', '-W', '1', ip.a1!])).code === 0);
      await plain('ping', '-c', '3', '-i', '0.2', '-W', '2', ip.a1!);
      // And back: a1 reaches the plain host (its MAC learned from its frames).
      await h1.exec('a1', 'ping', '-c', '3', '-i', '0.2', '-W', '2', '10.0.5.200');
      // The kernel's vxlan learned a1's MAC behind h1 from berth's packets: standard VXLAN on the wire.
      const fdb = (await plain('bridge', 'fdb', 'show', 'dev', 'vx0')).stdout;
      expect(fdb).toContain(`dst ${h1.ip}`);
    });

    it('a sandbox reaches the outside through its own host (masquerade) and publishes ports there', async () => {
      // The etcd namespace plays the outside world: it is on the underlay, not on the overlay.
      // socat -d -d names the peer of each connection it accepts.
      const seen = tryRun('ip', ['netns', 'exec', lab.topo.ns('etcd'), 'timeout', '8', 'socat', '-d', '-d', '-u', 'TCP-LISTEN:7100,reuseaddr', 'OPEN:/dev/null'], { timeoutMs: 15_000 });
      await sleep(400);
      await h3.exec('a3', 'bash', '-c', 'echo x | socat -u STDIN TCP:198.19.0.100:7100');
      expect((await seen).stderr).toMatch(new RegExp(`accepting connection from AF=2 ${h3.ip.replace(/\./g, '\\.')}:`));

      await h2.berth('run', '-d', '--name', 'web', '--network', 'ov1', '-p', '8080:80', '--', 'socat', 'TCP-LISTEN:80,fork,reuseaddr', 'SYSTEM:echo web-on-h2');
      await eventually(async () => (await tryRun('ip', ['netns', 'exec', lab.topo.ns('etcd'), 'socat', '-T', '2', '-', `TCP:${h2.ip}:8080`])).stdout.includes('web-on-h2'));
      // The published sandbox is also an overlay member, reached by name from another host.
      const r = await h1.exec('a1', 'socat', '-T', '2', '-', 'TCP:web:80');
      expect(r.stdout).toContain('web-on-h2');
      await h2.berth('rm', '-f', 'web');
    });

    it('with etcd stopped, traffic flows and store operations fail fast; restarted, new endpoints join', async () => {
      await h3.berth('run', '-d', '--name', 'gone', '--network', 'ov1', '--', 'sleep', 'infinity');
      await eventually(async () => (await lab.etcdctl('get', '--prefix', '/berth/v1/endpoints/')).stdout.includes('"gone"'));
      await lab.stopEtcd();
      // Removing a sandbox needs no store: it goes at once, and is withdrawn from the store later.
      const tRm = Date.now();
      await h3.berth('rm', '-f', 'gone');
      expect(Date.now() - tRm).toBeLessThan(2500);
      const t0 = Date.now();
      const r = await h1.berthTry('network', 'create', '-d', 'overlay', 'ov3');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/cluster store etcd:\/\/.* failed/);
      const r2 = await h2.berthTry('run', '-d', '--name', 'late', '--network', 'ov1', '--', 'sleep', 'infinity');
      expect(r2.code).not.toBe(0);
      expect(r2.stderr).toMatch(/cluster store/);
      expect(Date.now() - t0).toBeLessThan(15_000);
      // Established paths keep working on the last known state: not one packet lost.
      expect((await h1.exec('a1', 'ping', '-c', '5', '-i', '0.2', '-W', '2', ip.a2!)).stdout).toContain(' 0% packet loss');
      expect((await h3.exec('a3', 'ping', '-c', '5', '-i', '0.2', '-W', '2', ip.a1!)).stdout).toContain(' 0% packet loss');
      // A local bridge network does not need the store.
      await h2.berth('network', 'create', '--subnet', '10.99.0.0/24', 'localnet');

      await lab.startEtcd();
      await eventually(async () => (await h2.berthTry('run', '-d', '--name', 'late', '--network', 'ov1', '--', 'sleep', 'infinity')).code === 0, 40_000);
      ip.late = await h2.ipOf('late', 'ov1');
      await eventually(async () => !(await lab.etcdctl('get', '--prefix', '/berth/v1/endpoints/')).stdout.includes('"gone"'), 15_000);
      await eventually(async () => (await h1.execTry('a1', 'ping', '-c', '1', '-W', '1', ip.late!)).code === 0, 15_000);
      // Every host follows (each one's watch reconnects on its own).
      await eventually(async () => (await h3.execTry('a3', 'ping', '-c', '1', '-W', '1', 'late')).code === 0, 15_000);
    }, 90_000);

    it('kill -9 of a host\'s berthd keeps its tunnels forwarding, and a restart loses nothing', async () => {
      const before = await json<NetworkView[]>(h2.berth('network', 'ls', '--format', 'json'));
      await h2.kill();
      // While berthd is dead: the pinned programs and maps keep forwarding both ways, nothing lost.
      expect((await h1.exec('a1', 'ping', '-c', '5', '-i', '0.2', '-W', '2', ip.a2!)).stdout).toContain(' 0% packet loss');
      await h2.berthTry('ps'); // no daemon: refused, not hung
      // A network made while h2's berthd is down reaches h2 when it is back.
      await h1.berth('network', 'create', '-d', 'overlay', '--subnet', '10.0.9.0/24', 'ov9');
      await h2.start();
      await eventually(async () => (await networkNames(h2)).includes('ov9'));
      const after = await json<NetworkView[]>(h2.berth('network', 'ls', '--format', 'json'));
      expect(after.map((n) => n.Id).filter((id) => before.some((b) => b.Id === id)).sort()).toEqual(before.map((n) => n.Id).sort());
      expect(await h2.ipOf('a2', 'ov1')).toBe(ip.a2);
      await h2.exec('a2', 'ping', '-c', '2', '-W', '2', ip.a1!);
      // New endpoints on the restarted host join the overlay.
      await h2.berth('run', '-d', '--name', 'a2b', '--network', 'ov1', '--', 'sleep', 'infinity');
      const a2b = await h2.ipOf('a2b', 'ov1');
      await eventually(async () => (await h3.execTry('a3', 'ping', '-c', '1', '-W', '1', a2b)).code === 0, 15_000);
    }, 60_000);

    it('a removed sandbox leaves every host; a network with endpoints anywhere cannot be removed', async () => {
      const r = await h1.berthTry('network', 'rm', 'ov2');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/active endpoints/);
      expect(await arpAnswered(h1)).toContain(ip.b3);
      await h1.berth('rm', '-f', 'b1');
      await h3.berth('rm', '-f', 'b3');
      // The other hosts forget it: no more ARP answers or tunnel entries for it.
      await eventually(async () => !(await arpAnswered(h1)).includes(ip.b3!));
      await h1.berth('network', 'rm', 'ov2');
      await h3.berth('network', 'rm', 'ov9');
      for (const h of [h1, h2, h3]) await eventually(async () => !(await networkNames(h)).some((n) => n === 'ov2' || n === 'ov9'));
    });
  });
}

describe('overlay without a cluster store', () => {
  it('is refused, saying how to get one', async () => {
    const topo = testTopology();
    let h: TestHost | undefined;
    try {
      h = await TestHost.create(topo, 'host', ['--datapath', 'iptables']);
      const r = await h.berthTry('network', 'create', '-d', 'overlay', 'ov');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/overlay networks need a cluster store: start berthd with --store etcd:\/\/HOST:PORT/);
    } finally {
      await h?.destroy();
      await topo.destroy();
    }
  });
});
