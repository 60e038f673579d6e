import { describe, expect, it } from 'vitest';
import type { State } from '../store/model.js';
import type { EndpointEntry } from './cluster.js';
import { overlayPolicy } from './overlay-policy.js';

const net = (id: string, vni: number, options: Record<string, string>, internal = false) =>
  ({ id, name: id, driver: 'overlay', internal, ipv6: false, options, pools: [], isDefault: false, scope: 'global', vxlan: { vni, port: 4789 }, created: '' });
const sb = (id: string, network: string, v4: string, links: string[] = [], expose: { port: number; proto: string }[] = []) =>
  ({ id, name: id, links: links.map((t) => ({ target: t, alias: t })), expose, endpoints: [{ id: `ep-${id}`, network, mac: '02:00:00:00:00:01', v4, aliases: [] }] });
const remote = (host: string, sandbox: string, v4: string, links?: string[], expose?: { port: number; proto: string }[]): EndpointEntry =>
  ({ host, underlay: '198.19.0.12', sandbox, name: sandbox, hostname: sandbox, mac: '02:00:00:00:00:02', v4, aliases: [], ...(links ? { links } : {}), ...(expose ? { expose } : {}) });

describe('the overlay policy of a host', () => {
  const state = {
    networks: { pol: net('pol', 7007, { icc: 'false' }), int: net('int', 7008, {}, true), open: net('open', 7010, {}) },
    sandboxes: {
      linker: sb('linker', 'pol', '10.0.7.2', ['web', 'local2']),
      local2: sb('local2', 'pol', '10.0.7.4', [], [{ port: 80, proto: 'tcp' }]),
      target: sb('target', 'pol', '10.0.7.5', [], [{ port: 90, proto: 'tcp' }, { port: 9, proto: 'sctp' }]),
      o: sb('o', 'open', '10.0.10.2', ['oweb']),
    },
  } as unknown as State;
  const eps = [
    { network: 'pol', e: remote('h2', 'web', '10.0.7.3', undefined, [{ port: 80, proto: 'tcp' }, { port: 53, proto: 'udp' }]) },
    { network: 'pol', e: remote('h2', 'back', '10.0.7.6', ['target']) },
    { network: 'pol', e: remote('h2', 'far', '10.0.7.7', ['web'], []) },
    { network: 'open', e: remote('h2', 'oweb', '10.0.10.3', undefined, [{ port: 80, proto: 'tcp' }]) },
    // This host's own entry in the store: ignored (the state is the authority for it).
    { network: 'pol', e: remote('h1', 'linker', '10.0.7.2', ['web']) },
  ];
  const p = overlayPolicy(state, 'h1', eps);

  it('flags the networks that check their frames', () => {
    expect(p.nets.get(7007)).toEqual({ icc: false, internal: false });
    expect(p.nets.get(7008)).toEqual({ icc: true, internal: true });
    expect(p.nets.get(7010)).toEqual({ icc: true, internal: false });
  });

  it('makes a link per exposed TCP/UDP port for pairs with one end here, both ways', () => {
    expect(p.links).toEqual(expect.arrayContaining([
      { vni: 7007, client: '10.0.7.2', target: '10.0.7.3', port: 80, proto: 'tcp' },
      { vni: 7007, client: '10.0.7.2', target: '10.0.7.3', port: 53, proto: 'udp' },
      { vni: 7007, client: '10.0.7.6', target: '10.0.7.5', port: 90, proto: 'tcp' },
    ]));
    // local to local never tunnels, remote to remote never passes here, SCTP links do not cross hosts (a known limit), icc networks need none.
    expect(p.links).toHaveLength(3);
  });
});
