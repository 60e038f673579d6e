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
