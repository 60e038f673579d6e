/**
 * Docker's NetworkDriver calls mapped onto berth's controller. A Docker
 * network is a berth bridge network named docker-<first 12 of NetworkID>;
 * a Docker endpoint is an 'external' sandbox keyed by Docker's EndpointID.
 * berth makes the veth on Join and hands Docker the peer (SrcName), which
 * Docker moves into the container and names eth<N> (DstPrefix "eth").
 */
import type { Logger } from 'pino';
import type { DockerEngine } from './engine.js';
import { badRequest } from '../errors.js';
import type { PortSpec } from '../controller/portspec.js';
import type { PortProto, Proto } from '../store/model.js';
import { poolFor } from '../ipam/ipam.js';
import { str, type PluginHandler } from './wire.js';

/** Docker's option labels (libnetwork/netlabel). */
export const LABEL = {
  generic: 'com.docker.network.generic',
  enableIPv6: 'com.docker.network.enable_ipv6',
  internal: 'com.docker.network.internal',
  portMap: 'com.docker.network.portmap',
  exposedPorts: 'com.docker.network.endpoint.exposedports',
};

/** libnetwork's types.Protocol values. */
const PROTOS: Record<number, Proto> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };

/** Generic (-o) keys berth takes; Docker adds some of its own, which do not concern berth. */
const PASSED_THROUGH = new Set([
  'icc', 'masquerade', 'mtu',
  'com.docker.network.bridge.enable_icc', 'com.docker.network.bridge.enable_ip_masquerade', 'com.docker.network.driver.mtu',
]);

/** berth's own options: on a network (-o) and on an endpoint (--network name=NET,driver-opt=...). */
export const OPT = {
  /** the berth network's name, for CNI configurations to share ("network": NAME) */
  network: 'berth.network',
  /** names berth's DNS gives the endpoint, comma-separated: Docker's protocol does not tell drivers the container's name */
  aliases: 'berth.aliases',
};

export function networkName(networkId: string): string {
  return `docker-${networkId.slice(0, 12)}`;
}

const BERTH_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function berthNetworkName(v: unknown): string {
  if (typeof v !== 'string' || !BERTH_NAME_RE.test(v) || v.length > 64) {
    throw badRequest(`option ${OPT.network}=${String(v)} is not a valid berth network name: letters, digits, '_', '.' and '-', starting with a letter or digit`);
  }
  return v;
}

/** The endpoint's berth.aliases driver option as a list of names (each checked by the engine). */
export function endpointAliases(options: unknown): string[] {
  const v = (options as Record<string, unknown> | undefined)?.[OPT.aliases];
  if (v === undefined || v === null || v === '') return [];
  if (typeof v !== 'string') throw badRequest(`driver option ${OPT.aliases}=${JSON.stringify(v)} is not a comma-separated list of names`);
  return v.split(',').map((x) => x.trim()).filter(Boolean);
}

function proto(v: unknown): Proto {
  if (typeof v === 'number' && PROTOS[v]) return PROTOS[v];
  if (typeof v === 'string' && ['tcp', 'udp', 'sctp'].includes(v)) return v as Proto;
  throw badRequest(`unknown port protocol ${JSON.stringify(v)}`);
}

function port(v: unknown, what: string, zeroOk = false): number {
  const n = Number(v ?? 0);
  if (!Number.isInteger(n) || n < (zeroOk ? 0 : 1) || n > 65535) throw badRequest(`invalid ${what} ${JSON.stringify(v)}`);
  return n;
}

/** com.docker.network.portmap entries (types.PortBinding) as berth port specs. */
export function portMap(v: unknown): PortSpec[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badRequest(`${LABEL.portMap} must be a list`);
  return v.map((raw) => {
    const b = raw as Record<string, unknown>;
    const containerPort = port(b.Port, 'container port');
    const hostPort = port(b.HostPort, 'host port', true);
    const hostEnd = port(b.HostPortEnd, 'host port range end', true);
    const hostIp = typeof b.HostIP === 'string' && b.HostIP !== '0.0.0.0' && b.HostIP !== '::' ? b.HostIP : '';
    return { hostIp, hostPort, hostEnd: hostEnd > hostPort ? hostEnd : hostPort, containerPort, containerEnd: containerPort, proto: proto(b.Proto) };
  });
}

/** com.docker.network.exposedports entries (types.TransportPort). */
export function exposedPorts(v: unknown): PortProto[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badRequest(`${LABEL.exposedPorts} must be a list`);
  return v.map((raw) => ({ port: port((raw as Record<string, unknown>).Port, 'exposed port'), proto: proto((raw as Record<string, unknown>).Proto) }));
}

interface IpamData {
  Pool?: string;
  Gateway?: string;
  AuxAddresses?: Record<string, string>;
}

const noPrefix = (a: string | undefined) => (a ? a.split('/')[0]! : undefined);

