/**
 * The overlay's kernel side: the collect-metadata vxlan device per UDP port,
 * bpf/overlay.c attached with tcx (on that device, and on every overlay
 * sandbox's veth), and its maps. Maps and links are pinned in a bpffs
 * directory, so tunnels keep forwarding while berthd is down, and a restarted
 * berthd takes the same maps and attachments over instead of re-attaching.
 * User space only writes map entries; every packet decision is in the program.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { BpfObject, type BpfProgram } from '../../bpf/object.js';
import { BpfLink } from '../../bpf/link.js';
import { BpfMap, PerCpuMap } from '../../bpf/map.js';
import { counter, type Counter } from '../../bpf/abi.js';
import { bpfObjectPath } from '../../paths.js';
import { nl } from '../../netlink/index.js';
import { hostKey, ovlIpKey, ovlLocal, ovlMacKey, ovlNeigh, ovlNet, ovlPort, ovlRemote, u32, OVL_STAT_SLOTS, type OvlIpKey, type OvlLinkKey, type OvlMacKey } from './abi.js';
import { guardOf, OverlayPolicyMaps, type OverlayNetPolicy } from './policy.js';

/** One remote endpoint as the cluster knows it. */
export interface RemoteEndpoint {
  vni: number;
  mac: string;
  v4?: string;
  hostIp: string;
}

export function vxlanDeviceName(port: number): string {
  return `berth_vx${port}`;
}

/**
 * What the overlay driver asks of the dataplane: the tunnel device, networks
 * bound to their bridges, and sandbox ports. The only way in from drivers/.
 */
export interface OverlayPorts {
  ensureVxlan(port: number): Promise<number>;
  /** @policy: what crosses hosts on it (icc=false: links only; internal: members only) */
  addNetwork(vni: number, bridge: string, policy: OverlayNetPolicy): Promise<void>;
  removeNetwork(vni: number): Promise<void>;
  /** @port: the endpoint's own addresses (all it may send as) and whether an egress allow-list holds it */
  addPort(hostIf: string, vni: number, udpPort: number, port: OverlayPortSpec): Promise<void>;
  removePort(hostIf: string, vni: number, port: Pick<OverlayPortSpec, 'mac' | 'v4'>): Promise<void>;
  /** true when @hostIf carries the dataplane's (pinned) attachment */
  portAttached(hostIf: string): boolean;
  /** Removes attachments and entries of ports whose interface is gone. */
  sweep(): Promise<void>;
}

/** A local overlay endpoint as its port sees it. */
export interface OverlayPortSpec {
  mac: string;
  v4?: string;
  /** the sandbox has an egress allow-list: only members of the network through the tunnel */
  egress: boolean;
}

export class OverlayDataplane implements OverlayPorts {
  readonly policy: OverlayPolicyMaps;

  private constructor(
    private readonly obj: BpfObject,
    readonly pinDir: string,
    private readonly log: Logger,
    private readonly fromSandbox: BpfProgram,
    private readonly fromTunnel: BpfProgram,
    private readonly ports: BpfMap<number, { vni: number; vxlanIfindex: number }>,
    private readonly nets: BpfMap<number, { bridgeIfindex: number }>,
    private readonly hosts: BpfMap<string, number>,
    private readonly remoteMacs: BpfMap<OvlMacKey, { hostIp: string }>,
    private readonly remoteIps: BpfMap<OvlIpKey, { mac: string }>,
    private readonly locals: BpfMap<OvlMacKey, { ifindex: number }>,
    private readonly stats: PerCpuMap<number, Counter>,
  ) {
    this.policy = OverlayPolicyMaps.of(obj);
  }

