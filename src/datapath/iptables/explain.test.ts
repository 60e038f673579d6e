import { describe, expect, it } from 'vitest';
import type { DesiredDatapath } from '../datapath.js';
import { onePacket, parseTrace, readTrace, traceDone, traceScript, type TraceContext } from './explain.js';

// `nft -a monitor trace` of a packet from outside to a published port (trimmed from a real run).
const PUBLISHED = `
trace id 68d14213 inet berth_explain start packet: iif "bxi428610" ether saddr 82:00:73:7e:c0:4f ether daddr 0a:0a:7b:c3:5a:99 ip saddr 198.18.0.2 ip daddr 198.18.0.1 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 9841 ip protocol tcp ip length 40 tcp sport 40000 tcp dport 8080 tcp flags == syn tcp window 64240
trace id 68d14213 inet berth_explain start unknown rule handle 4 (verdict continue)
trace id 68d14213 inet berth_explain start policy accept meta mark 0xbe7e0001
trace id 68d14213 ip nat PREROUTING rule ip daddr != 127.0.0.0/8 fib daddr type local counter packets 0 bytes 0 jump BERTH-DNAT # handle 7 (verdict jump BERTH-DNAT)
trace id 68d14213 ip nat BERTH-DNAT rule tcp dport 8080 counter packets 0 bytes 0 dnat to 10.80.0.2:80 # handle 527 (verdict accept)
trace id 68d14213 ip filter FORWARD rule counter packets 0 bytes 0 jump BERTH-FORWARD # handle 18 (verdict jump BERTH-FORWARD)
trace id 68d14213 ip filter BERTH-FORWARD rule counter packets 0 bytes 0 jump BERTH-PUBLISH # handle 836 (verdict jump BERTH-PUBLISH)
trace id 68d14213 ip filter BERTH-PUBLISH rule oifname "bb-35b098270505" ip daddr 10.80.0.2 tcp dport 80 ct status dnat ct original proto-dst 8080 counter packets 0 bytes 0 accept # handle 856 (verdict accept)
trace id 68d14213 ip nat BERTH-POSTROUTING rule oifname "bb-35b098270505" ct status dnat counter packets 0 bytes 0 return # handle 554 (verdict return)
trace id 68d14213 ip nat POSTROUTING policy accept meta mark 0xbe7e0001
trace id 68d14213 inet berth_explain post packet: iif "bxi428610" oif "bb-35b098270505" ip saddr 198.18.0.2 ip daddr 10.80.0.2 ip ttl 63 ip id 9841 ip protocol tcp ip length 40 tcp sport 40000 tcp dport 80 tcp flags == syn tcp window 64240
trace id 68d14213 inet berth_explain post unknown rule handle 5 (verdict drop)
`;

const DESIRED = {
  networks: [{ id: 'n1', name: 'front', bridge: 'bb-35b098270505', subnet4: '10.80.0.0/24', gateway4: '10.80.0.1', internal: false, icc: true, masquerade: true }],
  endpoints: [{ sandbox: 's1', network: 'n1', hostIf: 'bv0001', mac: '02:00:00:00:00:02', v4: '10.80.0.2' }],
  publishes: [], links: [], uplinks: [],
} as unknown as DesiredDatapath;

const fromOutside: TraceContext = { desired: DESIRED, from: 'outside', query: { src: '198.18.0.2', dst: '198.18.0.1', sport: 40000, dport: 8080, proto: 'tcp' } };

