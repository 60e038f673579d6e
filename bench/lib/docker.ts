/**
 * Docker as a compared system: Debian's docker.io (20.10) as it ships (its
 * own docker0 bridge, its iptables rules, the userland proxy on unless asked
 * otherwise), started by the harness inside a harness-made "host" namespace
 * entered with nsenter --net (ip netns exec would remount /sys), with its
 * own data root, exec root, pidfile and socket under /tmp, and an uplink to
 * its own "ext" namespace:
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
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, tryRun } from '../../src/exec.js';
import type { Topology } from '../../harness/topology.js';
import { treeStats, type TreeStats } from './procs.js';
import { clientSysctls } from './world.js';
import { processesMentioning, tryKill } from '../../harness/procs.js';

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
  private proc: ChildProcess | undefined;
  logs = '';
  readonly containers: ContainerInfo[] = [];
  dockerdPid = 0;

  private constructor(
    readonly topo: Topology,
    readonly name: string,
    readonly host: string,
    readonly ext: string,
    readonly dir: string,
    readonly userlandProxy: boolean,
  ) {}

  get socket(): string {
    return join(this.dir, 'docker.sock');
  }

  path(which: 'host' | 'ext'): string {
    return this.topo.nsPath(which === 'host' ? this.host : this.ext);
  }

  /**
   * Makes the namespaces and starts dockerd; @onCreated gets the world before anything can fail, so the caller
   * can destroy it. Throws with dockerd's last log lines when it does not come up.
   */
  static async build(topo: Topology, name: string, opts: { userlandProxy: boolean }, onCreated: (w: DockerWorld) => void): Promise<DockerWorld> {
    const dir = await mkdtemp(join(tmpdir(), 'bb-bench-dockerd-'));
    const short = opts.userlandProxy ? 'd' : 'dn';
    const w = new DockerWorld(topo, name, `${short}host`, `${short}ext`, dir, opts.userlandProxy);
    onCreated(w);
    const rootRulesBefore = await rootRuleCount();
    await topo.addNetns(w.host);
    await topo.addNetns(w.ext);
    await topo.veth({ ns: w.host, name: 'uplink0', addr: `${DOCKER.up}/24` }, { ns: w.ext, name: 'eth0', addr: `${DOCKER.ext}/24` });
    await clientSysctls(w.path('ext'));
    await clientSysctls(w.path('host'), { widePortRange: false });
    w.proc = spawn('nsenter', [`--net=${w.path('host')}`, '--', 'dockerd', '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'dockerd.pid'),
      '-H', `unix://${w.socket}`, `--userland-proxy=${opts.userlandProxy}`, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer) => (w.logs = (w.logs + b.toString()).slice(-20_000));
    w.proc.stdout!.on('data', keep);
    w.proc.stderr!.on('data', keep);
    const deadline = Date.now() + 40_000;
    for (;;) {
      if (w.proc.exitCode !== null) throw new Error(`dockerd exited (${w.proc.exitCode}): ${w.logs.trim().split('\n').slice(-5).join(' | ')}`);
      if ((await tryRun('docker', ['-H', `unix://${w.socket}`, 'version', '--format', '{{.Server.Version}}'])).code === 0) break;
      if (Date.now() > deadline) throw new Error(`dockerd did not answer in 40 s: ${w.logs.trim().split('\n').slice(-5).join(' | ')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    w.dockerdPid = Number((await readFile(join(dir, 'dockerd.pid'), 'utf8')).trim());
    // dockerd's rules must be in dhost, never in the root namespace.
    const inNs = (await run('nsenter', [`--net=${w.path('host')}`, '--', 'iptables-save', '-t', 'nat'])).stdout;
    if (!inNs.includes('DOCKER')) throw new Error('dockerd started but no DOCKER chain is in its namespace: refusing to go on');
    const rootRulesAfter = await rootRuleCount();
    if (rootRulesAfter !== rootRulesBefore) throw new Error(`the root namespace's iptables rule count changed while dockerd started (${rootRulesBefore} -> ${rootRulesAfter}): stopping`);
    await w.importImage();
    return w;
  }

  docker(args: string[], timeoutMs = 120_000) {
    return run('docker', ['-H', `unix://${this.socket}`, ...args], { timeoutMs });
  }

  /** An image of busybox-static alone: containers only run `sleep`; the tools run from the host's filesystem. */
  private async importImage(): Promise<void> {
    const root = join(this.dir, 'rootfs');
    await mkdir(join(root, 'bin'), { recursive: true });
    await run('cp', ['/bin/busybox', join(root, 'bin', 'busybox')]);
    for (const a of ['sh', 'sleep']) await run('ln', ['-sf', 'busybox', join(root, 'bin', a)]);
    for (const d of ['etc', 'proc', 'sys', 'dev', 'tmp']) await mkdir(join(root, d), { recursive: true });
    await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
    const tar = join(this.dir, 'rootfs.tar');
    await run('tar', ['-C', root, '-cf', tar, '.']);
    await this.docker(['import', '-c', 'CMD ["/bin/sh"]', tar, IMAGE]);
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
    if (this.proc && this.proc.exitCode === null) {
      for (const c of [...this.containers]) await this.docker(['rm', '-f', c.id], 120_000).catch(() => undefined);
      const done = new Promise((r) => this.proc!.once('exit', r));
      tryKill(this.dockerdPid || this.proc.pid!, 'SIGTERM');
      const t = setTimeout(() => tryKill(this.dockerdPid || this.proc!.pid!, 'SIGKILL'), 20_000);
      await done;
      clearTimeout(t);
    }
    for (const c of this.containers) if (c.pid) tryKill(c.pid, 'SIGKILL');
    for (let i = 0; i < 3; i++) {
      const pids = await processesMentioning(this.dir);
      if (!pids.length) break;
      for (const pid of pids) tryKill(pid, i ? 'SIGKILL' : 'SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
    }
    const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').map((l) => (l.split(' ')[1] ?? '').replace(/\\040/g, ' '));
    for (const m of mounts.filter((m) => m.startsWith(this.dir + '/')).sort((a, b) => b.length - a.length)) await tryRun('umount', ['-l', m]);
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}


