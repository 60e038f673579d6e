/**
 * berth's nftables tables as declarations: every set and map (the data), the
 * named drop counters, the chains and their rules. The rules are a constant
 * list: what changes with the intent is only the sets' elements (sets.ts),
 * so 10,000 published ports or link pairs are 10,000 elements of one map,
 * looked up in O(1) (hash) or O(fields) (pipapo, for intervals), never a
 * linear list of rules. Pure.
 *
 *  - `table inet berth`: the IP behaviour (raw guards, published ports as
 *    DNAT maps, masquerade, forwarding verdicts, the host's own input),
 *    the same decisions as the iptables datapath's render.ts, in one place
 *    per decision: where a packet is NAT-ed (chains pre_nat/out_nat →
 *    publish_dnat, post_nat), where a verdict is made (pre_raw,
 *    filter_forward and the chains it jumps to, filter_input).
 *  - `table bridge berth`: what a sandbox's bridge port may send (its MAC,
 *    ARP for its own address, its own IP addresses, nothing only a router
 *    sends), before anything else sees the frame.
 *  - chain `user` in `table inet berth`: the operator's own rules, jumped to
 *    first from filter_forward; created once, never flushed by berth.
 */

export type NftTable = 'inet' | 'bridge';
export const TABLE_NAME = 'berth';
export const USER_CHAIN = 'user';

export interface SetDecl {
  table: NftTable;
  name: string;
  /** the key (and ": value" for maps), as nft declares it */
  type: string;
  map?: boolean;
  interval?: boolean;
  /** declared with typeof (raw payload keys) */
  typeof?: boolean;
}

const A = { 4: 'ipv4_addr', 6: 'ipv6_addr' } as const;

/** Sets per IP family, named NAME4 / NAME6. */
function perFamily(f: 4 | 6): SetDecl[] {
  const a = A[f];
  const s = (name: string, type: string, more: Partial<SetDecl> = {}): SetDecl => ({ table: 'inet', name: `${name}${f}`, type, ...more });
  return [
    // bridges lacking this family: everything of it from them is dropped
    s('nofam', 'ifname'),
    // Published ports. Hash maps for single ports open to every source (the bulk: O(1) to look up, add and
    // delete), on every host address (protocol . port) or one (address . protocol . port) -> sandbox address . port;
    // interval maps (pipapo) for ranges and allow-lists: host address . source . protocol . host port(s)
    // -> sandbox address (same ports) or address . port. A pipapo element costs O(elements) to delete.
    s('pubany', `inet_proto . inet_service : ${a} . inet_service`, { map: true }),
    s('pubhost', `${a} . inet_proto . inet_service : ${a} . inet_service`, { map: true }),
    s('dnat', `${a} . ${a} . inet_proto . inet_service : ${a}`, { map: true, interval: true }),
    s('dnatport', `${a} . ${a} . inet_proto . inet_service : ${a} . inet_service`, { map: true, interval: true }),
    // connections berth DNAT-ed for a publish: sandbox address . protocol . container port (. original destination);
    // single ports hashed, ranges as intervals
    s('pubfwdany', `${a} . inet_proto . inet_service`),
    s('pubfwdhost', `${a} . inet_proto . inet_service . ${a}`),
    s('pubfwd', `${a} . inet_proto . inet_service . ${a}`, { interval: true }),
    // a sandbox reaching its own published port: masqueraded (source . destination . protocol . container port(s))
    s('selfone', `${a} . ${a} . inet_proto . inet_service`),
    s('selfhair', `${a} . ${a} . inet_proto . inet_service`, { interval: true }),
    // the operator's publish policy: host address . protocol . host ports under it; and the sources it admits there
    s('pubpolports', `${a} . inet_proto . inet_service`, { interval: true }),
    s('pubpolok', `${a} . inet_proto . inet_service . ${a}`, { interval: true }),
    // host ports of restricted publishes: a source not DNAT-ed reaches no host service there either
    s('restricted', `${a} . inet_proto . inet_service`, { interval: true }),
    // gateways, and gateway . own bridge: the DNS port answers its own network only
    s('dnsgw', a),
    s('dnsown', `${a} . ifname`),
    // internal networks with a gateway of this family, and bridge . gateway: the only host address they reach
    s('intgwbr', 'ifname'),
    s('intgw', `ifname . ${a}`),
    // routed networks: bridge . subnet -> verdict (out to other hosts), bridge . subnet . subnet -> verdict (in from them)
    s('routedout', `ifname . ${a} : verdict`, { map: true, interval: true }),
    s('routedin', `ifname . ${a} . ${a} : verdict`, { map: true, interval: true }),
    // egress allow-lists: bridges with such sandboxes, the sandboxes' addresses, and what each may reach
    s('egressbr', 'ifname'),
    s('egsrc', a),
    s('eggw', `${a} . ${a}`),
    s('egnet', `${a} . ${a}`, { interval: true }),
    s('egport', `${a} . ${a} . inet_proto . inet_service`, { interval: true }),
    // links: client . target . protocol . port
    s('links', `${a} . ${a} . inet_proto . inet_service`),
    // masquerade: subnets that masquerade, subnet . own bridge (not masqueraded), routed subnet . subnet (never)
    s('masqsrc', a, { interval: true }),
    s('masqown', `${a} . ifname`, { interval: true }),
    s('masqrouted', `${a} . ${a}`, { interval: true }),
  ];
}

