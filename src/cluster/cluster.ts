/**
 * This host's membership of a berth cluster, over the cluster store (etcd):
 * its registration (a leased key with its underlay address), the global
 * networks every host has, cluster-wide IPAM for them (an address is taken
 * with a create-if-absent transaction, so two hosts never hand out the same
 * one), and the endpoints each host runs on them, which the other hosts turn
 * into tunnel, ARP and DNS entries.
 *
 * Keys under /berth/v1/:
 *   hosts/<host id>              HostEntry, leased: present while its berthd runs
 *   members/<host id>            HostEntry, not leased: the host joined once (members.ts)
 *   networks/<network id>        GlobalNetwork
 *   names/<network name>         network id (names are unique cluster-wide)
 *   vnis/<vni>                   network id (so are VNIs)
 *   ipam/<network id>/<address>  IpamEntry: who holds the address
 *   endpoints/<network id>/<endpoint id>  EndpointEntry
 *   blocks/<network id>/<address>  BlockEntry: a host's block of a routed network (blocks.ts)
 *
 * A host writes only its own endpoints and allocations, and rewrites them from
 * its embedded state whenever the store is reachable (syncLocal), so a change
 * made while etcd was down, or a crash between two writes, is repaired.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { EtcdStore } from '../store/etcd.js';
import type { NetworkRecord, PoolRecord, State } from '../store/model.js';
import { conflict } from '../errors.js';
import { parseIp } from '../ipam/addr.js';
import { allocate } from '../ipam/ipam.js';
import type { RemoteEndpoint } from '../datapath/overlay/dataplane.js';
import { Members, type MemberView } from './members.js';

export const CLUSTER_PREFIX = '/berth/v1/';
/** Seconds a host stays registered after its berthd stopped answering. */
export const HOST_TTL = 10;
/** Seconds another host's registration may stay lapsed before its endpoints are withdrawn here (berthd --host-grace). */
export const DEFAULT_HOST_GRACE = 30;

export interface HostEntry {
  id: string;
  name: string;
  /** underlay IPv4 address VXLAN is sent to and accepted from */
  underlay: string;
  since: string;
}

export interface GlobalNetwork {
  id: string;
  name: string;
  internal: boolean;
  options: Record<string, string>;
  pools: Omit<PoolRecord, 'allocated' | 'last'>[];
  /** overlay networks */
  vxlan?: { vni: number; port: number };
  /** absent: overlay (records of older versions) */
  driver?: 'overlay' | 'routed';
  /** routed networks: the prefix length of each host's block */
  routed?: { blockBits: number };
  created: string;
  /** the host it was created on */
  origin: string;
}

export interface EndpointEntry {
  host: string;
  /** the host's underlay address, kept here so traffic to it survives the host's registration lapsing */
  underlay: string;
  sandbox: string;
  name: string;
  hostname: string;
  mac: string;
  v4?: string;
  aliases: string[];
  /** sandbox ids its sandbox links to (--link), for links across hosts */
  links?: string[];
  /** its sandbox's exposed ports: what a linker reaches across hosts */
  expose?: { port: number; proto: string }[];
}

export interface IpamEntry {
  host: string;
  endpoint: string;
}

export class Cluster extends EventEmitter {
  private readonly lastPick = new Map<string, string>();
  /** which hosts are ready, lapsed, withdrawn (emits 'host-lapsed' and 'host-returned' on this) */
  readonly members: Members;

  constructor(
    readonly store: EtcdStore,
    readonly hostId: string,
    readonly hostName: string,
    readonly underlay: string,
    private readonly log: Logger,
    hostGrace = DEFAULT_HOST_GRACE,
  ) {
    super();
    this.members = new Members({
      hostId, registered: () => this.hosts(), members: () => [...store.list<HostEntry>('members/').values()],
      endpointHosts: () => [...store.list<EndpointEntry>('endpoints/').values()].map((e) => e.host),
      get connected() {
        return store.connected;
      },
      emit: (event, ...args) => this.emit(event, ...args),
    }, hostGrace, log);
    store.on('changed', () => {
      this.members.review();
      this.emit('changed');
    });
    store.on('connected', () => {
      this.members.review();
      this.emit('connected');
    });
  }

  get connected(): boolean {
    return this.store.connected;
  }

