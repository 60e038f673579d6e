/**
 * Drops by reason on the nftables datapath: every drop rule of berth's
 * counts into a named counter "drop-REASON" (ruleset.ts), the reasons named
 * as the eBPF datapath names them (src/bpf/abi.ts). Parsing is pure.
 */
import { run } from '../../exec.js';
import type { Counts } from '../datapath.js';
import { TABLE_NAME, type NftTable } from './ruleset.js';

interface NftJson { nftables: { counter?: { name: string; table: string; packets: number; bytes: number } }[] }

/** Adds the counters of `nft -j list counters table …` output to @into, by reason. */
export function addDrops(into: Counts, json: string): Counts {
  for (const o of (JSON.parse(json) as NftJson).nftables) {
    const c = o.counter;
    if (!c || c.table !== TABLE_NAME || !c.name.startsWith('drop-')) continue;
    const d = (into[c.name.slice(5)] ??= { packets: 0, bytes: 0 });
    d.packets += c.packets;
    d.bytes += c.bytes;
  }
  return into;
}

export async function readDrops(tables: NftTable[]): Promise<Counts> {
  const out: Counts = {};
  for (const t of tables) {
    const r = await run('nft', ['-j', 'list', 'counters', 'table', t, TABLE_NAME]).catch(() => undefined);
    if (r) addDrops(out, r.stdout);
  }
  return out;
}
