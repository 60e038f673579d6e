/**
 * Address-space policy: which subnets a new network may take. A subnet must
 * not overlap another network's, an IPAM pool handed to another engine, or a
 * prefix the host routes elsewhere; without one, the first free pool of
 * Docker's defaults is chosen.
 */
import { randomBytes } from 'node:crypto';
import { conflict } from '../errors.js';
import { overlaps, parsePrefix, type Prefix } from '../ipam/addr.js';
import { hostRoutes } from '../drivers/host.js';
import type { Core } from './core.js';

export function usedPrefixes(core: Core, except?: string): Prefix[] {
  return [
    ...Object.values(core.state.networks)
      .filter((n) => n.id !== except)
      .flatMap((n) => n.pools.map((p) => parsePrefix(p.subnet))),
    ...Object.values(core.state.ipamPools ?? {}).map((p) => parsePrefix(p.subnet)),
  ];
}

/** Routes of the host other than through berth's own bridges. */
export function routesElsewhere(core: Core): Promise<{ prefix: Prefix; dev: string }[]> {
  const ours = new Set(Object.values(core.state.networks).map((n) => n.bridge).filter((b): b is string => !!b));
  return hostRoutes(ours);
}

/** @hostRoutes false for macvlan: its subnet is the parent's network, which the host routes by design. */
export async function checkSubnetFree(core: Core, p: Prefix, checkHostRoutes = true, except?: string): Promise<void> {
  for (const n of Object.values(core.state.networks)) {
    if (n.id === except) continue;
    for (const pool of n.pools) {
      if (overlaps(p, parsePrefix(pool.subnet))) throw conflict(`subnet ${p.text} overlaps ${pool.subnet} of network '${n.name}'`);
    }
  }
  for (const r of checkHostRoutes ? await routesElsewhere(core) : []) {
    if (overlaps(p, r.prefix)) throw conflict(`subnet ${p.text} overlaps the host's route ${r.prefix.text}${r.dev ? ` on ${r.dev}` : ''}`);
  }
}

/** The first free /16 of 172.17-31 or /20 of 192.168, as Docker's default pools. */
export async function autoSubnet4(core: Core): Promise<string> {
  const used = [...usedPrefixes(core), ...(await routesElsewhere(core)).map((r) => r.prefix)];
  const candidates: string[] = [];
  for (let b = 17; b <= 31; b++) candidates.push(`172.${b}.0.0/16`);
  for (let c = 0; c < 256; c += 16) candidates.push(`192.168.${c}.0/20`);
  const free = candidates.find((c) => !used.some((u) => overlaps(parsePrefix(c), u)));
  if (!free) throw conflict('no free address pool left for a new network: give one with --subnet');
  return free;
}

/** A random unique-local /64 that no network uses. */
export function autoSubnet6(core: Core): string {
  const used = usedPrefixes(core);
  for (;;) {
    const r = randomBytes(5).toString('hex');
    const cand = `fd${r.slice(0, 2)}:${r.slice(2, 6)}:${r.slice(6, 10)}::/64`;
    if (!used.some((u) => overlaps(parsePrefix(cand), u))) return cand;
  }
}
