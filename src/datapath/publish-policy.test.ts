import { describe, expect, it } from 'vitest';
import { intersectPrefixes, networkPolicy, parsePublishAllow, policySource } from './publish-policy.js';

describe('the publish policy', () => {
  it('parses a list, normalised and without repeats', () => {
    expect(parsePublishAllow('192.168.1.7/16, 2001:db8::/32,192.168.0.0/16', 'x')).toEqual(['192.168.0.0/16', '2001:db8::/32']);
  });

  it.each([
    ['10.0.0.0/8,10.1.0/16', "--publish-allow: '10.1.0/16' is not an address/prefix"],
    ['10.0.0.0/33', "--publish-allow: '10.0.0.0/33' is not an address/prefix"],
    ['10.0.0.1', "--publish-allow: '10.0.0.1' is not an address/prefix"],
    ['', "--publish-allow: '' is not a list of source prefixes"],
    ['10.0.0.0/8,,', "--publish-allow: '10.0.0.0/8,,' is not a list of source prefixes"],
  ])('refuses %j naming the bad value', (text, message) => {
    expect(() => parsePublishAllow(text, '--publish-allow')).toThrow(message);
  });

  it('intersects prefix lists: the narrower of nested prefixes, nothing of disjoint ones or other families', () => {
    expect(intersectPrefixes(['10.0.0.0/8', '2001:db8::/32'], ['10.1.0.0/16', '192.0.2.0/24', '2001:db8:1::/48'])).toEqual(['10.1.0.0/16', '2001:db8:1::/48']);
    expect(intersectPrefixes(['10.1.0.0/16'], ['10.0.0.0/8', '10.1.2.0/24'])).toEqual(['10.1.0.0/16']);
    expect(intersectPrefixes(['10.0.0.0/8'], ['192.0.2.0/24', '2001:db8::/32'])).toEqual([]);
  });

  it('a network\'s policy: host and network lists combined, either alone, or none', () => {
    expect(networkPolicy(['10.0.0.0/8'], ['10.5.0.0/16', '192.0.2.0/24'])).toEqual(['10.5.0.0/16']);
    expect(networkPolicy(undefined, ['192.0.2.0/24'])).toEqual(['192.0.2.0/24']);
    expect(networkPolicy(['10.0.0.0/8'], undefined)).toEqual(['10.0.0.0/8']);
    expect(networkPolicy(undefined, undefined)).toBeUndefined();
    expect(policySource(true, 'web')).toBe('berthd --publish-allow and network web -o publish.allow');
  });
});

describe('-o publish.allow', () => {
  it('is a bridge and overlay option, normalised, refused naming the bad prefix', async () => {
    const { validateOptions } = await import('../controller/options.js');
    expect(validateOptions('bridge', { 'publish.allow': '192.0.2.9/24' })).toEqual({ 'publish.allow': '192.0.2.0/24' });
    expect(validateOptions('overlay', { 'publish.allow': '2001:db8::/32' })).toEqual({ 'publish.allow': '2001:db8::/32' });
    expect(() => validateOptions('bridge', { 'publish.allow': '192.0.2.0/24,lan' })).toThrow("option publish.allow: 'lan' is not an address/prefix");
    expect(() => validateOptions('macvlan', { 'publish.allow': '192.0.2.0/24' })).toThrow("unknown option 'publish.allow' for the macvlan driver");
  });
});
