/**
 * Docker as a compared system: Debian's docker.io (20.10) as it ships (its
 * own docker0 bridge, its iptables rules, the userland proxy on unless asked
 * otherwise), the harness's dockerd (harness/dockerd.ts: nsenter --net into a
 * harness-made "host" namespace, its own roots, pidfile and socket under
 * /tmp), with an uplink to its own "ext" namespace:
 *
 *     dc1 ─┐
 *     dc2 ─┴ docker0 (dhost, dockerd) ── uplink0 ── dext
 *
 * Containers run `sleep` from a tiny image imported from busybox-static; the
 * load tools run from the host's filesystem inside a container's network
 * namespace (/proc/PID/ns/net), so Docker provides only the networking,
 * which is what is compared. iptables rules dockerd writes land in dhost
 * (checked after start: the root namespace's rule count must not change).
 */
import { run, tryRun } from '../../src/exec.js';
import { Dockerd } from '../../harness/dockerd.js';
import { tryKill } from '../../harness/procs.js';
import type { Topology } from '../../harness/topology.js';
import { treeStats, type TreeStats } from './procs.js';
import { clientSysctls } from './world.js';

export const DOCKER = { up: '198.18.2.1', ext: '198.18.2.2' };
const IMAGE = 'bb-bench-busybox:1';

export interface ContainerInfo {
  id: string;
  name: string;
  pid: number;
  /** nsenter --net= target */
  netns: string;
  ip: string;
}

/** Rule lines in the root namespace's iptables and ip6tables (read only). */
export async function rootRuleCount(): Promise<number> {
  let n = 0;
  for (const cmd of ['iptables-save', 'ip6tables-save']) {
    const r = await tryRun(cmd, []);
    n += r.stdout.split('\n').filter((l) => l.startsWith('-A') || l.startsWith(':')).length;
  }
  return n;
}

export class DockerWorld {
  readonly containers: ContainerInfo[] = [];
  private dockerd: Dockerd | undefined;

  private constructor(
    readonly topo: Topology,
    readonly name: string,
    readonly host: string,
    readonly ext: string,
    readonly userlandProxy: boolean,
  ) {}

  /** dockerd's directory (roots, socket, pidfile): its shims and containers name it */
  get dir(): string {
    return this.dockerd?.dir ?? '';
  }

  get dockerdPid(): number {
    return this.dockerd?.pid ?? 0;
  }

  get logs(): string {
    return this.dockerd?.logs ?? '';
  }

  path(which: 'host' | 'ext'): string {
    return this.topo.nsPath(which === 'host' ? this.host : this.ext);
  }

  /**
   * Makes the namespaces and starts dockerd (harness/dockerd.ts, with Docker's own networking); @onCreated gets the
   * world before anything can fail, so the caller can destroy it. Throws with dockerd's last log lines when it does
   * not come up.
   */
  static async build(topo: Topology, name: string, opts: { userlandProxy: boolean }, onCreated: (w: DockerWorld) => void): Promise<DockerWorld> {
    const short = opts.userlandProxy ? 'd' : 'dn';
    const w = new DockerWorld(topo, name, `${short}host`, `${short}ext`, opts.userlandProxy);
    onCreated(w);
    const rootRulesBefore = await rootRuleCount();
    await topo.addNetns(w.host);
    await topo.addNetns(w.ext);
    await topo.veth({ ns: w.host, name: 'uplink0', addr: `${DOCKER.up}/24` }, { ns: w.ext, name: 'eth0', addr: `${DOCKER.ext}/24` });
    await clientSysctls(w.path('ext'));
    await clientSysctls(w.path('host'), { widePortRange: false });
    await Dockerd.create(w.path('host'), [`--userland-proxy=${opts.userlandProxy}`, '--log-level', 'warn'], {
      ownNetworking: true, dirPrefix: 'bb-bench-dockerd-', timeoutMs: 40_000, onCreated: (d) => (w.dockerd = d),
    });
    // dockerd's rules must be in dhost, never in the root namespace.
    const inNs = (await run('nsenter', [`--net=${w.path('host')}`, '--', 'iptables-save', '-t', 'nat'])).stdout;
    if (!inNs.includes('DOCKER')) throw new Error('dockerd started but no DOCKER chain is in its namespace: refusing to go on');
    const rootRulesAfter = await rootRuleCount();
    if (rootRulesAfter !== rootRulesBefore) throw new Error(`the root namespace's iptables rule count changed while dockerd started (${rootRulesBefore} -> ${rootRulesAfter}): stopping`);
    // containers only run `sleep`; the tools run from the host's filesystem
    await w.dockerd!.importBusybox(IMAGE, ['sh', 'sleep']);
    return w;
  }

  docker(args: string[], timeoutMs = 120_000) {
    return this.dockerd!.dockerFor(timeoutMs, ...args);
  }

  /** `docker run -d` of a sleeping container on the default bridge with @publish (-p specs). */
  async createContainer(name: string, publish: string[] = [], extra: string[] = []): Promise<ContainerInfo> {
    const args = ['run', '-d', '--name', name, ...publish.flatMap((p) => ['-p', p]), ...extra, IMAGE, 'sleep', '2147483647'];
    const id = (await this.docker(args, 600_000)).stdout.trim();
    const c = { id, name, pid: 0, netns: '', ip: '' };
    this.containers.push(c);
    return c;
  }

  /** Fills in pid, netns and address of @c (a separate `docker inspect`, not timed with the run). */
  async inspect(c: ContainerInfo): Promise<ContainerInfo> {
    const out = (await this.docker(['inspect', '-f', '{{.State.Pid}} {{.NetworkSettings.IPAddress}}', c.id])).stdout.trim().split(' ');
    c.pid = Number(out[0]);
    c.ip = out[1] ?? '';
    c.netns = `/proc/${c.pid}/ns/net`;
    return c;
  }

  async removeContainer(c: ContainerInfo): Promise<void> {
    await this.docker(['rm', '-f', c.id], 600_000);
    const i = this.containers.indexOf(c);
    if (i >= 0) this.containers.splice(i, 1);
  }

  /** The two benchmark containers: dc1 (client), dc2 (servers, published). */
  async makePair(ports: number[]): Promise<[ContainerInfo, ContainerInfo]> {
    const c1 = await this.inspect(await this.createContainer('dc1'));
    const c2 = await this.inspect(await this.createContainer('dc2', ports.map((p) => `${p}:${p}`)));
    for (const c of [c1, c2]) await clientSysctls(c.netns);
    return [c1, c2];
  }

  /**
   * Docker's processes: dockerd's tree (containerd, docker-proxy) and whatever names our directory (the
   * containerd shims and their containers), with their RSS and PSS.
   */
  async stats(): Promise<TreeStats> {
    return treeStats([this.dockerdPid], this.dir);
  }

  /** Removes the containers, stops dockerd by its pidfile, ends what it left under our roots, removes the roots. */
  async destroy(): Promise<void> {
    const d = this.dockerd;
    if (!d) return;
    if (d.running) for (const c of [...this.containers]) await this.docker(['rm', '-f', c.id], 120_000).catch(() => undefined);
    await d.stop().catch(() => undefined);
    for (const c of this.containers) if (c.pid) tryKill(c.pid, 'SIGKILL');
    await d.destroy();
  }
}
