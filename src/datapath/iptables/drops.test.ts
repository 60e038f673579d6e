import { describe, expect, it } from 'vitest';
import { addDrops, dropReason } from './drops.js';
import { render } from './render.js';
import { resolveDatapath } from '../desired.js';

describe('iptables drops by reason', () => {
  it('every DROP rule render() writes has a reason, named as the eBPF datapath names it', () => {
    const d = resolveDatapath({
      networks: [
        { id: 'a', name: 'a', bridge: 'br-a', subnet4: '10.1.0.0/24', gateway4: '10.1.0.1', internal: false, icc: false, masquerade: true },
        { id: 'i', name: 'i', bridge: 'br-i', subnet4: '10.2.0.0/24', gateway4: '10.2.0.1', subnet6: 'fd00:2::/64', gateway6: 'fd00:2::1', internal: true, icc: true, masquerade: false },
      ],
      endpoints: [
        { sandbox: 's', network: 'a', hostIf: 'bv-s', mac: '02:00:00:00:00:01', v4: '10.1.0.2', egress: [] },
        { sandbox: 't', network: 'i', hostIf: 'bv-t', mac: '02:00:00:00:00:02', v4: '10.2.0.2', v6: 'fd00:2::2' },
      ],
      publishes: [{ sandbox: 's', network: 'a', hostIp: '', hostPort: 80, count: 1, containerV4: '10.1.0.2', containerPort: 80, proto: 'tcp', allow: ['192.0.2.0/24'] }],
      links: [],
      policies: { a: { allow: ['192.0.2.0/25'], from: 'berthd --publish-allow' } },
    });
    const r = render(d);
    const seen = new Set<string>();
    for (const f of ['ip4', 'ip6', 'eb'] as const) {
      for (const chains of Object.values(r.rules[f])) {
        for (const [chain, specs] of Object.entries(chains)) {
          for (const spec of specs.filter((s) => s.endsWith('-j DROP'))) {
            const reason = dropReason(f, chain, spec);
            expect(reason, `${f} ${chain} ${spec}`).toBeDefined();
            seen.add(reason!);
          }
        }
      }
    }
    expect([...seen].sort()).toEqual(['allowlist', 'dhcp-server', 'direct', 'dns-outside', 'egress', 'family', 'icc', 'internal', 'isolation', 'loopback', 'publish-policy', 'redirect', 'router-adv', 'spoof-arp', 'spoof-ip', 'spoof-mac', 'spoof-nd']);
  });

  it('names the guards as iptables-save prints them', () => {
    const at = '-i br-a -p ipv6-icmp -m physdev --physdev-in bv-s -m icmp6';
    expect(dropReason('ip6', 'BERTH-PREROUTING', `${at} --icmpv6-type 134 -j DROP`)).toBe('router-adv');
    expect(dropReason('ip6', 'BERTH-PREROUTING', `${at} --icmpv6-type 137 -j DROP`)).toBe('redirect');
    expect(dropReason('ip6', 'BERTH-PREROUTING', `${at} --icmpv6-type 136 -m u32 ! --u32 "0x30=0xfe800000" -j DROP`)).toBe('spoof-nd');
    expect(dropReason('ip4', 'BERTH-PREROUTING', '-i br-a -p udp -m physdev --physdev-in bv-s -m udp --sport 67 --dport 68 -j DROP')).toBe('dhcp-server');
    expect(dropReason('ip4', 'BERTH-INPUT', '-d 10.1.0.1/32 ! -i br-a -p udp -m udp --dport 53 -j DROP')).toBe('dns-outside');
    expect(dropReason('ip4', 'BERTH-INPUT', '! -i lo -p udp -m udp --dport 53 -j DROP')).toBe('allowlist');
  });

  it('sums the counters of save -c output by reason; other rules and other chains are not drops', () => {
    const text = [
      '*filter',
      ':BERTH-ICC - [0:0]',
      '[3:180] -A BERTH-ICC -i br-a -o br-a -j DROP',
      '[1:60] -A BERTH-ICC -s 10.1.0.3/32 -d 10.1.0.2/32 -i br-a -o br-a -p tcp -m tcp --dport 5432 -j ACCEPT',
      '[2:120] -A BERTH-ISOLATION-STAGE-2 -o br-a -j DROP',
      '[4:240] -A BERTH-ISOLATION-STAGE-2 -o br-b -j DROP',
      '[9:900] -A FORWARD -i eth9 -j DROP',
      'COMMIT',
    ].join('\n');
    expect(addDrops({ icc: { packets: 1, bytes: 1 } }, 'ip4', text)).toEqual({ icc: { packets: 4, bytes: 181 }, isolation: { packets: 6, bytes: 360 } });
  });
});
