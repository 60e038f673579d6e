/**
 * Hairpin mode on the sandboxes' bridge ports. A sandbox reaching its own
 * published port through the host's address is DNAT-ed back to itself; with
 * br_netfilter the kernel then bridges that frame out of the port it came in
 * on, which a bridge does only in hairpin mode (Docker sets it too when it
 * runs without its userland proxy). The only cost: the sandbox also hears its
 * own broadcasts back.
 */
import { run } from '../../exec.js';

interface IpLink {
  ifname: string;
  linkinfo?: { info_slave_kind?: string; info_slave_data?: { hairpin?: boolean } };
}

/** Turns hairpin on for those of @ports (bridge ports) that lack it: one `ip` to look, one batch to set. */
export async function ensureHairpin(ports: string[]): Promise<string[]> {
  if (!ports.length) return [];
  const want = new Set(ports);
  const links = JSON.parse((await run('ip', ['-d', '-j', 'link', 'show'])).stdout || '[]') as IpLink[];
  const off = links
    .filter((l) => want.has(l.ifname) && l.linkinfo?.info_slave_kind === 'bridge' && l.linkinfo.info_slave_data?.hairpin !== true)
    .map((l) => l.ifname);
  if (!off.length) return [];
  // -force: a port removed meanwhile must not stop the others.
  await run('ip', ['-force', '-batch', '-'], { input: off.map((p) => `link set dev ${p} type bridge_slave hairpin on`).join('\n') + '\n' }).catch(() => undefined);
  return off;
}