describe('the kernel\'s trace of an explain packet', () => {
  it('parses packets, rules (known or not) and policies', () => {
    const lines = parseTrace(PUBLISHED);
    expect(lines).toHaveLength(12);
    expect(lines[0]).toMatchObject({ kind: 'packet', family: 'inet', table: 'berth_explain', chain: 'start', packet: { iif: 'bxi428610', src: '198.18.0.2', dst: '198.18.0.1', sport: 40000, dport: 8080 } });
    expect(lines[1]).toMatchObject({ kind: 'verdict', type: 'rule', handle: 4, verdict: 'continue' });
    expect(lines[3]).toMatchObject({ family: 'ip', table: 'nat', chain: 'PREROUTING', type: 'rule', handle: 7, verdict: 'jump', target: 'BERTH-DNAT' });
    expect(lines[9]).toMatchObject({ type: 'policy', verdict: 'accept' });
    expect(lines[11]).toMatchObject({ chain: 'post', handle: 5, verdict: 'drop' });
    expect(traceDone(lines)).toBe(true);
    expect(traceDone(lines.slice(0, 10))).toBe(false);
  });

  it('reaching berth_explain\'s stop is a pass: where it went, what translated it, which rule of berth\'s let it', () => {
    const lines = parseTrace(PUBLISHED);
    lines.find((l) => l.chain === 'BERTH-PUBLISH')!.spec = '-d 10.80.0.2/32 -o bb-35b098270505 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT --ctorigdstport 8080 -j ACCEPT';
    const r = readTrace(lines, fromOutside)!;
    expect(r).toMatchObject({ verdict: 'pass', delivered: 'sandbox', via: 'bv0001', rule: 'publish', translated: { src: '198.18.0.2', sport: 40000, dst: '10.80.0.2', dport: 80 } });
    expect(r.ruleText).toContain('iptables -t filter -A BERTH-PUBLISH -d 10.80.0.2/32');
    // Every rule met is in the trace, berth_explain's own excluded; a rule whose spec is unknown shows as nft printed it.
    expect(r.trace).toHaveLength(7);
    expect(r.trace.some((l) => l.includes('berth_explain'))).toBe(false);
    expect(r.trace[1]).toBe('iptables -t nat chain BERTH-DNAT: tcp dport 8080 counter packets 0 bytes 0 dnat to 10.80.0.2:80 (accept)');
    expect(readTrace(lines.slice(0, 10), fromOutside)).toBeUndefined();
  });

  it('a drop by berth\'s rule carries the reason the eBPF datapath gives; anybody else\'s rule is a policy drop', () => {
    const icc = parseTrace([
      'trace id 1 bridge berth_explain start packet: iif "bv0001" ip saddr 10.80.0.3 ip daddr 10.80.0.2 tcp sport 40000 tcp dport 5432',
      'trace id 1 ip filter BERTH-ICC rule iifname "bb-35b098270505" oifname "bb-35b098270505" counter packets 0 bytes 0 drop # handle 90 (verdict drop)',
    ].join('\n'));
    icc[1]!.spec = '-i bb-35b098270505 -o bb-35b098270505 -j DROP';
    const ctx: TraceContext = { desired: DESIRED, from: 'sandbox', query: { src: '10.80.0.3', dst: '10.80.0.2', sport: 40000, dport: 5432, proto: 'tcp' } };
    expect(readTrace(icc, ctx)).toMatchObject({ verdict: 'drop', delivered: 'dropped', reason: 'icc', ruleText: 'iptables -t filter -A BERTH-ICC -i bb-35b098270505 -o bb-35b098270505 -j DROP' });
    const mac = parseTrace('trace id 1 bridge nat BERTH-ANTISPOOF rule iifname "bv0001" ether saddr != 02:00:00:00:00:03 counter packets 0 bytes 0 drop # handle 3 (verdict drop)');
    expect(readTrace(mac, ctx)).toMatchObject({ verdict: 'drop', reason: 'spoof-mac' });
    const theirs = parseTrace('trace id 1 ip filter FORWARD policy drop');
    expect(readTrace(theirs, ctx)).toMatchObject({ verdict: 'drop', reason: 'policy', rule: 'policy' });
    expect(readTrace(theirs, ctx)!.reasonText).toContain('not berth\'s');
  });

  it('follows the first packet from its start, across the new trace ids the kernel gives a copied packet, and nobody else\'s', () => {
    const lines = parseTrace([
      'trace id 2 ip raw PREROUTING packet: iif "x" ip saddr 1.1.1.1 ip daddr 2.2.2.2 ip id 77',
      'trace id 2 ip raw PREROUTING policy accept',
      'trace id a inet berth_explain start packet: iif "x" ip saddr 1.1.1.1 ip daddr 2.2.2.2 ip id 4660',
      'trace id a inet berth_explain start rule meta nftrace set 1 # handle 2 (verdict continue)',
      'trace id 3 ip filter FORWARD packet: iif "y" ip saddr 9.9.9.9 ip daddr 8.8.8.8 ip id 99',
      'trace id b ip filter FORWARD packet: iif "x" oif "br" ip saddr 1.1.1.1 ip daddr 10.0.0.2 ip id 4660',
      'trace id 3 ip filter FORWARD policy drop',
      'trace id b ip filter FORWARD policy accept',
      'trace id c inet berth_explain start packet: iif "x" ip saddr 1.1.1.1 ip daddr 2.2.2.2 ip id 4660',
      'trace id c inet berth_explain start rule meta nftrace set 1 # handle 2 (verdict continue)',
    ].join('\n'));
    expect(onePacket(lines, 0x1234).map((l) => l.id)).toEqual(['a', 'a', 'b', 'b']);
    expect(traceDone(onePacket(lines, 0x1234))).toBe(false);
    expect(onePacket(lines.slice(0, 2), 0x1234)).toEqual([]);
    const v6 = parseTrace('trace id d inet berth_explain start packet: iif "x" ip6 saddr fd00::1 ip6 daddr fd00::2 ip6 flowlabel 74565');
    expect(onePacket(v6, 0x12345)).toHaveLength(1);
    expect(onePacket(v6, 0x1234)).toHaveLength(0);
  });

  it('traces from where the packet starts, matched on its tuple, its IPv4 identification or IPv6 flow label and an unusual TTL, and stops it at the end without a mark', () => {
    const sb = traceScript({ from: 'sandbox', hostIf: 'bv0001', src: '10.80.0.3', dst: '10.80.0.2', proto: 'tcp', sport: 40000, dport: 5432 }, 0x1234, 'bv0001');
    expect(sb).toContain('table bridge berth_explain {\n  chain start { type filter hook prerouting priority -350; iifname "bv0001" ip saddr 10.80.0.3 ip daddr 10.80.0.2 ip id 4660 ip ttl 251 tcp sport 40000 tcp dport 5432 meta nftrace set 1; }');
    expect(sb).toContain('chain post { type filter hook postrouting priority 500; ip id 4660 ip ttl { 250, 251 } meta l4proto tcp drop; }');
    expect(sb).toContain('chain in { type filter hook input priority 500; ip id 4660 ip ttl { 250, 251 } meta l4proto tcp drop; }');
    expect(sb).not.toContain('mark');
    const host = traceScript({ from: 'host', src: 'fd00::1', dst: 'fd00::2', proto: 'icmp', sport: 0x4242, dport: 0 }, 0x1234);
    expect(host).toContain('type filter hook output priority -350; ip6 saddr fd00::1 ip6 daddr fd00::2 ip6 flowlabel 4660 ip6 hoplimit 251 icmpv6 type echo-request icmpv6 id 16962 meta nftrace set 1;');
    expect(host).toContain('ip6 flowlabel 4660 ip6 hoplimit { 250, 251 } meta l4proto ipv6-icmp drop');
    expect(host).not.toContain('table bridge berth_explain {');
    const out = traceScript({ from: 'outside', src: '198.18.0.2', dst: '198.18.0.1', proto: 'sctp', sport: 1, dport: 2 }, 7, 'berthxi000001');
    expect(out).toContain('hook prerouting priority -350; iifname "berthxi000001" ip saddr 198.18.0.2 ip daddr 198.18.0.1 ip id 7 ip ttl 251 sctp sport 1 sctp dport 2 ');
  });
});
