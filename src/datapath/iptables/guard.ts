/**
 * The iptables datapath's rules against a hostile neighbour (issue 17), pure:
 *  - a sandbox is never a router for its peers: router advertisements,
 *    ICMP/ICMPv6 redirects and DHCP/DHCPv6 server replies from its bridge
 *    port are dropped in raw PREROUTING (before anything else sees them, the
 *    bridge's own delivery included), and a neighbour advertisement must name
 *    one of its own addresses as target (its address or the link-local one
 *    the kernel derives from its MAC);
 *  - a network's gateway DNS port answers only that network's bridge: from
 *    the uplink, other bridges or the host itself it is dropped in INPUT.
 * drops.ts names each drop with the eBPF datapath's reason.
 */
import { ipToBig } from '../../ipam/addr.js';
import type { DpEndpoint, DpNetwork } from '../datapath.js';

type IpFamily = 'ip4' | 'ip6';

/** fe80::/64 with @mac's modified EUI-64 interface id. */
export function linkLocalOfMac(mac: string): string {
  const b = mac.split(':').map((x) => parseInt(x, 16));
  if (b.length !== 6 || b.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new TypeError(`MAC '${mac}' is not six hex bytes`);
  const w = (hi: number, lo: number) => ((hi << 8) | lo).toString(16);
  return `fe80::${w(b[0]! ^ 2, b[1]!)}:${w(b[2]!, 0xff)}:${w(0xfe, b[3]!)}:${w(b[4]!, b[5]!)}`;
}

/** A u32 test that an NA's target (offset 48: IPv6 header, ICMPv6 header, flags) is @ip, as iptables-save prints it. */
function naTargetIs(ip: string): string {
  const v = ipToBig(ip);
  return [0, 1, 2, 3].map((i) => `0x${(48 + 4 * i).toString(16)}=0x${((v >> BigInt(96 - 32 * i)) & 0xffffffffn).toString(16)}`).join('&&');
}

/** raw PREROUTING rules for what @e may not send (before its anti-spoofing rules). */
export function routerGuard(e: DpEndpoint, n: DpNetwork, f: IpFamily): string[] {
  const at = `-i ${n.bridge} -m physdev --physdev-in ${e.hostIf}`;
  if (f === 'ip4') {
    return [
      `${at} -p icmp -m icmp --icmp-type 5 -j DROP`,
      `${at} -p udp -m udp --sport 67 --dport 68 -j DROP`,
    ];
  }
  const own = [linkLocalOfMac(e.mac), ...(e.v6 ? [e.v6] : [])];
  return [
    `${at} -p ipv6-icmp -m icmp6 --icmpv6-type 134 -j DROP`,
    `${at} -p ipv6-icmp -m icmp6 --icmpv6-type 137 -j DROP`,
    `${at} -p udp -m udp --sport 547 --dport 546 -j DROP`,
    // Extension headers move the target: such an NA matches none of these and is dropped.
    `${at} -p ipv6-icmp -m icmp6 --icmpv6-type 136 ${own.map((a) => `-m u32 ! --u32 "${naTargetIs(a)}"`).join(' ')} -j DROP`,
  ];
}

/** INPUT rules: @n's gateway DNS port (UDP and TCP) from anywhere but @n's bridge is dropped. */
export function dnsGuard(n: DpNetwork, f: IpFamily): string[] {
  const gw = f === 'ip4' ? n.gateway4 : n.gateway6;
  if (!gw || !n.bridge) return [];
  const d = `-d ${gw}/${f === 'ip4' ? 32 : 128} ! -i ${n.bridge}`;
  return (['udp', 'tcp'] as const).map((p) => `${d} -p ${p} -m ${p} --dport 53 -j DROP`);
}
