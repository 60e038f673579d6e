/**
 * The macvlan driver: each endpoint is a macvlan child of the parent
 * interface, made straight inside the sandbox's namespace; the gateway is a
 * router on the parent's network, so berth keeps no device of its own.
 */
import { nl } from '../netlink/index.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord } from '../store/model.js';
import { type JoinContext, type NetworkDriver } from './driver.js';
import { configureSandboxSide, sandboxHasLink } from './sandbox-side.js';
import { badRequest } from '../errors.js';

export class MacvlanDriver implements NetworkDriver {
  readonly name = 'macvlan';

  async createNetwork(n: NetworkRecord): Promise<void> {
    const links = await nl.linkList({});
    if (!links.some((l) => l.name === n.parent)) {
      throw badRequest(`macvlan parent interface '${n.parent}' does not exist on this host`);
    }
  }

  async deleteNetwork(): Promise<void> {}

  async join(n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord, ctx: JoinContext): Promise<void> {
    const mode = (n.options['macvlan.mode'] ?? 'bridge') as 'bridge' | 'private' | 'vepa' | 'passthru';
    await nl.linkAddMacvlan({ name: ep.ifname, parent: n.parent!, mode, peerNetns: sb.netnsPath });
    await nl.linkSet({ netns: sb.netnsPath, name: ep.ifname, mac: ep.mac, mtu: ctx.mtu });
    await configureSandboxSide(n, sb, ep, ctx);
  }

  async leave(_n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord): Promise<void> {
    await nl.linkDel({ netns: sb.netnsPath, name: ep.ifname });
  }

  async endpointPresent(_n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord): Promise<boolean> {
    return sandboxHasLink(sb, ep.ifname);
  }

  async setGateway(n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord, ctx: JoinContext): Promise<void> {
    await configureSandboxSide(n, sb, ep, { ...ctx, gateway: true });
  }

  /** A macvlan child lives and dies with its sandbox's namespace: nothing of its own outlives a sandbox. */
  async sweep(): Promise<string[]> {
    return [];
  }
}
