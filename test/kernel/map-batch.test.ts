/**
 * Batch deletes on a real map: keys that are not there (expired, evicted, or
 * deleted by a program meanwhile) are skipped, not fatal, and every present
 * key of the batch goes, also those after a missing one. The connection
 * table's flushes and garbage collection rely on this.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfObject } from '../../src/bpf/index.js';
import type { PerCpuMap } from '../../src/bpf/map.js';
import { counter, ifCountKey, type Counter, type IfCountKey } from '../../src/bpf/abi.js';
import { bpfObjectPath } from '../../src/paths.js';
import { ctKey, ctVal } from '../../src/bpf/abi.js';
import { PrivateBpffs } from '../helpers/kernel.js';

describe('deleteBatch', () => {
  let obj: BpfObject;
  let m: PerCpuMap<IfCountKey, Counter>;
  const key = (ifindex: number): IfCountKey => ({ ifindex, hook: 0 });
  beforeAll(async () => {
    obj = await BpfObject.load(bpfObjectPath('count'));
    m = obj.perCpuMap('berth_counts', ifCountKey, counter);
  });
  afterAll(() => obj?.close());

  it('deletes every present key, skipping missing ones wherever they stand in the batch', async () => {
    for (const i of [1, 2, 3, 5, 7]) await m.update(key(i), { packets: BigInt(i), bytes: 0n });
    expect((await m.entries()).length).toBe(5);
    // 4 and 6 were never there; 9 at the end neither.
    const n = await m.deleteBatch([4, 1, 2, 6, 3, 5, 9].map(key));
    expect(n).toBe(4);
    expect((await m.entries()).map(([k]) => k.ifindex)).toEqual([7]);
  });

  it('a batch of missing keys only deletes nothing', async () => {
    expect(await m.deleteBatch([100, 101].map(key))).toBe(0);
    expect((await m.entries()).length).toBe(1);
  });
});

describe('entries', () => {
  it('reads every entry of a hash map of thousands, each key with its own value (batch lookup)', async () => {
    const obj = await BpfObject.load(bpfObjectPath('count'));
    try {
      const m = obj.perCpuMap('berth_counts', ifCountKey, counter);
      const max = Math.min(5000, m.info.maxEntries);
      for (let i = 1; i <= max; i++) await m.update({ ifindex: i, hook: 1 }, { packets: BigInt(i), bytes: BigInt(2 * i) });
      const all = await m.entries();
      expect(all.length).toBe(max);
      expect(all.every(([k, v]) => v.every((c) => c.packets === BigInt(k.ifindex) && c.bytes === BigInt(2 * k.ifindex)))).toBe(true);
      expect(new Set(all.map(([k]) => k.ifindex)).size).toBe(max);
    } finally {
      obj.close();
    }
  });
});

describe('the connection table (an LRU hash) read and flushed in batches', () => {
  it('reads 20,000 entries over several batches, each with its value, and deletes them all', async () => {
    const bpffs = await PrivateBpffs.create();
    const obj = await BpfObject.load(bpfObjectPath('tc_container'), { pinRoot: bpffs.path });
    try {
      const ct = obj.rawMap('berth_dp_ct');
      const N = 20_000;
      const key = (i: number) => ctKey.encode({ saddr: Buffer.alloc(16, 1), daddr: Buffer.alloc(16, 2), sport: 1 + (i % 60000), dport: 1 + Math.floor(i / 60000), proto: 6 });
      const keys = Array.from({ length: N }, (_, i) => key(i));
      const values = Array.from({ length: N }, (_, i) => ctVal.encode({ saddr: Buffer.alloc(16), daddr: Buffer.alloc(16), sport: 0, dport: 0, flags: 0, lastSeen: BigInt(i), created: 0n, packets: BigInt(i), bytes: 0n, pubId: i, ack: 0 }));
      await ct.updateBatch(Buffer.concat(keys), Buffer.concat(values));
      const all = await ct.entries();
      expect(all.count).toBe(N);
      const seen = new Set<number>();
      for (let i = 0; i < all.count; i++) {
        const k = ctKey.decode(all.keys.subarray(i * ctKey.size, (i + 1) * ctKey.size));
        const v = ctVal.decode(all.values, i * ctVal.size);
        const idx = (k.dport - 1) * 60000 + (k.sport - 1);
        expect(v.pubId).toBe(idx);
        seen.add(idx);
      }
      expect(seen.size).toBe(N);
      expect(await ct.deleteBatch(Buffer.concat(keys))).toBe(N);
      expect((await ct.entries()).count).toBe(0);
    } finally {
      obj.close();
      await bpffs.release();
    }
  });
});
