/**
 * The sysctls the iptables datapath's mechanism needs, besides the intent's
 * forwarding ones (../sysctl.ts sets and watches them all):
 *
 *  net.bridge.bridge-nf-call-iptables = 1, net.bridge.bridge-nf-call-ip6tables = 1
 *      bridged traffic (sandbox to sandbox on one bridge) traverses iptables:
 *      icc=false, links, anti-spoofing, and the conntrack that un-NATs a
 *      hairpin reply all depend on it. Needs br_netfilter; without it these
 *      are reported as missing (status and log), never silently.
 *  net.ipv4.conf.<bridge>.route_localnet = 1  (per berth bridge)
 *      host -> 127.0.0.1:published port leaves through the bridge after the
 *      OUTPUT DNAT (then masqueraded); the raw guard drops 127/8 arriving
 *      from a bridge, so sandboxes gain no way to the host's loopback.
 */
import type { Sysctl } from '../sysctl.js';

export function iptablesSysctls(bridges: string[]): Sysctl[] {
  return [
    { key: 'net.bridge.bridge-nf-call-iptables', value: '1', required: false },
    { key: 'net.bridge.bridge-nf-call-ip6tables', value: '1', required: false },
    ...bridges.map((b) => ({ key: `net.ipv4.conf.${b}.route_localnet`, value: '1', required: true })),
  ];
}
