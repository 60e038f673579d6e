/**
 * The benchmark's worlds, all in namespaces the harness makes (prefix
 * "bb-bench-"), never the root namespace; berth's are harness/berthd.ts's
 * BerthHost with the benchmark's sandboxes on it:
 *
 *  limit:  lv1 ══ lv2                      plain veth pair, nothing else
 *          lc1 ─┐                          veth + Linux bridge br0 in lhost,
 *          lc2 ─┴ br0 (lhost) ── lext      routed uplink to lext; no iptables
 *                                          rules, no NAT, bridge-nf-call off
 *  berth:  s1 ─┐                           sandboxes made through berthd's API,
 *          s2 ─┴ berth0 (DP-host) ── DP-ext  one world per datapath DP measured
 *                                          (berthd --datapath DP in DP-host)
 */
import { run, tryRun } from '../../src/exec.js';
import type { ApiClient } from '../../src/api/client.cjs';
import { BerthHost, UPLINK, type BerthdProcess } from '../../harness/berthd.js';
import { parseServerTiming } from '../../src/timing.js';
import { bounded } from '../../harness/procs.js';
import { Topology } from '../../harness/topology.js';
import type { SandboxView } from '../../src/api/views.js';
import { PORTS } from './tools.js';
import { treeStats, type TreeStats } from './procs.js';
import { projectPath } from '../../src/paths.js';

const BERTHD_JS = projectPath('dist', 'src', 'daemon', 'berthd.js');

export const PREFIX = 'bb-bench-';
export const LIMIT = { v1: '10.98.0.1', v2: '10.98.0.2', gw: '10.99.0.1', c1: '10.99.0.2', c2: '10.99.0.3', up: '198.19.0.1', ext: '198.19.0.2' };
/** the berth worlds' uplink: the harness's (harness/berthd.ts) */
export const BERTH = { up: UPLINK.host, ext: UPLINK.ext };

/**
 * Client-side sysctls so connection-rate runs do not run out of ports (namespace-local). In host namespaces
 * (widePortRange false) the ephemeral range is 40000-65000, clear of the published ports (20000-39999):
 * docker-proxy binds them there, and berthd refuses to publish a port a local socket holds (a TIME_WAIT
 * one of the 127.0.0.1 scenario included).
 */
export async function clientSysctls(nsPath: string, opts: { widePortRange?: boolean } = {}): Promise<void> {
  const range = [`net.ipv4.ip_local_port_range=${opts.widePortRange === false ? '40000 65000' : '1024 65000'}`];
  await run('nsenter', [`--net=${nsPath}`, '--', 'sysctl', '-qw', 'net.ipv4.tcp_tw_reuse=1', ...range]);
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
    for (const c of ['lv1', 'lc1', 'lext', 'lhost']) await clientSysctls(w.path(c));
    return w;
  }
}

export interface SandboxInfo {
  id: string;
  netns: string;
  ip: string;
  /** berthd's share of the create by phase, ms (its Server-Timing header; "total" is the whole share) */
  serverTiming: Record<string, number>;
}

export class BerthWorld {
  readonly sandboxes: SandboxInfo[] = [];
  /** berthd's own pid, from /v1/info */
  pid: number | undefined;
  /** berthd's instance name, from /v1/info (its sandbox namespaces are berth-<instance>-*) */
  instance: string | undefined;

  private constructor(
    readonly host: BerthHost,
    readonly datapath: string,
  ) {}

  /** The system's name in results: berth-<datapath>. */
  get name(): string {
    return `berth-${this.datapath}`;
  }

  get api(): ApiClient {
    return this.host.api;
  }

  get daemon(): BerthdProcess | undefined {
    return this.host.process;
  }

  path(which: 'host' | 'ext'): string {
    return which === 'host' ? this.host.nsPath : this.host.extPath;
  }

