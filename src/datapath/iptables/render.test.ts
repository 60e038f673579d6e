import { describe, expect, it } from 'vitest';
import type { DesiredDatapath, DpEndpoint, DpNetwork } from '../datapath.js';
import { resolveDatapath, type DatapathSpec, type DpPublishSpec } from '../desired.js';
import { CHAIN, jumpsFor } from './chains.js';
import { render } from './render.js';

const net = (id: string, over: Partial<DpNetwork> = {}): DpNetwork => ({
  id, name: id, bridge: `br-${id}`, subnet4: `10.${id.length}.0.0/24`, gateway4: `10.${id.length}.0.1`, internal: false, icc: true, masquerade: true, ...over,
});
const ep = (sandbox: string, network: string, v4?: string, v6?: string): DpEndpoint => ({
  sandbox, network, hostIf: `bv-${sandbox}-${network}`, mac: '02:00:00:00:00:01', ...(v4 ? { v4 } : {}), ...(v6 ? { v6 } : {}),
});
const pub = (over: Partial<DpPublishSpec>): DpPublishSpec => ({
  sandbox: 'a', network: 'n1', hostIp: '', hostPort: 8080, count: 1, containerV4: '10.1.0.2', containerPort: 80, proto: 'tcp', allow: [], ...over,
});

const n1 = net('n1', { subnet4: '10.1.0.0/24', gateway4: '10.1.0.1' });
const n2 = net('n2', { subnet4: '10.2.0.0/24', gateway4: '10.2.0.1', icc: false });
const n3 = net('n3', { subnet4: '10.3.0.0/24', gateway4: '10.3.0.1', internal: true, masquerade: false });
const n6 = net('n6', { subnet4: '10.6.0.0/24', gateway4: '10.6.0.1', subnet6: 'fd00:6::/64', gateway6: 'fd00:6::1' });
const nm = net('nm', { subnet4: '10.9.0.0/24', masquerade: false });

function desired(over: Partial<DatapathSpec> = {}): DesiredDatapath {
  return resolveDatapath({ networks: [n1, n2, n3, n6, nm], endpoints: [], publishes: [], links: [], ...over });
}
/** IPv6 forwarding is part of the intent (desired.ts), not of the rules */
const ipv6Forwarding = (d: DesiredDatapath) => d.sysctls.some((s) => s.key === 'net.ipv6.conf.all.forwarding');
/** BERTH-DNAT without the internal networks' RETURN guards */
const dnat = (d: DesiredDatapath, f: 'ip4' | 'ip6') => chain(d, f, 'nat', CHAIN.dnat).filter((r) => !r.endsWith('-j RETURN'));
const chain = (d: DesiredDatapath, family: 'ip4' | 'ip6' | 'eb', table: string, name: string) => render(d).rules[family][table]![name]!;

describe('masquerade', () => {
  const post = chain(desired(), 'ip4', 'nat', CHAIN.postrouting);
  it('per masquerading network, out of anything but its own bridge', () => {
    expect(post).toContain('-s 10.1.0.0/24 ! -o br-n1 -j MASQUERADE');
    expect(post).toContain('-s 10.6.0.0/24 ! -o br-n6 -j MASQUERADE');
  });
  it('never for internal networks or masquerade=false', () => {
    expect(post.some((r) => r.includes('10.3.0.0/24'))).toBe(false);
    expect(post.some((r) => r.includes('10.9.0.0/24'))).toBe(false);
  });
  it('IPv6 subnets are masqueraded by ip6tables', () => {
    expect(chain(desired(), 'ip6', 'nat', CHAIN.postrouting)).toContain('-s fd00:6::/64 ! -o br-n6 -j MASQUERADE');
  });
  it('localhost towards each bridge is masqueraded; published flows from other networks keep their source', () => {
    expect(post).toContain('-s 127.0.0.0/8 -o br-n1 -j MASQUERADE');
    const ret = post.indexOf('-o br-n1 -m conntrack --ctstate DNAT -j RETURN');
    expect(ret).toBeGreaterThan(post.indexOf('-s 127.0.0.0/8 -o br-n1 -j MASQUERADE'));
    expect(ret).toBeLessThan(post.indexOf('-s 10.1.0.0/24 ! -o br-n1 -j MASQUERADE'));
  });
});

