/**
 * Endpoints: a sandbox's attachment to a network. Addresses come from the
 * network's pools (or are given), the MAC follows the IPv4 address as
 * Docker's does, and the first endpoint on a network with a way out carries
 * the sandbox's default routes.
 */
import { randomBytes } from 'node:crypto';
import { badRequest } from '../errors.js';
import { familyOf } from '../ipam/addr.js';
import { allocate, poolFor, release } from '../ipam/ipam.js';
import { hostIfName, mtuOf } from '../drivers/bridge.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord, State } from '../store/model.js';
import type { Core } from './core.js';

export function macFor(v4?: string): string {
  const bytes = v4 ? v4.split('.').map(Number) : [...randomBytes(4)];
  return ['02', 'b7', ...bytes.map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** Allocates an endpoint of @sb on @n in @draft (addresses taken from its pools). */
export function newEndpoint(draft: State, n: NetworkRecord, sb: SandboxRecord, req: { ip?: string; ip6?: string; aliases?: string[]; shared?: boolean }): EndpointRecord {
  const net = draft.networks[n.id]!;
  // @shared: a CNI attachment, on a Docker network the operator shares (cni-networks.ts checks).
  if (net.external && !req.shared) throw badRequest(`network '${net.name}' belongs to ${net.external.engine}: berth's sandboxes cannot join it`);
  if ((req.ip || req.ip6) && net.isDefault) {
    throw badRequest(`user-specified IP address is supported on user-defined networks only (not on '${net.name}')`);
  }
  const v4pool = poolFor(net.pools, 4);
  const v6pool = poolFor(net.pools, 6);
  if (req.ip && familyOf(req.ip) !== 4) throw badRequest(`--ip ${req.ip} is not an IPv4 address`);
  if (req.ip6 && !v6pool) throw badRequest(`--ip6 ${req.ip6} given but network '${net.name}' has no IPv6`);
  const v4 = v4pool ? allocate(v4pool, req.ip) : undefined;
  const v6 = v6pool ? allocate(v6pool, req.ip6) : undefined;
  const used = new Set(sb.endpoints.map((e) => e.ifname));
  let i = 0;
  while (used.has(`eth${i}`)) i++;
  const id = randomBytes(32).toString('hex');
  return {
    id,
    network: net.id,
    ifname: `eth${i}`,
    ...(net.driver === 'bridge' || net.driver === 'overlay' || net.driver === 'routed' ? { hostIf: hostIfName(id) } : {}),
    mac: macFor(v4),
    ...(v4 ? { v4 } : {}),
    ...(v6 ? { v6 } : {}),
    aliases: req.aliases ?? [],
  };
}

/** Gives @ep's addresses back to its network's pools in @draft. */
export function releaseEndpoint(draft: State, ep: EndpointRecord): void {
  const n = draft.networks[ep.network];
  if (!n) return;
  for (const pool of n.pools) for (const a of [ep.v4, ep.v6]) if (a) release(pool, a);
}

/** Takes endpoint @epId off sandbox @sbId in @draft, addresses included. */
export function dropEndpoint(draft: State, sbId: string, epId: string): void {
  const sb = draft.sandboxes[sbId];
  const ep = sb?.endpoints.find((e) => e.id === epId);
  if (!sb || !ep) return;
  releaseEndpoint(draft, ep);
  sb.endpoints = sb.endpoints.filter((x) => x.id !== epId);
}

/** The endpoint that carries @sb's default routes: the first on a network with a way out. */
export function gatewayEndpoint(core: Core, sb: SandboxRecord): EndpointRecord | undefined {
  return sb.endpoints.find((e) => !core.state.networks[e.network]?.internal);
}

/** Makes @ep in the kernel with its network's driver. */
export async function joinEndpoint(core: Core, sb: SandboxRecord, ep: EndpointRecord): Promise<void> {
  const n = core.state.networks[ep.network]!;
  await core.driverOf(n).join(n, sb, ep, { gateway: gatewayEndpoint(core, sb)?.id === ep.id, mtu: mtuOf(n) });
}

/** Removes @ep from the kernel (a gone network has nothing left to remove). */
export async function leaveEndpoint(core: Core, sb: SandboxRecord, ep: EndpointRecord): Promise<void> {
  const n = core.state.networks[ep.network];
  if (n) await core.driverOf(n).leave(n, sb, ep);
}
