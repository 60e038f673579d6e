/**
 * The benchmark's worlds, all in namespaces the harness makes (prefix
 * "bb-bench-"), never the root namespace:
 *
 *  limit:  lv1 ══ lv2                      plain veth pair, nothing else
 *          lc1 ─┐                          veth + Linux bridge br0 in lhost,
 *          lc2 ─┴ br0 (lhost) ── lext      routed uplink to lext; no iptables
 *                                          rules, no NAT, bridge-nf-call off
 *  berth:  s1 ─┐                           sandboxes made through berthd's API
 *          s2 ─┴ berth0 (bhost) ── bext    berthd --datapath iptables in bhost
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, tryRun } from '../../src/exec.js';
import { Topology } from '../../src/netns/topology.js';
import { BerthdProcess } from '../../src/daemon/spawn.js';
import { removeLeftovers } from '../../src/daemon/leftovers.js';
import { ApiClient } from '../../src/api/client.js';
import type { SandboxView } from '../../src/api/views.js';
import { PORTS } from './tools.js';

export const PREFIX = 'bb-bench-';
export const LIMIT = { v1: '10.98.0.1', v2: '10.98.0.2', gw: '10.99.0.1', c1: '10.99.0.2', c2: '10.99.0.3', up: '198.19.0.1', ext: '198.19.0.2' };
export const BERTH = { up: '198.18.0.1', ext: '198.18.0.2' };

/** Client-side sysctls so connection-rate runs do not run out of ports (namespace-local). */
export async function clientSysctls(nsPath: string): Promise<void> {
  await run('nsenter', [`--net=${nsPath}`, '--', 'sysctl', '-qw', 'net.ipv4.tcp_tw_reuse=1', 'net.ipv4.ip_local_port_range=1024 65000']);
}

export class LimitWorld {
  constructor(readonly topo: Topology) {}

  path(short: string): string {
    return this.topo.nsPath(short);
  }

  static async build(topo: Topology): Promise<LimitWorld> {
    const w = new LimitWorld(topo);
    for (const n of ['lv1', 'lv2', 'lhost', 'lc1', 'lc2', 'lext']) await topo.addNetns(n);
    await topo.veth({ ns: 'lv1', name: 'eth0', addr: `${LIMIT.v1}/24` }, { ns: 'lv2', name: 'eth0', addr: `${LIMIT.v2}/24` });
    const ip = (ns: string, ...args: string[]) => run('ip', ['-n', topo.ns(ns), ...args]);
    await ip('lhost', 'link', 'add', 'br0', 'type', 'bridge');
    await ip('lhost', 'addr', 'add', `${LIMIT.gw}/24`, 'dev', 'br0');
    await ip('lhost', 'link', 'set', 'br0', 'up');
    for (const [c, addr, port] of [['lc1', LIMIT.c1, 'p1'], ['lc2', LIMIT.c2, 'p2']] as const) {
      await topo.veth({ ns: 'lhost', name: port }, { ns: c, name: 'eth0', addr: `${addr}/24` });
      await ip('lhost', 'link', 'set', port, 'master', 'br0');
      await ip(c, 'route', 'add', 'default', 'via', LIMIT.gw);
    }
    await topo.veth({ ns: 'lhost', name: 'uplink0', addr: `${LIMIT.up}/24` }, { ns: 'lext', name: 'eth0', addr: `${LIMIT.ext}/24` });
    await ip('lext', 'route', 'add', '10.99.0.0/24', 'via', LIMIT.up);
    await topo.exec('lhost', 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    // Bridged frames must not go through netfilter in the limit (the sysctl is per namespace; absent without br_netfilter).
    await tryRun('ip', ['netns', 'exec', topo.ns('lhost'), 'sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=0']);
    for (const c of ['lv1', 'lc1', 'lext']) await clientSysctls(w.path(c));
    return w;
  }
}

export interface SandboxInfo {
  id: string;
  netns: string;
  ip: string;
}

export class BerthWorld {
  daemon: BerthdProcess | undefined;
  readonly api: ApiClient;
  readonly sandboxes: SandboxInfo[] = [];
  /** berthd's own pid, from /v1/info */
  pid: number | undefined;

  private constructor(
    readonly topo: Topology,
    readonly stateDir: string,
  ) {
    this.api = new ApiClient(join(stateDir, 'berth.sock'));
  }

