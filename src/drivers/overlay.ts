/**
 * The overlay driver: on every host, a global network is a bridge like a
 * bridge network's (same gateway address and MAC on every host, so a
 * sandbox's way out is always its own host), joined by sandboxes exactly as
 * on a bridge network. What makes it one network across hosts is the overlay
 * dataplane: each sandbox's veth becomes an overlay port whose frames to
 * remote endpoints are tunnelled, and the network's VNI is bound to the
 * bridge for frames arriving from the tunnel.
 */
import type { EndpointRecord, NetworkRecord, SandboxRecord, State } from '../store/model.js';
import { BridgeDriver } from './bridge.js';
import type { JoinContext, NetworkDriver } from './driver.js';
import type { OverlayPortSpec, OverlayPorts } from '../datapath/overlay/dataplane.js';
import { unavailable } from '../errors.js';

/** What the endpoint's overlay port may send as; an egress allow-list (its own, or -o egress=deny) keeps it to members. */
function portSpec(n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord): OverlayPortSpec {
  return { mac: ep.mac, ...(ep.v4 ? { v4: ep.v4 } : {}), egress: sb.egressAllow !== undefined || n.options.egress === 'deny' };
}

export class OverlayDriver implements NetworkDriver {
  readonly name = 'overlay';
  private readonly bridge = new BridgeDriver();

  constructor(private readonly dataplane: () => OverlayPorts | undefined) {}

  private dp(n: NetworkRecord): OverlayPorts {
    const dp = this.dataplane();
    if (!dp) throw unavailable(`overlay network '${n.name}' needs the overlay dataplane: start berthd with --store etcd://HOST:PORT`);
    return dp;
  }

  async createNetwork(n: NetworkRecord): Promise<void> {
    const dp = this.dp(n);
    await this.bridge.createNetwork(n);
    await dp.ensureVxlan(n.vxlan!.port);
    await dp.addNetwork(n.vxlan!.vni, n.bridge!, { icc: n.options.icc !== 'false', internal: n.internal });
  }

  async deleteNetwork(n: NetworkRecord): Promise<void> {
    await this.dataplane()?.removeNetwork(n.vxlan!.vni);
    await this.bridge.deleteNetwork(n);
  }

  async join(n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord, ctx: JoinContext): Promise<void> {
    const dp = this.dp(n);
    await this.bridge.join(n, sb, ep, ctx);
    await dp.addPort(ep.hostIf!, n.vxlan!.vni, n.vxlan!.port, portSpec(n, sb, ep));
  }

  async leave(n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord): Promise<void> {
    await this.dataplane()?.removePort(ep.hostIf!, n.vxlan!.vni, ep).catch(() => undefined);
    await this.bridge.leave(n, sb, ep);
  }

  async endpointPresent(n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord): Promise<boolean> {
    const dp = this.dataplane();
    if (!dp || !dp.portAttached(ep.hostIf!)) return false;
    if (!(await this.bridge.endpointPresent(n, sb, ep))) return false;
    // The interfaces are there: rewrite the port's map entries (idempotent), so maps an
    // older berthd did not have are filled without remaking the endpoint.
    await dp.addPort(ep.hostIf!, n.vxlan!.vni, n.vxlan!.port, portSpec(n, sb, ep));
    return true;
  }

  async setGateway(n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord, ctx: JoinContext): Promise<void> {
    await this.bridge.setGateway(n, sb, ep, ctx);
  }

  /** The dataplane's pinned ports and tunnel state of endpoints gone; the bridges and veths are the bridge driver's sweep. */
  async sweep(_state: State): Promise<string[]> {
    await this.dataplane()?.sweep();
    return [];
  }
}
