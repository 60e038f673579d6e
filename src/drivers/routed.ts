/**
 * The routed driver: on every host a routed network is a bridge network over
 * this host's block (the bridge holds the block's gateway, sandboxes join as
 * on a bridge network), plus the routes that make it one network across
 * hosts without encapsulation:
 *  - the whole subnet on the bridge (link scope), so an address of a block no
 *    host holds dies here instead of leaving by the default route;
 *  - in each sandbox, the whole subnet via this host's gateway;
 *  - each other host's block via that host's underlay address (the kernel
 *    picks the device; through the underlay's gateway when the hosts are not
 *    on one segment).
 * Every step is idempotent; routes are replaced, never appended.
 */
import { nl } from '../netlink/index.js';
import { containsPrefix, parsePrefix } from '../ipam/addr.js';
import { poolFor } from '../ipam/ipam.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord, State } from '../store/model.js';
import { BridgeDriver } from './bridge.js';
import type { JoinContext, NetworkDriver } from './driver.js';

export interface BlockRoute {
  /** another host's block, e.g. "10.90.0.64/26" */
  block: string;
  /** that host's underlay address */
  via: string;
}

export class RoutedDriver implements NetworkDriver {
  readonly name = 'routed';
  private readonly bridge = new BridgeDriver();

  async createNetwork(n: NetworkRecord): Promise<void> {
    await this.bridge.createNetwork(n);
    await nl.routeReplace({ dst: n.routed!.subnet, dev: n.bridge!, scope: 'link' });
  }

  async deleteNetwork(n: NetworkRecord): Promise<void> {
    await this.syncRoutes(n, []);
    // The subnet's route goes with the bridge.
    await this.bridge.deleteNetwork(n);
  }

  /** Makes the routes to other hosts' blocks of @n exactly @peers; returns what changed ("+block via ip", "-block"). */
  async syncRoutes(n: NetworkRecord, peers: BlockRoute[]): Promise<string[]> {
    const subnet = parsePrefix(n.routed!.subnet);
    const want = new Map(peers.map((p) => [parsePrefix(p.block).text, p.via]));
    const changed: string[] = [];
    for (const r of await nl.routeList({ family: 4 })) {
      if (!r.via || r.dst === 'default' || r.dst === subnet.text) continue;
      const dst = parsePrefix(r.dst, 'route', true);
      if (!containsPrefix(subnet, dst)) continue;
      if (want.get(dst.text) === r.via) {
        want.delete(dst.text);
        continue;
      }
      if (!want.has(dst.text)) {
        await nl.routeDel({ dst: dst.text, via: r.via });
        changed.push(`-${dst.text}`);
      }
    }
    for (const [block, via] of want) {
      await nl.routeReplace({ dst: block, via });
      changed.push(`+${block} via ${via}`);
    }
    return changed;
  }

  async join(n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord, ctx: JoinContext): Promise<void> {
    await this.bridge.join(n, sb, ep, ctx);
    // Other hosts' blocks are off-link: via this host's gateway, also when the network is
    // internal (no default route) or another endpoint carries the sandbox's default route.
    await nl.routeReplace({ netns: sb.netnsPath, dst: n.routed!.subnet, via: poolFor(n.pools, 4)!.gateway, dev: ep.ifname });
  }

  leave(n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord): Promise<void> {
    return this.bridge.leave(n, sb, ep);
  }

  endpointPresent(n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord): Promise<boolean> {
    return this.bridge.endpointPresent(n, sb, ep);
  }

  setGateway(n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord, ctx: JoinContext): Promise<void> {
    return this.bridge.setGateway(n, sb, ep, ctx);
  }

  /** The bridges and veths are the bridge driver's sweep; routes of a gone network went with its deletion. */
  async sweep(_state: State): Promise<string[]> {
    return [];
  }
}
