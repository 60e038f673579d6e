/**
 * The sysctls the iptables datapath sets, all in berthd's own network
 * namespace, each only when it differs:
 *
 *  net.ipv4.ip_forward = 1
 *      routing between the bridges and the uplink (Docker sets it too).
 *  net.ipv6.conf.all.forwarding = 1  (only while a network is dual-stack)
 *      the same for IPv6. An interface with accept_ra=1 then ignores router
 *      advertisements: an uplink configured by SLAAC needs accept_ra=2.
 *  net.bridge.bridge-nf-call-iptables = 1, net.bridge.bridge-nf-call-ip6tables = 1
 *      bridged traffic (sandbox to sandbox on one bridge) traverses iptables:
 *      icc=false, links, anti-spoofing, and the conntrack that un-NATs a
 *      hairpin reply all depend on it. Needs br_netfilter; without it these
 *      are reported as missing (status and log), never silently.
 *  net.ipv4.conf.<bridge>.route_localnet = 1  (per berth bridge)
 *      host -> 127.0.0.1:published port leaves through the bridge after the
 *      OUTPUT DNAT (then masqueraded); the raw guard drops 127/8 arriving
 *      from a bridge, so sandboxes gain no way to the host's loopback.
 *
 * None is reverted on teardown (Docker does not either): other software on
 * the host may rely on forwarding, and a bridge's setting goes with it.
 */
import type { Logger } from 'pino';
import { nl } from '../../netlink/index.js';

export interface Sysctl {
  key: string;
  value: string;
  /** false: the key may not exist here (a module not loaded); reported, not fatal */
  required: boolean;
}

export function wantedSysctls(bridges: string[], ipv6: boolean): Sysctl[] {
  return [
    { key: 'net.ipv4.ip_forward', value: '1', required: true },
    ...(ipv6 ? [{ key: 'net.ipv6.conf.all.forwarding', value: '1', required: true }] : []),
    { key: 'net.bridge.bridge-nf-call-iptables', value: '1', required: false },
    { key: 'net.bridge.bridge-nf-call-ip6tables', value: '1', required: false },
    ...bridges.map((b) => ({ key: `net.ipv4.conf.${b}.route_localnet`, value: '1', required: true })),
  ];
}

async function read(key: string): Promise<string | undefined> {
  try {
    return (await nl.sysctlRead({ key })).trim();
  } catch {
    return undefined;
  }
}

/** Sets what differs; returns what was changed and the optional keys this kernel lacks. */
export async function ensureSysctls(want: Sysctl[]): Promise<{ changed: string[]; missing: string[] }> {
  const changed: string[] = [];
  const missing: string[] = [];
  for (const s of want) {
    const cur = await read(s.key);
    if (cur === s.value) continue;
    if (cur === undefined && !s.required) {
      missing.push(s.key);
      continue;
    }
    await nl.sysctlWrite({ key: s.key, value: s.value });
    changed.push(`${s.key}=${s.value}`);
  }
  return { changed, missing };
}

/** Whether some of @want were reset outside berth (said in the log). */
export async function sysctlsDrifted(want: Sysctl[], log: Logger): Promise<boolean> {
  const reset = await sysctlDrift(want);
  if (reset.length) log.warn({ sysctls: reset }, 'sysctls changed outside berth');
  return reset.length > 0;
}

/** Keys that no longer hold their value (someone reset them). */
export async function sysctlDrift(want: Sysctl[]): Promise<string[]> {
  const out: string[] = [];
  for (const s of want) {
    const cur = await read(s.key);
    if (cur !== s.value && !(cur === undefined && !s.required)) out.push(`${s.key}=${cur ?? '(absent)'}`);
  }
  return out;
}
