/**
 * What the controller remembers: the whole desired state, one document. The
 * kernel state (links, namespaces, addresses, routes) is derived from it and
 * rebuilt from it on start.
 */
/** An address family (the same as ipam's Family; the store depends on no other layer). */
type Family = 4 | 6;

export const STATE_VERSION = 1;

export interface PoolRecord {
  family: Family;
  subnet: string;
  gateway: string;
  /** sub-range dynamic allocation draws from */
  ipRange?: string;
  /** name -> address, reserved and never handed out */
  aux: Record<string, string>;
  /** addresses held by endpoints */
  allocated: string[];
  /** the last address handed out: allocation continues after it, so freed addresses are reused last */
  last?: string;
}

export type NetworkDriverName = 'bridge' | 'macvlan' | 'overlay' | 'routed';

export interface NetworkRecord {
  id: string;
  name: string;
  driver: NetworkDriverName;
  internal: boolean;
  ipv6: boolean;
  /** validated -o options */
  options: Record<string, string>;
  pools: PoolRecord[];
  /** bridge device (bridge driver) */
  bridge?: string;
  /** parent interface (macvlan driver) */
  parent?: string;
  /** the default "bridge" network: no DNS, links only, cannot be removed */
  isDefault: boolean;
  /** made for another engine (Docker's remote driver protocol): that engine's id for it */
  external?: { engine: 'docker'; id: string };
  /** made by berth-cni on a first ADD: removed with its last attachment */
  madeByCni?: boolean;
  /** 'global': an overlay network every host of the cluster has (kept in the cluster store); absent: this host only */
  scope?: 'local' | 'global';
  /** overlay networks: the VXLAN network identifier and UDP port */
  vxlan?: { vni: number; port: number };
  /**
   * routed networks: the whole address space and this host's block of it (the
   * pool is the block: its gateway is this host's, sandboxes get the block's prefix)
   */
  routed?: { subnet: string; block: string };
  created: string;
}

export interface EndpointRecord {
  id: string;
  network: string;
  /** interface name inside the sandbox: eth0, eth1, ... */
  ifname: string;
  /** host side of the veth (bridge driver) */
  hostIf?: string;
  mac: string;
  v4?: string;
  v6?: string;
  /** network-scoped aliases resolvable by the network's members */
  aliases: string[];
}

export type Proto = 'tcp' | 'udp' | 'sctp';

/** One destination of an egress allow-list: a prefix, optionally one port of one protocol. */
export interface EgressRule {
  cidr: string;
  port?: number;
  proto?: Proto;
}

export interface PortProto {
  port: number;
  proto: Proto;
}

export interface PublishRecord {
  hostIp: string;
  /** first host port; 0 until allocated */
  hostPort: number;
  /** number of consecutive ports */
  count: number;
  containerPort: number;
  proto: Proto;
  /** berthd holds no socket on it: the runtime that asked for it holds its own (podman does, as a CNI runtime) */
  unheld?: boolean;
}

export interface LinkRecord {
  /** target sandbox id */
  target: string;
  alias: string;
}

/**
 * 'external': an endpoint whose namespace another engine (Docker, a CNI
 * runtime) owns: berth made the veth and holds the address, ports and policy;
 * no namespace, files or process of berth's.
 */
export type SandboxMode = 'networks' | 'host' | 'none' | 'container' | 'external';

export interface ExternalInfo {
  engine: 'docker' | 'cni';
  /** the veth end handed to the engine, named so in berthd's namespace until the engine moves it ('' for cni: berth puts it in the namespace itself) */
  peer: string;
  /** the engine's sandbox key while joined */
  sandboxKey?: string;
  /** engine 'cni': the attachment's key as the runtime names it (CNI network name, CNI_CONTAINERID, CNI_IFNAME) */
  cni?: CniAttachmentKey;
}

export interface CniAttachmentKey {
  network: string;
  containerId: string;
  ifname: string;
}

export interface SandboxRecord {
  id: string;
  name: string;
  created: string;
  mode: SandboxMode;
  /** container:<id> mode: the sandbox whose namespace is shared */
  sharedWith?: string;
  /** network namespace file ('' for host mode) */
  netnsPath: string;
  hostname: string;
  dns: string[];
  dnsSearch: string[];
  addHosts: { host: string; ip: string }[];
  env: string[];
  links: LinkRecord[];
  expose: PortProto[];
  publish: PublishRecord[];
  publishAll: boolean;
  publishAllow: string[];
  /** present: the only destinations outside its networks it may open connections to ([] = none); absent: its networks' default */
  egressAllow?: EgressRule[];
  endpoints: EndpointRecord[];
  cmd: string[];
  /** mode 'external' only */
  external?: ExternalInfo;
  /** the process berth started, identified by pid and start time (pids are reused) */
  pid?: number;
  pidStart?: string;
  exitCode?: number | null;
}

export interface DaemonConfig {
  /** default bridge network settings (like dockerd --bip, --fixed-cidr) */
  defaultSubnet: string;
  defaultGateway?: string;
  defaultIpRange?: string;
  defaultBridge: string;
}

export interface State {
  version: number;
  /** random, per state directory: names of kernel objects carry it */
  instance: string;
  networks: Record<string, NetworkRecord>;
  sandboxes: Record<string, SandboxRecord>;
  /** address pools handed to another engine's IPAM (Docker's IpamDriver), by pool id */
  ipamPools?: Record<string, IpamPoolRecord>;
  /** next ephemeral host port for -P / hostPort 0 */
  nextEphemeral?: number;
}

export interface IpamPoolRecord extends PoolRecord {
  id: string;
  addressSpace: string;
}
