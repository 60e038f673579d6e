/**
 * What the eBPF datapath counts, read back for status and metrics: drops by
 * reason, event counters, the kernel's own drops on berth's interfaces, and
 * traffic per network and per published port. Read only; summed over CPUs.
 */
import { addon, type RawMap } from '../../native/addon.js';
import { counter, dpNet, dropReasons, DpStat, sumCounters } from '../../bpf/abi.js';
import { u32 as u32Codec } from '../../bpf/codec.js';
import type { Counts, DpTraffic } from '../datapath.js';
import type { Entries } from './compile.js';

/** Per-reason drop counters of a berth_dp_drops map, non-zero ones only. */
export async function readDrops(m: RawMap): Promise<Counts> {
  const out: Counts = {};
  const info = m.info();
  for (const [reason, d] of Object.entries(dropReasons)) {
    const v = await m.lookup(u32Codec.encode(Number(reason)));
    if (!v) continue;
    const per = Array.from({ length: info.ncpus }, (_, i) => counter.decode(v, i * 16));
    const s = sumCounters(per);
    if (s.packets > 0n) out[d.name] = { packets: Number(s.packets), bytes: Number(s.bytes) };
  }
  return out;
}

/** berth_dp_stats: event counters by DpStat name. */
export async function readStats(m: RawMap): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [name, slot] of Object.entries(DpStat)) {
    const v = await m.lookup(u32Codec.encode(slot));
    if (!v) continue;
    let sum = 0n;
    for (let i = 0; i + 8 <= v.length; i += 8) sum += v.readBigUInt64LE(i);
    out[name] = Number(sum);
  }
  return out;
}

/** berth_dp_kdrops: the kernel's drops of berth's traffic by the kernel's reason name (SKB_DROP_REASON_*), non-zero ones. */
export async function readKernelDrops(m: RawMap): Promise<Counts> {
  const names = new Map(Object.entries(addon().kernelEnum('skb_drop_reason')).map(([k, v]) => [v, k.replace(/^SKB_DROP_REASON_/, '').toLowerCase()]));
  const info = m.info();
  const { keys, values, count } = await m.entries();
  const out: Counts = {};
  for (let i = 0; i < count; i++) {
    const reason = keys.readUInt32LE(i * 4);
    const per = Array.from({ length: info.ncpus }, (_, c) => counter.decode(values, i * info.valueBytes + c * 16));
    const s = sumCounters(per);
    if (s.packets > 0n) out[names.get(reason) ?? String(reason)] = { packets: Number(s.packets), bytes: Number(s.bytes) };
  }
  return out;
}

/**
 * berth_dp_traffic: packets and bytes per network (sent by its sandboxes,
 * delivered into it) and per published port (both ways). Networks are named
 * from @nets (the berth_dp_nets entries last written) and @netNames (bridge
 * ifindex -> network name, from the last apply).
 */
export async function readTraffic(m: RawMap, nets: Entries, netNames: Map<number, string>): Promise<DpTraffic> {
  const out: DpTraffic = { networks: {}, publishes: {} };
  const info = m.info();
  const { keys, values, count } = await m.entries();
  const bridgeName = new Map<number, string>();
  for (const [k, v] of nets) bridgeName.set(Buffer.from(k, 'hex').readUInt32LE(0), netNames.get(dpNet.decode(v).bridge) ?? String(dpNet.decode(v).bridge));
  const PROTO_NAME: Record<number, string> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };
  for (let i = 0; i < count; i++) {
    const kind = keys.readUInt32LE(i * 8 + 4);
    const id = keys.readUInt32LE(i * 8);
    const s = sumCounters(Array.from({ length: info.ncpus }, (_, c) => counter.decode(values, i * info.valueBytes + c * 16)));
    if (kind === 3) {
      out.publishes[`${PROTO_NAME[id >>> 16] ?? id >>> 16}/${id & 0xffff}`] = { packets: Number(s.packets), bytes: Number(s.bytes) };
      continue;
    }
    const name = bridgeName.get(id);
    if (!name) continue;
    const n = (out.networks[name] ??= { outPackets: 0, outBytes: 0, inPackets: 0, inBytes: 0 });
    if (kind === 1) {
      n.outPackets += Number(s.packets);
      n.outBytes += Number(s.bytes);
    } else if (kind === 2) {
      n.inPackets += Number(s.packets);
      n.inBytes += Number(s.bytes);
    }
  }
  return out;
}