  /** Reads the cluster's state, starts watching it, and registers this host. */
  async join(): Promise<void> {
    await this.store.start();
    const entry: HostEntry = { id: this.hostId, name: this.hostName, underlay: this.underlay, since: new Date().toISOString() };
    await this.store.putLeased(`hosts/${this.hostId}`, entry, HOST_TTL);
    const member = this.store.get<HostEntry>(`members/${this.hostId}`);
    if (member?.name !== entry.name || member.underlay !== entry.underlay) await this.store.put(`members/${this.hostId}`, entry);
    this.members.review();
    this.log.info({ host: this.hostId, underlay: this.underlay, store: this.store.endpoints.url }, 'joined the cluster');
  }

  /** Retries join() every 2 s until it succeeds or the cluster is left. */
  joinInBackground(): void {
    const attempt = () => {
      if (this.left) return;
      this.join().then(
        () => this.emit('connected'),
        () => setTimeout(attempt, 2000).unref(),
      );
    };
    setTimeout(attempt, 2000).unref();
  }

  private left = false;

  hosts(): HostEntry[] {
    return [...this.store.list<HostEntry>('hosts/').values()];
  }

  networks(): GlobalNetwork[] {
    return [...this.store.list<GlobalNetwork>('networks/').values()];
  }

  /** Every known host of the cluster, ready or lapsed (`berth node ls`). */
  nodes(): MemberView[] {
    return this.members.list();
  }

  /** Endpoints on @netId (every host's but those withdrawn here), by endpoint id. */
  endpoints(netId: string): Map<string, EndpointEntry> {
    const all = this.store.list<EndpointEntry>(`endpoints/${netId}/`);
    for (const [k, e] of all) if (this.members.withdrawn(e.host)) all.delete(k);
    return all;
  }

  /** Every endpoint in the store but those of hosts withdrawn here. */
  allEndpoints(): { network: string; id: string; e: EndpointEntry }[] {
    return [...this.store.list<EndpointEntry>('endpoints/')].flatMap(([k, e]) => {
      if (this.members.withdrawn(e.host)) return [];
      const [network = '', id = ''] = k.split('/');
      return [{ network, id, e }];
    });
  }

  /** Records @n as a global network (with @extra keys, in one transaction); refuses (conflict) a name or VNI another network has. */
  async createNetwork(n: NetworkRecord, g: GlobalNetwork = this.globalOf(n), extra: Record<string, unknown> = {}): Promise<void> {
    const keys: Record<string, unknown> = { [`names/${n.name}`]: n.id, [`networks/${n.id}`]: g, ...extra };
    if (g.vxlan) keys[`vnis/${g.vxlan.vni}`] = n.id;
    if (await this.store.createAll(Object.keys(keys), keys)) return;
    if (await this.store.exists(`names/${n.name}`)) throw conflict(`network '${n.name}' already exists in the cluster`);
    throw conflict(`VXLAN id ${g.vxlan?.vni} is used by another overlay network of the cluster: pick another with -o vxlan.id=N`);
  }

  /** The cluster's record of overlay network @n. */
  private globalOf(n: NetworkRecord): GlobalNetwork {
    return {
      id: n.id, name: n.name, internal: n.internal, options: n.options,
      pools: n.pools.map((p) => ({ family: p.family, subnet: p.subnet, gateway: p.gateway, aux: p.aux, ...(p.ipRange ? { ipRange: p.ipRange } : {}) })),
      vxlan: n.vxlan!, created: n.created, origin: this.hostId,
    };
  }

  /** Removes global network @n; refuses while any host has endpoints on it. */
  async deleteNetwork(n: NetworkRecord): Promise<void> {
    // A withdrawn host's endpoints count: it may come back to them.
    const eps = [...this.store.list<EndpointEntry>(`endpoints/${n.id}/`).values()];
    if (eps.length) throw conflict(`network '${n.name}' has active endpoints in the cluster (${eps.map((e) => `${e.name} on ${e.host}`).join(', ')}): remove them first`);
    const ipam = [...this.store.list<IpamEntry>(`ipam/${n.id}/`).keys()].map((a) => `ipam/${n.id}/${a}`);
    const blocks = [...this.store.list(`blocks/${n.id}/`).keys()].map((a) => `blocks/${n.id}/${a}`);
    await this.store.delete(`networks/${n.id}`, `names/${n.name}`, ...(n.vxlan ? [`vnis/${n.vxlan.vni}`] : []), ...ipam, ...blocks);
  }

  /** Addresses of @netId held anywhere in the cluster. */
  allocated(netId: string): Set<string> {
    return new Set(this.store.list<IpamEntry>(`ipam/${netId}/`).keys());
  }

