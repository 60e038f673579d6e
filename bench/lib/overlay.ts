/**
 * The overlay scenario's worlds (issue 7), all in namespaces the harness makes
 * (prefix "bb-bench-"), never the root namespace. The berth clusters are the
 * harness's overlay lab (harness/overlay-lab.ts), the one the overlay tests
 * use, built inside the benchmark's topology.
 *
 *  berth (one cluster per datapath DP, prefix ov<DP>-):
 *      ul: bridge br0 ── h1 (berthd, 198.20.0.11) ── sandbox o1 ┐ overlay network "ov"
 *                    ├── h2 (berthd, 198.20.0.12) ── sandbox o2 ┘ (VXLAN over br0)
 *                    └── etcd (etcd-server, 198.20.0.100)
 *      each berthd: --store etcd://198.20.0.100:2379 --advertise-addr its underlay address,
 *      --bpffs a private bpffs, its own state directory
 *
 *  routed (issue 18, prefix rt<DP>-): the same cluster with a routed network "ov" (-d routed,
 *      each host a block of ${OVL.routed}, routes via the underlay addresses, no encapsulation).
 *
 *  plain (ovk-): the same underlay without berth: h1 ── br0 (ul) ── h2 is the limit (host to
 *      host on the underlay); kernel vxlan: in each host a vxlan device (static flood entry to
 *      the other host) on a bridge with a veth to a "container" namespace c1 / c2.
 */
import { run, tryRun } from '../../src/exec.js';
import type { SandboxView } from '../../src/api/views.js';
import { OverlayLab, attachToUnderlay, makeUnderlay, type LabHost } from '../../harness/overlay-lab.js';
import type { Topology } from '../../harness/topology.js';
import { clientSysctls } from './world.js';

export const OVL = {
  underlay: '198.20.0',
  etcd: '198.20.0.100',
  /** the berth overlay network's subnet */
  subnet: '10.120.0.0/24',
  /** the berth routed network's subnet */
  routed: '10.122.0.0/24',
  /** the kernel vxlan comparison's container subnet */
  kernel: '10.121.0',
  /** the plain routed comparison's container subnets: 10.123.<host>.0/24 */
  kernelRouted: '10.123',
  vni: 4242,
};

const hostIp = (i: number) => `${OVL.underlay}.${10 + i}`;

/** The plain underlay: host to host (the limit), and kernel vxlan + bridge between two container namespaces. */
export class PlainOverlayWorld {
  private constructor(readonly topo: Topology) {}

  path(short: 'h1' | 'h2' | 'c1' | 'c2' | 'r1' | 'r2'): string {
    return this.topo.nsPath(`ovk-${short}`);
  }

  readonly h2Ip = hostIp(2);
  readonly c2Ip = `${OVL.kernel}.2`;
  readonly r2Ip = `${OVL.kernelRouted}.2.2`;