  /** Loads bpf/overlay.c with its maps pinned under @pinDir (reusing pins left by an earlier berthd). */
  static async open(pinDir: string, log: Logger): Promise<OverlayDataplane> {
    await mkdir(join(pinDir, 'links'), { recursive: true });
    const obj = await BpfObject.load(bpfObjectPath('overlay'), { pinRoot: pinDir });
    return new OverlayDataplane(
      obj, pinDir, log,
      obj.program('berth_ovl_from_sandbox'),
      obj.program('berth_ovl_from_tunnel'),
      obj.map('berth_ovl_ports', u32, ovlPort),
      obj.map('berth_ovl_nets', u32, ovlNet),
      obj.map('berth_ovl_hosts', hostKey, u32),
      obj.map('berth_ovl_remote_macs', ovlMacKey, ovlRemote),
      obj.map('berth_ovl_remote_ips', ovlIpKey, ovlNeigh),
      obj.map('berth_ovl_locals', ovlMacKey, ovlLocal),
      obj.perCpuMap('berth_ovl_stats', u32, counter),
    );
  }

  /** Attaches @prog at tc ingress of @ifname unless a pinned link already holds it there. */
  private async attach(ifname: string, prog: BpfProgram): Promise<void> {
    const link = (await nl.linkList({})).find((l) => l.name === ifname);
    if (!link) throw new Error(`overlay: interface '${ifname}' does not exist`);
    const pin = join(this.pinDir, 'links', ifname);
    const old = await BpfLink.fromPin(pin).catch(() => undefined);
    if (old) {
      const info = old.info;
      old.close();
      if (!info.detached && info.ifindex === link.ifindex && info.progId) return;
      await rm(pin, { force: true });
    }
    const l = await prog.attachTc({ ifindex: link.ifindex, direction: 'ingress', mode: 'tcx' });
    try {
      await l.pin(pin);
    } finally {
      l.close();
    }
  }

  private async detach(ifname: string): Promise<void> {
    const pin = join(this.pinDir, 'links', ifname);
    const old = await BpfLink.fromPin(pin).catch(() => undefined);
    if (old) {
      await old.detach().catch(() => undefined);
      old.close();
    }
    await rm(pin, { force: true });
  }

  /** The collect-metadata vxlan device for UDP @port, up, with the receive program; its ifindex. */
  async ensureVxlan(port: number): Promise<number> {
    const name = vxlanDeviceName(port);
    let link = (await nl.linkList({})).find((l) => l.name === name);
    if (!link) {
      await nl.linkAddVxlan({ name, vni: 0, port, external: true, learning: false });
      link = (await nl.linkList({})).find((l) => l.name === name)!;
    }
    await nl.linkSet({ name, up: true });
    await this.attach(name, this.fromTunnel);
    return link.ifindex;
  }

  async addNetwork(vni: number, bridge: string, policy: OverlayNetPolicy): Promise<void> {
    const br = (await nl.linkList({})).find((l) => l.name === bridge);
    if (!br) throw new Error(`overlay: bridge '${bridge}' does not exist`);
    // The policy before the binding: a network is never reachable unchecked.
    await this.policy.setNetwork(vni, policy);
    await this.nets.update(vni, { bridgeIfindex: br.ifindex });
  }

  async removeNetwork(vni: number): Promise<void> {
    await this.nets.delete(vni);
    await this.policy.removeNetwork(vni);
  }

  /** Makes @hostIf (an overlay sandbox's veth, host side, for the endpoint of @mac) an overlay port of @vni. */
  async addPort(hostIf: string, vni: number, udpPort: number, port: OverlayPortSpec): Promise<void> {
    const vx = await this.ensureVxlan(udpPort);
    const link = (await nl.linkList({})).find((l) => l.name === hostIf);
    if (!link) throw new Error(`overlay: interface '${hostIf}' does not exist`);
    const { mac } = port;
    await this.policy.setPort(link.ifindex, vni, guardOf(mac, port.v4, port.egress));
    await this.ports.update(link.ifindex, { vni, vxlanIfindex: vx });
    await this.locals.update({ vni, mac }, { ifindex: link.ifindex });
    await this.attach(hostIf, this.fromSandbox);
  }

  portAttached(hostIf: string): boolean {
    return existsSync(join(this.pinDir, 'links', hostIf));
  }