describe('published ports', () => {
  it('a single TCP port: DNAT, accept only DNAT-ed flows, masquerade only a sandbox reaching itself', () => {
    const d = desired({ publishes: [pub({})] });
    expect(dnat(d, 'ip4')).toEqual(['-p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80']);
    expect(chain(d, 'ip4', 'filter', CHAIN.publish)).toEqual(['-d 10.1.0.2/32 -o br-n1 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT --ctorigdstport 8080 -j ACCEPT']);
    expect(chain(d, 'ip4', 'nat', CHAIN.postrouting)).toContain('-s 10.1.0.2/32 -d 10.1.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE');
  });

  it('a range is one rule with the shifted DNAT range', () => {
    const d = desired({ publishes: [pub({ hostPort: 9000, count: 3, containerPort: 90, proto: 'udp' })] });
    expect(dnat(d, 'ip4')).toEqual(['-p udp -m udp --dport 9000:9002 -j DNAT --to-destination 10.1.0.2:90-92/9000']);
    expect(chain(d, 'ip4', 'filter', CHAIN.publish)[0]).toContain('--dport 90:92 -m conntrack --ctstate DNAT --ctorigdstport 9000:9002');
  });

  it('SCTP uses the sctp match', () => {
    const d = desired({ publishes: [pub({ proto: 'sctp' })] });
    expect(dnat(d, 'ip4')).toEqual(['-p sctp -m sctp --dport 8080 -j DNAT --to-destination 10.1.0.2:80']);
  });

  it('a host address binds the rule to it, and to its family only', () => {
    const d = desired({ publishes: [pub({ hostIp: '198.18.0.1', containerV6: 'fd00:6::2' })] });
    expect(dnat(d, 'ip4')).toEqual(['-d 198.18.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80']);
    expect(chain(d, 'ip4', 'filter', CHAIN.publish)[0]).toContain('--ctorigdst 198.18.0.1 --ctorigdstport 8080');
    expect(dnat(d, 'ip6')).toEqual([]);
  });

  it('all addresses cover IPv6 too when the sandbox has an IPv6 address', () => {
    const d = desired({ publishes: [pub({ network: 'n6', containerV4: '10.6.0.2', containerV6: 'fd00:6::2' })] });
    expect(dnat(d, 'ip6')).toEqual(['-p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00:6::2]:80']);
    expect(chain(d, 'ip6', 'filter', CHAIN.publish)[0]).toMatch(/^-d fd00:6::2\/128 -o br-n6 /);
  });

  it('127.0.0.1 is only reachable through OUTPUT: the PREROUTING jump excludes loopback', () => {
    const d = desired({ publishes: [pub({ hostIp: '127.0.0.1' })] });
    expect(dnat(d, 'ip4')).toEqual(['-d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80']);
    const pre = jumpsFor('ip4').find((j) => j.table === 'nat' && j.builtin === 'PREROUTING')!;
    expect(pre.spec).toBe('! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j BERTH-DNAT');
    const out = jumpsFor('ip4').find((j) => j.table === 'nat' && j.builtin === 'OUTPUT')!;
    expect(out.spec).toBe('-m addrtype --dst-type LOCAL -j BERTH-DNAT');
  });

  it('::1 cannot be done without a proxy: a warning, no rule', () => {
    const r = render(desired({ publishes: [pub({ hostIp: '::1', containerV6: 'fd00:6::2' })] }));
    expect(r.rules.ip6.nat![CHAIN.dnat]!.filter((x) => !x.endsWith('-j RETURN'))).toEqual([]);
    expect(r.warnings.join()).toMatch(/\[::1\]:8080\/tcp of 'a'.*IPv6 loopback/);
  });

  it('an allow-list DNATs listed sources only, matched before translation, and drops the rest at the host port', () => {
    const d = desired({ publishes: [pub({ allow: ['198.18.0.2/32', '192.0.2.0/24', '2001:db8::/32'] })] });
    expect(dnat(d, 'ip4')).toEqual([
      '-s 198.18.0.2/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80',
      '-s 192.0.2.0/24 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80',
    ]);
    expect(chain(d, 'ip4', 'filter', CHAIN.input)).toContain('! -i lo -p tcp -m tcp --dport 8080 -j DROP');
  });

  it('the operator\'s publish policy: only its sources (and the host\'s loopback) are DNAT-ed, narrowed by the publish\'s list; the rest drops in the network\'s policy chain first', () => {
    const policies = { n1: { allow: ['192.0.2.0/24', '2001:db8::/32'], from: 'berthd --publish-allow' } };
    const d = desired({ policies, publishes: [pub({}), pub({ hostPort: 8081, allow: ['192.0.2.128/25', '198.18.0.0/16'] }), pub({ hostIp: '127.0.0.1', hostPort: 8082 })] });
    expect(dnat(d, 'ip4')).toEqual([
      '-s 127.0.0.0/8 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80',
      '-s 192.0.2.0/24 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80',
      '-s 192.0.2.128/25 -p tcp -m tcp --dport 8081 -j DNAT --to-destination 10.1.0.2:80',
      // a loopback bind is the host's own: no policy
      '-d 127.0.0.1/32 -p tcp -m tcp --dport 8082 -j DNAT --to-destination 10.1.0.2:80',
    ]);
    const input = chain(d, 'ip4', 'filter', CHAIN.input);
    expect(input.filter((r) => /--dport 808/.test(r))).toEqual([
      '! -i lo -p tcp -m tcp --dport 8080 -j BERTH-PUBPOL-n1',
      '! -i lo -p tcp -m tcp --dport 8081 -j BERTH-PUBPOL-n1',
      '! -i lo -p tcp -m tcp --dport 8081 -j DROP',
    ]);
    expect(chain(d, 'ip4', 'filter', 'BERTH-PUBPOL-n1')).toEqual(['-s 192.0.2.0/24 -j RETURN', '-j DROP']);
    // no policy, no chain
    expect(render(desired({ publishes: [pub({})] })).rules.ip4.filter!['BERTH-PUBPOL-n1']).toBeUndefined();
  });

  it('an allow-list without sources of a family publishes nothing in that family', () => {
    const d = desired({ publishes: [pub({ network: 'n6', containerV6: 'fd00:6::2', allow: ['198.18.0.2/32'] })] });
    expect(dnat(d, 'ip6')).toEqual([]);
    expect(chain(d, 'ip6', 'filter', CHAIN.input)).toContain('! -i lo -p tcp -m tcp --dport 8080 -j DROP');
  });

  it('ports of internal networks and of bridge-less (macvlan) networks are not published', () => {
    const mv: DpNetwork = { id: 'mv', name: 'mv', subnet4: '198.18.0.0/24', internal: false, icc: true, masquerade: false };
    const d = desired({ networks: [n1, n3, mv], publishes: [pub({ network: 'n3', containerV4: '10.3.0.2' }), pub({ network: 'mv', containerV4: '198.18.0.130', hostPort: 81 })] });
    expect(chain(d, 'ip4', 'nat', CHAIN.dnat)).toEqual(['-i br-n3 -j RETURN']);
    expect(render(d).bridges).toEqual(['br-n1', 'br-n3']);
  });
});

