/**
 * podman as a compared system, the same podman (Debian's 4.3) twice, each in
 * a harness-made "host" namespace with an uplink to its own "ext" namespace
 * (harness/podman.ts: nsenter --net, its own roots and containers.conf):
 *
 *   podman-netavark: podman's own network stack (netavark, its iptables
 *                    rules in the host namespace), the default "podman"
 *                    bridge network, as it ships
 *   podman-berth:    the CNI backend calling berth-cni, berthd (bpf
 *                    datapath) in the host namespace, one berth network
 *
 *     pc1 ─┐
 *     pc2 ─┴ bridge (PODMAN-host: podman, berthd) ── uplink0 ── PODMAN-ext
 *
 * Containers run `sleep` from a busybox-static image; the load tools run
 * from the host's filesystem in a container's namespace (/proc/PID/ns/net),
 * so podman provides only the networking, which is what is compared.
 */
import { BerthHost, UPLINK } from '../../harness/berthd.js';
import { CniPlugin } from '../../harness/cni.js';
import { Podman } from '../../harness/podman.js';
import { tryKill } from '../../harness/procs.js';
import type { Topology } from '../../harness/topology.js';
import { treeStats, type TreeStats } from './procs.js';
import { clientSysctls } from './world.js';
import type { ContainerInfo } from './docker.js';

export const PODMAN_SYSTEMS = ['podman-netavark', 'podman-berth'] as const;
export type PodmanSystem = (typeof PODMAN_SYSTEMS)[number];
/** podman-netavark's uplink (podman-berth's is the harness's berth host's, UPLINK) */
export const NETAVARK_UPLINK = { up: '198.18.3.1', ext: '198.18.3.2' };
const IMAGE = 'localhost/bb-bench-busybox:1';
const BERTH_SUBNET = '10.91.0.0/24';

export class PodmanWorld {
  readonly containers: ContainerInfo[] = [];
  podman: Podman | undefined;
  berth: BerthHost | undefined;
  private plugin: CniPlugin | undefined;

  private constructor(readonly topo: Topology, readonly name: PodmanSystem, readonly host: string, readonly ext: string) {}

  get up(): string {
    return this.name === 'podman-berth' ? UPLINK.host : NETAVARK_UPLINK.up;
  }

  get extIp(): string {
    return this.name === 'podman-berth' ? UPLINK.ext : NETAVARK_UPLINK.ext;
  }

  /** the network containers join: netavark's default one, or the berth network of the conflist */
  get network(): string {
    return this.name === 'podman-berth' ? 'berth' : 'podman';
  }

  path(which: 'host' | 'ext'): string {
    return this.topo.nsPath(which === 'host' ? this.host : this.ext);
  }

  /** Makes the namespaces, berthd (podman-berth) and podman; @onCreated gets the world before anything can fail. */
  static async build(topo: Topology, name: PodmanSystem, onCreated: (w: PodmanWorld) => void): Promise<PodmanWorld> {
    const short = name === 'podman-berth' ? 'pb' : 'pn';
    const w = new PodmanWorld(topo, name, `${short}host`, `${short}ext`);
    onCreated(w);
    if (name === 'podman-berth') {
      await BerthHost.create(topo, w.host, ['--datapath', 'bpf'], {
        ext: w.ext, statePrefix: 'bb-bench-state-pb-', bpffsPrefix: 'bb-bench-bpffs-pb-', timeoutMs: 30_000, onCreated: (h) => (w.berth = h),
      });
      w.plugin = await CniPlugin.create();
    } else {
      await topo.addNetns(w.host);
      await topo.addNetns(w.ext);
      await topo.veth({ ns: w.host, name: 'uplink0', addr: `${NETAVARK_UPLINK.up}/24` }, { ns: w.ext, name: 'eth0', addr: `${NETAVARK_UPLINK.ext}/24` });
    }
    await clientSysctls(w.path('ext'));
    await clientSysctls(w.path('host'), { widePortRange: false });
    w.podman = await Podman.create(w.path('host'), w.plugin?.dir ?? '/usr/lib/cni', { dirPrefix: 'bb-bench-podman-', backend: name === 'podman-berth' ? 'cni' : 'netavark' });
    if (w.berth) {
      await w.podman.addNetwork('berth', {
        cniVersion: '1.0.0', name: 'berth',
        plugins: [{ type: 'berth', network: 'berth', subnet: BERTH_SUBNET, socket: w.berth.socket, capabilities: { portMappings: true, aliases: true } }],
      });
    }
    await w.podman.importBusybox(IMAGE);
    return w;
  }

  /** `podman run -d` of a sleeping container on the world's network with @publish (-p specs). */
  async createContainer(name: string, publish: string[] = []): Promise<ContainerInfo> {
    const args = ['run', '-d', '--name', name, '--network', this.network, ...publish.flatMap((p) => ['-p', p]), IMAGE, 'sleep', '2147483647'];
    const id = (await this.podman!.podmanFor(600_000, ...args)).stdout.trim();
    const c = { id, name, pid: 0, netns: '', ip: '' };
    this.containers.push(c);
    return c;
  }

  async inspect(c: ContainerInfo): Promise<ContainerInfo> {
    const out = (await this.podman!.podman('inspect', '-f', `{{.State.Pid}} {{(index .NetworkSettings.Networks "${this.network}").IPAddress}}`, c.id)).stdout.trim().split(' ');
    c.pid = Number(out[0]);
    c.ip = out[1] ?? '';
    c.netns = `/proc/${c.pid}/ns/net`;
    return c;
  }

  async removeContainer(c: ContainerInfo): Promise<void> {
    await this.podman!.podmanFor(600_000, 'rm', '-f', '-t', '0', c.id);
    const i = this.containers.indexOf(c);
    if (i >= 0) this.containers.splice(i, 1);
  }

  /** The two benchmark containers: pc1 (client), pc2 (servers, published). */
  async makePair(ports: number[]): Promise<[ContainerInfo, ContainerInfo]> {
    const c1 = await this.inspect(await this.createContainer('pc1'));
    const c2 = await this.inspect(await this.createContainer('pc2', ports.map((p) => `${p}:${p}`)));
    for (const c of [c1, c2]) await clientSysctls(c.netns);
    return [c1, c2];
  }

  /** podman's processes (conmon, the containers, aardvark-dns: all name its directory) and berthd's tree (podman-berth). */
  async stats(): Promise<TreeStats> {
    const pids = this.berth?.proc?.pid ? [this.berth.proc.pid] : [];
    return treeStats(pids, this.podman?.dir);
  }

  /** CPU of the same processes, for the traffic figures. */
  cpuPids(): number[] {
    return this.berth?.proc?.pid ? [this.berth.proc.pid] : [];
  }

  async destroy(): Promise<void> {
    for (const c of [...this.containers]) await this.podman?.podmanTry('rm', '-f', '-t', '0', c.id).catch(() => undefined);
    for (const c of this.containers) if (c.pid) tryKill(c.pid, 'SIGKILL');
    await this.podman?.destroy();
    await this.plugin?.destroy();
    await this.berth?.destroy({ graceful: true });
  }
}
