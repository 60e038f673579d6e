/**
 * A small cluster for overlay tests, all in test-made namespaces: an
 * underlay namespace holding a bridge, "hosts" joined to it by veths (each
 * running berthd with its own state directory and private bpffs), etcd in a
 * namespace of its own, and optionally a plain host with only a kernel vxlan
 * device. Nothing is made in the root network namespace; destroy() removes
 * everything, also after berthd or etcd were killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, tryRun } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import { Topology } from '../../src/netns/topology.js';
import { PrivateBpffs } from '../../src/bpf/bpffs.js';
import { BerthdProcess } from '../../src/daemon/spawn.js';
import { removeLeftovers } from '../../src/daemon/leftovers.js';

export const UNDERLAY = '198.19.0';
export const ETCD_IP = `${UNDERLAY}.100`;
export const STORE = `etcd://${ETCD_IP}:2379`;

let seq = 0;

export class LabHost {
  daemon: BerthdProcess | undefined;
  readonly socket: string;

  constructor(
    readonly lab: OverlayLab,
    readonly short: string,
    readonly ip: string,
    readonly stateDir: string,
    readonly bpffs: PrivateBpffs,
  ) {
    this.socket = join(stateDir, 'berth.sock');
  }

  get nsPath(): string {
    return this.lab.topo.nsPath(this.short);
  }

  async start(): Promise<void> {
    this.daemon = await BerthdProcess.start(this.nsPath, [
      '--state-dir', this.stateDir, '--socket', this.socket, '--log-level', 'info',
      '--resolv-conf', join(this.stateDir, 'host-resolv.conf'), '--datapath', this.lab.datapath,
      '--store', STORE, '--advertise-addr', this.ip, '--bpffs', this.bpffs.path, '--uplink', 'eth0',
    ], { timeoutMs: 20_000 });
  }

  async kill(): Promise<void> {
    await this.daemon?.stop('SIGKILL');
  }

  berth(...args: string[]) {
    return run(process.execPath, [projectPath('dist', 'src', 'cli', 'berth.js'), '--socket', this.socket, ...args], { timeoutMs: 30_000 });
  }

  berthTry(...args: string[]) {
    return tryRun(process.execPath, [projectPath('dist', 'src', 'cli', 'berth.js'), '--socket', this.socket, ...args], { timeoutMs: 30_000 });
  }

  /** Runs @cmd inside sandbox @name (berth exec). */
  exec(name: string, ...cmd: string[]) {
    return this.berth('exec', name, '--', ...cmd);
  }

  execTry(name: string, ...cmd: string[]) {
    return this.berthTry('exec', name, '--', ...cmd);
  }

  /** The sandbox's IPv4 address on @network. */
  async ipOf(name: string, network: string): Promise<string> {
    const { stdout } = await this.berth('inspect', name);
    const v = JSON.parse(stdout) as { NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }[] | { NetworkSettings: { Networks: Record<string, { IPAddress: string }> } };
    const rec = Array.isArray(v) ? v[0]! : v;
    return rec.NetworkSettings.Networks[network]!.IPAddress;
  }
}

export class OverlayLab {
  readonly hosts: LabHost[] = [];
  private etcdProc: ChildProcess | undefined;
  private etcdLog = '';
  private etcdDir = '';
  private readonly extraDirs: string[] = [];

  private constructor(
    readonly topo: Topology,
    readonly datapath: 'iptables' | 'bpf',
  ) {}

  /** The underlay, etcd (running) and @n hosts with berthd (running). */
  static async create(n: number, opts: { plain?: boolean; datapath?: 'iptables' | 'bpf' } = {}): Promise<OverlayLab> {
    seq += 1;
    const lab = new OverlayLab(new Topology(`ov${process.pid % 10000}-${seq}-`.slice(0, 12)), opts.datapath ?? 'iptables');
    try {
      const t = lab.topo;
      await t.addNetns('ul');
      await run('ip', ['-n', t.ns('ul'), 'link', 'add', 'br0', 'type', 'bridge']);
      await run('ip', ['-n', t.ns('ul'), 'link', 'set', 'br0', 'up']);
      const attach = async (short: string, ip: string) => {
        await t.addNetns(short);
        await t.veth({ ns: 'ul', name: `u-${short}` }, { ns: short, name: 'eth0', addr: `${ip}/24` });
        await run('ip', ['-n', t.ns('ul'), 'link', 'set', `u-${short}`, 'master', 'br0']);
      };
      await attach('etcd', ETCD_IP);
      lab.etcdDir = await mkdtemp(join(tmpdir(), 'berth-test-etcd-'));
      await lab.startEtcd();
      if (opts.plain) await attach('plain', `${UNDERLAY}.50`);
      for (let i = 1; i <= n; i++) {
        const short = `h${i}`;
        const ip = `${UNDERLAY}.${10 + i}`;
        await attach(short, ip);
        const dir = await mkdtemp(join(tmpdir(), 'berth-test-state-'));
        await writeFile(join(dir, 'host-resolv.conf'), 'nameserver 192.0.2.53\n');
        const h = new LabHost(lab, short, ip, dir, await PrivateBpffs.create());
        lab.hosts.push(h);
        await h.start();
      }
      return lab;
    } catch (e) {
      await lab.destroy();
      throw e;
    }
  }

  async startEtcd(): Promise<void> {
    this.etcdLog = '';
    const ns = this.topo.ns('etcd');
    this.etcdProc = spawn('ip', ['netns', 'exec', ns, 'etcd', '--name', 'lab', '--data-dir', this.etcdDir,
      '--listen-client-urls', `http://${ETCD_IP}:2379`, '--advertise-client-urls', `http://${ETCD_IP}:2379`,
      '--listen-peer-urls', 'http://127.0.0.1:2380', '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
      '--initial-cluster', 'lab=http://127.0.0.1:2380'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.etcdProc.stdout!.on('data', (d: Buffer) => (this.etcdLog += d.toString()));
    this.etcdProc.stderr!.on('data', (d: Buffer) => (this.etcdLog += d.toString()));
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = await tryRun('ip', ['netns', 'exec', ns, 'etcdctl', '--endpoints', `http://${ETCD_IP}:2379`, '--dial-timeout', '1s', 'endpoint', 'health']);
      if (r.code === 0) return;
      if (Date.now() > deadline || this.etcdProc.exitCode !== null) throw new Error(`etcd did not start:\n${this.etcdLog}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  async stopEtcd(): Promise<void> {
    const p = this.etcdProc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await done;
  }

  /** etcdctl against the lab's etcd. */
  etcdctl(...args: string[]) {
    return run('ip', ['netns', 'exec', this.topo.ns('etcd'), 'etcdctl', '--endpoints', `http://${ETCD_IP}:2379`, ...args]);
  }

  async tempDir(): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), 'berth-test-'));
    this.extraDirs.push(d);
    return d;
  }

  async destroy(): Promise<void> {
    for (const h of this.hosts) {
      await h.kill().catch(() => undefined);
      await removeLeftovers(h.stateDir).catch(() => undefined);
      await h.bpffs.release().catch(() => undefined);
      await rm(h.stateDir, { recursive: true, force: true });
    }
    await this.stopEtcd().catch(() => undefined);
    if (this.etcdDir) await rm(this.etcdDir, { recursive: true, force: true });
    for (const d of this.extraDirs) await rm(d, { recursive: true, force: true });
    await this.topo.destroy();
  }
}
