/**
 * The conformance world: a TestHost running berthd with a given datapath,
 * networks and sandboxes made through the real CLI, a second external
 * namespace behind ext, IPv6 on the uplink, and an agent (agent.mjs) in
 * every namespace that serves, probes and reports what it saw. Everything
 * lives in namespaces the test made; destroy() removes them, also after a
 * failure half-way through the build.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { run } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import type { SandboxView } from '../../src/api/views.js';
import type { Topology } from '../../harness/topology.js';
import { testTopology } from './kernel.js';
import { BerthHost as TestHost, UPLINK } from '../../harness/berthd.js';

export const AGENT = projectPath('test', 'conformance', 'agent.mjs');
export const SCTP = projectPath('test', 'conformance', 'sctp.py');

export interface ProbeReply {
  /** the agent that answered */
  by: string;
  peer: string;
  peerPort: number;
  local?: string;
  localPort: number;
}
export interface ProbeResult {
  ok: boolean;
  reply?: ProbeReply;
  error?: string;
}

/** A JSON-lines agent inside one namespace. */
export class Agent {
  private seq = 0;
  private readonly waiting = new Map<number, (v: Record<string, unknown>) => void>();

  private constructor(
    readonly name: string,
    private readonly proc: ChildProcess,
  ) {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as { id?: number };
      if (msg.id === undefined) return;
      this.waiting.get(msg.id)?.(msg as Record<string, unknown>);
      this.waiting.delete(msg.id);
    });
  }

  static async start(name: string, netnsPath: string): Promise<Agent> {
    const proc = spawn('nsenter', [`--net=${netnsPath}`, '--', process.execPath, AGENT, name], { stdio: ['pipe', 'pipe', 'inherit'] });
    const a = new Agent(name, proc);
    await new Promise<void>((resolve, reject) => {
      proc.once('exit', (code) => reject(new Error(`agent ${name} exited (${code}) before it was ready`)));
      proc.stdout!.once('data', () => resolve());
    });
    return a;
  }

  request<T>(req: Record<string, unknown>): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve) => {
      this.waiting.set(id, resolve as (v: Record<string, unknown>) => void);
      this.proc.stdin!.write(JSON.stringify({ id, ...req }) + '\n');
    });
  }

  async listen(proto: 'tcp' | 'udp', port: number, host = '::'): Promise<void> {
    const r = await this.request<{ ok?: boolean; error?: string }>({ op: 'listen', proto, port, host });
    if (r.ok === false) throw new Error(`agent ${this.name}: listen ${proto} ${host} ${port}: ${r.error}`);
  }

  /** Stops serving @proto/@port (a published port cannot be taken while the agent holds it). */
  async unlisten(proto: 'tcp' | 'udp', port: number): Promise<void> {
    const r = await this.request<{ ok?: boolean; error?: string }>({ op: 'unlisten', proto, port });
    if (r.ok === false) throw new Error(`agent ${this.name}: unlisten ${proto} ${port}: ${r.error}`);
  }

  probe(proto: 'tcp' | 'udp', host: string, port: number, opts: { src?: string; token?: string; timeoutMs?: number } = {}): Promise<ProbeResult> {
    return this.request({ op: 'probe', proto, host, port, timeoutMs: 800, ...opts });
  }

  async seen(token: string): Promise<string | null> {
    return (await this.request<{ peer: string | null }>({ op: 'seen', token })).peer;
  }

  async accepted(port: number): Promise<number> {
    return (await this.request<{ count: number }>({ op: 'accepted', port })).count;
  }

  exec(cmd: string, args: string[], timeoutMs = 5000): Promise<{ code: number; stdout: string; stderr: string }> {
    return this.request({ op: 'exec', cmd, args, timeoutMs });
  }

  /** Like exec, but rejects on a non-zero exit. */
  async sh(cmd: string, ...args: string[]): Promise<string> {
    const r = await this.exec(cmd, args);
    if (r.code !== 0) throw new Error(`agent ${this.name}: '${cmd} ${args.join(' ')}' failed (${r.code}): ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Packets sent by @ifname, as the namespace's own netlink says (sysfs would show the root namespace). */
  async txPackets(ifname: string): Promise<number> {
    const j = JSON.parse(await this.sh('ip', '-s', '-j', 'link', 'show', 'dev', ifname)) as { stats64: { tx: { packets: number } } }[];
    return j[0]!.stats64.tx.packets;
  }

  stop(): void {
    this.proc.stdin!.end();
    this.proc.kill('SIGKILL');
  }
}

export interface SandboxInfo {
  name: string;
  netns: string;
  v4: string;
  v6?: string;
  mac: string;
  gateway: string;
}

export interface WorldSpec {
  networks: { name: string; args: string[] }[];
  sandboxes: { name: string; network: string; args?: string[] }[];
  /** ports every sandbox agent serves */
  listen: { tcp: number[]; udp: number[] };
}

/** The outside beyond ext: a second external source, routed through ext. */
export const EXT2 = { ext: '198.51.100.1', ext2: '198.51.100.2' };
/** A second address of the host on the uplink (host-IP binding is checked against it). */
export const HOST_ALT = '198.18.0.11';
export const UPLINK6 = { host: '2001:db8:18::1', ext: '2001:db8:18::2' };

export class World {
  readonly agents = new Map<string, Agent>();
  readonly sandboxes = new Map<string, SandboxInfo>();

  private constructor(
    readonly topo: Topology,
    readonly h: TestHost,
  ) {}

  static async build(datapath: string, spec: WorldSpec, extraArgs: string[] = []): Promise<World> {
    const topo = testTopology();
    let w: World | undefined;
    try {
      const h = await TestHost.create(topo, 'host', ['--datapath', datapath, ...extraArgs]);
      w = new World(topo, h);
      await w.outside();
      for (const n of spec.networks) await h.berth('network', 'create', ...n.args, n.name);
      for (const s of spec.sandboxes) await h.berth('run', '-d', '--name', s.name, '--network', s.network, ...(s.args ?? []), '--', 'sleep', 'infinity');
      const views = JSON.parse((await h.berth('inspect', ...spec.sandboxes.map((s) => s.name))).stdout) as SandboxView[];
      for (const s of spec.sandboxes) {
        const v = views.find((x) => x.Name === s.name)!;
        const n = v.NetworkSettings.Networks[s.network]!;
        w.sandboxes.set(s.name, { name: s.name, netns: v.NetworkSettings.SandboxKey, v4: n.IPAddress, ...(n.IPv6Address ? { v6: n.IPv6Address } : {}), mac: n.MacAddress, gateway: n.Gateway });
      }
      const starts: [string, string][] = [['ext', topo.nsPath('ext')], ['ext2', topo.nsPath('ext2')], ['host', h.nsPath], ...[...w.sandboxes.values()].map((s) => [s.name, s.netns] as [string, string])];
      for (const a of await Promise.all(starts.map(([name, path]) => Agent.start(name, path)))) w.agents.set(a.name, a);
      await Promise.all([...w.sandboxes.keys()].map(async (name) => {
        const a = w!.agent(name);
        for (const p of spec.listen.tcp) await a.listen('tcp', p);
        for (const p of spec.listen.udp) await a.listen('udp', p);
      }));
      return w;
    } catch (e) {
      if (w) await w.destroy();
      else await topo.destroy();
      throw e;
    }
  }

  /** ext2 behind ext, IPv6 and a second address on the uplink, routes for the crafted-packet cases. */
  private async outside(): Promise<void> {
    const t = this.topo;
    const ip = (ns: string, ...args: string[]) => run('ip', ['-n', t.ns(ns), ...args]);
    await t.addNetns('ext2');
    await t.veth({ ns: 'ext', name: 'down0', addr: `${EXT2.ext}/24` }, { ns: 'ext2', name: 'eth0', addr: `${EXT2.ext2}/24` });
    await ip('ext2', 'route', 'add', 'default', 'via', EXT2.ext);
    await t.exec('ext', 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    await ip('host', 'route', 'add', '198.51.100.0/24', 'via', UPLINK.ext);
    await ip('host', 'addr', 'add', `${HOST_ALT}/24`, 'dev', 'uplink0');
    await ip('host', 'addr', 'add', `${UPLINK6.host}/64`, 'dev', 'uplink0', 'nodad');
    await ip('ext', 'addr', 'add', `${UPLINK6.ext}/64`, 'dev', 'eth0', 'nodad');
  }

  agent(name: string): Agent {
    const a = this.agents.get(name);
    if (!a) throw new Error(`no agent '${name}'`);
    return a;
  }

  sb(name: string): SandboxInfo {
    const s = this.sandboxes.get(name);
    if (!s) throw new Error(`no sandbox '${name}'`);
    return s;
  }

  async destroy(): Promise<void> {
    for (const a of this.agents.values()) a.stop();
    this.agents.clear();
    await this.h.destroy();
    await this.topo.destroy();
  }
}