describe('forwarding policy', () => {
  const fwd = chain(desired(), 'ip4', 'filter', CHAIN.forward);
  it('replies first, then published flows, then isolation, then intra-network, then the default drop, then egress', () => {
    const at = (r: string) => {
      const i = fwd.indexOf(r);
      expect(i, r).toBeGreaterThanOrEqual(0);
      return i;
    };
    const order = [
      at('-o br-n1 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT'),
      at(`-j ${CHAIN.publish}`),
      at(`-j ${CHAIN.isolation1}`),
      at('-i br-n1 -o br-n1 -j ACCEPT'),
      at('-o br-n1 -j DROP'),
      at('-i br-n1 -j ACCEPT'),
    ];
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });
  it('icc=false networks go through BERTH-ICC; internal networks have no egress', () => {
    expect(fwd).toContain(`-i br-n2 -o br-n2 -j ${CHAIN.icc}`);
    expect(fwd).toContain('-i br-n3 -j DROP');
    expect(fwd).not.toContain('-i br-n3 -j ACCEPT');
  });
  it('isolation: two stages between networks; internal networks closed both ways', () => {
    const d = desired();
    expect(chain(d, 'ip4', 'filter', CHAIN.isolation1)).toEqual(expect.arrayContaining([
      `-i br-n1 ! -o br-n1 -j ${CHAIN.isolation2}`,
      '-i br-n3 ! -o br-n3 -j DROP',
      '! -i br-n3 -o br-n3 -j DROP',
    ]));
    expect(chain(d, 'ip4', 'filter', CHAIN.isolation2)).toEqual(['-o br-n1 -j DROP', '-o br-n2 -j DROP', '-o br-n3 -j DROP', '-o br-n6 -j DROP', '-o br-nm -j DROP']);
  });
  it('internal networks are never DNAT-ed (published ports are reached through a host address)', () => {
    expect(chain(desired({ publishes: [pub({})] }), 'ip4', 'nat', CHAIN.dnat)[0]).toBe('-i br-n3 -j RETURN');
  });
  it('internal networks reach the host only at their gateway', () => {
    expect(chain(desired(), 'ip4', 'filter', CHAIN.input)).toContain('! -d 10.3.0.1/32 -i br-n3 -j DROP');
  });
});

