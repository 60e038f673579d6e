/**
 * CNI results: berthd's attachment rendered in the configuration's version
 * (0.4.0 gives each IP a "version"; 1.1.0 adds the interface MTU), chained
 * after a prevResult when berth is not the first plugin, and read back from
 * a prevResult for CHECK.
 */
import { CODE, CniError, versionAtLeast, type CniVersion } from './spec.js';
import type { AttachmentView } from '../controller/attachments.js';

interface ResultInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}
interface ResultIp {
  version?: '4' | '6';
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniResult {
  cniVersion: CniVersion;
  interfaces: ResultInterface[];
  ips: ResultIp[];
  routes: { dst: string; gw?: string }[];
  dns: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
}

/** runtimeConfig.dns as the runtime asked for it: searches and options go into the result beside the embedded DNS. */
export interface DnsRequest {
  searches?: string[];
  domain?: string;
  options?: string[];
}

export function renderResult(version: CniVersion, view: AttachmentView, dnsReq: DnsRequest, prev?: Record<string, unknown>): CniResult {
  const before = (prev ?? {}) as Partial<CniResult>;
  const interfaces = [...(Array.isArray(before.interfaces) ? before.interfaces : [])];
  const at = interfaces.length;
  const withMtu = versionAtLeast(version, '1.1.0');
  interfaces.push({ name: view.hostIf, ...(withMtu ? { mtu: view.mtu } : {}) });
  interfaces.push({ name: view.ifname, mac: view.mac, ...(withMtu ? { mtu: view.mtu } : {}), sandbox: view.netns });
  const ips: ResultIp[] = [
    ...(Array.isArray(before.ips) ? before.ips : []),
    ...view.ips.map((ip) => ({
      ...(version === '0.4.0' ? { version: String(ip.family) as '4' | '6' } : {}),
      address: ip.address,
      gateway: ip.gateway,
      interface: at + 1,
    })),
  ];
  const routes = [...(Array.isArray(before.routes) ? before.routes : []), ...view.routes];
  const prevDns = before.dns && typeof before.dns === 'object' ? before.dns : {};
  const nameservers = [...(prevDns.nameservers ?? []), ...view.nameservers];
  const search = dnsReq.searches ?? prevDns.search;
  const options = dnsReq.options ?? prevDns.options;
  const domain = dnsReq.domain ?? prevDns.domain;
  const dns = {
    ...(nameservers.length ? { nameservers } : {}),
    ...(domain ? { domain } : {}),
    ...(search?.length ? { search } : {}),
    ...(options?.length ? { options } : {}),
  };
  return { cniVersion: version, interfaces, ips, routes, dns };
}

/** What CHECK expects from prevResult: the addresses and MAC of interface @ifname in @netns. */
export function expectationOf(prev: Record<string, unknown> | undefined, ifname: string, netns: string): { addresses: string[]; mac?: string } {
  if (!prev) throw new CniError(CODE.invalidConfig, 'CHECK needs "prevResult" (the result of the ADD to check) in the configuration');
  const ifs = Array.isArray(prev.interfaces) ? (prev.interfaces as ResultInterface[]) : [];
  const idx = ifs.findIndex((i) => i?.name === ifname && (!i.sandbox || i.sandbox === netns));
  if (idx < 0) throw new CniError(CODE.invalidConfig, `prevResult has no interface '${ifname}' in '${netns}' (interfaces: ${ifs.map((i) => i?.name).join(', ') || 'none'})`);
  const ips = Array.isArray(prev.ips) ? (prev.ips as ResultIp[]) : [];
  const addresses = ips.filter((ip) => ip?.interface === idx && typeof ip.address === 'string').map((ip) => ip.address);
  const mac = ifs[idx]!.mac;
  return { addresses, ...(mac ? { mac } : {}) };
}
