/**
 * A small cluster for the overlay, in harness-made namespaces: an underlay
 * namespace holding a bridge, "hosts" joined to it by veths (each running
 * berthd with its own state directory and private bpffs, --store pointing at
 * the lab's etcd), etcd in a namespace of its own, and optionally a plain
 * host with no berthd. Tests build it in a topology of its own; the
 * benchmark builds it inside its topology with a name prefix. Nothing is made
 * in the root network namespace; destroy() removes everything, also after
 * berthd or etcd were killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../src/api/client.cjs';
import { PrivateBpffs } from '../src/bpf/bpffs.js';
import { run, tryRun } from '../src/exec.js';
import { BerthdProcess, berthCli, berthCliTry } from './berthd.js';
import { removeLeftovers } from './leftovers.js';
import { bounded } from './procs.js';
import { Topology } from './topology.js';

/** The tests' underlay /24 (the benchmark picks its own). */
export const UNDERLAY = '198.19.0';

let seq = 0;

/** Joins namespace @short to the bridge br0 of underlay namespace @ul with a veth: @port in @ul, eth0 at @ip in @short. */
export async function attachToUnderlay(topo: Topology, ul: string, short: string, ip: string, port: string): Promise<void> {
  await topo.addNetns(short);
  await topo.veth({ ns: ul, name: port }, { ns: short, name: 'eth0', addr: `${ip}/24` });
  await run('ip', ['-n', topo.ns(ul), 'link', 'set', port, 'master', 'br0']);
}

/** An underlay namespace @ul with a bridge br0 whose frames skip netfilter. */
export async function makeUnderlay(topo: Topology, ul: string): Promise<void> {
  await topo.addNetns(ul);
  await run('ip', ['-n', topo.ns(ul), 'link', 'add', 'br0', 'type', 'bridge']);
  await run('ip', ['-n', topo.ns(ul), 'link', 'set', 'br0', 'up']);
  await tryRun('ip', ['netns', 'exec', topo.ns(ul), 'sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=0']);
}

export class LabHost {
  daemon: BerthdProcess | undefined;
  readonly socket: string;
  /** berthd's pid and instance name, from /v1/info after each start */
  pid: number | undefined;
  instance: string | undefined;

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

  get api(): ApiClient {
    return new ApiClient(this.socket);
  }

  /** @advertise false: no --advertise-addr (berthd finds the underlay address itself, from --uplink eth0). */
  async start(opts: { advertise?: boolean } = {}): Promise<void> {
    this.daemon = await BerthdProcess.start(this.nsPath, [
      '--state-dir', this.stateDir, '--socket', this.socket, '--log-level', 'info',
      '--resolv-conf', join(this.stateDir, 'host-resolv.conf'), '--datapath', this.lab.datapath,
      '--store', this.lab.store, ...(opts.advertise === false ? [] : ['--advertise-addr', this.ip]), '--bpffs', this.bpffs.path, '--uplink', 'eth0',
      ...this.lab.berthdArgs,
    ], { timeoutMs: 30_000 });
    const info = await this.api.call<{ pid: number; instance: string }>('GET', '/v1/info');
    this.pid = Number(info.pid);
    this.instance = String(info.instance);
  }

  async kill(): Promise<void> {
    await this.daemon?.stop('SIGKILL');
  }

  berth(...args: string[]) {
    return berthCli(this.socket, ...args);
  }

