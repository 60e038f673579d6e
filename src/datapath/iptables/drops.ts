/**
 * Drops by reason on the iptables datapath: the packet counters of the DROP
 * rules in berth's chains (`iptables-save -c`), each rule named with the
 * reason the eBPF datapath gives the same verdict (src/bpf/abi.ts), so that
 * `berth datapath` and the metrics read alike on both. Pure.
 */
import type { Family } from './chains.js';
import { CHAIN } from './chains.js';

export type Drops = Record<string, { packets: number; bytes: number }>;

/** The reason of one DROP rule of berth's (render.ts wrote it), or undefined for a rule that is not a drop. */
export function dropReason(family: Family, chain: string, spec: string): string | undefined {
  if (!/(^|\s)-j DROP$/.test(spec)) return undefined;
  if (family === 'eb') return / -p ARP /.test(` ${spec} `) ? 'spoof-arp' : 'spoof-mac';
  if (chain.startsWith(CHAIN.pubpolicy)) return 'publish-policy';
  switch (chain) {
    case CHAIN.prerouting:
      if (/--icmpv6-type 134(\s|$)/.test(spec)) return 'router-adv';
      if (/--icmpv6-type 137(\s|$)|--icmp-type 5(\s|$)/.test(spec)) return 'redirect';
      if (/--icmpv6-type 136(\s|$)/.test(spec)) return 'spoof-nd';
      if (/--sport (67|547) --dport (68|546)(\s|$)/.test(spec)) return 'dhcp-server';
      if (spec.includes('--physdev-in') || spec.includes('-m rpfilter')) return 'spoof-ip';
      // render.ts: '-s BLOCK -i UPLINK': a routed network's own block arriving from outside.
      if (/^-s \S+ -i \S+ -j DROP$/.test(spec)) return 'spoof-ip';
      if (spec.startsWith('-d 127.0.0.0/8 ')) return 'loopback';
      return 'family';
    case CHAIN.forward:
      // A routed icc=false network's members across hosts: the only DROPs here with a destination (render.ts).
      if (/(^|\s)-d \S+/.test(spec)) return 'icc';
      // '-o br -j DROP': nothing enters a network but replies and published flows; '-i br -j DROP': an internal network's way out.
      return spec.startsWith('-o ') ? 'direct' : 'internal';
    case CHAIN.isolation1:
      return 'internal';
    case CHAIN.isolation2:
      return 'isolation';
    case CHAIN.icc:
      return 'icc';
    case CHAIN.egress:
      return 'egress';
    case CHAIN.input:
      // guard.ts: '-d GW ! -i BRIDGE ... --dport 53' (an allow-listed host port is '! -i lo').
      if (/! -i (?!lo\s)\S+ .*--dport 53(\s|$)/.test(spec)) return 'dns-outside';
      return spec.includes('--dport') ? 'allowlist' : 'internal';
    default:
      return undefined;
  }
}

/** Adds the counters of `*-save -c` text of @family to @into, by reason. */
export function addDrops(into: Drops, family: Family, saveText: string): Drops {
  for (const line of saveText.split('\n')) {
    const m = /^\[(\d+):(\d+)\] -A (BERTH-\S+) (.*)$/.exec(line.trim());
    if (!m) continue;
    const reason = dropReason(family, m[3]!, m[4]!);
    if (!reason) continue;
    const d = (into[reason] ??= { packets: 0, bytes: 0 });
    d.packets += Number(m[1]);
    d.bytes += Number(m[2]);
  }
  return into;
}
