import { describe, expect, it } from 'vitest';
import { expectationOf, renderResult } from './result.js';
import { CniError } from './spec.js';
import type { AttachmentView } from '../controller/attachments.js';

const view: AttachmentView = {
  sandbox: 'cni-abc-eth0', network: 'web', netns: '/run/netns/x', ifname: 'eth0', mac: '02:b7:0a:5e:00:02', hostIf: 'bv0123456789ab', mtu: 1500,
  ips: [{ family: 4, address: '10.94.0.2/24', gateway: '10.94.0.1' }, { family: 6, address: 'fd00:94::2/64', gateway: 'fd00:94::1' }],
  routes: [{ dst: '0.0.0.0/0', gw: '10.94.0.1' }, { dst: '::/0', gw: 'fd00:94::1' }], nameservers: ['10.94.0.1'], publish: [],
};

describe('renderResult', () => {
  it('0.4.0 names each address\'s version; 1.0.0 does not; 1.1.0 adds the interfaces\' MTU', () => {
    const r04 = renderResult('0.4.0', view, {});
    expect(r04.ips.map((i) => i.version)).toEqual(['4', '6']);
    expect(r04.interfaces.every((i) => !('mtu' in i))).toBe(true);
    const r10 = renderResult('1.0.0', view, {});
    expect(r10.ips.every((i) => !('version' in i))).toBe(true);
    const r11 = renderResult('1.1.0', view, { searches: ['a.test'], options: ['ndots:1'] });
    expect(r11.interfaces).toEqual([
      { name: 'bv0123456789ab', mtu: 1500 },
      { name: 'eth0', mac: '02:b7:0a:5e:00:02', mtu: 1500, sandbox: '/run/netns/x' },
    ]);
    expect(r11.dns).toEqual({ nameservers: ['10.94.0.1'], search: ['a.test'], options: ['ndots:1'] });
  });

  it('chained after a prevResult: keeps its interfaces, addresses and routes, and points its own addresses at its own interface', () => {
    const prev = { cniVersion: '1.0.0', interfaces: [{ name: 'tap0' }], ips: [{ address: '192.0.2.5/24', interface: 0 }], routes: [{ dst: '192.0.2.0/24' }], dns: { nameservers: ['192.0.2.53'] } };
    const r = renderResult('1.0.0', view, {}, prev);
    expect(r.interfaces.map((i) => i.name)).toEqual(['tap0', 'bv0123456789ab', 'eth0']);
    expect(r.ips.map((i) => i.interface)).toEqual([0, 2, 2]);
    expect(r.routes).toHaveLength(3);
    expect(r.dns.nameservers).toEqual(['192.0.2.53', '10.94.0.1']);
  });
});

describe('expectationOf', () => {
  it('takes the addresses and MAC of the interface in the namespace from prevResult', () => {
    const prev = renderResult('1.1.0', view, {});
    expect(expectationOf(prev as never, 'eth0', '/run/netns/x')).toEqual({ addresses: ['10.94.0.2/24', 'fd00:94::2/64'], mac: '02:b7:0a:5e:00:02' });
  });

  it('refuses a prevResult without that interface, naming what it has', () => {
    const prev = renderResult('1.1.0', view, {});
    expect(() => expectationOf(prev as never, 'net1', '/run/netns/x')).toThrow(CniError);
    expect(() => expectationOf(prev as never, 'net1', '/run/netns/x')).toThrow(/no interface 'net1' in '\/run\/netns\/x' \(interfaces: bv0123456789ab, eth0\)/);
  });
});