  berthTry(...args: string[]) {
    return berthCliTry(this.socket, ...args);
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

export interface OverlayLabOptions {
  /** berthd's --datapath (default iptables) */
  datapath?: string;
  /** also a host with no berthd on the underlay ("plain", at .50) */
  plain?: boolean;
  /** build into this topology, which the caller removes (default: one of the lab's own, removed by destroy) */
  topo?: Topology;
  /** prefix of the lab's namespace short names inside the topology */
  prefix?: string;
  /** the underlay /24, e.g. "198.19.0"; etcd is .100, host i is .(10+i) */
  underlay?: string;
  /** prefix of the lab's temporary directories and bpffs mounts */
  tag?: string;
  /** gets the lab before anything can fail: the caller then destroys it, also on failure */
  onCreated?: (lab: OverlayLab) => void;
  /** more flags for every host's berthd (e.g. --host-grace 3) */
  berthdArgs?: string[];
}

export class OverlayLab {
  readonly hosts: LabHost[] = [];
  private etcdProc: ChildProcess | undefined;
  private etcdLog = '';
  private etcdDir = '';
  private readonly extraDirs: string[] = [];

  private constructor(
    readonly topo: Topology,
    private readonly ownsTopo: boolean,
    readonly datapath: string,
    readonly prefix: string,
    readonly underlay: string,
    readonly tag: string,
    readonly berthdArgs: readonly string[] = [],
  ) {}

  get etcdIp(): string {
    return `${this.underlay}.100`;
  }

  /** berthd's --store */
  get store(): string {
    return `etcd://${this.etcdIp}:2379`;
  }

  /** The short name of the lab's namespace @name ("ul", "etcd", "plain", "h1", ...). */
  ns(name: string): string {
    return this.prefix + name;
  }

  /** The underlay, etcd (running) and @n hosts with berthd (running). */
  static async create(n: number, opts: OverlayLabOptions = {}): Promise<OverlayLab> {
    seq += 1;
    const topo = opts.topo ?? new Topology(`ov${process.pid % 10000}-${seq}-`.slice(0, 12));
    const lab = new OverlayLab(topo, !opts.topo, opts.datapath ?? 'iptables', opts.prefix ?? '', opts.underlay ?? UNDERLAY, opts.tag ?? 'berth-test', opts.berthdArgs);
    opts.onCreated?.(lab);
    try {
      const ul = lab.ns('ul');
      await makeUnderlay(topo, ul);
      await attachToUnderlay(topo, ul, lab.ns('etcd'), lab.etcdIp, 'u-etcd');
      lab.etcdDir = await mkdtemp(join(tmpdir(), `${lab.tag}-etcd-`));
      await lab.startEtcd();
      if (opts.plain) await attachToUnderlay(topo, ul, lab.ns('plain'), `${lab.underlay}.50`, 'u-plain');
      for (let i = 1; i <= n; i++) {
        const short = lab.ns(`h${i}`);
        const ip = `${lab.underlay}.${10 + i}`;
        await attachToUnderlay(topo, ul, short, ip, `u-h${i}`);
        const dir = await mkdtemp(join(tmpdir(), `${lab.tag}-state-`));
        await writeFile(join(dir, 'host-resolv.conf'), 'nameserver 192.0.2.53\n');
        const h = new LabHost(lab, short, ip, dir, await PrivateBpffs.create(`${lab.tag}-bpffs-`));
        lab.hosts.push(h);
        await h.start();
      }
      return lab;
    } catch (e) {
      if (!opts.onCreated) await lab.destroy();
      throw e;
    }
  }

  async startEtcd(): Promise<void> {
    this.etcdLog = '';
    const ns = this.topo.ns(this.ns('etcd'));
    const url = `http://${this.etcdIp}:2379`;
    this.etcdProc = spawn('ip', ['netns', 'exec', ns, 'etcd', '--name', 'lab', '--data-dir', this.etcdDir,
      '--listen-client-urls', url, '--advertise-client-urls', url,
      '--listen-peer-urls', 'http://127.0.0.1:2380', '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
      '--initial-cluster', 'lab=http://127.0.0.1:2380'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer) => (this.etcdLog = (this.etcdLog + d.toString()).slice(-20_000));
    this.etcdProc.stdout!.on('data', keep);
    this.etcdProc.stderr!.on('data', keep);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = await tryRun('ip', ['netns', 'exec', ns, 'etcdctl', '--endpoints', url, '--dial-timeout', '1s', 'endpoint', 'health']);
      if (r.code === 0) return;
      if (Date.now() > deadline || this.etcdProc.exitCode !== null) throw new Error(`etcd did not start:\n${this.etcdLog.slice(-4000)}`);
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
    return run('ip', ['netns', 'exec', this.topo.ns(this.ns('etcd')), 'etcdctl', '--endpoints', `http://${this.etcdIp}:2379`, ...args]);
  }

  async tempDir(): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), `${this.tag}-`));
    this.extraDirs.push(d);
    return d;
  }

  /**
   * Stops every berthd (@graceful: SIGTERM first, for up to 5 s), removes
   * their sandboxes, directories and bpffs mounts, stops etcd, and removes
   * the namespaces when the topology is the lab's own.
   */
  async destroy(opts: { graceful?: boolean } = {}): Promise<void> {
    for (const h of this.hosts) {
      if (opts.graceful && h.daemon?.running) await bounded(h.daemon.stop('SIGTERM'), 5_000).catch(() => undefined);
      await h.kill().catch(() => undefined);
      await removeLeftovers(h.stateDir).catch(() => undefined);
      await h.bpffs.release().catch(() => undefined);
      await rm(h.stateDir, { recursive: true, force: true });
    }
    await this.stopEtcd().catch(() => undefined);
    if (this.etcdDir) await rm(this.etcdDir, { recursive: true, force: true });
    for (const d of this.extraDirs) await rm(d, { recursive: true, force: true });
    if (this.ownsTopo) await this.topo.destroy();
  }
}