export function networkDriverRoutes(c: DockerEngine, log: Logger): Record<string, PluginHandler> {
  const epOf = (b: Record<string, unknown>) => str(b, 'EndpointID', true);
  return {
    '/NetworkDriver.GetCapabilities': () => ({ Scope: 'local', ConnectivityScope: 'local' }),

    '/NetworkDriver.CreateNetwork': async (b) => {
      const nid = str(b, 'NetworkID', true);
      const opts = (b.Options ?? {}) as Record<string, unknown>;
      const generic = (opts[LABEL.generic] ?? {}) as Record<string, unknown>;
      const options: Record<string, string> = {};
      let name = networkName(nid);
      for (const [k, v] of Object.entries(generic)) {
        if (k === OPT.network) name = berthNetworkName(v);
        else if (PASSED_THROUGH.has(k)) options[k] = String(v);
        else if (!k.startsWith('com.docker.')) throw badRequest(`unknown option '${k}' (berth takes icc, masquerade, mtu and their com.docker.network.* names, and ${OPT.network})`);
        else log.debug({ option: k }, 'docker option ignored');
      }
      const pools = [...((b.IPv4Data ?? []) as IpamData[]), ...((b.IPv6Data ?? []) as IpamData[])].map((d) => {
        if (!d.Pool) throw badRequest('IPAM data without a Pool');
        return { subnet: d.Pool, ...(d.Gateway ? { gateway: noPrefix(d.Gateway)! } : {}), aux: Object.fromEntries(Object.entries(d.AuxAddresses ?? {}).map(([k, a]) => [k, noPrefix(a)!])) };
      });
      const internal = opts[LABEL.internal] === true || opts[LABEL.internal] === 'true';
      const ipv6 = opts[LABEL.enableIPv6] === true || opts[LABEL.enableIPv6] === 'true';
      await c.createExternalNetwork({ extId: nid, name, internal, ipv6, options, pools });
      return {};
    },

    '/NetworkDriver.DeleteNetwork': async (b) => {
      await c.removeExternalNetwork(str(b, 'NetworkID', true));
      return {};
    },

    '/NetworkDriver.CreateEndpoint': async (b) => {
      const iface = (b.Interface ?? {}) as Record<string, string>;
      const given = Boolean(iface.Address || iface.AddressIPv6 || iface.MacAddress);
      const sb = await c.createExternalEndpoint({
        extId: str(b, 'NetworkID', true), epId: epOf(b),
        ...(iface.Address ? { v4: noPrefix(iface.Address)! } : {}),
        ...(iface.AddressIPv6 ? { v6: noPrefix(iface.AddressIPv6)! } : {}),
        ...(iface.MacAddress ? { mac: iface.MacAddress } : {}),
        aliases: endpointAliases(b.Options),
      });
      // Docker supplied the interface: the answer must leave it alone (an empty Interface).
      if (given) return {};
      const ep = sb.endpoints[0]!;
      const n = c.snapshot().networks[ep.network]!;
      const bits = (f: 4 | 6) => poolFor(n.pools, f)!.subnet.split('/')[1];
      return { Interface: { ...(ep.v4 ? { Address: `${ep.v4}/${bits(4)}` } : {}), ...(ep.v6 ? { AddressIPv6: `${ep.v6}/${bits(6)}` } : {}), MacAddress: ep.mac } };
    },

    '/NetworkDriver.EndpointOperInfo': (b) => {
      const sb = c.externalEndpoint(epOf(b));
      const ep = sb?.endpoints[0];
      return { Value: ep ? { hostInterface: ep.hostIf, peer: sb.external?.peer, mac: ep.mac, ...(ep.v4 ? { ipv4: ep.v4 } : {}), ...(ep.v6 ? { ipv6: ep.v6 } : {}) } : {} };
    },

    '/NetworkDriver.DeleteEndpoint': async (b) => {
      await c.deleteExternalEndpoint(epOf(b));
      return {};
    },

    '/NetworkDriver.Join': async (b) => {
      const { peer, network: n, ep } = await c.joinExternal(epOf(b), str(b, 'SandboxKey'));
      const gw4 = poolFor(n.pools, 4)?.gateway;
      const gw6 = poolFor(n.pools, 6)?.gateway;
      return {
        InterfaceName: { SrcName: peer, DstPrefix: 'eth' },
        // An internal network gives no way out: no gateway, and no gateway service (docker_gwbridge) either.
        ...(!n.internal && gw4 && ep.v4 ? { Gateway: gw4 } : {}),
        ...(!n.internal && gw6 && ep.v6 ? { GatewayIPv6: gw6 } : {}),
        ...(n.internal ? { DisableGatewayService: true } : {}),
      };
    },

    '/NetworkDriver.Leave': async (b) => {
      await c.leaveExternal(epOf(b));
      return {};
    },

    '/NetworkDriver.DiscoverNew': () => ({}),
    '/NetworkDriver.DiscoverDelete': () => ({}),

    '/NetworkDriver.ProgramExternalConnectivity': async (b) => {
      const opts = (b.Options ?? {}) as Record<string, unknown>;
      await c.setExternalPorts(epOf(b), portMap(opts[LABEL.portMap]), exposedPorts(opts[LABEL.exposedPorts]));
      return {};
    },

    '/NetworkDriver.RevokeExternalConnectivity': async (b) => {
      const eid = epOf(b);
      if (c.externalEndpoint(eid)) await c.setExternalPorts(eid, [], []);
      return {};
    },
  };
}
