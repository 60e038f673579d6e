import { describe, expect, it } from 'vitest';
import { formatEgressRule, parseEgressList, parseEgressRule } from './egress.js';

describe('--egress-allow rules', () => {
  it.each([
    ['198.51.100.0/24', { cidr: '198.51.100.0/24' }],
    ['198.51.100.7', { cidr: '198.51.100.7/32' }],
    ['198.51.100.7:443', { cidr: '198.51.100.7/32', port: 443, proto: 'tcp' }],
    ['198.51.100.0/24:53/UDP', { cidr: '198.51.100.0/24', port: 53, proto: 'udp' }],
    ['2001:db8::/32', { cidr: '2001:db8::/32' }],
    ['2001:db8::1', { cidr: '2001:db8::1/128' }],
    ['[2001:db8::/32]', { cidr: '2001:db8::/32' }],
    ['[2001:db8::/32]:53/udp', { cidr: '2001:db8::/32', port: 53, proto: 'udp' }],
    ['[2001:0db8::0001]:443', { cidr: '2001:db8::1/128', port: 443, proto: 'tcp' }],
  ])('%s', (spec, want) => {
    expect(parseEgressRule(spec)).toEqual(want);
  });

  it.each([
    ['nonsense', /invalid --egress-allow 'nonsense'/],
    ['198.51.100.1/24', /'198\.51\.100\.1\/24'.*host bits.*198\.51\.100\.0\/24/],
    ['198.51.100.0/33', /invalid --egress-allow '198\.51\.100\.0\/33'/],
    ['198.51.100.7:0', /port 0 is not from 1 to 65535/],
    ['198.51.100.7:70000/tcp', /port 70000 is not from 1 to 65535/],
    ['198.51.100.7:53/icmp', /protocol 'icmp' is not tcp, udp or sctp/],
    ['198.51.100.7:', /no port after the colon/],
    ['198.51.100.7:http', /'http' is not PORT or PORT\/PROTO/],
    ['2001:db8::1:53/udp', /IPv6 destination with a port is written \[PREFIX\]:PORT\/PROTO/],
    ['[2001:db8::/32', /no closing '\]'/],
    ['[198.51.100.0/24]:80', /brackets are for IPv6/],
    ['[2001:db8::/32]53', /unexpected '53' after '\]'/],
  ])('refuses %s, naming it', (spec, msg) => {
    expect(() => parseEgressRule(spec)).toThrow(msg);
  });

  it('a list: none alone is empty, nothing is undefined, duplicates are dropped', () => {
    expect(parseEgressList([])).toBeUndefined();
    expect(parseEgressList(['none'])).toEqual([]);
    expect(() => parseEgressList(['none', '198.51.100.0/24'])).toThrow(/none cannot be combined.*198\.51\.100\.0\/24/);
    expect(parseEgressList(['198.51.100.7', '198.51.100.7/32'])).toEqual([{ cidr: '198.51.100.7/32' }]);
    expect(() => parseEgressList(Array.from({ length: 257 }, (_, i) => `10.0.${i >> 8}.${i & 255}`))).toThrow(/257 --egress-allow rules given: at most 256/);
  });

  it('formats back to its own syntax', () => {
    for (const s of ['198.51.100.0/24', '198.51.100.7/32:443/tcp', '[2001:db8::/32]:53/udp', '2001:db8::/32']) {
      expect(formatEgressRule(parseEgressRule(s))).toBe(s);
    }
  });
});
