import { describe, expect, it } from 'vitest';
import type { NlLink } from '../../native/addon.js';
import { resolveDatapath } from '../desired.js';
import { dpNet, NetFlag } from '../../bpf/abi.js';
import { compile, lpmKey } from './compile.js';

const LINKS: NlLink[] = [
  { ifindex: 2, name: 'eth0', kind: 'veth', master: 0, up: true, operUp: true, mtu: 1500, mac: '02:00:00:00:00:02' },
  { ifindex: 7, name: 'br-r', kind: 'bridge', master: 0, up: true, operUp: true, mtu: 1500, mac: '02:b6:00:00:00:07' },
];
const hex = (b: Buffer) => b.toString('hex');

describe('compile: a routed network', () => {
  const d = resolveDatapath({
    uplink: 'eth0', endpoints: [], publishes: [], links: [],
    networks: [{ id: 'r', name: 'r', bridge: 'br-r', subnet4: '10.90.0.0/24', gateway4: '10.90.0.65', internal: false, icc: true, masquerade: true, routed: true, block4: '10.90.0.64/26' }],
  });
  const c = compile(d, LINKS, []);
  it('is flagged routed, its gateway this host\'s', () => {
    const n = dpNet.decode(c.nets.get(hex(Buffer.from([7, 0, 0, 0])))!);
    expect(n.flags).toBe(NetFlag.V4 | NetFlag.Icc | NetFlag.Masq | NetFlag.Routed);
  });
  it('has the whole subnet in the trie, and its own block keyed by the bridge', () => {
    expect(c.subnets.size).toBe(2);
    expect(c.subnets.has(hex(lpmKey('10.90.0.0/24')))).toBe(true);
    expect(c.subnets.has(hex(lpmKey('10.90.0.64/26', 7)))).toBe(true);
  });
});
