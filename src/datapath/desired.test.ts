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

  it('the publish policy: per family, loopback sources admitted, narrowed by the publish\'s list; loopback binds and networks without one have none', () => {
    const policies = { a: { allow: ['192.0.2.0/24', '2001:db8::/32'], from: 'network a -o publish.allow' } };
    const d = resolveDatapath(spec({ policies, publishes: [pub({ containerV6: 'fd00::2' }), pub({ hostPort: 81, allow: ['192.0.2.7/32', '203.0.113.0/24'] }), pub({ hostIp: '127.0.0.1', hostPort: 82 })] }));
    const [v4, v6, narrowed, lo] = d.publishes;
    expect([v4!.policy, v4!.admit]).toEqual([{ allow: ['192.0.2.0/24'], from: 'network a -o publish.allow' }, ['127.0.0.0/8', '192.0.2.0/24']]);
    expect([v6!.policy!.allow, v6!.admit]).toEqual([['2001:db8::/32'], ['2001:db8::/32', '::1/128']]);
    expect(narrowed!.admit).toEqual(['192.0.2.7/32']);
    expect([lo!.policy, lo!.admit]).toEqual([undefined, undefined]);
    expect(d.networks.find((n) => n.id === 'a')!.publishAllow).toEqual(['192.0.2.0/24', '2001:db8::/32']);
    expect(d.networks.find((n) => n.id === 'i')!.publishAllow).toBeUndefined();
  });

  it('a policy change changes the front ends it covers (their flows are flushed)', () => {
    const before = resolveDatapath(spec({ publishes: [pub()] }));
    const after = resolveDatapath(spec({ publishes: [pub()], policies: { a: { allow: ['192.0.2.0/24'], from: 'berthd --publish-allow' } } }));
    expect(changedFronts(before, after).map((f) => f.hostPort)).toEqual([8080]);
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
