import { describe, expect, it } from 'vitest';
import {
  canonicalIPv6,
  formatHostPort,
  ipToReverseName,
  isEncodableName,
  normalizeName,
  parseUpstream,
  reverseNameToIp,
} from './names.js';

describe('normalizeName', () => {
  it('lowercases ASCII only and drops the trailing dot', () => {
    expect(normalizeName('Web.MyNet.')).toBe('web.mynet');
    expect(normalizeName('ÄB')).toBe('Äb');
    expect(normalizeName('.')).toBe('');
  });
});

describe('isEncodableName', () => {
  it('accepts names within DNS limits and refuses the others', () => {
    expect(isEncodableName('c1.mynet')).toBe(true);
    expect(isEncodableName('c1.mynet.')).toBe(true);
    expect(isEncodableName('a'.repeat(63))).toBe(true);
    expect(isEncodableName('a'.repeat(64))).toBe(false);
    expect(isEncodableName(`${'a'.repeat(60)}.`.repeat(5))).toBe(false);
    expect(isEncodableName('a..b')).toBe(false);
    expect(isEncodableName('')).toBe(false);
  });
});

describe('reverse names', () => {
  it('maps full in-addr.arpa names to IPv4', () => {
    expect(reverseNameToIp('2.0.18.172.in-addr.arpa')).toBe('172.18.0.2');
    expect(reverseNameToIp('255.0.0.10.in-addr.arpa')).toBe('10.0.0.255');
  });

  it('refuses partial zones and bad octets', () => {
    expect(reverseNameToIp('18.172.in-addr.arpa')).toBeNull();
    expect(reverseNameToIp('in-addr.arpa')).toBeNull();
    expect(reverseNameToIp('1.2.0.18.172.in-addr.arpa')).toBeNull();
    expect(reverseNameToIp('256.0.18.172.in-addr.arpa')).toBeNull();
    expect(reverseNameToIp('02.0.18.172.in-addr.arpa')).toBeNull();
    expect(reverseNameToIp('x.0.18.172.in-addr.arpa')).toBeNull();
    expect(reverseNameToIp('web.mynet')).toBeNull();
  });

  it('maps 32-nibble ip6.arpa names to canonical IPv6', () => {
    const name = ipToReverseName('2001:db8::2');
    expect(name).toBe('2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa');
    expect(reverseNameToIp(name)).toBe('2001:db8::2');
    expect(reverseNameToIp(ipToReverseName('fd00:0:0:1::a'))).toBe('fd00:0:0:1::a');
    expect(reverseNameToIp(ipToReverseName('::'))).toBe('::');
    expect(reverseNameToIp(ipToReverseName('1:2:3:4:5:6:7:8'))).toBe('1:2:3:4:5:6:7:8');
  });

  it('refuses partial or malformed ip6.arpa names', () => {
    expect(reverseNameToIp('8.b.d.0.1.0.0.2.ip6.arpa')).toBeNull();
    expect(reverseNameToIp(ipToReverseName('2001:db8::2').replace(/^2/, 'g'))).toBeNull();
    expect(reverseNameToIp(ipToReverseName('2001:db8::2').replace(/^2/, '22'))).toBeNull();
  });

  it('round-trips IPv4', () => {
    expect(ipToReverseName('172.18.0.2')).toBe('2.0.18.172.in-addr.arpa');
    expect(reverseNameToIp(ipToReverseName('192.0.2.200'))).toBe('192.0.2.200');
  });

  it('refuses a non-address, naming it', () => {
    expect(() => ipToReverseName('web')).toThrow(TypeError);
    expect(() => ipToReverseName('web')).toThrow(/'web' is not an IPv4 or IPv6 address/);
  });
});

describe('canonicalIPv6', () => {
  it('writes RFC 5952 text', () => {
    expect(canonicalIPv6('2001:0DB8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::1');
    expect(canonicalIPv6('2001:db8:0:1:0:0:0:1')).toBe('2001:db8:0:1::1');
    // The first of two equally long zero runs is the one shortened.
    expect(canonicalIPv6('2001:0:0:1:0:0:1:1')).toBe('2001::1:0:0:1:1');
    // A single zero group is not '::'.
    expect(canonicalIPv6('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1');
    expect(canonicalIPv6('::1')).toBe('::1');
    expect(canonicalIPv6('1::')).toBe('1::');
  });

  it('reads embedded IPv4 tails', () => {
    expect(canonicalIPv6('::ffff:192.0.2.1')).toBe('::ffff:c000:201');
    expect(canonicalIPv6('::192.0.2.1')).toBe('::c000:201');
    expect(canonicalIPv6('1:2:3:4:5:6:192.0.2.1')).toBe('1:2:3:4:5:6:c000:201');
  });
});

describe('parseUpstream', () => {
  it('reads addresses with and without ports', () => {
    expect(parseUpstream('192.0.2.53')).toEqual({ host: '192.0.2.53', port: 53, family: 4 });
    expect(parseUpstream('192.0.2.53:5353')).toEqual({ host: '192.0.2.53', port: 5353, family: 4 });
    expect(parseUpstream('2001:db8::1')).toEqual({ host: '2001:db8::1', port: 53, family: 6 });
    expect(parseUpstream('[2001:db8::1]')).toEqual({ host: '2001:db8::1', port: 53, family: 6 });
    expect(parseUpstream('[2001:db8::1]:5353')).toEqual({ host: '2001:db8::1', port: 5353, family: 6 });
  });

  it('refuses host names, bad ports and junk, naming the value', () => {
    expect(() => parseUpstream('dns.example')).toThrow(TypeError);
    expect(() => parseUpstream('dns.example')).toThrow(/upstream 'dns\.example' is not an IP address/);
    expect(() => parseUpstream('192.0.2.53:0')).toThrow(/port '0' outside 1\.\.65535/);
    expect(() => parseUpstream('192.0.2.53:65536')).toThrow(/port '65536'/);
    expect(() => parseUpstream('192.0.2.53:')).toThrow(/port ''/);
    expect(() => parseUpstream('[192.0.2.53]:53')).toThrow(/no IPv6 address in brackets/);
    expect(() => parseUpstream('[2001:db8::1]x')).toThrow(/'\[2001:db8::1\]x'/);
  });

  it('formats host:port, bracketing IPv6', () => {
    expect(formatHostPort('192.0.2.53', 53)).toBe('192.0.2.53:53');
    expect(formatHostPort('2001:db8::1', 53)).toBe('[2001:db8::1]:53');
  });
});
