import { describe, expect, it } from 'vitest';
import type { NlAddr, NlLink } from '../../native/addon.js';
import type { DesiredDatapath, DpEndpoint, DpNetwork } from '../datapath.js';
import { resolveDatapath, type DatapathSpec, type DpPublishSpec } from '../desired.js';
import { dpEgress, dpEp, dpLpmId, dpNet, EpFlag, NetFlag, PubFlag } from '../../bpf/abi.js';
import { addr16, compile, lpmKey, pubWalks } from './compile.js';

const link = (ifindex: number, name: string, over: Partial<NlLink> = {}): NlLink => ({
  ifindex, name, kind: 'veth', master: 0, up: true, operUp: true, mtu: 1500, mac: `02:00:00:00:00:${ifindex.toString(16).padStart(2, '0')}`, ...over,
});
const LINKS: NlLink[] = [
  link(1, 'lo', { kind: '' }), link(2, 'uplink0'), link(3, 'br-a', { kind: 'bridge', mac: '02:b6:00:00:00:0a' }), link(4, 'br-b', { kind: 'bridge' }),
  link(10, 'bv-a1', { master: 3 }), link(11, 'bv-a2', { master: 3 }), link(12, 'bv-b1', { master: 4 }),
];
const ADDRS: NlAddr[] = [
  { dev: 'uplink0', ifindex: 2, cidr: '198.18.0.1/24', family: 4, scope: 'global' },
  { dev: 'uplink0', ifindex: 2, cidr: '2001:db8::1/64', family: 6, scope: 'global' },
  { dev: 'br-a', ifindex: 3, cidr: '10.1.0.1/24', family: 4, scope: 'global' },
  { dev: 'lo', ifindex: 1, cidr: '127.0.0.1/8', family: 4, scope: 'host' },
];
const net = (id: string, bridge: string, over: Partial<DpNetwork> = {}): DpNetwork => ({ id, name: id, bridge, subnet4: '10.1.0.0/24', gateway4: '10.1.0.1', internal: false, icc: true, masquerade: true, ...over });
const ep = (sandbox: string, network: string, hostIf: string, v4: string, over: Partial<DpEndpoint> = {}): DpEndpoint => ({ sandbox, network, hostIf, mac: '02:00:00:00:01:01', v4, ...over });
const pub = (over: Partial<DpPublishSpec>): DpPublishSpec => ({ sandbox: 'a1', network: 'a', hostIp: '', hostPort: 8080, count: 1, containerV4: '10.1.0.2', containerPort: 80, proto: 'tcp', allow: [], ...over });
const spec = (over: Partial<DatapathSpec> = {}): DatapathSpec => ({
  networks: [net('a', 'br-a'), net('b', 'br-b', { subnet4: '10.2.0.0/24', gateway4: '10.2.0.1', icc: false, subnet6: 'fd00:2::/64', gateway6: 'fd00:2::1' })],
  endpoints: [ep('a1', 'a', 'bv-a1', '10.1.0.2'), ep('a2', 'a', 'bv-a2', '10.1.0.3'), ep('b1', 'b', 'bv-b1', '10.2.0.2', { v6: 'fd00:2::2' })],
  publishes: [], links: [], ...over,
});
const desired = (over: Partial<DatapathSpec> = {}): DesiredDatapath => resolveDatapath(spec(over));
const hex = (b: Buffer) => b.toString('hex');

describe('addresses and prefixes as the datapath keys them', () => {
  it('maps IPv4 into IPv6 and keeps IPv6', () => {
    expect(hex(addr16('10.1.0.2'))).toBe('00000000000000000000ffff0a010002');
    expect(hex(addr16('fd00:2::2'))).toBe('fd000002000000000000000000000002');
    expect(() => addr16('10.1.0.300')).toThrow(/'10.1.0.300' is not an IP address/);
  });

  it('puts IPv4 prefixes under ::ffff:0:0/96, behind a 32-bit id, and drops host bits', () => {
    expect(dpLpmId.decode(lpmKey('10.1.0.7/24', 5))).toEqual({ prefixlen: 32 + 96 + 24, id: 5, a: addr16('10.1.0.0') });
    expect(dpLpmId.decode(lpmKey('fd00:2::/64'))).toMatchObject({ prefixlen: 32 + 64, id: 0 });
  });
});

