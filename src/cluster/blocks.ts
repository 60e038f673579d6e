/**
 * Per-host address blocks of routed networks. A routed network's subnet is
 * split into equal blocks; each host takes one through the cluster store
 * with a create-if-absent transaction (two hosts never hold the same block)
 * and routes it to its sandboxes; every other host routes that block via the
 * holder's underlay address.
 *
 * Keys under /berth/v1/:
 *   blocks/<network id>/<block base address>   BlockEntry
 */
import { badRequest, conflict, unavailable } from '../errors.js';
import { bigToIp, parsePrefix, type Prefix } from '../ipam/addr.js';
import type { Cluster } from './cluster.js';

/** The block size of a routed IPv4 network when -o routed.block is not given. */
export const DEFAULT_BLOCK_BITS = 26;

export interface BlockEntry {
  host: string;
  /** the holder's underlay address: other hosts route the block via it */
  underlay: string;
  /** the block, e.g. "10.90.0.64/26" */
  block: string;
}

/** The prefix length -o routed.block=/N asks for (default /26), checked against @subnet; the refusal names both. */
export function blockBits(subnet: Prefix, option: string | undefined): number {
  let bits = DEFAULT_BLOCK_BITS;
  if (option !== undefined) {
    const m = /^\/?(\d{1,2})$/.exec(option);
    if (!m) throw badRequest(`option routed.block=${option} is invalid: expected a prefix length such as /26`);
    bits = Number(m[1]);
  }
  const what = option === undefined ? `the default block /${bits}` : `block /${bits}`;
  if (bits < subnet.bits) throw badRequest(`${what} does not fit subnet ${subnet.text}: blocks must be /${subnet.bits} or longer (give -o routed.block=/N)`);
  if (bits > 30) throw badRequest(`block /${bits} of subnet ${subnet.text} is too small: a block needs a gateway and at least one address (/30 at most)`);
  return bits;
}

/** The @i-th block of @bits in @subnet. */
export function nthBlock(subnet: Prefix, bits: number, i: bigint): string {
  return `${bigToIp(subnet.base + (i << BigInt(32 - bits)), 4)}/${bits}`;
}

export function blockCount(subnet: Prefix, bits: number): bigint {
  return 1n << BigInt(bits - subnet.bits);
}

export const blockKey = (netId: string, block: string) => `blocks/${netId}/${block.split('/')[0]}`;

/** Every host's blocks of network @netId, as last seen. */
export function blocksOf(cluster: Cluster, netId: string): BlockEntry[] {
  return [...cluster.store.list<BlockEntry>(`blocks/${netId}/`).values()];
}

/**
 * This host's block of network @netId in @subnet: the one it holds, or the
 * first free one taken now. Refused when the store is unreachable or every
 * block is held, naming the subnet and the block size.
 */
export async function claimBlock(cluster: Cluster, netId: string, subnet: Prefix, bits: number): Promise<string> {
  const mine = blocksOf(cluster, netId).find((b) => b.host === cluster.hostId);
  if (mine) return mine.block;
  if (!cluster.connected) throw unavailable(`cluster store ${cluster.store.endpoints.url} unreachable: no address block of ${subnet.text} can be taken now`);
  const held = new Set(blocksOf(cluster, netId).map((b) => b.block));
  const n = blockCount(subnet, bits);
  let lost = 0;
  for (let i = 0n; i < n; i++) {
    const block = nthBlock(subnet, bits, i);
    if (held.has(block)) continue;
    if (await cluster.store.create(blockKey(netId, block), { host: cluster.hostId, underlay: cluster.underlay, block } satisfies BlockEntry)) return block;
    // Another host took it between our view and the write.
    if (++lost > 64) break;
  }
  throw conflict(`no free /${bits} block left in ${subnet.text} for this host (${n} blocks, all held): use a larger subnet or a longer -o routed.block`);
}

/**
 * Writes this host's @block of @netId back when the store lost or never got
 * it (written while the store was down, or an older record); false when
 * another host holds it.
 */
export async function assertBlock(cluster: Cluster, netId: string, block: string): Promise<boolean> {
  const key = blockKey(netId, block);
  const cur = cluster.store.get<BlockEntry>(key);
  const want: BlockEntry = { host: cluster.hostId, underlay: cluster.underlay, block };
  if (!cur) return cluster.store.create(key, want);
  if (cur.host !== cluster.hostId) return false;
  if (cur.underlay !== cluster.underlay) await cluster.store.put(key, want);
  return true;
}

/** The gateway of @block: its first host address, this host's bridge address on the network. */
export function blockGateway(block: string): string {
  const p = parsePrefix(block);
  return bigToIp(p.base + 1n, 4);
}
