/**
 * The compiled addon's (build/Release/berth.node) declarations, and addon(),
 * which load.cts implements (the only loader of the binary, CommonJS so that
 * `berth version` needs no ES module loader). Everything else uses the typed
 * facades in src/bpf/, which build on the declarations here.
 */
export { addon } from './load.cjs';

/** Error thrown by the addon for a failed system or libbpf call. */
export interface NativeError extends Error {
  /** errno name, e.g. "ENOENT" */
  code: string;
  errno: number;
  /** the call that failed, e.g. "bpf_map_update_elem" */
  syscall: string;
  /** trimmed verifier log, when a program failed to load */
  verifierLog?: string;
}

export function isNativeError(e: unknown): e is NativeError {
  return e instanceof Error && typeof (e as NativeError).syscall === 'string';
}

export interface RawMapInfo {
  name: string;
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  id: number;
  percpu: boolean;
  ncpus: number;
  /** bytes user space reads or writes per value (all CPUs for per-CPU maps) */
  valueBytes: number;
}

/** A map of an object as libbpf will create it: what a pin it reuses must match. */
export interface RawMapDef {
  name: string;
  type: string;
  internal: boolean;
  pinPath: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

export interface RawMap {
  info(): RawMapInfo;
  lookup(key: Buffer): Promise<Buffer | null>;
  update(key: Buffer, value: Buffer, flags?: number): Promise<void>;
  delete(key: Buffer): Promise<boolean>;
  updateBatch(keys: Buffer, values: Buffer, flags?: number): Promise<number>;
  /** update() and updateBatch() on the JS thread, for a few entries (a syscall beats a thread-pool round trip) */
  updateSync(key: Buffer, value: Buffer, flags?: number): void;
  updateBatchSync(keys: Buffer, values: Buffer, flags?: number): number;
  /** Deletes the concatenated @keys in batches; keys not present are skipped. Resolves with how many were deleted. */
  deleteBatch(keys: Buffer): Promise<number>;
  entries(): Promise<{ keys: Buffer; values: Buffer; count: number }>;
  pin(path: string): Promise<void>;
  close(): void;
}

export interface TestRunResult {
  retval: number;
  data: Buffer;
  ctx?: Buffer;
  /** average ns per run, as the kernel measured it */
  duration: number;
}

export interface AttachTarget {
  ifname?: string;
  ifindex?: number;
  /** a netns file such as /var/run/netns/NAME; omitted: the caller's namespace */
  netns?: string;
}

export interface TcAttachOptions extends AttachTarget {
  direction: 'ingress' | 'egress';
  /** clsact: swap the program of the filter at this handle and priority in one step */
  replace?: boolean;
  /** auto: tcx where the kernel has it, else clsact + cls_bpf */
  mode?: 'auto' | 'tcx' | 'clsact';
  priority?: number;
  handle?: number;
}

export interface XdpAttachOptions extends AttachTarget {
  mode?: 'native' | 'generic';
}

export interface RawLinkInfo {
  kind: 'tcx' | 'clsact' | 'xdp' | 'tracing';
  ifindex: number;
  netns: string;
  direction?: 'ingress' | 'egress';
  mode?: 'native' | 'generic';
  progId: number;
  linkId?: number;
  handle?: number;
  priority?: number;
  qdiscCreated?: boolean;
  detached: boolean;
}

export interface RawLink {
  info(): RawLinkInfo;
  pin(path: string): Promise<void>;
  detach(): Promise<void>;
  close(): void;
}

export interface RawProgram {
  info(): { name: string; type: string; id: number };
  /** @netns: a netns file; ctx's ifindex and the program's FIB lookups resolve there */
  testRun(opts: { data: Buffer; ctx?: Buffer; repeat?: number; netns?: string }): Promise<TestRunResult>;
  attachTc(opts: TcAttachOptions): Promise<RawLink>;
  attachXdp(opts: XdpAttachOptions): Promise<RawLink>;
  /** a tp_btf / fentry program, to what its section names */
  attachTracing(): Promise<RawLink>;
  pin(path: string): Promise<void>;
  close(): void;
}

export interface RawObject {
  consts(): { name: string; size: number }[];
  setConst(name: string, value: Buffer): void;
  /** a map's size, between open and load */
  setMaxEntries(map: string, n: number): void;
  load(): Promise<void>;
  /** every map with the layout it is created with (or a reused pin must have); before load too */
  maps(): RawMapDef[];
  map(name: string): RawMap;
  programs(): { name: string; section: string; type: string }[];
  program(name: string): RawProgram;
  close(): void;
}

export interface ProbeResult {
  kernel: string;
  btf: boolean;
  tcx: boolean;
  netkit: boolean;
  ringbuf: boolean;
  progSchedCls: boolean;
  progXdp: boolean;
  progLoadError?: string;
  bpffs: { path: string; mounted: boolean };
  caps: { bpf: boolean; netAdmin: boolean; sysAdmin: boolean };
}

export interface XdpQueryResult {
  ifindex: number;
  attachMode: number;
  progId: number;
  features: { basic: boolean; redirect: boolean; ndoXmit: boolean; zerocopy: boolean };
}

/** Where a netlink call runs. */
export interface NlTarget {
  /** a netns file such as /var/run/netns/NAME; omitted: the caller's namespace */
  netns?: string;
}

/** What every link creation takes. */
export interface NlNewLink extends NlTarget {
  name: string;
  mtu?: number;
  /** "aa:bb:cc:dd:ee:ff"; omitted: random */
  mac?: string;
}

export interface NlVethOptions extends NlNewLink {
  peerName: string;
  /** create the peer straight into this netns (IFLA_NET_NS_FD); mtu applies to both ends */
  peerNetns?: string;
  peerMac?: string;
  /** the caller's end on this bridge (in `netns`), in the same message */
  master?: string;
  /** the caller's end created up */
  up?: boolean;
}

/** The sandbox end of an endpoint, made in one call inside @netns (native/rtnl_sandbox.cc). */
export interface NlSandboxSide {
  netns: string;
  ifname: string;
  /** net.* sysctls inside the namespace; one the kernel lacks (no IPv6) is skipped */
  sysctls?: { key: string; value: string }[];
  /** addresses on @ifname; one there already is kept */
  addrs?: { cidr: string; nodad?: boolean }[];
  /** a default route via each, on @ifname (replacing one there) */
  gateways?: string[];
}

export interface NlMacvlanOptions extends NlNewLink {
  /** the lower device, in `netns` */
  parent: string;
  /** default 'bridge' */
  mode?: 'bridge' | 'private' | 'vepa' | 'passthru';
  /** create the macvlan straight into this netns */
  peerNetns?: string;
}

export interface NlVxlanOptions extends NlNewLink {
  /** 0 to 16777215 */
  vni: number;
  /** UDP destination port; default 4789 */
  port?: number;
  /** local tunnel address (IPv4 or IPv6) */
  local?: string;
  /** the underlay device */
  dev?: string;
  /** omitted: the kernel's default (learning on) */
  learning?: boolean;
  /** collect metadata: any VNI, the tunnel key set per packet by a BPF program (vni is then ignored) */
  external?: boolean;
}

export interface NlLinkSetOptions extends NlTarget {
  name: string;
  up?: boolean;
  mtu?: number;
  /** a bridge to enslave to; null: release from its master */
  master?: string | null;
  newName?: string;
  mac?: string;
  /** move the link into this netns */
  targetNetns?: string;
}

export interface NlLink {
  ifindex: number;
  name: string;
  /** IFLA_INFO_KIND ("bridge", "veth", "macvlan", "vxlan"...); '' for none */
  kind: string;
  /** ifindex of the master (bridge), 0 for none */
  master: number;
  /** administratively up (IFF_UP) */
  up: boolean;
  /** operstate UP, or UNKNOWN with carrier (as for lo) */
  operUp: boolean;
  mtu: number;
  mac: string;
  /** IFLA_LINK: a veth's peer, a macvlan's parent (in the peer's netns if peerNetnsId is set) */
  peerIfindex?: number;
  /** IFLA_LINK_NETNSID: the peer lives in another netns, known here by this id */
  peerNetnsId?: number;
}

export interface NlAddrOptions extends NlTarget {
  dev: string;
  /** "10.0.0.1/24" or "fd00::1/64" */
  cidr: string;
  /** skip duplicate address detection (IPv6) */
  nodad?: boolean;
}

export interface NlAddr {
  dev: string;
  ifindex: number;
  cidr: string;
  family: 4 | 6;
  /** 'global' | 'link' | 'host' | 'site' | 'nowhere' (or a number) */
  scope: string;
}

export interface NlRouteOptions extends NlTarget {
  /** 'default' or a network CIDR (no host bits) */
  dst: 'default' | (string & {});
  via?: string;
  dev?: string;
  /** default 254 (main) */
  table?: number;
  metric?: number;
  /** preferred source address */
  src?: string;
  /** default: 'link' for an IPv4 route without a gateway, else 'global' */
  scope?: 'global' | 'link' | 'host';
  /** the family of 'default' when there is no `via` */
  family?: 4 | 6;
}

export interface NlRoute {
  family: 4 | 6;
  /** 'default' or CIDR */
  dst: string;
  via?: string;
  dev?: string;
  src?: string;
  table: number;
  /** 'kernel' | 'boot' | 'static' (berth's) | 'ra' | 'dhcp' | ... */
  protocol: string;
  scope: string;
  /** 'unicast' | 'local' | 'broadcast' | 'blackhole' | ... */
  type: string;
  metric?: number;
}

export interface NlNeighOptions extends NlTarget {
  dev: string;
  ip: string;
  mac: string;
  /** default true (NUD_PERMANENT); false: NUD_REACHABLE */
  permanent?: boolean;
}

export interface NlNeigh {
  dev: string;
  ifindex: number;
  ip: string;
  mac?: string;
  /** 'permanent' | 'reachable' | 'stale' | 'delay' | 'probe' | 'failed' | 'incomplete' | 'noarp' | 'none' */
  state: string;
  family: 4 | 6;
  router?: boolean;
}

/**
 * rtnetlink and namespaces (native/netlink.cc, native/rtnl_*.cc). Every call
 * runs on the libuv pool, opens its own NETLINK_ROUTE socket inside `netns`,
 * and rejects with a NativeError (syscall "netlink" or the real one) whose
 * message names the values and carries the kernel's extended ack.
 * Deletions resolve false when there was nothing to delete.
 */
export interface NetlinkAddon {
  netnsCreate(path: string): Promise<void>;
  netnsDelete(path: string): Promise<boolean>;
  linkAddBridge(opts: NlNewLink): Promise<void>;
  linkAddVeth(opts: NlVethOptions): Promise<void>;
  linkAddMacvlan(opts: NlMacvlanOptions): Promise<void>;
  linkAddVxlan(opts: NlVxlanOptions): Promise<void>;
  linkSet(opts: NlLinkSetOptions): Promise<void>;
  linkDel(opts: NlTarget & { name: string }): Promise<boolean>;
  linkList(opts: NlTarget): Promise<NlLink[]>;
  addrAdd(opts: NlAddrOptions): Promise<void>;
  addrDel(opts: Omit<NlAddrOptions, 'nodad'>): Promise<boolean>;
  addrList(opts: NlTarget & { dev?: string; family?: 4 | 6 }): Promise<NlAddr[]>;
  routeAdd(opts: NlRouteOptions): Promise<void>;
  routeReplace(opts: NlRouteOptions): Promise<void>;
  routeDel(opts: NlRouteOptions): Promise<boolean>;
  /** table: default 254 (main); 0 for every table */
  routeList(opts: NlTarget & { family?: 4 | 6; table?: number }): Promise<NlRoute[]>;
  neighReplace(opts: NlNeighOptions): Promise<void>;
  neighDel(opts: NlTarget & { dev: string; ip: string }): Promise<boolean>;
  neighList(opts: NlTarget & { dev?: string; family?: 4 | 6 }): Promise<NlNeigh[]>;
  /** key: 'net.…' only; the value as the kernel prints it, without the trailing newline */
  sysctlRead(opts: NlTarget & { key: string }): Promise<string>;
  sysctlWrite(opts: NlTarget & { key: string; value: string }): Promise<void>;
  sandboxSide(opts: NlSandboxSide): Promise<void>;
}

export interface Addon {
  BpfObject: { open(path: string, opts?: { pinRoot?: string; name?: string }): Promise<RawObject> };
  RingBuffer: new (map: RawMap, onRecord: (rec: Buffer) => void) => {
    close(): void;
    stats(): { delivered: number; lost: number };
  };
  openPinnedMap(path: string): Promise<RawMap>;
  openPinnedLink(path: string): Promise<RawLink>;
  /** The program id of the cls_bpf filter at @handle/@priority (0: none); remove: delete it too. */
  tcFilter(opts: AttachTarget & { direction: 'ingress' | 'egress'; handle: number; priority: number; remove?: boolean }): Promise<number>;
  probe(opts?: { bpffs?: string }): Promise<ProbeResult>;
  xdpQuery(opts: AttachTarget): Promise<XdpQueryResult>;
  abiSizes(): Record<string, number>;
  /** BERTH_ABI_VERSION of bpf/include/berth_abi.h, as compiled into the addon. */
  abiVersion(): number;
  /** An enum of the running kernel, from its BTF: name -> value ({} when absent). */
  kernelEnum(name: string): Record<string, number>;
  /** A socket bound to the port and never listened on (native/ports.cc): the fd. Throws EADDRINUSE when taken. */
  portHold(opts: { proto: 'tcp' | 'udp'; address: string; port: number; reuse?: boolean }): number;
  portRelease(fd: number): void;
  /** An exclusive flock(2) on @path (a file or directory), held while the fd is open (native/flock.cc); null: another holds it. */
  flockHold(path: string): number | null;
  flockRelease(fd: number): void;
  /** Starts @file in a session of its own by posix_spawn (native/spawn.cc: berthd is not forked); stdout and stderr to @output. The pid. */
  spawnDetached(opts: { file: string; argv: string[]; env: string[]; output: number }): number;
  /** Collects child @pid's exit status: null while it runs; code and signal null when it is no child (any more). */
  childReap(pid: number): { code: number | null; signal: number | null } | null;
  /** Raises the open-file soft limit to the hard limit; returns the limit now. */
  raiseNofile(): number;
  /** Sends one crafted packet (native/inject.cc): with ifname an Ethernet frame on that interface, else its IP packet through a raw socket. */
  packetInject(opts: { netns?: string; ifname?: string; frame: Buffer }): Promise<void>;
  libbpf(): { version: string; mode: 'in-tree' | 'system'; possibleCpus: number };
  setLogger(fn: ((level: 'warn' | 'info' | 'debug', message: string) => void) | null): void;
  netlink: NetlinkAddon;
}