describe('links on icc=false networks', () => {
  const d = desired({
    links: [{ network: 'n2', client: 'app', target: 'db', clientV4: '10.2.0.3', targetV4: '10.2.0.2', port: 5432, proto: 'tcp' }],
  });
  const icc = chain(d, 'ip4', 'filter', CHAIN.icc);
  it('only the client opens, only to the exposed port (replies pass as ESTABLISHED), then everything else drops', () => {
    expect(icc).toEqual([
      '-s 10.2.0.3/32 -d 10.2.0.2/32 -i br-n2 -o br-n2 -p tcp -m tcp --dport 5432 -j ACCEPT',
      '-i br-n2 -o br-n2 -j DROP',
    ]);
    expect(icc.some((r) => r.includes('--sport'))).toBe(false);
  });
  it('links on icc=true networks add nothing (everything passes there)', () => {
    const d2 = desired({ links: [{ network: 'n1', client: 'x', target: 'y', clientV4: '10.1.0.3', targetV4: '10.1.0.2', port: 80, proto: 'tcp' }] });
    expect(chain(d2, 'ip4', 'filter', CHAIN.icc).some((r) => r.includes('10.1.0.3'))).toBe(false);
  });
});

describe('anti-spoofing and guards (raw, ebtables)', () => {
  const d = desired({ endpoints: [ep('a', 'n1', '10.1.0.2'), ep('b', 'n6', '10.6.0.2', 'fd00:6::2')] });
  it('a sandbox port sends only its own IPv4 address', () => {
    expect(chain(d, 'ip4', 'raw', CHAIN.prerouting)).toContain('! -s 10.1.0.2/32 -i br-n1 -m physdev --physdev-in bv-a-n1 -j DROP');
  });
  it('IPv6: own address, link-local and DAD pass; anything else from that port drops', () => {
    const raw = chain(d, 'ip6', 'raw', CHAIN.prerouting);
    const mine = raw.filter((r) => r.includes('bv-b-n6') && !r.includes('-p ipv6-icmp -m icmp6') && !r.includes('--sport'));
    expect(mine).toEqual([
      '-s fd00:6::2/128 -i br-n6 -m physdev --physdev-in bv-b-n6 -j RETURN',
      '-s fe80::/10 -i br-n6 -m physdev --physdev-in bv-b-n6 -j RETURN',
      '-s ::/128 -d ff02::/16 -i br-n6 -p ipv6-icmp -m physdev --physdev-in bv-b-n6 -j RETURN',
      '-i br-n6 -m physdev --physdev-in bv-b-n6 -j DROP',
    ]);
  });
  it('a sandbox is no router: RAs, redirects and DHCP server replies from its port drop first, NAs only for its own addresses', () => {
    const raw6 = chain(d, 'ip6', 'raw', CHAIN.prerouting).filter((r) => r.includes('bv-b-n6'));
    const at = '-i br-n6 -m physdev --physdev-in bv-b-n6';
    expect(raw6.slice(0, 4)).toEqual([
      `${at} -p ipv6-icmp -m icmp6 --icmpv6-type 134 -j DROP`,
      `${at} -p ipv6-icmp -m icmp6 --icmpv6-type 137 -j DROP`,
      `${at} -p udp -m udp --sport 547 --dport 546 -j DROP`,
      // 02:00:00:00:00:01 -> fe80::ff:fe00:1; fd00:6::2
      `${at} -p ipv6-icmp -m icmp6 --icmpv6-type 136 -m u32 ! --u32 "0x30=0xfe800000&&0x34=0x0&&0x38=0xff&&0x3c=0xfe000001" -m u32 ! --u32 "0x30=0xfd000006&&0x34=0x0&&0x38=0x0&&0x3c=0x2" -j DROP`,
    ]);
    const raw4 = chain(d, 'ip4', 'raw', CHAIN.prerouting).filter((r) => r.includes('bv-a-n1'));
    expect(raw4.slice(0, 2)).toEqual([
      '-i br-n1 -m physdev --physdev-in bv-a-n1 -p icmp -m icmp --icmp-type 5 -j DROP',
      '-i br-n1 -m physdev --physdev-in bv-a-n1 -p udp -m udp --sport 67 --dport 68 -j DROP',
    ]);
  });
  it('a gateway\'s DNS port is dropped from anywhere but its own bridge', () => {
    const input = chain(d, 'ip4', 'filter', CHAIN.input);
    expect(input).toContain('-d 10.1.0.1/32 ! -i br-n1 -p udp -m udp --dport 53 -j DROP');
    expect(input).toContain('-d 10.1.0.1/32 ! -i br-n1 -p tcp -m tcp --dport 53 -j DROP');
    expect(chain(d, 'ip6', 'filter', CHAIN.input)).toContain('-d fd00:6::1/128 ! -i br-n6 -p udp -m udp --dport 53 -j DROP');
  });
  it('IPv6 from an IPv4-only network is dropped, not let around the policy', () => {
    const raw = chain(d, 'ip6', 'raw', CHAIN.prerouting);
    expect(raw).toContain('-i br-n1 -j DROP');
    expect(raw).not.toContain('-i br-n6 -j DROP');
  });
  it('nothing from a bridge may go to 127/8 (route_localnet is on for the bridges)', () => {
    expect(chain(d, 'ip4', 'raw', CHAIN.prerouting)).toContain('-d 127.0.0.0/8 -i br-n1 -j DROP');
  });
  it('ebtables: own MAC, ARP for own MAC and address only', () => {
    expect(chain(d, 'eb', 'nat', CHAIN.antispoof).filter((r) => r.includes('bv-a-n1'))).toEqual([
      '-s ! 02:00:00:00:00:01 -i bv-a-n1 -j DROP',
      '-p ARP -i bv-a-n1 --arp-mac-src ! 02:00:00:00:00:01 -j DROP',
      '-p ARP -i bv-a-n1 --arp-ip-src ! 10.1.0.2 -j DROP',
    ]);
  });
  it('hairpin ports and route_localnet bridges are reported', () => {
    const r = render(d);
    expect(r.ports).toEqual(['bv-a-n1', 'bv-b-n6']);
    expect(r.bridges).toContain('br-n1');
    expect(ipv6Forwarding(d)).toBe(true);
  });
});

