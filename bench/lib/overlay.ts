/**
 * The overlay scenario's worlds (issue 7), all in namespaces the harness makes
 * (prefix "bb-bench-"), never the root namespace. The setup follows
 * test/overlay/lab.ts (copied, not imported: the bench build includes only
 * src/ and bench/).
 *
 *  berth (one cluster per datapath DP, prefix ov<DP>-):
 *      ul: bridge br0 ── h1 (berthd, 198.20.0.11) ── sandbox o1 ┐ overlay network "ov"
 *                    ├── h2 (berthd, 198.20.0.12) ── sandbox o2 ┘ (VXLAN over br0)
 *                    └── etcd (etcd-server, 198.20.0.100)
 *      each berthd: --store etcd://198.20.0.100:2379 --advertise-addr its underlay address,
 *      --bpffs a private bpffs, its own state directory
 *
 *  plain (ovk-): the same underlay without berth: h1 ── br0 (ul) ── h2 is the limit (host to
 *      host on the underlay); kernel vxlan: in each host a vxlan device (static flood entry to
 *      the other host) on a bridge with a veth to a "container" namespace c1 / c2.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, tryRun } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import type { Topology } from '../../harness/topology.js';
import { BerthdProcess } from '../../harness/berthd.js';
import { removeLeftovers } from '../../harness/leftovers.js';
import { PrivateBpffs } from '../../src/bpf/bpffs.js';
import { ApiClient } from '../../src/api/client.js';
import type { SandboxView } from '../../src/api/views.js';
import { bounded, clientSysctls } from './world.js';

export const OVL = {
  underlay: '198.20.0',
  etcd: '198.20.0.100',
  /** the berth overlay network's subnet */
  subnet: '10.120.0.0/24',
  /** the kernel vxlan comparison's container subnet */
  kernel: '10.121.0',
  vni: 4242,
};

const hostIp = (i: number) => `${OVL.underlay}.${10 + i}`;

/** Joins namespace @short to the underlay bridge of @ul with a veth (eth0 in @short, at @ip). */
async function attach(topo: Topology, ul: string, short: string, ip: string, port: string): Promise<void> {
  await topo.addNetns(short);
  await topo.veth({ ns: ul, name: port }, { ns: short, name: 'eth0', addr: `${ip}/24` });
  await run('ip', ['-n', topo.ns(ul), 'link', 'set', port, 'master', 'br0']);
}

async function underlay(topo: Topology, ul: string): Promise<void> {
  await topo.addNetns(ul);
  await run('ip', ['-n', topo.ns(ul), 'link', 'add', 'br0', 'type', 'bridge']);
  await run('ip', ['-n', topo.ns(ul), 'link', 'set', 'br0', 'up']);
  await tryRun('ip', ['netns', 'exec', topo.ns(ul), 'sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=0']);
}

/** The plain underlay: host to host (the limit), and kernel vxlan + bridge between two container namespaces. */
export class PlainOverlayWorld {
  private constructor(readonly topo: Topology) {}

  path(short: 'h1' | 'h2' | 'c1' | 'c2'): string {
    return this.topo.nsPath(`ovk-${short}`);
  }

  readonly h2Ip = hostIp(2);
  readonly c2Ip = `${OVL.kernel}.2`;

  static async build(topo: Topology): Promise<PlainOverlayWorld> {
    const w = new PlainOverlayWorld(topo);
    const ul = 'ovk-ul';
    await underlay(topo, ul);
    for (const i of [1, 2]) {
      const h = `ovk-h${i}`;
      const c = `ovk-c${i}`;
      await attach(topo, ul, h, hostIp(i), `u-h${i}`);
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
    }
    return w;
  }
}

export interface OverlayHost {
  short: string;
  ip: string;
  stateDir: string;
  bpffs: PrivateBpffs | undefined;
  daemon: BerthdProcess | undefined;
  api: ApiClient;
  pid: number | undefined;
  instance: string | undefined;
}

/** Two berth hosts on an underlay with etcd, one overlay network, one sandbox per host. */
export class OverlayWorld {
  readonly hosts: OverlayHost[] = [];
  private etcdProc: ChildProcess | undefined;
  private etcdLog = '';
  private etcdDir = '';
  /** the sandboxes: o1 on h1 (client), o2 on h2 (server) */
  sandboxes: { netns: string; ip: string }[] = [];

  private constructor(
    readonly topo: Topology,
    readonly datapath: string,
  ) {}

  get name(): string {
    return `berth-${this.datapath}`;
  }

  private ns(short: string): string {
    return `ov${this.datapath}-${short}`;
  }