  /**
   * Makes <datapath>-host and <datapath>-ext and starts `berthd --datapath @datapath` in the host namespace (harness/berthd.ts);
   * the caller destroys the world (also on failure): @onCreated gets it before anything can fail.
   * Throws when berthd refuses to start, with its reason.
   */
  static async build(topo: Topology, datapath: string, onCreated: (w: BerthWorld) => void, opts: { cpuProf?: string } = {}): Promise<BerthWorld> {
    let w: BerthWorld | undefined;
    await BerthHost.create(topo, `${datapath}-host`, ['--datapath', datapath], {
      // a profile of berthd's JS thread over the whole run, written when berthd stops (bench --cpu-prof DIR)
      ...(opts.cpuProf ? { berthd: [process.execPath, '--cpu-prof', `--cpu-prof-dir=${opts.cpuProf}`, '--cpu-prof-interval', '250', BERTHD_JS] } : {}),
      ext: `${datapath}-ext`,
      statePrefix: `bb-bench-state-${datapath}-`,
      bpffsPrefix: `bb-bench-bpffs-${datapath}-`,
      timeoutMs: 30_000,
      onCreated: (h) => onCreated((w = new BerthWorld(h, datapath))),
    });
    await clientSysctls(w!.path('ext'));
    await clientSysctls(w!.path('host'), { widePortRange: false });
    const info = await w!.info();
    w!.pid = Number(info.pid);
    w!.instance = String(info.instance);
    return w!;
  }

  async info(): Promise<Record<string, unknown>> {
    return this.api.call<Record<string, unknown>>('GET', '/v1/info');
  }

  async createNetwork(name: string, options: Record<string, string> = {}): Promise<void> {
    await this.api.call('POST', '/v1/networks', { name, options });
  }

  async removeNetwork(name: string): Promise<void> {
    await this.api.call('DELETE', `/v1/networks/${encodeURIComponent(name)}`);
  }

  async createSandbox(name: string, publish: string[] = [], more: { network?: string; expose?: string[]; links?: string[] } = {}): Promise<SandboxInfo> {
    const { value: v, serverTiming } = await this.api.callTimed<SandboxView>('POST', '/v1/sandboxes', { name, network: 'bridge', publish, cmd: ['sleep', 'infinity'], ...more });
    const n = Object.values(v.NetworkSettings.Networks)[0];
    const sb = { id: v.Id, netns: v.NetworkSettings.SandboxKey, ip: n?.IPAddress ?? '', serverTiming: parseServerTiming(serverTiming) };
    this.sandboxes.push(sb);
    return sb;
  }

  async removeSandbox(id: string): Promise<void> {
    await this.removeSandboxTimed(id);
  }

  /** Removes sandbox @id; resolves with berthd's share of the remove by phase (as createSandbox's serverTiming). */
  async removeSandboxTimed(id: string): Promise<Record<string, number>> {
    const { serverTiming } = await this.api.callTimed('DELETE', `/v1/sandboxes/${encodeURIComponent(id)}?force=1`);
    const i = this.sandboxes.findIndex((s) => s.id === id);
    if (i >= 0) this.sandboxes.splice(i, 1);
    return parseServerTiming(serverTiming);
  }

  /** The two benchmark sandboxes: s1 (client), s2 (servers, published). */
  async makePair(): Promise<[SandboxInfo, SandboxInfo]> {
    const s1 = await this.createSandbox('s1');
    const s2 = await this.createSandbox('s2', [`${PORTS.iperf}:${PORTS.iperf}`, `${PORTS.sockperf}:${PORTS.sockperf}`, `${PORTS.http}:${PORTS.http}`]);
    for (const s of [s1, s2]) await clientSysctls(s.netns);
    return [s1, s2];
  }

  /** berthd's process tree (the sandboxes' commands are in it) with RSS, PSS and CPU. */
  async stats(): Promise<TreeStats> {
    return treeStats([this.pid ?? this.daemon!.proc.pid!]);
  }

  /** Removes sandboxes through the API while berthd runs, then stops it and removes whatever is left. */
  async destroy(): Promise<void> {
    // many sandboxes (policy-scale leaves hundreds): stopping berthd and removing its leftovers is much faster than one API call each
    if (this.daemon?.running && this.sandboxes.length <= 10) for (const s of [...this.sandboxes]) await bounded(this.removeSandbox(s.id), 15_000).catch(() => undefined);
    await this.host.destroy({ graceful: true });
  }
}

export function benchTopology(): Topology {
  return new Topology(PREFIX);
}