describe('an empty desired state', () => {
  it('declares every chain, each empty', () => {
    const d = resolveDatapath({ networks: [], endpoints: [], publishes: [], links: [] });
    const r = render(d);
    for (const f of ['ip4', 'ip6', 'eb'] as const) {
      for (const chains of Object.values(r.rules[f])) for (const rules of Object.values(chains)) expect(rules).toEqual([]);
    }
    expect(Object.keys(r.rules.ip4.filter!)).toContain(CHAIN.forward);
    expect(ipv6Forwarding(d)).toBe(false);
  });
});

describe('egress allow-lists', () => {
  const limited = (egress: DpEndpoint['egress'], v6?: string): DpEndpoint => ({ ...ep('e', 'n6', '10.6.0.5', v6), egress });
  const rules = [
    { cidr: '198.51.100.0/24' },
    { cidr: '198.51.100.7/32', port: 443, proto: 'tcp' as const },
    { cidr: '2001:db8::/32', port: 53, proto: 'udp' as const },
  ];
  const d = desired({ endpoints: [limited(rules, 'fd00:6::5'), ep('free', 'n1', '10.1.0.9')] });

  it('listed destinations return to the forwarding verdict, the gateway too, the rest of what the sandbox opens drops', () => {
    expect(chain(d, 'ip4', 'filter', CHAIN.egress)).toEqual([
      '-s 10.6.0.5/32 -i br-n6 -d 10.6.0.1/32 -j RETURN',
      '-s 10.6.0.5/32 -i br-n6 -d 198.51.100.0/24 -j RETURN',
      '-s 10.6.0.5/32 -i br-n6 -d 198.51.100.7/32 -p tcp -m tcp --dport 443 -j RETURN',
      '-s 10.6.0.5/32 -i br-n6 -j DROP',
    ]);
  });

  it('IPv6 rules go to ip6tables, with neighbour discovery towards the host let through', () => {
    expect(chain(d, 'ip6', 'filter', CHAIN.egress)).toEqual([
      '-s fd00:6::5/128 -i br-n6 -d fd00:6::1/128 -j RETURN',
      '-s fd00:6::5/128 -i br-n6 -p ipv6-icmp -m icmp6 --icmpv6-type 133 -j RETURN',
      '-s fd00:6::5/128 -i br-n6 -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j RETURN',
      '-s fd00:6::5/128 -i br-n6 -p ipv6-icmp -m icmp6 --icmpv6-type 136 -j RETURN',
      '-s fd00:6::5/128 -i br-n6 -d 2001:db8::/32 -p udp -m udp --dport 53 -j RETURN',
      '-s fd00:6::5/128 -i br-n6 -j DROP',
    ]);
  });

  it('only new connections are judged, after same-network, published and isolation verdicts, before the bridge\'s way out', () => {
    const fwd = chain(d, 'ip4', 'filter', CHAIN.forward);
    const jump = fwd.indexOf(`-i br-n6 -m conntrack --ctstate NEW -j ${CHAIN.egress}`);
    expect(jump).toBeGreaterThan(fwd.indexOf(`-j ${CHAIN.publish}`));
    expect(jump).toBeGreaterThan(fwd.indexOf(`-j ${CHAIN.isolation1}`));
    expect(jump).toBeGreaterThan(fwd.indexOf('-i br-n6 -o br-n6 -j ACCEPT'));
    expect(jump).toBeLessThan(fwd.indexOf('-i br-n6 -j ACCEPT'));
    expect(fwd.filter((r) => r.includes(CHAIN.egress))).toHaveLength(1);
  });

  it('the host\'s addresses are held to the list too, after BERTH-INPUT\'s own drops', () => {
    const input = chain(desired({ endpoints: [limited(rules)], publishes: [pub({ allow: ['198.18.0.2/32'] })] }), 'ip4', 'filter', CHAIN.input);
    expect(input[input.length - 1]).toBe(`-i br-n6 -m conntrack --ctstate NEW -j ${CHAIN.egress}`);
  });

  it('an empty list (egress=deny, --egress-allow none) keeps only the gateway', () => {
    expect(chain(desired({ endpoints: [limited([])] }), 'ip4', 'filter', CHAIN.egress)).toEqual([
      '-s 10.6.0.5/32 -i br-n6 -d 10.6.0.1/32 -j RETURN',
      '-s 10.6.0.5/32 -i br-n6 -j DROP',
    ]);
  });

  it('a family the endpoint has no address of gets no rules, and no jump', () => {
    const d4 = desired({ endpoints: [limited(rules)] });
    expect(chain(d4, 'ip6', 'filter', CHAIN.egress)).toEqual([]);
    expect(chain(d4, 'ip6', 'filter', CHAIN.forward).some((r) => r.includes(CHAIN.egress))).toBe(false);
  });

  it('no list, no rules: unrestricted endpoints are not matched at all', () => {
    const r = chain(d, 'ip4', 'filter', CHAIN.egress);
    expect(r.some((x) => x.includes('10.1.0.9'))).toBe(false);
    expect(chain(d, 'ip4', 'filter', CHAIN.forward).some((x) => x.includes(`br-n1 -m conntrack --ctstate NEW -j ${CHAIN.egress}`))).toBe(false);
  });

  it('a list on a bridge-less (macvlan) network is said to be unenforced, not silently skipped', () => {
    const mv: DpNetwork = { id: 'mv', name: 'mv', subnet4: '198.18.0.0/24', internal: false, icc: true, masquerade: false };
    const r = render(desired({ networks: [n1, mv], endpoints: [{ sandbox: 'm', network: 'mv', mac: '02:00:00:00:00:02', v4: '198.18.0.130', egress: [] }] }));
    expect(r.warnings.join()).toMatch(/egress allow-list of 'm' not enforced on network 'mv'/);
  });
});