  /** Builds the cluster; @onCreated gets it before anything can fail (the caller destroys it, also on failure). */
  static async build(topo: Topology, datapath: string, onCreated: (w: OverlayWorld) => void): Promise<OverlayWorld> {
    const w = new OverlayWorld(topo, datapath);
    onCreated(w);
    const ul = w.ns('ul');
    await underlay(topo, ul);
    await attach(topo, ul, w.ns('etcd'), OVL.etcd, 'u-etcd');
    w.etcdDir = await mkdtemp(join(tmpdir(), `bb-bench-etcd-${datapath}-`));
    await w.startEtcd();
    for (const i of [1, 2]) {
      const short = w.ns(`h${i}`);
      await attach(topo, ul, short, hostIp(i), `u-h${i}`);
      const stateDir = await mkdtemp(join(tmpdir(), `bb-bench-state-ov${datapath}-h${i}-`));
      const h: OverlayHost = { short, ip: hostIp(i), stateDir, bpffs: undefined, daemon: undefined, api: new ApiClient(join(stateDir, 'berth.sock')), pid: undefined, instance: undefined };
      w.hosts.push(h);
      await writeFile(join(stateDir, 'host-resolv.conf'), 'nameserver 192.0.2.53\n');
      // pins go to a private bpffs, never /sys/fs/bpf
      h.bpffs = await PrivateBpffs.create(`bb-bench-bpffs-ov${datapath}-h${i}-`);
      h.daemon = await BerthdProcess.start(topo.nsPath(short), [
        '--state-dir', stateDir, '--socket', join(stateDir, 'berth.sock'), '--log-level', 'info',
        '--resolv-conf', join(stateDir, 'host-resolv.conf'), '--datapath', datapath,
        '--store', `etcd://${OVL.etcd}:2379`, '--advertise-addr', h.ip, '--bpffs', h.bpffs.path, '--uplink', 'eth0',
      ], { timeoutMs: 30_000 });
      const info = await h.api.call<Record<string, unknown>>('GET', '/v1/info');
      h.pid = Number(info.pid);
      h.instance = String(info.instance);
      await clientSysctls(topo.nsPath(short));
    }
    await w.berth(w.hosts[0]!, 'network', 'create', '-d', 'overlay', '--subnet', OVL.subnet, 'ov');
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

  berth(h: OverlayHost, ...args: string[]) {
    return run(process.execPath, [projectPath('dist', 'src', 'cli', 'berth.js'), '--socket', join(h.stateDir, 'berth.sock'), ...args], { timeoutMs: 30_000 });
  }

  pids(): number[] {
    return this.hosts.flatMap((h) => (h.pid ? [h.pid] : []));
  }

  private async startEtcd(): Promise<void> {
    const ns = this.topo.ns(this.ns('etcd'));
    const url = `http://${OVL.etcd}:2379`;
    this.etcdProc = spawn('ip', ['netns', 'exec', ns, 'etcd', '--name', 'bench', '--data-dir', this.etcdDir,
      '--listen-client-urls', url, '--advertise-client-urls', url,
      '--listen-peer-urls', 'http://127.0.0.1:2380', '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
      '--initial-cluster', 'bench=http://127.0.0.1:2380'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.etcdProc.stdout!.on('data', (d: Buffer) => (this.etcdLog = (this.etcdLog + d.toString()).slice(-4000)));
    this.etcdProc.stderr!.on('data', (d: Buffer) => (this.etcdLog = (this.etcdLog + d.toString()).slice(-4000)));
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = await tryRun('ip', ['netns', 'exec', ns, 'etcdctl', '--endpoints', url, '--dial-timeout', '1s', 'endpoint', 'health']);
      if (r.code === 0) return;
      if (Date.now() > deadline || this.etcdProc.exitCode !== null) throw new Error(`etcd did not start:\n${this.etcdLog.slice(-1000)}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  private async stopEtcd(): Promise<void> {
    const p = this.etcdProc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await done;
  }

  /** Stops both berthds (their sandboxes go with removeLeftovers), etcd, and removes directories and the bpffs mounts. Namespaces go with the topology. */
  async destroy(): Promise<void> {
    for (const h of this.hosts) {
      if (h.daemon?.running) await bounded(h.daemon.stop('SIGTERM'), 5_000).catch(() => undefined);
      if (h.daemon?.running) await h.daemon.stop('SIGKILL').catch(() => undefined);
      await removeLeftovers(h.stateDir).catch(() => undefined);
      await rm(h.stateDir, { recursive: true, force: true });
      await h.bpffs?.release().catch(() => undefined);
    }
    await this.stopEtcd().catch(() => undefined);
    if (this.etcdDir) await rm(this.etcdDir, { recursive: true, force: true });
  }
}