  /**
   * Takes an address of @pool on @netId for endpoint @endpoint: @requested, or
   * the first free one after the pool's last. Each try is a create-if-absent
   * transaction: a race with another host costs a retry, never a duplicate.
   */
  async allocate(netId: string, pool: PoolRecord, endpoint: string, requested?: string): Promise<string> {
    const entry: IpamEntry = { host: this.hostId, endpoint };
    if (requested) {
      const a = parseIp(requested, 'address').text;
      if (!(await this.store.create(`ipam/${netId}/${a}`, entry))) throw conflict(`address ${a} is already in use in the cluster`);
      return a;
    }
    for (let tries = 0; tries < 64; tries++) {
      // The local IPAM's walk, over the addresses the whole cluster holds.
      const probe: PoolRecord = { ...pool, allocated: [...this.allocated(netId)], ...(this.lastPick.get(netId) ? { last: this.lastPick.get(netId)! } : {}) };
      const pick = allocate(probe);
      this.lastPick.set(netId, pick);
      if (await this.store.create(`ipam/${netId}/${pick}`, entry)) return pick;
    }
    throw conflict(`could not allocate an address on network ${netId.slice(0, 12)}: too many concurrent allocations`);
  }

  async release(netId: string, address: string): Promise<void> {
    const cur = this.store.get<IpamEntry>(`ipam/${netId}/${address}`);
    if (cur && cur.host !== this.hostId) return;
    await this.store.delete(`ipam/${netId}/${address}`);
  }

  /**
   * Makes this host's endpoints and allocations in the store match @state:
   * publishes what is missing, withdraws what is gone. Throws 'unavailable'
   * while the store is unreachable; the caller retries later.
   */
  async syncLocal(state: State): Promise<void> {
    const want = new Map<string, EndpointEntry>();
    const wantIpam = new Map<string, IpamEntry>();
    for (const sb of Object.values(state.sandboxes)) {
      for (const ep of sb.endpoints) {
        const n = state.networks[ep.network];
        if (n?.scope !== 'global') continue;
        want.set(`${n.id}/${ep.id}`, {
          host: this.hostId, underlay: this.underlay, sandbox: sb.id, name: sb.name, hostname: sb.hostname, mac: ep.mac, ...(ep.v4 ? { v4: ep.v4 } : {}), aliases: ep.aliases,
          ...(sb.links.length ? { links: sb.links.map((l) => l.target) } : {}),
          ...(sb.expose.length ? { expose: sb.expose.map((x) => ({ port: x.port, proto: x.proto })) } : {}),
        });
        if (ep.v4) wantIpam.set(`${n.id}/${ep.v4}`, { host: this.hostId, endpoint: ep.id });
      }
    }
    for (const [k, e] of this.store.list<EndpointEntry>('endpoints/')) {
      if (e.host === this.hostId && !want.has(k)) await this.store.delete(`endpoints/${k}`);
    }
    for (const [k, e] of want) {
      if (JSON.stringify(this.store.get(`endpoints/${k}`)) !== JSON.stringify(e)) await this.store.put(`endpoints/${k}`, e);
    }
    const held = this.store.list<IpamEntry>('ipam/');
    for (const [k, e] of held) {
      if (e.host === this.hostId && !wantIpam.has(k)) await this.store.delete(`ipam/${k}`);
    }
    for (const [k, e] of wantIpam) {
      const cur = held.get(k);
      if (!cur) {
        if (!(await this.store.create(`ipam/${k}`, e))) this.log.error({ address: k }, 'address held locally is taken by another host in the cluster');
      } else if (cur.host !== this.hostId) {
        this.log.error({ address: k, holder: cur.host }, 'address held locally is taken by another host in the cluster');
      }
    }
  }

  /** Every other host's endpoints on the overlay networks whose VNI @vniOf knows, for the tunnel maps. */
  remoteEndpoints(vniOf: (netId: string) => number | undefined): RemoteEndpoint[] {
    const out: RemoteEndpoint[] = [];
    for (const { network, e } of this.allEndpoints()) {
      const vni = vniOf(network);
      if (vni === undefined || e.host === this.hostId) continue;
      out.push({ vni, mac: e.mac, hostIp: e.underlay, ...(e.v4 ? { v4: e.v4 } : {}) });
    }
    return out;
  }

  /** Underlay addresses VXLAN is accepted from: registered hosts, and hosts of known endpoints. */
  peerAddresses(): string[] {
    const set = new Set<string>();
    for (const h of this.hosts()) if (h.id !== this.hostId) set.add(h.underlay);
    for (const { e } of this.allEndpoints()) if (e.host !== this.hostId) set.add(e.underlay);
    return [...set];
  }

  async leave(): Promise<void> {
    this.left = true;
    this.members.close();
    await this.store.close();
  }
}

