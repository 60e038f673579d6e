import { describe, expect, it } from 'vitest';
import { allocate, makePool, release } from './ipam.js';
import { bigToIp, ipToBig, overlaps, parsePrefix } from './addr.js';

describe('addresses', () => {
  it('round-trips IPv4 and IPv6 through bigints in canonical form', () => {
    expect(bigToIp(ipToBig('10.1.2.3'), 4)).toBe('10.1.2.3');
    expect(bigToIp(ipToBig('fd00:0:0:0::1'), 6)).toBe('fd00::1');
    expect(bigToIp(ipToBig('2001:db8:0:1:0:0:0:1'), 6)).toBe('2001:db8:0:1::1');
  });

  it('refuses prefixes with host bits or bad lengths, naming them', () => {
    expect(() => parsePrefix('10.0.0.1/24')).toThrow(/invalid subnet '10\.0\.0\.1\/24': host bits are set \(did you mean 10\.0\.0\.0\/24\?\)/);
    expect(() => parsePrefix('10.0.0.0/33')).toThrow(/invalid subnet '10\.0\.0\.0\/33'/);
    expect(() => parsePrefix('banana')).toThrow(/invalid subnet 'banana'/);
  });

  it('knows overlap', () => {
    expect(overlaps(parsePrefix('10.0.0.0/16'), parsePrefix('10.0.5.0/24'))).toBe(true);
    expect(overlaps(parsePrefix('10.0.0.0/16'), parsePrefix('10.1.0.0/16'))).toBe(false);
    expect(overlaps(parsePrefix('10.0.0.0/8'), parsePrefix('fd00::/8'))).toBe(false);
  });
});

describe('pools', () => {
  it('takes the first host as gateway and hands out the rest in order', () => {
    const p = makePool({ subnet: '172.20.0.0/24' });
    expect(p.gateway).toBe('172.20.0.1');
    expect([allocate(p), allocate(p), allocate(p)]).toEqual(['172.20.0.2', '172.20.0.3', '172.20.0.4']);
  });

  it('reuses a released address only after going round', () => {
    const p = makePool({ subnet: '10.9.0.0/29' }); // hosts .1-.6, gateway .1
    const got = [allocate(p), allocate(p)];
    release(p, got[0]!);
    expect(allocate(p)).toBe('10.9.0.4');
    expect(allocate(p)).toBe('10.9.0.5');
    expect(allocate(p)).toBe('10.9.0.6');
    expect(allocate(p)).toBe('10.9.0.2');
    expect(() => allocate(p)).toThrow(/no free address left in 10\.9\.0\.0\/29/);
  });

  it('draws from the ip-range and skips aux addresses', () => {
    const p = makePool({ subnet: '10.10.0.0/16', ipRange: '10.10.5.0/24', aux: { router: '10.10.5.0' } });
    expect(allocate(p)).toBe('10.10.5.1');
  });

  it('takes explicit addresses anywhere in the subnet, once', () => {
    const p = makePool({ subnet: '10.10.0.0/16', ipRange: '10.10.5.0/24' });
    expect(allocate(p, '10.10.9.9')).toBe('10.10.9.9');
    expect(() => allocate(p, '10.10.9.9')).toThrow(/address 10\.10\.9\.9 is already in use/);
    expect(() => allocate(p, '10.10.0.1')).toThrow(/already in use/); // the gateway
    expect(() => allocate(p, '10.11.0.1')).toThrow(/address 10\.11\.0\.1 is outside the pool 10\.10\.0\.0\/16/);
    expect(() => allocate(p, '10.10.255.255')).toThrow(/outside the pool/); // broadcast
  });

  it('refuses gateways, ranges and aux addresses outside the subnet', () => {
    expect(() => makePool({ subnet: '10.0.0.0/24', gateway: '10.0.1.1' })).toThrow(/gateway 10\.0\.1\.1 is not a usable address of subnet 10\.0\.0\.0\/24/);
    expect(() => makePool({ subnet: '10.0.0.0/24', ipRange: '10.0.0.0/16' })).toThrow(/ip-range 10\.0\.0\.0\/16 is not inside subnet/);
    expect(() => makePool({ subnet: '10.0.0.0/24', aux: { x: '10.0.2.2' } })).toThrow(/aux-address x=10\.0\.2\.2 is not in subnet/);
  });

  it('handles IPv6 pools', () => {
    const p = makePool({ subnet: 'fd00:1::/64' });
    expect(p.gateway).toBe('fd00:1::1');
    expect(allocate(p)).toBe('fd00:1::2');
  });
});