  path(short: string): string {
    return this.topo.nsPath(short);
  }

  /** Makes bhost and bext and starts berthd in bhost; the caller destroys it (also on failure). */
  static async build(topo: Topology, onCreated: (w: BerthWorld) => void): Promise<BerthWorld> {
    const stateDir = await mkdtemp(join(tmpdir(), 'bb-bench-state-'));
    const w = new BerthWorld(topo, stateDir);
    onCreated(w);
    await topo.addNetns('bhost');
    await topo.addNetns('bext');
    await topo.veth({ ns: 'bhost', name: 'uplink0', addr: `${BERTH.up}/24` }, { ns: 'bext', name: 'eth0', addr: `${BERTH.ext}/24` });
    const resolv = join(stateDir, 'host-resolv.conf');
    await writeFile(resolv, `nameserver ${BERTH.ext}\n`);
    w.daemon = await BerthdProcess.start(topo.nsPath('bhost'), [
      '--state-dir', stateDir, '--socket', join(stateDir, 'berth.sock'), '--log-level', 'info', '--resolv-conf', resolv, '--datapath', 'iptables',
    ], { timeoutMs: 20_000 });
    await clientSysctls(w.path('bext'));
    return w;
  }

  async info(): Promise<Record<string, unknown>> {
    return this.api.call<Record<string, unknown>>('GET', '/v1/info');
  }

  async createSandbox(name: string, publish: string[] = []): Promise<SandboxInfo> {
    const v = await this.api.call<SandboxView>('POST', '/v1/sandboxes', { name, network: 'bridge', publish, cmd: ['sleep', 'infinity'] });
    const n = Object.values(v.NetworkSettings.Networks)[0];
    const sb = { id: v.Id, netns: v.NetworkSettings.SandboxKey, ip: n?.IPAddress ?? '' };
    this.sandboxes.push(sb);
    return sb;
  }

  async removeSandbox(id: string): Promise<void> {
    await this.api.call('DELETE', `/v1/sandboxes/${encodeURIComponent(id)}?force=1`);
    const i = this.sandboxes.findIndex((s) => s.id === id);
    if (i >= 0) this.sandboxes.splice(i, 1);
  }

  /** The two benchmark sandboxes: s1 (client), s2 (servers, published). */
  async makePair(): Promise<[SandboxInfo, SandboxInfo]> {
    const s1 = await this.createSandbox('s1');
    const s2 = await this.createSandbox('s2', [`${PORTS.iperf}:${PORTS.iperf}`, `${PORTS.sockperf}:${PORTS.sockperf}`, `${PORTS.http}:${PORTS.http}`]);
    for (const s of [s1, s2]) await clientSysctls(s.netns);
    return [s1, s2];
  }

  /** berthd's pid, its RSS in kB, and how many processes its tree holds. */
  async daemonStats(): Promise<{ pid: number; rssKb: number; processes: number }> {
    const pid = this.pid ?? this.daemon!.proc.pid!;
    const { readFile, readdir } = await import('node:fs/promises');
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    const parents = new Map<number, number>();
    for (const d of await readdir('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const st = await readFile(`/proc/${d}/stat`, 'utf8');
        const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
        parents.set(Number(d), ppid);
      } catch {
        /* gone */
      }
    }
    const inTree = (p: number): boolean => {
      for (let i = 0; i < 64 && p > 1; i++) {
        if (p === pid) return true;
        p = parents.get(p) ?? 0;
      }
      return false;
    };
    let processes = 0;
    for (const p of parents.keys()) if (inTree(p)) processes++;
    return { pid, rssKb, processes };
  }

  /** Removes sandboxes through the API while berthd runs, then stops it and removes whatever is left. */
  async destroy(): Promise<void> {
    if (this.daemon?.running) {
      for (const s of [...this.sandboxes]) await bounded(this.removeSandbox(s.id), 15_000).catch(() => undefined);
      await bounded(this.daemon.stop('SIGTERM'), 5_000).catch(() => undefined);
    }
    if (this.daemon?.running) await this.daemon.stop('SIGKILL').catch(() => undefined);
    await removeLeftovers(this.stateDir);
    await rm(this.stateDir, { recursive: true, force: true });
  }
}

export function benchTopology(): Topology {
  return new Topology(PREFIX);
}

/** @p, or a rejection after @ms. */
export function bounded<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(`timed out after ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}
