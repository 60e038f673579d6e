import { describe, expect, it } from 'vitest';
import type { NetworkRecord, SandboxRecord, State } from '../store/model.js';
import type { Cluster } from './cluster.js';
import { remoteLinks, remoteMember, type RoutedMember } from './routed-links.js';

const net = (icc: boolean): NetworkRecord => ({
  id: 'n1', name: 'rlink', driver: 'routed', scope: 'global', internal: false, ipv6: false, options: icc ? {} : { icc: 'false' },
  pools: [{ family: 4, subnet: '10.96.0.0/26', gateway: '10.96.0.1', aux: {}, allocated: [] }], isDefault: false, created: '',
  bridge: 'bb-n1', routed: { subnet: '10.96.0.0/24', block: '10.96.0.0/26' },
});
const sb = (id: string, v4: string, over: Partial<SandboxRecord> = {}) => ({
  id, name: id, created: '', mode: 'networks', netnsPath: '', hostname: id, dns: [], dnsSearch: [], addHosts: [], env: [], links: [], expose: [],
  publish: [], publishAll: false, publishAllow: [], cmd: [], endpoints: [{ id: `e-${id}`, network: 'n1', ifname: 'eth0', mac: '02:00:00:00:00:01', v4, aliases: [] }], ...over,
}) as SandboxRecord;
/** A cluster of which only the store's view and this host's id are read. */
const cluster = (entries: Record<string, RoutedMember>): Cluster => ({
  hostId: 'A',
  store: { list: (p: string) => new Map(Object.entries(entries).filter(([k]) => k.startsWith(p)).map(([k, v]) => [k.slice(p.length), v])) },
}) as unknown as Cluster;

describe('routed links across hosts', () => {
  const remote = { 'rmembers/n1/t': { host: 'B', sandbox: 't', name: 'lt', v4: '10.96.0.66', expose: ['7400/tcp', '7500/udp'], links: [] } };
  const state = (icc: boolean) => ({ networks: { n1: net(icc) }, sandboxes: { c: sb('c', '10.96.0.2', { links: [{ target: 't', alias: 'lt' }] }), u: sb('u', '10.96.0.3') } }) as unknown as State;
  it('a local linker to a target on another host: one link per exposed port', () => {
    expect(remoteLinks(cluster(remote), state(false))).toEqual([
      { network: 'n1', client: 'c', target: 'lt', port: 7400, proto: 'tcp', clientV4: '10.96.0.2', targetV4: '10.96.0.66' },
      { network: 'n1', client: 'c', target: 'lt', port: 7500, proto: 'udp', clientV4: '10.96.0.2', targetV4: '10.96.0.66' },
    ]);
  });
  it('a linker on another host to a local target; none on an icc network, none with both ends elsewhere', () => {
    const other = { 'rmembers/n1/x': { host: 'B', sandbox: 'x', name: 'lx', v4: '10.96.0.67', expose: [], links: ['u'] }, 'rmembers/n1/y': { host: 'C', sandbox: 'y', name: 'ly', v4: '10.96.0.130', expose: [], links: ['t'] } };
    const s = state(false);
    s.sandboxes.u!.expose = [{ port: 80, proto: 'tcp' }];
    expect(remoteLinks(cluster({ ...remote, ...other }), s).map((l) => `${l.clientV4}>${l.targetV4}:${l.port}`)).toEqual(['10.96.0.2>10.96.0.66:7400', '10.96.0.2>10.96.0.66:7500', '10.96.0.67>10.96.0.3:80']);
    expect(remoteLinks(cluster(remote), state(true))).toEqual([]);
  });
  it('finds a --link target of another host by name or id', () => {
    expect(remoteMember(cluster(remote), state(false), 'lt')).toEqual({ id: 't', name: 'lt' });
    expect(remoteMember(cluster(remote), state(false), 'nope')).toBeUndefined();
  });
});