  async removePort(hostIf: string, vni: number, port: Pick<OverlayPortSpec, 'mac' | 'v4'>): Promise<void> {
    const link = (await nl.linkList({})).find((l) => l.name === hostIf);
    if (link) await this.ports.delete(link.ifindex);
    await this.locals.delete({ vni, mac: port.mac });
    await this.policy.removePort(link?.ifindex, vni, port.v4);
    await this.detach(hostIf);
  }

  /** Forgets ports and link pins of interfaces that no longer exist (veths deleted while berthd was down). */
  async sweep(): Promise<void> {
    const links = await nl.linkList({});
    const ifindexes = new Set(links.map((l) => l.ifindex));
    const names = new Set(links.map((l) => l.name));
    for (const [ifindex] of await this.ports.entries()) if (!ifindexes.has(ifindex)) await this.ports.delete(ifindex);
    for (const [k, v] of await this.locals.entries()) if (!ifindexes.has(v.ifindex)) await this.locals.delete(k);
    const live = new Set((await this.locals.entries()).map(([k]) => `${k.vni}/${k.mac}`));
    await this.policy.sweep(ifindexes, live);
    for (const f of await readdir(join(this.pinDir, 'links')).catch(() => [] as string[])) {
      if (!names.has(f)) await rm(join(this.pinDir, 'links', f), { force: true });
    }
  }

  /**
   * Makes the host and remote-endpoint maps exactly @hosts and @remotes:
   * what is missing is added, what changed is rewritten, the rest removed.
   */
  async syncRemote(hosts: string[], remotes: RemoteEndpoint[]): Promise<void> {
    const wantHosts = new Set(hosts);
    for (const [h] of await this.hosts.entries()) if (!wantHosts.has(h)) await this.hosts.delete(h);
    for (const h of wantHosts) await this.hosts.update(h, 1);

    const macKey = (k: OvlMacKey) => `${k.vni}/${k.mac}`;
    const ipKey = (k: OvlIpKey) => `${k.vni}/${k.ip}`;
    const wantMacs = new Map(remotes.map((r) => [macKey(r), r]));
    const wantIps = new Map(remotes.filter((r) => r.v4).map((r) => [ipKey({ vni: r.vni, ip: r.v4! }), r]));
    const haveMacs = new Map((await this.remoteMacs.entries()).map(([k, v]) => [macKey(k), { k, v }]));
    const haveIps = new Map((await this.remoteIps.entries()).map(([k, v]) => [ipKey(k), { k, v }]));
    for (const [key, { k }] of haveMacs) if (!wantMacs.has(key)) await this.remoteMacs.delete(k);
    for (const [key, { k }] of haveIps) if (!wantIps.has(key)) await this.remoteIps.delete(k);
    for (const [key, r] of wantMacs) {
      if (haveMacs.get(key)?.v.hostIp !== r.hostIp) await this.remoteMacs.update({ vni: r.vni, mac: r.mac }, { hostIp: r.hostIp });
    }
    for (const [key, r] of wantIps) {
      if (haveIps.get(key)?.v.mac !== r.mac) await this.remoteIps.update({ vni: r.vni, ip: r.v4! }, { mac: r.mac });
    }
  }

  /** Makes the overlay networks' policies and the links across hosts exactly @nets and @links. */
  async syncPolicy(nets: Map<number, OverlayNetPolicy>, links: OvlLinkKey[]): Promise<void> {
    await this.policy.sync(nets, links);
  }

  /** Packet counters by enum berth_ovl_stat, summed over CPUs. */
  async counters(): Promise<Counter[]> {
    const out: Counter[] = [];
    for (let i = 0; i < OVL_STAT_SLOTS; i++) {
      const per = (await this.stats.lookup(i)) ?? [];
      out.push(per.reduce((a, c) => ({ packets: a.packets + c.packets, bytes: a.bytes + c.bytes }), { packets: 0n, bytes: 0n }));
    }
    return out;
  }

  close(): void {
    this.log.debug('overlay dataplane closed; pinned maps and links stay');
    this.obj.close();
  }
}
