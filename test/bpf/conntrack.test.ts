/**
 * The connection table's two tables through BPF_PROG_TEST_RUN: a new flow's
 * entries go to berth_dp_ct_new and move to berth_dp_ct only when the client
 * shows it receives the replies (bpf/lib/dp_ct.h ct_progress). A spoofed
 * client, which never sees the SYN-ACK, stays unconfirmed: a flood of them
 * churns the unconfirmed table and cannot evict an established flow.
 */
import { describe, expect, it } from 'vitest';
import { ctKey, ctVal, CtFlag, DpStat, type CtKey } from '../../src/bpf/abi.js';
import { addr16 } from '../../src/datapath/bpf/compile.js';
import {
  c1, c2, EXT4, ext, from, HOST4, into, key, map, runCase, tcp, TC_ACT_REDIRECT, toExt, udp, useWorld, type Case, type Flow,
} from './world.js';

useWorld();

type Where = 'established' | 'unconfirmed' | 'none';

/** Which table holds @k, and its entry. */
async function where(k: CtKey): Promise<{ at: Where; flags: number; ack: number }> {
  for (const [name, at] of [['berth_dp_ct', 'established'], ['berth_dp_ct_new', 'unconfirmed']] as const) {
    const v = await map(name).lookup(ctKey.encode(k));
    if (v) {
      const d = ctVal.decode(v);
      return { at, flags: d.flags, ack: d.ack };
    }
  }
  return { at: 'none', flags: 0, ack: 0 };
}

async function confirmed(): Promise<bigint> {
  const v = await map('berth_dp_stats').lookup(Buffer.from([DpStat.CtConfirmed, 0, 0, 0]));
  let n = 0n;
  for (let i = 0; v && i < v.length; i += 8) n += v.readBigUInt64LE(i);
  return n;
}

/** After a step: both entries of the flow (forward @fk, reply @rk) are in @at, and the New flag says so. */
const both = (fk: CtKey, rk: CtKey, at: Where, ack?: number) => async (_f: Flow) => {
  const [f, r] = [await where(fk), await where(rk)];
  expect({ forward: f.at, reply: r.at }).toEqual({ forward: at, reply: at });
  expect(Boolean(f.flags & CtFlag.New), 'forward entry New flag').toBe(at === 'unconfirmed');
  expect(Boolean(r.flags & CtFlag.New), 'reply entry New flag').toBe(at === 'unconfirmed');
  if (ack !== undefined) expect(r.ack, 'reply entry: SYN-ACK sequence + 1').toBe(ack);
};

// A published TCP port (8080 -> c1:80) and UDP port (5353 -> c2:53); the client keeps its port (it is free).
const P = 41000;
const tcpKeys = (port: number) => ({ fk: key(EXT4, HOST4, port, 8080, 6), rk: key(c1.v4, EXT4, 80, port, 6) });
const SEQ = 7000;
const synack = { tcpFlags: 0x12, seq: SEQ, ack: 2 };
const inbound = (port: number, x: object) => ({ prog: 'uplink' as const, packet: ext(tcp(port, 8080, x)), verdict: TC_ACT_REDIRECT, output: into(c1, { src: EXT4, dst: c1.v4, ...tcp(port, 80, x) }) });
const outbound = (port: number, x: object) => ({ prog: 'container' as const, packet: from(c1, { src: c1.v4, dst: EXT4, ...tcp(80, port, x) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST4, dst: EXT4, ...tcp(8080, port, x) }) });

