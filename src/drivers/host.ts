/**
 * What the host's own network holds that berth must not collide with: its
 * routed prefixes (a new subnet must not overlap them) and its interface names.
 */
import { nl } from '../netlink/index.js';
import { parsePrefix, type Prefix } from '../ipam/addr.js';

/** Prefixes routed on this host other than through @ownDevices (berth's bridges). */
export async function hostRoutes(ownDevices: Set<string>): Promise<{ prefix: Prefix; dev: string }[]> {
  const out: { prefix: Prefix; dev: string }[] = [];
  for (const family of [4, 6] as const) {
    for (const r of await nl.routeList({ family })) {
      if (r.dst === 'default' || (r.dev && ownDevices.has(r.dev))) continue;
      if (family === 6 && r.dst.startsWith('fe80:')) continue;
      try {
        out.push({ prefix: parsePrefix(r.dst, 'route', true), dev: r.dev ?? '' });
      } catch {
        /* routes of other kinds (multicast etc.) are not address space */
      }
    }
  }
  return out;
}

export async function interfaceExists(name: string): Promise<boolean> {
  return (await nl.linkList({})).some((l) => l.name === name);
}