export const SETS: SetDecl[] = [
  { table: 'inet', name: 'bridges', type: 'ifname' },
  { table: 'inet', name: 'internal', type: 'ifname' },
  // the uplink, and routed networks' own blocks: forged when they arrive from there (a single-field
  // interval set: this is looked up for every packet, and concatenated intervals cost more per lookup)
  { table: 'inet', name: 'uplink', type: 'ifname' },
  { table: 'inet', name: 'routedblock4', type: 'ipv4_addr', interval: true },
  // bridge . same bridge -> accept (icc) or jump icc_links (icc=false)
  { table: 'inet', name: 'intra', type: 'ifname . ifname : verdict', map: true },
  ...perFamily(4),
  ...perFamily(6),
  // bridge ports of sandboxes, per family of their network
  { table: 'bridge', name: 'ports', type: 'ifname' },
  { table: 'bridge', name: 'ports4', type: 'ifname' },
  { table: 'bridge', name: 'ports6', type: 'ifname' },
  { table: 'bridge', name: 'ownmac', type: 'ifname . ether_addr' },
  { table: 'bridge', name: 'ownarp', type: 'ifname . ipv4_addr' },
  { table: 'bridge', name: 'own4', type: 'ifname . ipv4_addr' },
  { table: 'bridge', name: 'own6', type: 'ifname . ipv6_addr' },
  // port . a neighbour advertisement's target (its own addresses, as 128-bit integers)
  { table: 'bridge', name: 'natarget', type: 'iifname . @th,64,128', typeof: true },
];

/** Drop reasons, as the eBPF datapath names them (src/bpf/abi.ts); a named counter each, "drop-REASON". */
export const INET_REASONS = ['loopback', 'family', 'spoof-ip', 'direct', 'internal', 'isolation', 'icc', 'egress', 'allowlist', 'publish-policy', 'dns-outside'] as const;
export const BRIDGE_REASONS = ['spoof-mac', 'spoof-arp', 'spoof-ip', 'spoof-nd', 'router-adv', 'redirect', 'dhcp-server'] as const;
export const counterName = (reason: string) => `drop-${reason}`;

export interface ChainDecl {
  table: NftTable;
  name: string;
  /** base chains: "type … hook … priority …; policy accept;" */
  base?: string;
}

export const CHAINS: ChainDecl[] = [
  { table: 'inet', name: USER_CHAIN },
  { table: 'inet', name: 'pre_raw', base: 'type filter hook prerouting priority raw; policy accept;' },
  { table: 'inet', name: 'pre_nat', base: 'type nat hook prerouting priority dstnat; policy accept;' },
  { table: 'inet', name: 'out_nat', base: 'type nat hook output priority -100; policy accept;' },
  { table: 'inet', name: 'post_nat', base: 'type nat hook postrouting priority srcnat; policy accept;' },
  { table: 'inet', name: 'filter_forward', base: 'type filter hook forward priority filter; policy accept;' },
  { table: 'inet', name: 'filter_input', base: 'type filter hook input priority filter; policy accept;' },
  { table: 'inet', name: 'publish_dnat' },
  { table: 'inet', name: 'icc_links' },
  { table: 'inet', name: 'egress_lists' },
  { table: 'bridge', name: 'port_guard', base: 'type filter hook prerouting priority -300; policy accept;' },
  { table: 'bridge', name: 'guard_arp' },
  { table: 'bridge', name: 'guard_ip4' },
  { table: 'bridge', name: 'guard_ip6' },
];

