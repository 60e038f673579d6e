import { describe, expect, it } from 'vitest';
import type { DpNetwork } from '../datapath.js';
import { resolveDatapath } from '../desired.js';
import { CHAIN } from './chains.js';
import { render } from './render.js';

const routed = (over: Partial<DpNetwork> = {}): DpNetwork => ({
  id: 'r', name: 'r', bridge: 'br-r', subnet4: '10.90.0.0/24', gateway4: '10.90.0.65', internal: false, icc: true, masquerade: true, routed: true, ...over,
});
const rules = (n: DpNetwork, table: string, chain: string) =>
  render(resolveDatapath({ networks: [n], endpoints: [], publishes: [], links: [] })).rules.ip4[table]![chain]!;

describe('routed networks (iptables)', () => {
  it('masquerade only what leaves the subnet', () => {
    expect(rules(routed(), 'nat', CHAIN.postrouting)).toContain('-s 10.90.0.0/24 ! -d 10.90.0.0/24 ! -o br-r -j MASQUERADE');
  });
  it('admit members on other hosts both ways, before isolation and the final drop', () => {
    const fwd = rules(routed(), 'filter', CHAIN.forward);
    const out = fwd.indexOf('-i br-r -d 10.90.0.0/24 ! -o br-r -j ACCEPT');
    const inn = fwd.indexOf('! -i br-r -s 10.90.0.0/24 -d 10.90.0.0/24 -o br-r -j ACCEPT');
    expect(out).toBeGreaterThanOrEqual(0);
    expect(inn).toBeGreaterThanOrEqual(0);
    expect(inn).toBeLessThan(fwd.indexOf(`-j ${CHAIN.isolation1}`));
    expect(inn).toBeLessThan(fwd.indexOf('-o br-r -j DROP'));
  });
  it('icc=false: member traffic across hosts only by a link (new connections to its port, then tracked), before the drops', () => {
    const link = { network: 'r', client: 'c', target: 't', clientV4: '10.90.0.66', targetV4: '10.90.0.2', port: 7400, proto: 'tcp' as const };
    const fwd = render(resolveDatapath({ networks: [routed({ icc: false })], endpoints: [], publishes: [], links: [link] })).rules.ip4.filter![CHAIN.forward]!;
    const drop = fwd.indexOf('-i br-r -d 10.90.0.0/24 ! -o br-r -j DROP');
    expect(drop).toBeGreaterThanOrEqual(0);
    expect(fwd).toContain('! -i br-r -s 10.90.0.0/24 -d 10.90.0.0/24 -o br-r -j DROP');
    const m = '-s 10.90.0.66/32 -d 10.90.0.2/32 -p tcp -m tcp --dport 7400';
    for (const r of [`-i br-r -d 10.90.0.0/24 ! -o br-r -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`, `${m} -i br-r ! -o br-r -m conntrack --ctstate NEW -j ACCEPT`, `${m} ! -i br-r -o br-r -m conntrack --ctstate NEW -j ACCEPT`]) {
      expect(fwd.indexOf(r)).toBeGreaterThanOrEqual(0);
      expect(fwd.indexOf(r)).toBeLessThan(drop);
    }
  });
  it('a bridge network gets none of it', () => {
    const n = routed({ routed: false });
    expect(rules(n, 'nat', CHAIN.postrouting)).toContain('-s 10.90.0.0/24 ! -o br-r -j MASQUERADE');
    expect(rules(n, 'filter', CHAIN.forward).some((r) => r.includes('-d 10.90.0.0/24'))).toBe(false);
  });
});

describe('routed networks (iptables drop reasons)', () => {
  it('name the icc=false and forged-block drops, in the order iptables-save prints them', async () => {
    const { dropReason } = await import('./drops.js');
    expect(dropReason('ip4', CHAIN.forward, '-d 10.90.0.0/24 -i br-r ! -o br-r -j DROP')).toBe('icc');
    expect(dropReason('ip4', CHAIN.forward, '-s 10.90.0.0/24 -d 10.90.0.0/24 ! -i br-r -o br-r -j DROP')).toBe('icc');
    expect(dropReason('ip4', CHAIN.forward, '-o br-r -j DROP')).toBe('direct');
    expect(dropReason('ip4', CHAIN.prerouting, '-s 10.90.0.64/26 -i eth0 -j DROP')).toBe('spoof-ip');
  });
  it('drop a source of the own block arriving on the uplink, and one of no host\'s block', async () => {
    const d = resolveDatapath({ uplink: 'eth0', networks: [routed({ block4: '10.90.0.64/26' })], endpoints: [], publishes: [], links: [] });
    expect(render(d).rules.ip4.raw![CHAIN.prerouting]).toContain('-s 10.90.0.64/26 -i eth0 -j DROP');
    // An address no host holds: its route back is the bridge's, not the uplink's.
    expect(render(d).rules.ip4.raw![CHAIN.prerouting]).toContain('-s 10.90.0.0/24 -i eth0 -m rpfilter --invert -j DROP');
    const { dropReason } = await import('./drops.js');
    expect(dropReason('ip4', CHAIN.prerouting, '-s 10.90.0.0/24 -i eth0 -m rpfilter --invert -j DROP')).toBe('spoof-ip');
  });
});
