import { describe, expect, it } from 'vitest';
import type { DpNetwork } from './datapath.js';
import { changedFronts, resolveDatapath, staleFronts, type DatapathSpec, type DpPublishSpec } from './desired.js';

const net = (id: string, o: Partial<DpNetwork> = {}): DpNetwork => ({ id, name: id, bridge: `br-${id}`, subnet4: '10.1.0.0/24', internal: false, icc: true, masquerade: true, ...o });
const pub = (o: Partial<DpPublishSpec> = {}): DpPublishSpec => ({ sandbox: 's', network: 'a', hostIp: '', hostPort: 8080, count: 1, containerV4: '10.1.0.2', containerPort: 80, proto: 'tcp', allow: [], ...o });
const spec = (o: Partial<DatapathSpec> = {}): DatapathSpec => ({ networks: [net('a'), net('i', { internal: true }), net('mv', { bridge: undefined })], endpoints: [], publishes: [], links: [], ...o });

describe('the resolved intent', () => {
  it('publishes of internal and bridge-less networks install nothing', () => {
    const d = resolveDatapath(spec({ publishes: [pub({ network: 'i' }), pub({ network: 'mv' }), pub()] }));
    expect(d.publishes.map((p) => p.network)).toEqual(['a']);
  });

  it('every address: one entry per family the sandbox has; a bound address: its family only', () => {
    const both = resolveDatapath(spec({ publishes: [pub({ containerV6: 'fd00::2' })] })).publishes;
    expect(both.map((p) => [p.family, p.target])).toEqual([[4, '10.1.0.2'], [6, 'fd00::2']]);
    const bound = resolveDatapath(spec({ publishes: [pub({ hostIp: '198.18.0.1', containerV6: 'fd00::2' })] })).publishes;
    expect(bound.map((p) => p.family)).toEqual([4]);
    expect(resolveDatapath(spec({ publishes: [pub({ hostIp: '::1' })] })).publishes).toEqual([]);
  });

  it('allow-lists split by family; a list without the family\'s sources still restricts it', () => {
    const [v4, v6] = resolveDatapath(spec({ publishes: [pub({ containerV6: 'fd00::2', allow: ['192.0.2.0/24', '198.18.0.2'] })] })).publishes;
    expect([v4!.restricted, v4!.allow]).toEqual([true, ['192.0.2.0/24', '198.18.0.2']]);
    expect([v6!.restricted, v6!.allow]).toEqual([true, []]);
  });

  it('loopback binds are flagged', () => {
    const [lo, any] = resolveDatapath(spec({ publishes: [pub({ hostIp: '127.0.0.1' }), pub({ hostPort: 81 })] })).publishes;
    expect([lo!.loopback, any!.loopback]).toEqual([true, false]);
  });

  it('forwarding: IPv4 always, IPv6 while a bridged network is dual-stack', () => {
    expect(resolveDatapath(spec()).sysctls.map((s) => s.key)).toEqual(['net.ipv4.ip_forward']);
    expect(resolveDatapath(spec({ networks: [net('a', { subnet6: 'fd00::/64' })] })).sysctls.map((s) => s.key)).toEqual(['net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding']);
    expect(resolveDatapath(spec({ networks: [net('mv', { bridge: undefined, subnet6: 'fd00::/64' })] })).sysctls.map((s) => s.key)).toEqual(['net.ipv4.ip_forward']);
  });

  it('a publish on an internal network changes no front end', () => {
    expect(changedFronts(resolveDatapath(spec()), resolveDatapath(spec({ publishes: [pub({ network: 'i' })] })))).toEqual([]);
    expect(changedFronts(resolveDatapath(spec()), resolveDatapath(spec({ publishes: [pub()] })))).toEqual([{ proto: 'tcp', hostIp: '', hostPort: 8080, count: 1 }]);
  });

  it('stale front ends: removed or retargeted ones, never an added one (no flow of it can exist)', () => {
    const none = resolveDatapath(spec());
    const one = resolveDatapath(spec({ publishes: [pub()] }));
    const moved = resolveDatapath(spec({ publishes: [pub({ containerPort: 81 })] }));
    expect(staleFronts(none, one)).toEqual([]);
    expect(staleFronts(one, none)).toEqual([{ proto: 'tcp', hostIp: '', hostPort: 8080, count: 1 }]);
    expect(staleFronts(one, moved)).toEqual([{ proto: 'tcp', hostIp: '', hostPort: 8080, count: 1 }]);
    expect(staleFronts(one, one)).toEqual([]);
  });
});
