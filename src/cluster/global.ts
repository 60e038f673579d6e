/**
 * Global networks on the controller: an overlay network lives in the cluster
 * store and every host mirrors it into its own state as a network of scope
 * 'global' and makes it in its kernel. Its addresses are allocated in the
 * store. This host's endpoints are written there after every change (a
 * commit hook), and other hosts' endpoints come back through the watch into
 * the overlay dataplane. This is the controller's GlobalScope.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { badRequest, conflict } from '../errors.js';
import { familyOf, overlaps, parsePrefix, type Prefix } from '../ipam/addr.js';
import { makePool, poolFor } from '../ipam/ipam.js';
import type { NetworkRecord, State } from '../store/model.js';
import type { OverlayDataplane } from '../datapath/overlay/dataplane.js';
import type { Controller } from '../controller/controller.js';
import type { ClusterView, Core, GlobalScope, NodeView } from '../controller/core.js';
import { optBool, strings, type CreateNetworkRequest } from '../controller/requests.js';
import { validateOptions } from '../controller/options.js';
import { shortId } from '../controller/names.js';
import { checkSubnetFree, routesElsewhere, usedPrefixes } from '../controller/addressing.js';
import { adoptNetwork, dropNetwork } from '../controller/networks.js';
import { transaction } from '../controller/transaction.js';
import type { Cluster, GlobalNetwork } from './cluster.js';
import { RoutedNetworks } from './routed.js';
import { overlayPolicy } from './overlay-policy.js';
import { remoteLinks, remoteMember } from './routed-links.js';
import type { DpLink } from '../datapath/datapath.js';

export interface GlobalNetworksOptions {
  cluster: Cluster;
  overlay: OverlayDataplane;
  /** MTU of the underlay device: overlay networks default to 50 less */
  underlayMtu?: number;
  log: Logger;
}

export class GlobalNetworks implements GlobalScope {
  private dirty = false;
  private readonly routed: RoutedNetworks;

  private constructor(private readonly o: GlobalNetworksOptions) {
    this.routed = new RoutedNetworks(o.cluster, o.log, o.underlayMtu);
  }

  /** Serves @controller's global networks from the cluster and starts following it. */
  static attach(controller: Controller, o: GlobalNetworksOptions): GlobalNetworks {
    const g = new GlobalNetworks(o);
    controller.setGlobalScope(g);
    controller.onCommit((state) => g.publish(state));
    const follow = () => {
      controller.exclusive((core) => g.follow(core)).catch((e: unknown) => o.log.error({ err: e }, 'following the cluster failed'));
    };
    o.cluster.on('changed', follow);
    o.cluster.on('connected', follow);
    // What the cluster holds already (networks made while this berthd was down) is followed now.
    follow();
    const retry = setInterval(() => {
      if (g.dirty && o.cluster.connected) controller.exclusive(async () => undefined).catch(() => undefined);
    }, 2000);
    retry.unref();
    return g;
  }

  async allocate(n: NetworkRecord, owner: string, requested?: string): Promise<string | undefined> {
    if (n.driver === 'routed') return this.routed.allocate(n, owner, requested);
    const pool = poolFor(n.pools, 4);
    if (!pool) return undefined;
    if (requested && familyOf(requested) !== 4) throw badRequest(`--ip ${requested} is not an IPv4 address`);
    return this.o.cluster.allocate(n.id, pool, owner, requested);
  }

  deleteNetwork(n: NetworkRecord): Promise<void> {
    return this.o.cluster.deleteNetwork(n);
  }

  /** The local record of global network @g: the cluster's definition plus this host's bridge and MTU. */
  private localRecord(g: Pick<GlobalNetwork, 'id' | 'name' | 'internal' | 'options' | 'pools' | 'vxlan' | 'created'>): NetworkRecord {
    const mtu = g.options.mtu ?? String((this.o.underlayMtu ?? 1500) - 50);
    return {
      id: g.id, name: g.name, driver: 'overlay', scope: 'global', internal: g.internal, ipv6: false,
      options: { ...g.options, mtu }, pools: g.pools.map((p) => ({ ...p, aux: { ...p.aux }, allocated: [] })),
      bridge: `bb-${g.id.slice(0, 12)}`, vxlan: g.vxlan, isDefault: false, created: g.created,
    };
  }

