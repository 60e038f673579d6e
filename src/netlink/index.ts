/**
 * Links, addresses, routes, neighbours, net.* sysctls and named network
 * namespaces through rtnetlink: one call on the libuv pool each, no `ip`
 * process. Every option object takes `netns` (a netns file such as
 * /var/run/netns/NAME) to act inside that namespace. Failures reject with a
 * NativeError whose message names the values (and the kernel's own reason);
 * bad arguments throw a TypeError before anything runs. Deletions resolve
 * false when there was nothing to delete, so reconciling is idempotent.
 */
import {
  addon,
  type NetlinkAddon,
  type NlAddr,
  type NlAddrOptions,
  type NlLink,
  type NlLinkSetOptions,
  type NlMacvlanOptions,
  type NlNeigh,
  type NlNeighOptions,
  type NlNewLink,
  type NlRoute,
  type NlRouteOptions,
  type NlSandboxSide,
  type NlTarget,
  type NlVethOptions,
  type NlVxlanOptions,
} from '../native/addon.js';

export type {
  NlAddr,
  NlAddrOptions,
  NlLink,
  NlLinkSetOptions,
  NlMacvlanOptions,
  NlNeigh,
  NlNeighOptions,
  NlNewLink,
  NlRoute,
  NlRouteOptions,
  NlSandboxSide,
  NlTarget,
  NlVethOptions,
  NlVxlanOptions,
};

const raw = (): NetlinkAddon => addon().netlink;

export const nl = {
  /** A new network namespace bound at @path (like `ip netns add`), with lo up. */
  netnsCreate: (path: string): Promise<void> => raw().netnsCreate(path),
  /** Unmounts and removes @path; false when it did not exist. */
  netnsDelete: (path: string): Promise<boolean> => raw().netnsDelete(path),

  linkAddBridge: (opts: NlNewLink): Promise<void> => raw().linkAddBridge(opts),
  /** A veth pair; with peerNetns the peer is born in that namespace. */
  linkAddVeth: (opts: NlVethOptions): Promise<void> => raw().linkAddVeth(opts),
  linkAddMacvlan: (opts: NlMacvlanOptions): Promise<void> => raw().linkAddMacvlan(opts),
  linkAddVxlan: (opts: NlVxlanOptions): Promise<void> => raw().linkAddVxlan(opts),
  /** Changes any of up, mtu, master, name, mac and namespace in one message. */
  linkSet: (opts: NlLinkSetOptions): Promise<void> => raw().linkSet(opts),
  linkDel: (opts: NlTarget & { name: string }): Promise<boolean> => raw().linkDel(opts),
  linkList: (opts: NlTarget = {}): Promise<NlLink[]> => raw().linkList(opts),

  /** IPv4 gets its broadcast address (`brd +`), as iproute2 does. */
  addrAdd: (opts: NlAddrOptions): Promise<void> => raw().addrAdd(opts),
  addrDel: (opts: Omit<NlAddrOptions, 'nodad'>): Promise<boolean> => raw().addrDel(opts),
  addrList: (opts: NlTarget & { dev?: string; family?: 4 | 6 } = {}): Promise<NlAddr[]> => raw().addrList(opts),

  routeAdd: (opts: NlRouteOptions): Promise<void> => raw().routeAdd(opts),
  routeReplace: (opts: NlRouteOptions): Promise<void> => raw().routeReplace(opts),
  routeDel: (opts: NlRouteOptions): Promise<boolean> => raw().routeDel(opts),
  /** The main table unless `table` is given; `table: 0` lists every table. */
  routeList: (opts: NlTarget & { family?: 4 | 6; table?: number } = {}): Promise<NlRoute[]> => raw().routeList(opts),

  /** A static (permanent unless told otherwise) neighbour entry. */
  neighReplace: (opts: NlNeighOptions): Promise<void> => raw().neighReplace(opts),
  neighDel: (opts: NlTarget & { dev: string; ip: string }): Promise<boolean> => raw().neighDel(opts),
  neighList: (opts: NlTarget & { dev?: string; family?: 4 | 6 } = {}): Promise<NlNeigh[]> => raw().neighList(opts),

  /** A net.* sysctl as seen inside `netns`. */
  sysctlRead: (opts: NlTarget & { key: string }): Promise<string> => raw().sysctlRead(opts),
  sysctlWrite: (opts: NlTarget & { key: string; value: string }): Promise<void> => raw().sysctlWrite(opts),

  /** Sysctls, addresses, link up and default routes of a sandbox's interface, in one call inside its namespace. */
  sandboxSide: (opts: NlSandboxSide): Promise<void> => raw().sandboxSide(opts),
};