const drop = (reason: string) => `counter name "${counterName(reason)}" drop`;
const L4 = 'meta l4proto { tcp, udp, sctp }';

function familyRules(f: 4 | 6): Record<string, string[]> {
  const ip = f === 4 ? 'ip' : 'ip6';
  const nf = f === 4 ? 'meta nfproto ipv4' : 'meta nfproto ipv6';
  const tuple = `${ip} daddr . meta l4proto . th dport`;
  return {
    pre_raw: [
      ...(f === 4 ? [`ip daddr 127.0.0.0/8 iifname @bridges ${drop('loopback')}`] : []),
      `${nf} iifname @nofam${f} ${drop('family')}`,
      ...(f === 4 ? [`iifname @uplink ip saddr @routedblock4 ${drop('spoof-ip')}`] : []),
    ],
    publish_dnat: [
      `${nf} ${L4} dnat ${ip} to meta l4proto . th dport map @pubany${f}`,
      `${L4} dnat ${ip} to ${ip} daddr . meta l4proto . th dport map @pubhost${f}`,
      `${L4} dnat ${ip} to ${ip} daddr . ${ip} saddr . meta l4proto . th dport map @dnat${f}`,
      `${L4} dnat ${ip} to ${ip} daddr . ${ip} saddr . meta l4proto . th dport map @dnatport${f}`,
    ],
    post_nat_hairpin: [
      `${ip} saddr . ${ip} daddr . meta l4proto . th dport @selfone${f} masquerade`,
      `${ip} saddr . ${ip} daddr . meta l4proto . th dport @selfhair${f} masquerade`,
    ],
    post_nat_masq: [
      `${ip} saddr . ${ip} daddr @masqrouted${f} return`,
      `${ip} saddr . oifname @masqown${f} return`,
      `${ip} saddr @masqsrc${f} masquerade`,
    ],
    forward_publish: [
      `ct status dnat ${tuple} @pubfwdany${f} accept`,
      `ct status dnat ${tuple} . ct original ${ip} daddr @pubfwdhost${f} accept`,
      `ct status dnat ${tuple} . ct original ${ip} daddr @pubfwd${f} accept`,
    ],
    forward_routed: [
      `${nf} iifname . ${ip} daddr vmap @routedout${f}`,
      `${nf} oifname . ${ip} saddr . ${ip} daddr vmap @routedin${f}`,
    ],
    forward_egress: [`${nf} iifname @egressbr${f} ct state new jump egress_lists`],
    icc_links: [`${ip} saddr . ${ip} daddr . meta l4proto . th dport @links${f} accept`],
    egress_lists: [
      `${ip} saddr . ${ip} daddr @eggw${f} return`,
      ...(f === 6 ? ['ip6 saddr @egsrc6 icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } return'] : []),
      `${ip} saddr . ${ip} daddr @egnet${f} return`,
      `${ip} saddr . ${ip} daddr . meta l4proto . th dport @egport${f} return`,
      `${ip} saddr @egsrc${f} ${drop('egress')}`,
    ],
    input_ports: [
      `iifname != "lo" ${tuple} @pubpolports${f} ${tuple} . ${ip} saddr != @pubpolok${f} ${drop('publish-policy')}`,
      `iifname != "lo" ${tuple} @restricted${f} ${drop('allowlist')}`,
      `meta l4proto { tcp, udp } th dport 53 ${ip} daddr @dnsgw${f} ${ip} daddr . iifname != @dnsown${f} ${drop('dns-outside')}`,
    ],
    input_internal: [
      ...(f === 6 ? ['iifname @intgwbr6 meta l4proto ipv6-icmp return'] : []),
      `${nf} iifname @intgwbr${f} iifname . ${ip} daddr != @intgw${f} ${drop('internal')}`,
    ],
    input_egress: [`${nf} iifname @egressbr${f} ct state new jump egress_lists`],
  };
}

