/** Writing the maps user space owns: which they are, and making one hold exactly the compiled entries. */
import type { RawMap } from '../../native/addon.js';
import type { Entries } from './compile.js';

/** Maps user space writes, by compiled name -> pinned name; batch: the map type takes batched updates. In write order: what things point at first. */
export const MAPS = {
  // Before the networks whose flag points at it: a policy never applies without its prefixes.
  pubpol: { name: 'berth_dp_pubpol', batch: false },
  nets: { name: 'berth_dp_nets', batch: true },
  epIp: { name: 'berth_dp_ep_ip', batch: true },
  epIf: { name: 'berth_dp_ep_if', batch: true },
  links: { name: 'berth_dp_links', batch: true },
  subnets: { name: 'berth_dp_subnets', batch: false },
  egress: { name: 'berth_dp_egress', batch: false },
  ifaddr: { name: 'berth_dp_ifaddr', batch: true },
} as const;

/**
 * Writes at most this many entries on the JS thread (a few microseconds of
 * syscall each) instead of through the thread pool, whose round trip is what
 * an attach's few new entries mostly waited for.
 */
export const SYNC_WRITE_MAX = 64;

/** Writes @keys / @values (concatenated, @count records) to @m; few: on the JS thread. */
export async function writeEntries(m: RawMap, keys: Buffer, values: Buffer, count: number, batch = true): Promise<void> {
  if (!count) return;
  if (count <= SYNC_WRITE_MAX) {
    if (batch) m.updateBatchSync(keys, values);
    else {
      const info = m.info();
      for (let i = 0; i < count; i++) m.updateSync(keys.subarray(i * info.keySize, (i + 1) * info.keySize), values.subarray(i * info.valueBytes, (i + 1) * info.valueBytes));
    }
    return;
  }
  if (batch) await m.updateBatch(keys, values);
  else {
    const info = m.info();
    for (let i = 0; i < count; i++) await m.update(keys.subarray(i * info.keySize, (i + 1) * info.keySize), values.subarray(i * info.valueBytes, (i + 1) * info.valueBytes));
  }
}

/**
 * Makes the kernel's map hold exactly @want (hex key -> value): deletes what
 * is extra, writes what differs. @known: what the map holds, when the caller
 * knows (saves reading it back).
 */
export async function syncMap(m: RawMap, want: Entries, batch: boolean, known?: Entries): Promise<number> {
  const info = m.info();
  const del: Buffer[] = [];
  const have = new Map<string, Buffer>();
  if (known) {
    for (const [hex, v] of known) {
      if (!want.has(hex)) del.push(Buffer.from(hex, 'hex'));
      else have.set(hex, v);
    }
  } else {
    const { keys, values, count } = await m.entries();
    for (let i = 0; i < count; i++) {
      const k = keys.subarray(i * info.keySize, (i + 1) * info.keySize);
      const hex = k.toString('hex');
      if (!want.has(hex)) del.push(k);
      else have.set(hex, values.subarray(i * info.valueSize, (i + 1) * info.valueSize));
    }
  }
  const upd: [Buffer, Buffer][] = [];
  for (const [hex, v] of want) if (!have.get(hex)?.equals(v)) upd.push([Buffer.from(hex, 'hex'), v]);
  await writeEntries(m, Buffer.concat(upd.map(([k]) => k)), Buffer.concat(upd.map(([, v]) => v)), upd.length, batch);
  if (batch) {
    if (del.length) await m.deleteBatch(Buffer.concat(del));
  } else {
    for (const k of del) await m.delete(k);
  }
  return upd.length + del.length;
}
