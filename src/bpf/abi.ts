/**
 * Mirrors bpf/include/berth_abi.h field by field. test/unit/abi.test.ts checks
 * these sizes against the addon (compiled from the header) and against the
 * BTF of the loaded maps.
 */
import { structCodec, type Codec } from './codec.js';

export const Hook = { TcIngress: 0, TcEgress: 1, Xdp: 2 } as const;
export type HookValue = (typeof Hook)[keyof typeof Hook];
export const hookName: Record<number, string> = { 0: 'tc-ingress', 1: 'tc-egress', 2: 'xdp' };

export const DropReason = { None: 0, Malformed: 1, ProtoFilter: 2 } as const;
export const DROP_REASON_SLOTS = 16;
export const dropReasonName: Record<number, string> = {
  0: 'none',
  1: 'malformed',
  2: 'proto-filter',
};

export interface IfCountKey {
  ifindex: number;
  hook: number;
}
export const ifCountKey: Codec<IfCountKey> = structCodec<IfCountKey & { pad: never }>('berth_ifcount_key', [
  ['ifindex', 'u32'],
  ['hook', 'u8'],
  ['pad', { pad: 3 }],
]);

export interface Counter {
  packets: bigint;
  bytes: bigint;
}
export const counter: Codec<Counter> = structCodec<Counter>('berth_counter', [
  ['packets', 'u64'],
  ['bytes', 'u64'],
]);

export interface PktEvent {
  tsNs: bigint;
  ifindex: number;
  len: number;
  ethProto: number;
  hook: number;
  l4proto: number;
  dropReason: number;
  /** IPv4 addresses as 32-bit big-endian numbers */
  saddr4: number;
  daddr4: number;
}
export const pktEvent: Codec<PktEvent> = structCodec<PktEvent & { pad: never }>('berth_pkt_event', [
  ['tsNs', 'u64'],
  ['ifindex', 'u32'],
  ['len', 'u32'],
  ['ethProto', 'u16'],
  ['hook', 'u8'],
  ['l4proto', 'u8'],
  ['dropReason', 'u8'],
  ['pad', { pad: 3 }],
  ['saddr4', 'be32'],
  ['daddr4', 'be32'],
]);

/** Every codec by its C struct name, for the size check. */
export const abiCodecs: Record<string, Codec<unknown>> = {
  berth_ifcount_key: ifCountKey as Codec<unknown>,
  berth_counter: counter as Codec<unknown>,
  berth_pkt_event: pktEvent as Codec<unknown>,
};

export function sumCounters(perCpu: Counter[]): Counter {
  return perCpu.reduce((a, c) => ({ packets: a.packets + c.packets, bytes: a.bytes + c.bytes }), {
    packets: 0n,
    bytes: 0n,
  });
}

export function ipv4ToString(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
}
