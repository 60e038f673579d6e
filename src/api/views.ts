/** What the API shows of networks and sandboxes (Docker's inspect field names where they exist). */
import type { Controller } from '../controller/controller.js';
import { shortId } from '../controller/names.js';
import { formatEgressRule } from '../controller/egress.js';
import type { NetworkRecord, PublishRecord, SandboxRecord } from '../store/model.js';

export interface NetworkView {
  Name: string;
  Id: string;
  Created: string;
  Scope: 'local' | 'global';
  Driver: string;
  EnableIPv6: boolean;
  Internal: boolean;
  IPAM: { Driver: 'default'; Config: { Subnet: string; Gateway: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> }[] };
  Options: Record<string, string>;
  Containers: Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string; Aliases: string[] }>;
  BridgeName?: string;
  Parent?: string;
  VxlanId?: number;
  VxlanPort?: number;
  /** routed networks: this host's block of the subnet (its Gateway is the block's) */
  RoutedBlock?: string;
  /** global networks: the cluster's hosts, as Docker lists an overlay's peers */
  Peers?: { Name: string; Id: string; IP: string }[];
}

export function networkView(c: Controller, n: NetworkRecord): NetworkView {
  const containers: NetworkView['Containers'] = {};
  for (const sb of Object.values(c.snapshot().sandboxes)) {
    const ep = sb.endpoints.find((e) => e.network === n.id);
    if (!ep) continue;
    const bits = (f: 4 | 6) => n.pools.find((p) => p.family === f)?.subnet.split('/')[1];
    containers[sb.id] = {
      Name: sb.name,
      EndpointID: ep.id,
      MacAddress: ep.mac,
      IPv4Address: ep.v4 ? `${ep.v4}/${bits(4)}` : '',
      IPv6Address: ep.v6 ? `${ep.v6}/${bits(6)}` : '',
      Aliases: ep.aliases,
    };
  }
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: n.scope ?? 'local',
    Driver: n.driver,
    EnableIPv6: n.ipv6,
    Internal: n.internal,
    IPAM: {
      Driver: 'default',
      Config: n.pools.map((p) => ({
        Subnet: n.routed?.subnet ?? p.subnet,
        Gateway: p.gateway,
        ...(p.ipRange ? { IPRange: p.ipRange } : {}),
        ...(Object.keys(p.aux).length ? { AuxiliaryAddresses: p.aux } : {}),
      })),
    },
    Options: n.options,
    Containers: containers,
    ...(n.bridge ? { BridgeName: n.bridge } : {}),
    ...(n.parent ? { Parent: n.parent } : {}),
    ...(n.vxlan ? { VxlanId: n.vxlan.vni, VxlanPort: n.vxlan.port } : {}),
    ...(n.routed ? { RoutedBlock: n.routed.block } : {}),
    ...(n.scope === 'global' ? { Peers: (c.clusterView()?.hosts ?? []).map((h) => ({ Name: h.name, Id: h.id, IP: h.underlay })) } : {}),
  };
}

/** host and none as Docker lists them: networks with no configuration of their own. */
export function pseudoNetworkView(name: 'host' | 'none'): NetworkView {
  return {
    Name: name, Id: name, Created: '', Scope: 'local', Driver: name === 'host' ? 'host' : 'null', EnableIPv6: false, Internal: false,
    IPAM: { Driver: 'default', Config: [] }, Options: {}, Containers: {},
  };
}

export function formatPublish(p: PublishRecord): string {
  const host = `${p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp || '0.0.0.0'}:${p.hostPort}${p.count > 1 ? `-${p.hostPort + p.count - 1}` : ''}`;
  const cont = `${p.containerPort}${p.count > 1 ? `-${p.containerPort + p.count - 1}` : ''}/${p.proto}`;
  return `${host}->${cont}`;
}

export interface SandboxView {
  Id: string;
  Name: string;
  Created: string;
  /** 'external': an endpoint of another engine's container (Docker's), which berth plumbs but does not run */
  State: { Status: 'running' | 'exited' | 'created' | 'external'; Pid: number; ExitCode: number | null };
  Config: { Hostname: string; Cmd: string[]; Env: string[]; ExposedPorts: string[] };
  HostConfig: {
    NetworkMode: string;
    Dns: string[];
    DnsSearch: string[];
    ExtraHosts: string[];
    Links: string[];
    PublishAllPorts: boolean;
    PublishAllow: string[];
    /** absent: its networks' default (egress=allow or deny) */
    EgressAllow?: string[];
  };
  NetworkSettings: {
    SandboxKey: string;
    Ports: string[];
    Networks: Record<string, { NetworkID: string; EndpointID: string; IPAddress: string; IPv6Address: string; MacAddress: string; Gateway: string; InterfaceName: string; Aliases: string[] }>;
  };
}

export function sandboxView(c: Controller, sb: SandboxRecord): SandboxView {
  const state = c.snapshot();
  const networks: SandboxView['NetworkSettings']['Networks'] = {};
  for (const ep of sb.endpoints) {
    const n = state.networks[ep.network];
    if (!n) continue;
    networks[n.name] = {
      NetworkID: n.id, EndpointID: ep.id, IPAddress: ep.v4 ?? '', IPv6Address: ep.v6 ?? '', MacAddress: ep.mac,
      Gateway: n.pools.find((p) => p.family === 4)?.gateway ?? '', InterfaceName: ep.ifname, Aliases: ep.aliases,
    };
  }
  const mode = sb.mode === 'networks' ? (sb.endpoints[0] ? (state.networks[sb.endpoints[0].network]?.name ?? '') : 'none')
    : sb.mode === 'container' ? `container:${state.sandboxes[sb.sharedWith ?? '']?.name ?? sb.sharedWith}` : sb.mode;
  return {
    Id: sb.id,
    Name: sb.name,
    Created: sb.created,
    State: { Status: sb.mode === 'external' ? 'external' : c.status(sb), Pid: sb.pid ?? 0, ExitCode: sb.exitCode ?? null },
    Config: { Hostname: sb.hostname, Cmd: sb.cmd, Env: sb.env, ExposedPorts: sb.expose.map((e) => `${e.port}/${e.proto}`) },
    HostConfig: {
      NetworkMode: mode, Dns: sb.dns, DnsSearch: sb.dnsSearch, ExtraHosts: sb.addHosts.map((h) => `${h.host}:${h.ip}`),
      Links: sb.links.map((l) => `${state.sandboxes[l.target]?.name ?? shortId(l.target)}:${l.alias}`),
      PublishAllPorts: sb.publishAll, PublishAllow: sb.publishAllow,
      ...(sb.egressAllow ? { EgressAllow: sb.egressAllow.map(formatEgressRule) } : {}),
    },
    NetworkSettings: { SandboxKey: sb.netnsPath, Ports: sb.publish.map(formatPublish), Networks: networks },
  };
}
