/**
 * Routed networks on the controller: global networks (in the cluster store,
 * on every host) without encapsulation. Each host takes a block of the
 * subnet (blocks.ts) and makes the network as a bridge network over that
 * block, its gateway the block's first address; the other hosts' blocks are
 * routed via their underlay addresses, kept current from the store's watch.
 * Sandboxes' packets cross the underlay with their own addresses; only what
 * leaves the subnet is masqueraded.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { badRequest, conflict } from '../errors.js';
import { contains, overlaps, parseIp, parsePrefix } from '../ipam/addr.js';
import { makePool, poolFor } from '../ipam/ipam.js';
import type { NetworkRecord, State } from '../store/model.js';
import type { Core } from '../controller/core.js';
import { optBool, strings, type CreateNetworkRequest } from '../controller/requests.js';
import { validateOptions } from '../controller/options.js';
import { shortId } from '../controller/names.js';
import { checkSubnetFree } from '../controller/addressing.js';
import { adoptNetwork } from '../controller/networks.js';
import { transaction } from '../controller/transaction.js';
import type { Cluster, GlobalNetwork } from './cluster.js';
import { publishMembers } from './routed-links.js';
import { assertBlock, blockBits, blockGateway, blockKey, blocksOf, claimBlock, nthBlock, type BlockEntry } from './blocks.js';

export class RoutedNetworks {
  constructor(
    private readonly cluster: Cluster,
    private readonly log: Logger,
    /** MTU of the underlay device: routed networks default to it (nothing is added to a packet) */
    private readonly underlayMtu = 1500,
  ) {}

  /** This host's record of routed network @g, its block taken in the store first. */
  async localRecord(g: GlobalNetwork): Promise<NetworkRecord> {
    const pool = g.pools[0]!;
    const subnet = parsePrefix(pool.subnet);
    const block = await claimBlock(this.cluster, g.id, subnet, g.routed!.blockBits);
    const bp = parsePrefix(block);
    const aux = Object.fromEntries(Object.entries(pool.aux).filter(([, a]) => contains(bp, parseIp(a).value, 4)));
    return {
      id: g.id, name: g.name, driver: 'routed', scope: 'global', internal: g.internal, ipv6: false,
      options: { ...g.options, mtu: g.options.mtu ?? String(this.underlayMtu) },
      pools: [{ family: 4, subnet: block, gateway: blockGateway(block), aux, allocated: [] }],
      bridge: `bb-${g.id.slice(0, 12)}`, routed: { subnet: subnet.text, block }, isDefault: false, created: g.created,
    };
  }

  async createNetwork(core: Core, req: CreateNetworkRequest, name: string): Promise<NetworkRecord> {
    const { cluster } = this;
    const options = validateOptions('routed', req.options ?? {});
    if (optBool(req.ipv6, 'ipv6')) throw badRequest('routed networks carry IPv4 only in this version: drop --ipv6');
    const internal = optBool(req.internal, 'internal');
    const subnets = strings(req.subnets, 'subnets');
    if (subnets.length !== 1) throw badRequest(`a routed network needs one IPv4 --subnet, the address space split into per-host blocks (${subnets.length ? subnets.join(', ') : 'none'} given)`);
    const gateways = strings(req.gateways, 'gateways');
    if (gateways.length) throw badRequest(`--gateway ${gateways.join(', ')}: a routed network has a gateway per host, the first address of each host's block`);
    const ranges = strings(req.ipRanges, 'ip-ranges');
    if (ranges.length) throw badRequest(`--ip-range ${ranges.join(', ')}: a routed network gives out the addresses of each host's block`);
    const subnet = parsePrefix(subnets[0]!, 'subnet');
    if (subnet.family !== 4) throw badRequest(`routed subnet ${subnet.text} is not IPv4`);
    const bits = blockBits(subnet, options['routed.block']);
    await checkSubnetFree(core, subnet);
    const clash = cluster.networks().find((g) => g.pools.some((p) => overlaps(subnet, parsePrefix(p.subnet))));
    if (clash) throw conflict(`subnet ${subnet.text} overlaps ${clash.pools[0]!.subnet} of global network '${clash.name}'`);
    // Checks the aux addresses against the whole subnet, naming a bad one.
    const { aux } = makePool({ subnet: subnet.text, aux: req.auxAddresses ?? {} });
    const { 'routed.block': _block, ...rest } = options;
    const id = randomBytes(32).toString('hex');
    const g: GlobalNetwork = {
      id, name, internal, options: rest, driver: 'routed', routed: { blockBits: bits },
      // Each host's gateway is its block's first address: none for the whole subnet.
      pools: [{ family: 4, subnet: subnet.text, gateway: '', aux }],
      created: new Date().toISOString(), origin: cluster.hostId,
    };
    let rec: NetworkRecord | undefined;
    await transaction(core, async (tx) => {
      // The cluster first: it decides whether the name is free everywhere. The first block is
      // this host's, written with the network, so no other host joining at once takes it.
      const first = nthBlock(subnet, bits, 0n);
      await cluster.createNetwork({ id, name } as NetworkRecord, g, {
        [blockKey(id, first)]: { host: cluster.hostId, underlay: cluster.underlay, block: first } satisfies BlockEntry,
      });
      tx.onUndo(() => cluster.deleteNetwork({ id, name } as NetworkRecord));
      rec = await this.localRecord(g);
      await adoptNetwork(core, rec);
    });
    core.log.info({ network: name, id: shortId(id), subnet: subnet.text, block: rec!.routed!.block }, 'routed network created');
    return core.state.networks[id]!;
  }

  /** An address of this host's block of @n: @requested must lie in it. */
  allocate(n: NetworkRecord, owner: string, requested?: string): Promise<string> {
    const pool = poolFor(n.pools, 4)!;
    if (requested) {
      const a = parseIp(requested, '--ip');
      if (a.family !== 4 || !contains(parsePrefix(pool.subnet), a.value, 4)) {
        throw badRequest(`--ip ${requested} is not in this host's block ${pool.subnet} of routed network '${n.name}' (${n.routed!.subnet}): each host gives out the addresses of its own block`);
      }
    }
    return this.cluster.allocate(n.id, pool, owner, requested);
  }

  /**
   * The other hosts' blocks of @n, as routes: block -> underlay address. A
   * host that left (its registration lapsed) with no endpoints on @n has its
   * route withdrawn (it keeps its block and gets the route back when it
   * returns); one with endpoints keeps it, so its sandboxes stay reachable
   * while its berthd is down.
   */
  peers(n: NetworkRecord): { block: string; via: string }[] {
    const present = new Set(this.cluster.hosts().map((h) => h.id));
    for (const e of this.cluster.endpoints(n.id).values()) present.add(e.host);
    return blocksOf(this.cluster, n.id)
      .filter((b) => b.host !== this.cluster.hostId && b.underlay !== this.cluster.underlay && present.has(b.host))
      .map((b) => ({ block: b.block, via: b.underlay }));
  }

  /** Makes every routed network's routes to other hosts' blocks match the store (while it is reachable). */
  async syncRoutes(core: Core): Promise<void> {
    if (!this.cluster.connected) return;
    for (const n of Object.values(core.state.networks)) {
      if (n.driver !== 'routed') continue;
      await core.routed.syncRoutes(n, this.peers(n)).catch((e: unknown) => this.log.error({ err: e, network: n.name }, 'routes to other hosts\' blocks not updated'));
    }
  }

  /** Writes this host's blocks back into the store (after an outage, or a crash between two writes). */
  async publish(state: State): Promise<void> {
    await publishMembers(this.cluster, state);
    for (const n of Object.values(state.networks)) {
      if (n.driver !== 'routed' || !n.routed) continue;
      if (!(await assertBlock(this.cluster, n.id, n.routed.block))) {
        this.log.error({ network: n.name, block: n.routed.block }, 'block held here is held by another host in the cluster');
      }
    }
  }
}
