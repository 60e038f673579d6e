import { describe, expect, it } from 'vitest';
import { exposure } from './exposure.js';
import type { DpNetwork } from '../datapath/datapath.js';
import { resolveDatapath } from '../datapath/desired.js';

const net = (id: string, o: Partial<DpNetwork> = {}): DpNetwork => ({ id, name: `net-${id}`, bridge: `bb-${id}`, internal: false, icc: true, masquerade: true, ...o });
const ep = (sandbox: string, network: string) => ({ sandbox, network, mac: '', v4: '10.0.0.1' });

const d = resolveDatapath({
  networks: [net('a'), net('b', { icc: false }), net('i', { internal: true })],
  endpoints: [ep('web', 'a'), ep('api', 'a'), ep('api', 'b'), ep('db', 'b'), ep('cache', 'b'), ep('job', 'i')],
  publishes: [
    { sandbox: 'web', network: 'a', hostIp: '', hostPort: 8080, count: 1, containerV4: '10.0.0.1', containerPort: 80, proto: 'tcp', allow: ['203.0.113.0/24'] },
    { sandbox: 'web', network: 'a', hostIp: '127.0.0.1', hostPort: 9000, count: 3, containerV4: '10.0.0.1', containerPort: 9000, proto: 'udp', allow: [] },
    { sandbox: 'job', network: 'i', hostIp: '', hostPort: 7000, count: 1, containerV4: '10.0.0.1', containerPort: 7000, proto: 'tcp', allow: [] },
  ],
  links: [{ network: 'b', client: 'api', target: 'db', port: 5432, proto: 'tcp' }],
});

describe('exposure', () => {
  it('lists published ports with bind address, protocol and allow-list, not those of internal networks', () => {
    expect(exposure(d).published).toEqual([
      { sandbox: 'web', network: 'net-a', bind: '*', hostPorts: '8080', containerPorts: '80', proto: 'tcp', allow: ['203.0.113.0/24'], limits: [{ by: 'publish --publish-allow', allow: ['203.0.113.0/24'] }] },
      { sandbox: 'web', network: 'net-a', bind: '127.0.0.1', hostPorts: '9000-9002', containerPorts: '9000-9002', proto: 'udp', allow: ['any'], limits: [] },
    ]);
  });

  it('with a publish policy: the sources both it and the publish\'s list admit, and where each limit comes from', () => {
    const p = resolveDatapath({
      networks: [net('a')],
      endpoints: [ep('web', 'a')],
      publishes: [
        { sandbox: 'web', network: 'a', hostIp: '', hostPort: 80, count: 1, containerV4: '10.0.0.1', containerPort: 80, proto: 'tcp', allow: [] },
        { sandbox: 'web', network: 'a', hostIp: '', hostPort: 81, count: 1, containerV4: '10.0.0.1', containerPort: 81, proto: 'tcp', allow: ['192.0.2.0/28'] },
        { sandbox: 'web', network: 'a', hostIp: '', hostPort: 82, count: 1, containerV4: '10.0.0.1', containerPort: 82, proto: 'tcp', allow: ['198.51.100.0/24'] },
      ],
      links: [],
      policies: { a: { allow: ['192.0.2.0/24'], from: 'berthd --publish-allow and network net-a -o publish.allow' } },
    });
    const by = 'berthd --publish-allow and network net-a -o publish.allow';
    expect(exposure(p).published.map((e) => [e.hostPorts, e.allow, e.limits])).toEqual([
      ['80', ['127.0.0.0/8', '192.0.2.0/24'], [{ by, allow: ['192.0.2.0/24'] }]],
      ['81', ['192.0.2.0/28'], [{ by, allow: ['192.0.2.0/24'] }, { by: 'publish --publish-allow', allow: ['192.0.2.0/28'] }]],
      ['82', [], [{ by, allow: ['192.0.2.0/24'] }, { by: 'publish --publish-allow', allow: ['198.51.100.0/24'] }]],
    ]);
  });

  it('says who reaches whom: everyone on an icc network, only links on an icc=false one, one way', () => {
    expect(exposure(d).reachability).toEqual([
      { from: 'api', to: 'web', network: 'net-a', ports: ['any'] },
      { from: 'web', to: 'api', network: 'net-a', ports: ['any'] },
      { from: 'api', to: 'db', network: 'net-b', ports: ['5432/tcp'] },
    ]);
  });
});
