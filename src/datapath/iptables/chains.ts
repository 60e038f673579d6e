/**
 * berth's chains and the jumps that lead into them from the built-in chains.
 * Everything berth owns in the tables is named BERTH-*; nothing else is ever
 * written, flushed or deleted. The jump specs are written exactly as
 * iptables-save prints them, so a jump already present is recognised as such.
 */

/** A rule set is kept apart per table family: iptables, ip6tables, ebtables. */
export type Family = 'ip4' | 'ip6' | 'eb';
export const FAMILIES: readonly Family[] = ['ip4', 'ip6', 'eb'];

export const CHAIN = {
  /** the operator's hook, first in FORWARD: created empty once, never flushed by apply */
  user: 'BERTH-USER',
  /** filter: the per-bridge forwarding verdicts */
  forward: 'BERTH-FORWARD',
  /** filter: published flows into a bridge (only connections berth DNAT-ed) */
  publish: 'BERTH-PUBLISH',
  /** filter: Docker's two-stage isolation between networks, plus internal networks */
  isolation1: 'BERTH-ISOLATION-STAGE-1',
  isolation2: 'BERTH-ISOLATION-STAGE-2',
  /** filter: traffic between sandboxes of one icc=false network (links only) */
  icc: 'BERTH-ICC',
  /** filter: new connections of sandboxes with an egress allow-list, leaving their networks (from BERTH-FORWARD and BERTH-INPUT) */
  egress: 'BERTH-EGRESS',
  /** filter: what reaches the host itself (allow-listed host ports, internal networks) */
  input: 'BERTH-INPUT',
  /** filter, prefix + network id: a network's publish policy (from BERTH-INPUT): its sources RETURN, the rest drops */
  pubpolicy: 'BERTH-PUBPOL-',
  /** nat: published ports, from PREROUTING (not 127/8) and OUTPUT */
  dnat: 'BERTH-DNAT',
  /** nat: masquerade (outbound, localhost, a sandbox reaching its own published port) */
  postrouting: 'BERTH-POSTROUTING',
  /** raw: anti-spoofing before conntrack, loopback guard, IPv6 of IPv4-only networks */
  prerouting: 'BERTH-PREROUTING',
  /** ebtables nat: a sandbox's port may only send its own MAC, and ARP for its own address */
  antispoof: 'BERTH-ANTISPOOF',
} as const;

export const OWNED_PREFIX = 'BERTH-';

export function isOwnedChain(name: string): boolean {
  return name.startsWith(OWNED_PREFIX);
}

export interface Jump {
  table: string;
  builtin: string;
  target: string;
  /** the rule after "-A BUILTIN ", as iptables-save prints it */
  spec: string;
}

/** Jumps per family, in the order they must appear within each built-in chain (inserted at its top when missing). */
export function jumpsFor(family: Family): Jump[] {
  if (family === 'eb') return [{ table: 'nat', builtin: 'PREROUTING', target: CHAIN.antispoof, spec: `-j ${CHAIN.antispoof}` }];
  const lo = family === 'ip4' ? '127.0.0.0/8' : '::1/128';
  return [
    { table: 'raw', builtin: 'PREROUTING', target: CHAIN.prerouting, spec: `-j ${CHAIN.prerouting}` },
    // Never from PREROUTING to loopback: a crafted packet to 127.0.0.1 must not reach a 127.0.0.1-bound port.
    { table: 'nat', builtin: 'PREROUTING', target: CHAIN.dnat, spec: `! -d ${lo} -m addrtype --dst-type LOCAL -j ${CHAIN.dnat}` },
    // IPv6 has no route_localnet: ::1 cannot be sent to a sandbox, so [::1]:port is refused rather than black-holed.
    {
      table: 'nat', builtin: 'OUTPUT', target: CHAIN.dnat,
      spec: family === 'ip4' ? `-m addrtype --dst-type LOCAL -j ${CHAIN.dnat}` : `! -d ${lo} -m addrtype --dst-type LOCAL -j ${CHAIN.dnat}`,
    },
    { table: 'nat', builtin: 'POSTROUTING', target: CHAIN.postrouting, spec: `-j ${CHAIN.postrouting}` },
    { table: 'filter', builtin: 'FORWARD', target: CHAIN.user, spec: `-j ${CHAIN.user}` },
    { table: 'filter', builtin: 'FORWARD', target: CHAIN.forward, spec: `-j ${CHAIN.forward}` },
    { table: 'filter', builtin: 'INPUT', target: CHAIN.input, spec: `-j ${CHAIN.input}` },
  ];
}

/** Tables berth writes, per family. */
export function tablesFor(family: Family): string[] {
  return family === 'eb' ? ['nat'] : ['raw', 'nat', 'filter'];
}
