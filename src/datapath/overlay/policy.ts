/**
 * The overlay's policy maps (bpf/lib/overlay_policy.h): each network's
 * checks, each local port's own addresses, this host's endpoint addresses,
 * the links that cross hosts, and the drops by reason. User space writes
 * entries; the programs decide.
 */
import type { BpfObject } from '../../bpf/object.js';
import type { BpfMap, PerCpuMap } from '../../bpf/map.js';
import { counter, dropReasons, type Counter } from '../../bpf/abi.js';
import { ovlGuard, ovlIpKey, ovlLinkKey, ovlNeigh, ovlPolicy, u32, OvlGuardFlag, OvlPolicyFlag, type OvlGuard, type OvlIpKey, type OvlLinkKey } from './abi.js';

/** What an overlay network checks across hosts. */
export interface OverlayNetPolicy {
  icc: boolean;
  internal: boolean;
}

export function policyFlags(p: OverlayNetPolicy): number {
  return (p.icc ? 0 : OvlPolicyFlag.NoIcc) | (p.internal ? OvlPolicyFlag.Internal : 0);
}

/** A local port's guard: the addresses it sends as, and whether an egress allow-list holds it to members. */
export function guardOf(mac: string, v4: string | undefined, egress: boolean): OvlGuard {
  return { mac, v4: v4 ?? '', flags: egress ? OvlGuardFlag.Egress : 0 };
}

const linkId = (k: OvlLinkKey) => `${k.vni}/${k.client}/${k.target}/${k.port}/${k.proto}`;

export class OverlayPolicyMaps {
  private constructor(
    private readonly policy: BpfMap<number, { flags: number }>,
    private readonly guard: BpfMap<number, OvlGuard>,
    private readonly localIps: BpfMap<OvlIpKey, { mac: string }>,
    private readonly links: BpfMap<OvlLinkKey, number>,
    private readonly drops: PerCpuMap<number, Counter>,
  ) {}

  static of(obj: BpfObject): OverlayPolicyMaps {
    return new OverlayPolicyMaps(
      obj.map('berth_ovl_policy', u32, ovlPolicy),
      obj.map('berth_ovl_guard', u32, ovlGuard),
      obj.map('berth_ovl_local_ips', ovlIpKey, ovlNeigh),
      obj.map('berth_ovl_links', ovlLinkKey, u32),
      obj.perCpuMap('berth_ovl_drops', u32, counter),
    );
  }

  /** An unchecked network (icc, not internal) has no entry: the programs' fast path. */
  async setNetwork(vni: number, p: OverlayNetPolicy): Promise<void> {
    const flags = policyFlags(p);
    if (flags) await this.policy.update(vni, { flags });
    else await this.policy.delete(vni);
  }

  async removeNetwork(vni: number): Promise<void> {
    await this.policy.delete(vni);
  }

  async setPort(ifindex: number, vni: number, g: OvlGuard): Promise<void> {
    await this.guard.update(ifindex, g);
    if (g.v4) await this.localIps.update({ vni, ip: g.v4 }, { mac: g.mac });
  }

  async removePort(ifindex: number | undefined, vni: number, v4: string | undefined): Promise<void> {
    if (ifindex !== undefined) await this.guard.delete(ifindex);
    if (v4) await this.localIps.delete({ vni, ip: v4 });
  }

  /** Forgets guards of interfaces gone and local addresses whose MAC no port of @live (vni/mac) has. */
  async sweep(ifindexes: Set<number>, live: Set<string>): Promise<void> {
    for (const [i] of await this.guard.entries()) if (!ifindexes.has(i)) await this.guard.delete(i);
    for (const [k, v] of await this.localIps.entries()) if (!live.has(`${k.vni}/${v.mac}`)) await this.localIps.delete(k);
  }

  /** Makes the network policies and links exactly @nets and @links. */
  async sync(nets: Map<number, OverlayNetPolicy>, links: OvlLinkKey[]): Promise<void> {
    for (const [vni] of await this.policy.entries()) if (!nets.has(vni) || !policyFlags(nets.get(vni)!)) await this.policy.delete(vni);
    for (const [vni, p] of nets) if (policyFlags(p)) await this.policy.update(vni, { flags: policyFlags(p) });
    const want = new Map(links.map((k) => [linkId(k), k]));
    const have = new Set<string>();
    for (const [k] of await this.links.entries()) {
      const id = linkId(k);
      if (want.has(id)) have.add(id);
      else await this.links.delete(k);
    }
    for (const [id, k] of want) if (!have.has(id)) await this.links.update(k, 1);
  }

  /** The overlay's policy drops by reason name, summed over CPUs (reasons never hit are left out). */
  async dropCounts(): Promise<Record<string, { packets: number; bytes: number }>> {
    const out: Record<string, { packets: number; bytes: number }> = {};
    for (const r of Object.keys(dropReasons).map(Number)) {
      if (r === 0) continue;
      const per = (await this.drops.lookup(r)) ?? [];
      const c = per.reduce((a, x) => ({ packets: a.packets + x.packets, bytes: a.bytes + x.bytes }), { packets: 0n, bytes: 0n });
      if (c.packets) out[dropReasons[r]!.name] = { packets: Number(c.packets), bytes: Number(c.bytes) };
    }
    return out;
  }
}