  async createNetwork(core: Core, req: CreateNetworkRequest, name: string): Promise<NetworkRecord> {
    if (req.driver === 'routed') return this.routed.createNetwork(core, req, name);
    const { cluster } = this.o;
    const options = validateOptions('overlay', req.options ?? {});
    if (optBool(req.ipv6, 'ipv6')) throw badRequest('overlay networks carry IPv4 only in this version: drop --ipv6');
    const internal = optBool(req.internal, 'internal');
    const subnets = strings(req.subnets, 'subnets');
    if (subnets.length > 1) throw badRequest(`overlay networks take one IPv4 subnet (${subnets.join(', ')} given)`);
    const gateways = strings(req.gateways, 'gateways');
    const ranges = strings(req.ipRanges, 'ip-ranges');
    const used = [...usedPrefixes(core), ...cluster.networks().flatMap((g) => g.pools.map((p) => parsePrefix(p.subnet)))];
    let subnet: Prefix;
    if (subnets[0]) {
      subnet = parsePrefix(subnets[0], 'subnet');
      if (subnet.family !== 4) throw badRequest(`overlay subnet ${subnet.text} is not IPv4`);
      await checkSubnetFree(core, subnet);
      const clash = cluster.networks().find((g) => g.pools.some((p) => overlaps(subnet, parsePrefix(p.subnet))));
      if (clash) throw conflict(`subnet ${subnet.text} overlaps ${clash.pools[0]!.subnet} of overlay network '${clash.name}'`);
    } else {
      // Docker's overlay pool: the first free 10.0.N.0/24.
      const routes = (await routesElsewhere(core)).map((r) => r.prefix);
      const free = Array.from({ length: 256 }, (_, i) => parsePrefix(`10.0.${i}.0/24`)).find((c) => ![...used, ...routes].some((u) => overlaps(c, u)));
      if (!free) throw conflict('no free overlay subnet left in 10.0.0.0/16: give one with --subnet');
      subnet = free;
    }
    const pool = makePool({ subnet: subnet.text, ...(gateways[0] ? { gateway: gateways[0] } : {}), ...(ranges[0] ? { ipRange: ranges[0] } : {}), aux: req.auxAddresses ?? {} });
    const vnis = new Set(cluster.networks().flatMap((g) => (g.vxlan ? [g.vxlan.vni] : [])));
    let vni = options['vxlan.id'] ? Number(options['vxlan.id']) : 4096;
    if (options['vxlan.id'] && vnis.has(vni)) throw conflict(`VXLAN id ${vni} is used by another overlay network of the cluster: pick another with -o vxlan.id=N`);
    while (vnis.has(vni)) vni++;
    const port = Number(options['vxlan.port'] ?? 4789);
    const id = randomBytes(32).toString('hex');
    const { 'vxlan.id': _id, 'vxlan.port': _port, ...rest } = options;
    const rec = this.localRecord({ id, name, internal, options: rest, pools: [pool], vxlan: { vni, port }, created: new Date().toISOString() });
    await transaction(core, async (tx) => {
      // The cluster first: it decides whether the name and VNI are free everywhere.
      await cluster.createNetwork({ ...rec, options: rest });
      tx.onUndo(() => cluster.deleteNetwork(rec));
      await adoptNetwork(core, rec);
    });
    core.log.info({ network: name, id: shortId(id), subnet: subnet.text, vni, port }, 'overlay network created');
    return core.state.networks[id]!;
  }

  /** Global networks appear and vanish here as in the cluster; other hosts' endpoints reach the dataplane. */
  private async follow(core: Core): Promise<void> {
    const { cluster, log } = this.o;
    const global = cluster.networks();
    for (const g of global) {
      if (core.state.networks[g.id]) continue;
      const clash = Object.values(core.state.networks).find((n) => n.name === g.name);
      if (clash) {
        log.error({ network: g.name }, 'a global network has the name of a local network here: not joined');
        continue;
      }
      const rec = g.driver === 'routed' ? this.routed.localRecord(g) : Promise.resolve(this.localRecord(g));
      await rec.then((r) => adoptNetwork(core, r)).then(
        () => log.info({ network: g.name, id: shortId(g.id), driver: g.driver ?? 'overlay' }, 'global network joined'),
        (e: unknown) => log.error({ err: e, network: g.name }, 'could not make a global network here'),
      );
    }
    if (cluster.connected) {
      const ids = new Set(global.map((g) => g.id));
      for (const n of Object.values(core.state.networks)) {
        if (n.scope !== 'global' || ids.has(n.id) || core.membersOf(n).length) continue;
        await dropNetwork(core, n).catch(() => undefined);
        log.info({ network: n.name }, 'global network removed by the cluster');
      }
    }
    // While the store is unreachable the maps keep the last known state.
    if (!cluster.connected) return;
    const vniOf = (id: string) => core.state.networks[id]?.vxlan?.vni;
    await this.o.overlay.syncRemote(cluster.peerAddresses(), cluster.remoteEndpoints(vniOf));
    await this.syncPolicy(core.state);
    await this.routed.syncRoutes(core);
  }

  /** The overlay's checks and links across hosts, from @state and the last known endpoints of the cluster. */
  private async syncPolicy(state: State): Promise<void> {
    const p = overlayPolicy(state, this.o.cluster.hostId, this.o.cluster.allEndpoints());
    await this.o.overlay.syncPolicy(p.nets, p.links);
  }

  /** Publishes this host's endpoints; while the store is down, marks it for the retry timer. */
  private async publish(state: State): Promise<void> {
    const { cluster, log } = this.o;
    // Local links and networks need no store: the cluster's endpoints as last known.
    await this.syncPolicy(state).catch((e: unknown) => log.error({ err: e }, 'overlay policy not updated'));
    if (!cluster.connected) {
      // Not worth a timeout per operation: the retry timer writes it all once the store is back.
      this.dirty = true;
      return;
    }
    try {
      await cluster.syncLocal(state);
      await this.routed.publish(state);
      this.dirty = false;
    } catch (e) {
      if (!this.dirty) log.warn({ err: (e as Error).message }, 'cluster store not updated; retrying while it is unreachable');
      this.dirty = true;
    }
  }

  nodes(): NodeView[] {
    return this.o.cluster.nodes();
  }

  /** A sandbox of another host that a --link may name: a routed network's member, or an endpoint on an overlay network. */
  linkTarget(state: State, ref: string): { id: string; name: string } | undefined {
    const routed = remoteMember(this.o.cluster, state, ref);
    if (routed) return routed;
    const c = this.o.cluster;
    const hit = c.allEndpoints().find(({ e }) => e.host !== c.hostId && (e.name === ref || e.sandbox === ref));
    return hit ? { id: hit.e.sandbox, name: hit.e.name } : undefined;
  }

  remoteLinks(state: State): DpLink[] {
    return remoteLinks(this.o.cluster, state, this.o.log);
  }

  /** The cluster's hosts, for `berth network inspect` of a global network. */
  view(): ClusterView {
    const c = this.o.cluster;
    return { hosts: c.hosts().map((h) => ({ id: h.id, name: h.name, underlay: h.underlay })), connected: c.connected };
  }
}
