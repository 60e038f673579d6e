/**
 * The bridge driver: a Linux bridge per network holding the gateway address,
 * and a veth per endpoint whose peer is created straight inside the sandbox's
 * namespace. Set-up is a queue of small named steps, each idempotent.
 */
import { nl } from '../netlink/index.js';
import { parsePrefix } from '../ipam/addr.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord } from '../store/model.js';
import { ignoring, type JoinContext, type NetworkDriver } from './driver.js';
import { configureSandboxSide, sandboxHasLink } from './sandbox-side.js';

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
      ['createVeth', () => nl.linkAddVeth({ name: hostIf, peerName: ep.ifname, peerNetns: sb.netnsPath, mtu: ctx.mtu, peerMac: ep.mac })],
      ['attachToBridge', () => nl.linkSet({ name: hostIf, master: n.bridge!, up: true })],
      ['configureSandboxSide', () => configureSandboxSide(n, sb, ep, ctx)],
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
}