describe('compile', () => {
  it('networks by bridge ifindex with their flags, gateways and the bridge\'s MAC', () => {
    const c = compile(desired(), LINKS, ADDRS);
    const a = dpNet.decode(c.nets.get(hex(Buffer.from([3, 0, 0, 0])))!);
    expect(a).toMatchObject({ flags: NetFlag.V4 | NetFlag.Icc | NetFlag.Masq, bridge: 3, mtu: 1500 });
    expect(hex(a.gwMac)).toBe('02b60000000a');
    const b = dpNet.decode(c.nets.get(hex(Buffer.from([4, 0, 0, 0])))!);
    expect(b.flags).toBe(NetFlag.V4 | NetFlag.V6 | NetFlag.Masq);
    expect(c.subnets.size).toBe(3);
  });

  it('endpoints by address and by interface, and the veths to attach', () => {
    const c = compile(desired(), LINKS, ADDRS);
    const b1 = dpEp.decode(c.epIp.get(hex(addr16('fd00:2::2')))!);
    expect(b1).toMatchObject({ ifindex: 12, net: 4, flags: EpFlag.HasV4 | EpFlag.HasV6 });
    expect(c.epIf.get(hex(Buffer.from([12, 0, 0, 0])))).toEqual(c.epIp.get(hex(addr16('10.2.0.2'))));
    expect(c.attach.map((x) => x.ifname).sort()).toEqual(['bv-a1', 'bv-a2', 'bv-b1']);
  });

  it('masquerade addresses only for interfaces berth does not own, and the uplinks', () => {
    const c = compile(desired(), LINKS, ADDRS);
    expect([...c.ifaddr.values()].map((v) => hex(v)).sort()).toEqual([hex(addr16('198.18.0.1')), hex(addr16('2001:db8::1'))].sort());
    expect(c.uplinks).toEqual([{ ifname: 'uplink0', ifindex: 2 }]);
    expect(compile(desired({ uplink: 'nosuch' }), LINKS, ADDRS).warnings).toEqual(['uplink nosuch does not exist: published ports are reachable only from the host and sandboxes']);
  });

  it('one publish entry per range and family, sorted; loopback and bound addresses; allow-lists by entry', () => {
    const c = compile(desired({
      publishes: [
        pub({ hostPort: 9000, count: 1000, containerPort: 9000 }),
        pub({ hostIp: '127.0.0.1', hostPort: 8091, containerPort: 91 }),
        pub({ hostIp: '198.18.0.1', hostPort: 8090, containerPort: 90, proto: 'udp', allow: ['198.18.0.2', '2001:db8::/32'] }),
      ],
    }), LINKS, ADDRS);
    expect(c.pubs.map((p) => [p.proto, p.start, p.end, p.flags])).toEqual([
      [6, 8091, 8091, PubFlag.Loopback],
      [6, 9000, 9999, PubFlag.Any4],
      [17, 8090, 8090, PubFlag.Allow],
    ]);
    // Only the allow-list entries of the publish's own family, a bare address as a host prefix.
    expect(c.pubAllow).toEqual([{ index: 2, cidr: '198.18.0.2/32' }]);
  });

  it('ignores publishes of internal networks and of sandboxes the datapath does not carry', () => {
    const s = spec({ publishes: [pub({ network: 'b', sandbox: 'b1', containerV4: '10.2.0.2' }), pub({ sandbox: 'ghost' })] });
    s.networks[1]!.internal = true;
    expect(compile(resolveDatapath(s), LINKS, ADDRS).pubs).toEqual([]);
  });

  it('links in both families where both ends have them', () => {
    const c = compile(desired({ links: [{ network: 'b', client: 'b1', target: 'b1', clientV4: '10.2.0.2', targetV4: '10.2.0.9', clientV6: 'fd00:2::2', targetV6: 'fd00:2::9', port: 5432, proto: 'tcp' }] }), LINKS, ADDRS);
    expect(c.links.size).toBe(2);
  });

  it('egress allow-lists: one trie entry per prefix with its port rules; any port wins', () => {
    const c = compile(desired({
      endpoints: [ep('a1', 'a', 'bv-a1', '10.1.0.2', { egress: [
        { cidr: '198.51.100.0/24', port: 443, proto: 'tcp' }, { cidr: '198.51.100.0/24', port: 53, proto: 'udp' },
        { cidr: '203.0.113.0/24', port: 80, proto: 'tcp' }, { cidr: '203.0.113.0/24' },
      ] })],
    }), LINKS, ADDRS);
    expect(dpEp.decode(c.epIf.get(hex(Buffer.from([10, 0, 0, 0])))!).flags & EpFlag.Egress).toBe(EpFlag.Egress);
    const a = dpEgress.decode(c.egress.get(hex(lpmKey('198.51.100.0/24', 10)))!);
    expect(a.n).toBe(2);
    expect([a.rules.readUInt32LE(0), a.rules.readUInt32LE(4)]).toEqual([(6 << 16) | 443, (17 << 16) | 53]);
    expect(dpEgress.decode(c.egress.get(hex(lpmKey('203.0.113.0/24', 10)))!).n).toBe(0);
  });
});

describe('the publish policy', () => {
  it('flags the network and keys its prefixes by the bridge; a network without one has neither', () => {
    const c = compile(desired({ policies: { a: { allow: ['192.0.2.0/24', '2001:db8::/32'], from: 'berthd --publish-allow' } } }), LINKS, ADDRS);
    expect(dpNet.decode(c.nets.get(hex(Buffer.from([3, 0, 0, 0])))!).flags & NetFlag.PubPolicy).toBe(NetFlag.PubPolicy);
    expect(dpNet.decode(c.nets.get(hex(Buffer.from([4, 0, 0, 0])))!).flags & NetFlag.PubPolicy).toBe(0);
    expect([...c.pubpol.keys()].sort()).toEqual([hex(lpmKey('192.0.2.0/24', 3)), hex(lpmKey('2001:db8::/32', 3))].sort());
  });
});

describe('how far a publish lookup walks back', () => {
  it('counts the entries of other bind addresses whose ranges still cover an entry\'s start', () => {
    // 9200-9299 on one address, then singles inside it on others: each single must look back to the range.
    const rows = [{ proto: 6, start: 9200, end: 9299 }, ...[9201, 9202, 9203].map((p) => ({ proto: 6, start: p, end: p })), { proto: 6, start: 9400, end: 9400 }, { proto: 17, start: 9250, end: 9250 }];
    expect(pubWalks(rows)).toEqual([0, 1, 2, 3, 0, 0]);
  });
});
