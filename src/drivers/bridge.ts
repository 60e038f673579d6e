/**
 * The bridge driver: a Linux bridge per network holding the gateway address,
 * and a veth per endpoint whose peer is created straight inside the sandbox's
 * namespace. Set-up is a queue of small named steps, each idempotent.
 * Another engine's endpoints (Docker's) get a veth whose peer stays in the
 * host namespace for that engine to move into its own sandbox.
 */
import { nl } from '../netlink/index.js';
import { parsePrefix } from '../ipam/addr.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord, State } from '../store/model.js';
import { ignoring, type JoinContext, type NetworkDriver } from './driver.js';
import { configureSandboxSide, sandboxHasLink } from './sandbox-side.js';
import { timed } from '../timing.js';

type Step = [name: string, run: () => Promise<unknown>];

async function runSteps(what: string, steps: Step[]): Promise<void> {
  for (const [name, run] of steps) {
    try {
      await run();
    } catch (e) {
      (e as Error).message = `${what}: step '${name}': ${(e as Error).message}`;
      throw e;
    }
  }
}

export function mtuOf(n: NetworkRecord): number {
  return Number(n.options.mtu ?? 1500);
}

/** The host-side veth name of endpoint @epId (the bpf datapath attaches there). */
export function hostIfName(epId: string): string {
  return `bv${epId.slice(0, 12)}`;
}

const OWN_BRIDGE = /^bb-[0-9a-f]{12}$/;
const OWN_VETH = /^bv[0-9a-f]{12}$/;

/**
 * A fixed MAC for the bridge. Without one, Linux gives a bridge the lowest MAC
 * of its ports, so it changes as endpoints come and go and sandboxes keep
 * sending to a gateway MAC that no longer exists until their ARP entry ages.
 */
export function bridgeMac(n: NetworkRecord): string {
  const h = n.id.slice(0, 8).match(/../g)!;
  return ['02', 'b6', ...h].join(':');
}

export class BridgeDriver implements NetworkDriver {
  readonly name = 'bridge';

  async createNetwork(n: NetworkRecord): Promise<void> {
    const br = n.bridge!;
    const steps: Step[] = [
      ['setupDevice', () => ignoring(['EEXIST'], () => nl.linkAddBridge({ name: br, mtu: mtuOf(n), mac: bridgeMac(n) }))],
      ['setupMtuAndMac', () => nl.linkSet({ name: br, mtu: mtuOf(n), mac: bridgeMac(n) })],
    ];
    if (n.ipv6) steps.push(['setupIPv6', () => nl.sysctlWrite({ key: `net.ipv6.conf.${br}.disable_ipv6`, value: '0' })]);
    for (const pool of n.pools) {
      const bits = parsePrefix(pool.subnet).bits;
      steps.push([`setupAddress${pool.family}`, () => ignoring(['EEXIST'], () => nl.addrAdd({ dev: br, cidr: `${pool.gateway}/${bits}`, nodad: pool.family === 6 }))]);
    }
    steps.push(['setupUp', () => nl.linkSet({ name: br, up: true })]);
    await runSteps(`network ${n.name}`, steps);
  }

  async deleteNetwork(n: NetworkRecord): Promise<void> {
    await nl.linkDel({ name: n.bridge! });
  }

  async join(n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord, ctx: JoinContext): Promise<void> {
    const hostIf = ep.hostIf!;
    await runSteps(`endpoint ${ep.ifname} of ${sb.name} on ${n.name}`, [
      // born on the bridge and up: one message
      ['createVeth', () => timed('veth', () => nl.linkAddVeth({ name: hostIf, peerName: ep.ifname, peerNetns: sb.netnsPath, mtu: ctx.mtu, peerMac: ep.mac, master: n.bridge!, up: true }))],
      ['configureSandboxSide', () => timed('addressing', () => configureSandboxSide(n, sb, ep, ctx))],
    ]);
  }

  async leave(_n: NetworkRecord, _sb: SandboxRecord, ep: EndpointRecord): Promise<void> {
    // The peer inside the sandbox goes with it, and so do its addresses and routes.
    await nl.linkDel({ name: ep.hostIf! });
  }

  async endpointPresent(_n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord): Promise<boolean> {
    const host = await nl.linkList({});
    if (!host.some((l) => l.name === ep.hostIf)) return false;
    return sandboxHasLink(sb, ep.ifname);
  }

  async setGateway(n: NetworkRecord, sb: SandboxRecord, ep: EndpointRecord, ctx: JoinContext): Promise<void> {
    await configureSandboxSide(n, sb, ep, { ...ctx, gateway: true });
  }

  /** Bridges bb-* and veths bv* that no network or endpoint of @state has (overlay networks' included). */
  async sweep(state: State): Promise<string[]> {
    const bridges = new Set(Object.values(state.networks).map((n) => n.bridge));
    const hostIfs = new Set(Object.values(state.sandboxes).flatMap((s) => s.endpoints.map((e) => e.hostIf)));
    const removed: string[] = [];
    for (const l of await nl.linkList({})) {
      if ((OWN_BRIDGE.test(l.name) && !bridges.has(l.name)) || (OWN_VETH.test(l.name) && !hostIfs.has(l.name))) {
        await nl.linkDel({ name: l.name });
        removed.push(`link ${l.name}`);
      }
    }
    return removed;
  }

  /**
   * The veth of another engine's endpoint, its @peer left in the host
   * namespace for the engine to move. A half-made pair, or one whose peer went
   * into an earlier sandbox, is made anew; true when it was (re)made.
   */
  async joinExternal(n: NetworkRecord, ep: EndpointRecord, peer: string): Promise<boolean> {
    const links = await nl.linkList({});
    if (links.some((l) => l.name === ep.hostIf) && links.some((l) => l.name === peer)) return false;
    await nl.linkDel({ name: ep.hostIf! }).catch(() => undefined);
    await nl.linkDel({ name: peer }).catch(() => undefined);
    try {
      await nl.linkAddVeth({ name: ep.hostIf!, peerName: peer, mtu: mtuOf(n), peerMac: ep.mac });
      await nl.linkSet({ name: ep.hostIf!, master: n.bridge!, up: true });
    } catch (e) {
      await nl.linkDel({ name: ep.hostIf! }).catch(() => undefined);
      throw e;
    }
    return true;
  }

  /** Removes an external endpoint's veth, wherever its peer went. */
  async leaveExternal(ep: EndpointRecord, peer: string): Promise<void> {
    if (ep.hostIf) await nl.linkDel({ name: ep.hostIf }).catch(() => undefined);
    await nl.linkDel({ name: peer }).catch(() => undefined);
  }
}
