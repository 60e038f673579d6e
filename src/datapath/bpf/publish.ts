/**
 * The published-port table of the eBPF datapath: two generations of
 * berth_dp_pub (and their allow-list entries in berth_dp_allow), one read by
 * the programs while the other is rewritten, switched with one word in
 * berth_dp_pubsel. A live generation is never rewritten in place.
 */
import type { RawMap } from '../../native/addon.js';
import { dpPub, PUB_GEN_SHIFT } from '../../bpf/abi.js';
import { u32 as u32Codec } from '../../bpf/codec.js';
import { conflict } from '../../errors.js';
import { lpmKey, type CompiledMaps } from './compile.js';
import { writeEntries } from './maps.js';

export interface PublishMaps {
  sel: RawMap;
  table: RawMap;
  allow: RawMap;
  /** entries a generation holds (the table has two) */
  pubMax: number;
  /**
   * What this process last wrote (only berthd writes these maps): the
   * selector word, and whether the allow map holds nothing. Read from the
   * kernel when unknown; kept up to date here. Saves two of the few kernel
   * round trips an attach's apply makes.
   */
  known?: { sel?: number; allowEmpty?: boolean };
}

const idOf = (g: number, i: number) => ((g << 30) | (i + 1)) >>> 0;

/**
 * Writes the idle generation, then switches to it; allow-lists follow the
 * generation. @switched runs once no packet reads the old generation (the
 * connection table's flush). Returns the entries written (0: unchanged).
 */
export async function syncPublishes(m: PublishMaps, c: CompiledMaps, switched: () => Promise<unknown>): Promise<number> {
  const { sel, table, allow, pubMax } = m;
  const known = m.known ?? {};
  if (c.pubs.length > pubMax) {
    throw conflict(`${c.pubs.length} published-port entries do not fit the eBPF datapath's publish table of ${pubMax} (berthd --pub-max)`);
  }
  const selVal = known.sel ?? (await sel.lookup(u32Codec.encode(0)))!.readUInt32LE(0);
  const gen = selVal >>> PUB_GEN_SHIFT;
  const count = selVal & 0x7fffffff;
  const next = gen ^ 1;
  const encode = (g: number) => c.pubs.map((p, i) => dpPub.encode({ ...p, id: idOf(g, i) }));
  // Unchanged: nothing to write (a live table is never rewritten in place).
  if (count === c.pubs.length) {
    const live = encode(gen);
    const keys = Buffer.concat(live.map((_, i) => u32Codec.encode(gen * pubMax + i)));
    let same = true;
    for (let i = 0; i < live.length && same; i++) {
      const v = await table.lookup(keys.subarray(i * 4, i * 4 + 4));
      same = !!v && v.equals(live[i]!);
    }
    if (same && ((known.allowEmpty && !c.pubAllow.length) || (await allowMatches(allow, c, gen)))) return 0;
  }
  const rows = encode(next);
  await writeEntries(table, Buffer.concat(rows.map((_, i) => u32Codec.encode(next * pubMax + i))), Buffer.concat(rows), rows.length);
  const want = new Map<string, Buffer>();
  for (const a of c.pubAllow) want.set(lpmKey(a.cidr, idOf(next, a.index)).toString('hex'), u32Codec.encode(1));
  for (const [k, v] of want) await allow.update(Buffer.from(k, 'hex'), v);
  const word = ((next << PUB_GEN_SHIFT) | rows.length) >>> 0;
  known.sel = undefined;
  // one word: on the JS thread
  sel.updateSync(u32Codec.encode(0), u32Codec.encode(word));
  known.sel = word;
  // Now that no packet reads the old generation: its allow entries go, and flows of publishes that went.
  if (!(known.allowEmpty && !want.size)) {
    known.allowEmpty = undefined;
    const { keys, count: n } = await allow.entries();
    for (let i = 0; i < n; i++) {
      const k = keys.subarray(i * 24, i * 24 + 24);
      if (!want.has(k.toString('hex'))) await allow.delete(k);
    }
  }
  known.allowEmpty = want.size === 0;
  await switched();
  return rows.length + 1;
}

async function allowMatches(allow: RawMap, c: CompiledMaps, gen: number): Promise<boolean> {
  const { keys, count } = await allow.entries();
  if (count !== c.pubAllow.length) return false;
  const have = new Set<string>();
  for (let i = 0; i < count; i++) have.add(keys.subarray(i * 24, i * 24 + 24).toString('hex'));
  return c.pubAllow.every((a) => have.has(lpmKey(a.cidr, idOf(gen, a.index)).toString('hex')));
}

/** Entries in the live generation (status). */
export async function livePublishes(sel: RawMap): Promise<number> {
  return (await sel.lookup(u32Codec.encode(0)))!.readUInt32LE(0) & 0x7fffffff;
}