  static async build(topo: Topology): Promise<PlainOverlayWorld> {
    const w = new PlainOverlayWorld(topo);
    const ul = 'ovk-ul';
    await makeUnderlay(topo, ul);
    for (const i of [1, 2]) {
      const h = `ovk-h${i}`;
      const c = `ovk-c${i}`;
      await attachToUnderlay(topo, ul, h, hostIp(i), `u-h${i}`);
      const ip = (...args: string[]) => run('ip', ['-n', topo.ns(h), ...args]);
      await ip('link', 'add', 'vx0', 'type', 'vxlan', 'id', String(OVL.vni), 'dstport', '4789', 'local', hostIp(i), 'dev', 'eth0');
      await run('bridge', ['-n', topo.ns(h), 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vx0', 'dst', hostIp(3 - i)]);
      await ip('link', 'add', 'br0', 'type', 'bridge');
      await ip('link', 'set', 'vx0', 'master', 'br0');
      await ip('link', 'set', 'vx0', 'up');
      await ip('link', 'set', 'br0', 'up');
      await tryRun('ip', ['netns', 'exec', topo.ns(h), 'sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=0']);
      await topo.addNetns(c);
      await topo.veth({ ns: h, name: 'p1' }, { ns: c, name: 'eth0' });
      await ip('link', 'set', 'p1', 'mtu', '1450');
      await ip('link', 'set', 'p1', 'master', 'br0');
      await run('ip', ['-n', topo.ns(c), 'link', 'set', 'eth0', 'mtu', '1450']);
      await run('ip', ['-n', topo.ns(c), 'addr', 'add', `${OVL.kernel}.${i}/24`, 'dev', 'eth0']);
      await clientSysctls(topo.nsPath(h));
      await clientSysctls(topo.nsPath(c));
      // Routed, no berth: a container namespace behind a veth, the other host's container subnet via its underlay address.
      const r = `ovk-r${i}`;
      const sn = (j: number) => `${OVL.kernelRouted}.${j}`;
      await topo.addNetns(r);
      await topo.veth({ ns: h, name: 'p2', addr: `${sn(i)}.1/24` }, { ns: r, name: 'eth0', addr: `${sn(i)}.2/24` });
      await run('ip', ['-n', topo.ns(r), 'route', 'add', 'default', 'via', `${sn(i)}.1`]);
      await ip('route', 'add', `${sn(3 - i)}.0/24`, 'via', hostIp(3 - i));
      await run('ip', ['netns', 'exec', topo.ns(h), 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      await clientSysctls(topo.nsPath(r));
    }
    return w;
  }
}

/** Two berth hosts on an underlay with etcd (harness/overlay-lab.ts), one overlay (or routed) network, one sandbox per host. */
export class OverlayWorld {
  /** the sandboxes: o1 on h1 (client), o2 on h2 (server) */
  sandboxes: { netns: string; ip: string }[] = [];
  private lab: OverlayLab | undefined;

  private constructor(
    readonly datapath: string,
    readonly driver: 'overlay' | 'routed',
  ) {}

  get name(): string {
    return `berth-${this.datapath}`;
  }

  get hosts(): LabHost[] {
    return this.lab?.hosts ?? [];
  }

  /** Builds the cluster; @onCreated gets it before anything can fail (the caller destroys it, also on failure). */
  static async build(topo: Topology, datapath: string, onCreated: (w: OverlayWorld) => void, driver: 'overlay' | 'routed' = 'overlay'): Promise<OverlayWorld> {
    const w = new OverlayWorld(datapath, driver);
    onCreated(w);
    const p = driver === 'overlay' ? 'ov' : 'rt';
    await OverlayLab.create(2, { datapath, topo, prefix: `${p}${datapath}-`, underlay: OVL.underlay, tag: `bb-bench-${p}${datapath}`, onCreated: (lab) => (w.lab = lab) });
    for (const h of w.hosts) await clientSysctls(h.nsPath);
    await w.hosts[0]!.berth('network', 'create', '-d', driver, '--subnet', driver === 'overlay' ? OVL.subnet : OVL.routed, 'ov');
    for (const [i, h] of w.hosts.entries()) {
      // the network reaches h2 through etcd: retry the create until it knows the network (bounded)
      const deadline = Date.now() + 20_000;
      for (;;) {
        try {
          const v = await h.api.call<SandboxView>('POST', '/v1/sandboxes', { name: `o${i + 1}`, network: 'ov', publish: [], cmd: ['sleep', 'infinity'] });
          const n = v.NetworkSettings.Networks.ov ?? Object.values(v.NetworkSettings.Networks)[0];
          w.sandboxes.push({ netns: v.NetworkSettings.SandboxKey, ip: n?.IPAddress ?? '' });
          await clientSysctls(v.NetworkSettings.SandboxKey);
          break;
        } catch (e) {
          if (Date.now() > deadline) throw new Error(`sandbox o${i + 1} on the overlay network: ${(e as Error).message}`);
          await new Promise((r) => setTimeout(r, 300));
        }
      }
    }
    return w;
  }

  pids(): number[] {
    return this.hosts.flatMap((h) => (h.pid ? [h.pid] : []));
  }

  /** Stops both berthds (their sandboxes go with their leftovers), etcd, and removes directories and the bpffs mounts. Namespaces go with the topology. */
  async destroy(): Promise<void> {
    await this.lab?.destroy({ graceful: true });
  }
}
