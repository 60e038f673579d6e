/**
 * The TS codecs must mirror bpf/include/berth_abi.h: sizes are checked against
 * the addon (compiled from the header) and the BTF of the loaded maps, and
 * field offsets against what a real program wrote.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addon } from '../../src/native/addon.js';
import { BpfObject, RingBuffer } from '../../src/bpf/index.js';
import { ABI_VERSION, abiCodecs, counter, Hook, ifCountKey, pktEvent, sumCounters, type PktEvent } from '../../src/bpf/abi.js';
import { u32 } from '../../src/bpf/codec.js';
import { bpfObjectPath } from '../../src/paths.js';
import { ipv4Packet } from '../../harness/packets.js';

describe('berth_abi.h and src/bpf/abi.ts agree', () => {
  it('on every struct size, as the C compiler sees them', () => {
    const native = addon().abiSizes();
    expect(Object.keys(native).sort()).toEqual(Object.keys(abiCodecs).sort());
    for (const [name, codec] of Object.entries(abiCodecs)) expect({ name, size: codec.size }).toEqual({ name, size: native[name] });
  });

  it('on the ABI version', () => {
    expect(addon().abiVersion()).toBe(ABI_VERSION);
  });

  describe('with the program loaded', () => {
    let obj: BpfObject;
    beforeAll(async () => {
      obj = await BpfObject.load(bpfObjectPath('count'), { consts: { cfg_event_sample: 1 } });
    });
    afterAll(() => obj?.close());

    it('on key and value sizes of the maps, from their BTF', () => {
      const counts = obj.perCpuMap('berth_counts', ifCountKey, counter);
      expect([counts.info.keySize, counts.info.valueSize]).toEqual([ifCountKey.size, counter.size]);
      const drops = obj.perCpuMap('berth_drops', u32, counter);
      expect(drops.info.valueSize).toBe(counter.size);
    });

    it('refuses a codec of the wrong size, naming map and sizes', () => {
      expect(() => obj.perCpuMap('berth_counts', u32, counter)).toThrow(/map 'berth_counts': key codec u32 is 4 bytes, the map's key is 8/);
    });

    it('on field offsets: what the program wrote decodes to the packet it saw', async () => {
      const seen: PktEvent[] = [];
      const rb = new RingBuffer(obj.rawMap('berth_events'), pktEvent, (e) => seen.push(e));
      try {
        const pkt = ipv4Packet({ src: '192.0.2.7', dst: '198.51.100.9', l4: 'tcp' });
        await obj.program('berth_count_tc_egress').testRun(pkt);
        for (let i = 0; i < 50 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
        expect(seen[0]).toMatchObject({
          ifindex: 1, // BPF_PROG_TEST_RUN runs skb programs on loopback
          len: pkt.length,
          ethProto: 0x0800,
          hook: Hook.TcEgress,
          l4proto: 6,
          dropReason: 0,
          saddr4: 0xc0000207,
          daddr4: 0xc6336409,
        });
        const [[key, perCpu]] = await obj.perCpuMap('berth_counts', ifCountKey, counter).entries() as [[{ ifindex: number; hook: number }, { packets: bigint; bytes: bigint }[]]];
        expect(key).toEqual({ ifindex: 1, hook: Hook.TcEgress });
        expect(sumCounters(perCpu)).toEqual({ packets: 1n, bytes: BigInt(pkt.length) });
      } finally {
        rb.close();
      }
    });
  });
});