const cases: Case[] = [
  (() => {
    const { fk, rk } = tcpKeys(P);
    return {
      name: 'TCP: the SYN makes unconfirmed entries, the SYN-ACK records its sequence, the ACK of it confirms the flow',
      steps: [
        { ...inbound(P, {}), after: both(fk, rk, 'unconfirmed') },
        { ...outbound(P, synack), after: both(fk, rk, 'unconfirmed', SEQ + 1) },
        { ...inbound(P, { tcpFlags: 0x10, seq: 2, ack: SEQ + 1 }), after: both(fk, rk, 'established') },
        // The established flow keeps working from its new table.
        { ...outbound(P, { tcpFlags: 0x18, seq: SEQ + 1, ack: 2 }), after: both(fk, rk, 'established') },
      ],
    };
  })(),
  (() => {
    const { fk, rk } = tcpKeys(P + 1);
    return {
      name: 'TCP: a client that never saw the SYN-ACK (a spoofed source guessing) stays unconfirmed; the right ACK then confirms',
      steps: [
        { ...inbound(P + 1, {}) },
        { ...outbound(P + 1, synack) },
        { ...inbound(P + 1, { tcpFlags: 0x10, seq: 2, ack: 12345 }), after: both(fk, rk, 'unconfirmed') },
        { ...inbound(P + 1, { tcpFlags: 0x10, seq: 2, ack: SEQ }), after: both(fk, rk, 'unconfirmed') },
        // A SYN|ACK or RST|ACK from the client is no answer either.
        { ...inbound(P + 1, { tcpFlags: 0x14, seq: 2, ack: SEQ + 1 }), after: both(fk, rk, 'unconfirmed') },
        { ...inbound(P + 1, { tcpFlags: 0x10, seq: 2, ack: SEQ + 1 }), after: both(fk, rk, 'established') },
      ],
    };
  })(),
  (() => {
    const { fk, rk } = tcpKeys(P + 2);
    return {
      name: 'TCP: an ACK before any SYN-ACK confirms nothing',
      steps: [
        { ...inbound(P + 2, {}) },
        { ...inbound(P + 2, { tcpFlags: 0x10, seq: 2, ack: 1 }), after: both(fk, rk, 'unconfirmed') },
        { ...inbound(P + 2, { tcpFlags: 0x10, seq: 2, ack: 0 }), after: both(fk, rk, 'unconfirmed') },
      ],
    };
  })(),
  (() => {
    const { fk, rk } = tcpKeys(P + 3);
    return {
      name: 'TCP: the server speaking first (data from the sandbox, no SYN) confirms the flow',
      steps: [
        { ...inbound(P + 3, {}) },
        { ...outbound(P + 3, synack), after: both(fk, rk, 'unconfirmed') },
        { ...outbound(P + 3, { tcpFlags: 0x18, seq: SEQ + 1, ack: 2 }), after: both(fk, rk, 'established') },
      ],
    };
  })(),
  (() => {
    const fk = key(EXT4, HOST4, P + 4, 5353, 17);
    const rk = key(c2.v4, EXT4, 53, P + 4, 17);
    const q = { prog: 'uplink' as const, packet: ext(udp(P + 4, 5353)), verdict: TC_ACT_REDIRECT, output: into(c2, { src: EXT4, dst: c2.v4, ...udp(P + 4, 53) }) };
    return {
      name: 'UDP: a client sending again after a reply confirms the flow; a reply alone does not',
      steps: [
        { ...q, after: both(fk, rk, 'unconfirmed') },
        { ...q, after: both(fk, rk, 'unconfirmed') },
        { prog: 'container', dev: c2.dev, packet: from(c2, { src: c2.v4, dst: EXT4, ...udp(53, P + 4) }), verdict: TC_ACT_REDIRECT, output: toExt({ src: HOST4, dst: EXT4, ...udp(5353, P + 4) }), after: both(fk, rk, 'unconfirmed', 1) },
        { ...q, after: both(fk, rk, 'established') },
      ],
    };
  })(),
];

describe('unconfirmed flows: berth_dp_ct_new until the client answers a reply', () => {
  it.each(cases)('$name', runCase);

  it('each confirmation is counted (CtConfirmed)', async () => {
    const before = await confirmed();
    await runCase(cases[0]!);
    expect(await confirmed()).toBe(before + 1n);
  });

  it('an expired entry of the same tuple in the established table does not shadow a new flow', async () => {
    const { fk, rk } = tcpKeys(P + 5);
    // A closed flow past its 65 s.
    const old = process.hrtime.bigint() - 70n * 1_000_000_000n;
    await runCase({
      name: 'stale',
      ct: () => [{ key: fk, val: { saddr: addr16(c1.v4), daddr: addr16(EXT4), sport: 80, dport: P + 5, flags: CtFlag.Dnat | CtFlag.Publish | CtFlag.Closing, lastSeen: old } }],
      steps: [
        { ...inbound(P + 5, {}), after: both(fk, rk, 'unconfirmed') },
        { ...outbound(P + 5, synack) },
        { ...inbound(P + 5, { tcpFlags: 0x10, seq: 2, ack: SEQ + 1 }), after: both(fk, rk, 'established') },
      ],
    });
  });
});