/** chain -> rules, in order (a constant: nothing here depends on the intent). */
export function chainRules(): Record<string, { table: NftTable; rules: string[] }> {
  const r4 = familyRules(4);
  const r6 = familyRules(6);
  const both = (k: string) => [...r4[k]!, ...r6[k]!];
  return {
    pre_raw: { table: 'inet', rules: both('pre_raw') },
    // Never from PREROUTING to loopback: a crafted packet to 127.0.0.1 must not reach a 127.0.0.1-bound port.
    pre_nat: { table: 'inet', rules: ['fib daddr type local ip daddr != 127.0.0.0/8 jump publish_dnat', 'fib daddr type local ip6 daddr != ::1 jump publish_dnat'] },
    // IPv6 has no route_localnet: ::1 cannot be sent to a sandbox, so [::1]:port is refused rather than black-holed.
    out_nat: { table: 'inet', rules: ['meta nfproto ipv4 fib daddr type local jump publish_dnat', 'fib daddr type local ip6 daddr != ::1 jump publish_dnat'] },
    publish_dnat: { table: 'inet', rules: ['iifname @internal return', ...both('publish_dnat')] },
    post_nat: {
      table: 'inet',
      rules: [
        // host -> 127.0.0.1:published port leaves through the bridge (route_localnet): the sandbox must see an address it can answer
        'ip saddr 127.0.0.0/8 oifname @bridges masquerade',
        ...both('post_nat_hairpin'),
        // a sandbox of another network reaching a published port keeps its address
        'oifname @bridges ct status dnat return',
        ...both('post_nat_masq'),
      ],
    },
    filter_forward: {
      table: 'inet',
      rules: [
        `jump ${USER_CHAIN}`,
        // replies of admitted connections, both ways: nothing below drops an established flow berth admitted
        // (the iptables datapath checks replies into bridges first, and lets those out of them reach its accepts)
        'ct state established,related accept',
        // only connections berth translated for a publish enter the bridge that way
        ...both('forward_publish'),
        'iifname . oifname vmap @intra',
        ...both('forward_routed'),
        // isolation: internal networks closed both ways, then between networks
        `iifname @internal ${drop('internal')}`,
        `oifname @internal ${drop('internal')}`,
        `iifname @bridges oifname @bridges ${drop('isolation')}`,
        // nothing else enters a network: no direct routing to sandbox addresses
        `oifname @bridges ${drop('direct')}`,
        ...both('forward_egress'),
        'iifname @bridges accept',
      ],
    },
    icc_links: {
      table: 'inet',
      // neighbour discovery must pass for links to resolve each other's MAC
      rules: [...both('icc_links'), 'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept', drop('icc')],
    },
    egress_lists: { table: 'inet', rules: both('egress_lists') },
    filter_input: { table: 'inet', rules: [...both('input_ports'), ...both('input_internal'), ...both('input_egress')] },
    // A frame from a sandbox's port meets its MAC check, then only the checks of its ether type.
    port_guard: {
      table: 'bridge',
      rules: [
        'iifname != @ports return',
        `iifname . ether saddr != @ownmac ${drop('spoof-mac')}`,
        'ether type vmap { arp : jump guard_arp, ip : jump guard_ip4, ip6 : jump guard_ip6 }',
      ],
    },
    guard_arp: {
      table: 'bridge',
      rules: [`iifname . arp saddr ether != @ownmac ${drop('spoof-arp')}`, `iifname . arp saddr ip != @ownarp ${drop('spoof-arp')}`],
    },
    guard_ip4: {
      table: 'bridge',
      rules: [
        'iifname != @ports4 return',
        `icmp type redirect ${drop('redirect')}`,
        `udp sport 67 udp dport 68 ${drop('dhcp-server')}`,
        `iifname . ip saddr != @own4 ${drop('spoof-ip')}`,
      ],
    },
    guard_ip6: {
      table: 'bridge',
      rules: [
        'iifname != @ports6 return',
        `icmpv6 type nd-router-advert ${drop('router-adv')}`,
        `icmpv6 type nd-redirect ${drop('redirect')}`,
        `udp sport 547 udp dport 546 ${drop('dhcp-server')}`,
        `icmpv6 type nd-neighbor-advert iifname . @th,64,128 != @natarget ${drop('spoof-nd')}`,
        'iifname . ip6 saddr @own6 return',
        'ip6 saddr fe80::/10 return',
        // duplicate address detection sends from :: to a solicited-node group
        'ip6 saddr :: ip6 daddr ff02::/16 ip6 nexthdr ipv6-icmp return',
        drop('spoof-ip'),
      ],
    },
  };
}
