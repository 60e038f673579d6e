/** The overlay scenario: sandbox to sandbox across two berth hosts over VXLAN and routed, against the underlay and kernel vxlan. */
import { PORTS, Servers, waitPort } from '../lib/tools.js';
import { treeCpuMs } from '../lib/procs.js';
import { BERTH_DATAPATHS, type Opts } from '../lib/options.js';
import type { benchTopology } from '../lib/world.js';
import { OVL, OverlayWorld, PlainOverlayWorld } from '../lib/overlay.js';
import { failed, figure, lat, progress, skipped, tput, type ScenarioResult } from '../lib/figure.js';

/**
 * Overlay (issue 7): sandbox → sandbox across two berth hosts over VXLAN, against host → host on the same kind of
 * underlay (the limit) and plain kernel vxlan + bridge; the berth clusters are built here (into @overlays, which the
 * caller's cleanup destroys).
 */
export async function overlayScenario(topo: ReturnType<typeof benchTopology>, overlays: OverlayWorld[], o: Opts): Promise<ScenarioResult> {
  const servers = new Servers();
  const notMeasured: { system: string; why: string }[] = [];
  const T = o.seconds;
  const TL = Math.max(1, Math.round(T / 2));
  const paths: { system: string; ns: string; ip: string; cpu?: () => Promise<number> }[] = [];
  try {
    if (o.systems.includes('limit')) {
      progress('overlay: building the plain underlay (host to host) and kernel vxlan + bridge');
      const plain = await PlainOverlayWorld.build(topo);
      await servers.startAll('overlay/limit', plain.path('h2'));
      await servers.startAll('overlay/kernel', plain.path('c2'));
      await servers.startAll('overlay/kernel-routed', plain.path('r2'));
      paths.push(
        { system: 'limit-underlay', ns: plain.path('h1'), ip: plain.h2Ip },
        { system: 'kernel-vxlan', ns: plain.path('c1'), ip: plain.c2Ip },
        { system: 'kernel-routed', ns: plain.path('r1'), ip: plain.r2Ip },
      );
    }
    for (const dp of BERTH_DATAPATHS) for (const driver of ['overlay', 'routed'] as const) {
      if (!o.systems.includes(dp)) continue;
      progress(`overlay: building berth-${dp} ${driver}: etcd, two hosts with berthd --store etcd:// --datapath ${dp}, ${driver === 'overlay' ? 'an' : 'a'} ${driver} network, a sandbox on each`);
      let w: OverlayWorld | undefined;
      try {
        w = await OverlayWorld.build(topo, dp, (x) => overlays.push(x), driver);
        const [, o2] = w.sandboxes;
        await servers.startAll(`overlay/${w.name}-${driver}`, o2!.netns);
        const ww = w;
        paths.push({ system: `${w.name} ${driver}`, ns: w.sandboxes[0]!.netns, ip: o2!.ip, cpu: () => treeCpuMs(ww.pids()) });
      } catch (e) {
        notMeasured.push(failed('overlay', `berth-${dp} ${driver}`, e));
        const x = overlays.find((y) => y.datapath === dp && y.driver === driver);
        if (x) process.stderr.write(`bench: overlay berth-${dp}: berthd logs:\n${x.hosts.map((h) => h.daemon?.logs.split('\n').slice(-8).join('\n') ?? '').join('\n')}\n`);
      }
    }
    const live: typeof paths = [];
    for (const p of paths) {
      try {
        for (const port of [PORTS.iperf, PORTS.sockperf]) await waitPort(p.ns, p.ip, port, 15_000);
        live.push(p);
      } catch (e) {
        if (p.system === 'limit-underlay') throw new Error(`overlay: the underlay limit does not answer: ${(e as Error).message}`);
        notMeasured.push(failed('overlay', p.system, e));
      }
    }
    const lim = live.some((p) => p.system === 'limit-underlay') ? 'limit-underlay' : '';
    const f1 = await figure('overlay', 'TCP throughput', 'Gbit/s', true, lim, live.map((p) => tput(p.system, p.ns, p.ip, T, p.cpu)), o.runs, 'GB', notMeasured);
    const f2 = await figure('overlay', 'TCP latency p50 (half RTT)', 'µs', false, lim, live.map((p) => lat(p.system, p.ns, p.ip, TL, p.cpu)), o.runs, 'round trip', notMeasured);
    return {
      id: 'overlay', title: 'Overlay: sandbox to sandbox across two hosts (VXLAN, and routed without encapsulation)', notMeasured: [...notMeasured, ...skipped],
      method: `two "host" namespaces joined by an underlay (a Linux bridge in its own namespace, veths, MTU 1500), etcd in its own namespace; berth-*: berthd on each host with --store etcd:// and --advertise-addr, each with its own private bpffs, an overlay network (berth network create -d overlay --subnet ${OVL.subnet}) or, in a cluster of its own, a routed one (-d routed --subnet ${OVL.routed}: a /26 block per host, routed via the underlay addresses, no encapsulation), one sandbox per host, client on host 1, servers on host 2; limit-underlay: host 1 → host 2 on the underlay addresses (a bare underlay of the same construction, no berth); kernel-vxlan: Linux vxlan devices (VNI ${OVL.vni}, static flood entry to the other host) on a bridge with a veth to a container namespace per host, MTU 1450; kernel-routed: berth routed's topology without berth: a container namespace per host behind a veth (no bridge), the host forwarding, the other host's container subnet (${OVL.kernelRouted}.N.0/24) routed via its underlay address; CPU of the system's own processes is both berthds'`,
      figures: [f1, f2],
    };
  } finally {
    await servers.stopAll();
  }
}
