import { describe, expect, it } from 'vitest';
import { byRef, hostsEntries, linkEnv, resolveName, reverseName, sandboxByAddress } from './names.js';
import type { NetworkRecord, SandboxRecord, State } from '../store/model.js';

const net = (id: string, name: string, isDefault = false): NetworkRecord => ({
  id, name, driver: 'bridge', internal: false, ipv6: false, options: {}, pools: [], isDefault, created: '',
});
const sb = (id: string, name: string, eps: [string, string, string[]?][], extra: Partial<SandboxRecord> = {}): SandboxRecord => ({
  id, name, created: '', mode: 'networks', netnsPath: '', hostname: name + '-host', dns: [], dnsSearch: [], addHosts: [], env: [], links: [],
  expose: [], publish: [], publishAll: false, publishAllow: [], cmd: [],
  endpoints: eps.map(([network, v4, aliases], i) => ({ id: `${id}-${i}`, network, ifname: `eth${i}`, mac: '', v4, aliases: aliases ?? [] })),
  ...extra,
});

const state: State = {
  version: 1, instance: 'abc',
  networks: { n1: net('n1', 'front'), n2: net('n2', 'back'), d: net('d', 'bridge', true) },
  sandboxes: {
    aaaa1111: sb('aaaa1111', 'web', [['n1', '10.0.0.2', ['www']]]),
    bbbb2222: sb('bbbb2222', 'api', [['n1', '10.0.0.3'], ['n2', '10.1.0.3']]),
    cccc3333: sb('cccc3333', 'db', [['n2', '10.1.0.4']], { expose: [{ port: 5432, proto: 'tcp' }], env: ['PGUSER=app'] }),
    dddd4444: sb('dddd4444', 'legacy', [['d', '172.17.0.2']]),
    eeee5555: sb('eeee5555', 'old', [['d', '172.17.0.3']], { links: [{ target: 'dddd4444', alias: 'leg' }] }),
  },
};
const S = (n: string) => Object.values(state.sandboxes).find((s) => s.name === n)!;

describe('who resolves whom', () => {
  it('a sandbox resolves names, aliases and short ids on networks it shares', () => {
    expect(resolveName(state, S('web'), 'api', 4)).toEqual(['10.0.0.3']);
    expect(resolveName(state, S('api'), 'WWW', 4)).toEqual(['10.0.0.2']);
    expect(resolveName(state, S('api'), 'cccc3333', 4)).toEqual(['10.1.0.4']);
  });

  it('not across networks it does not share', () => {
    expect(resolveName(state, S('web'), 'db', 4)).toBeNull();
    expect(resolveName(state, S('db'), 'web', 4)).toBeNull();
  });

  it('answers the address on the shared network, and no records of an absent family', () => {
    expect(resolveName(state, S('db'), 'api', 4)).toEqual(['10.1.0.3']);
    expect(resolveName(state, S('db'), 'api', 6)).toEqual([]);
  });

  it('the default bridge resolves nothing by DNS', () => {
    expect(resolveName(state, S('old'), 'legacy', 4)).toBeNull();
    expect(resolveName(state, S('old'), 'leg', 4)).toBeNull();
  });

  it('reverse lookups name the sandbox and network', () => {
    expect(reverseName(state, S('web'), '10.0.0.3')).toEqual(['api.front']);
    expect(reverseName(state, S('web'), '10.1.0.4')).toBeNull();
  });

  it('finds the querying sandbox by its address', () => {
    expect(sandboxByAddress(state, '10.1.0.3')?.name).toBe('api');
    expect(sandboxByAddress(state, '10.9.9.9')).toBeUndefined();
  });
});

describe('links', () => {
  it('put the alias into /etc/hosts', () => {
    expect(hostsEntries(state, S('old'))).toEqual([
      { ip: '172.17.0.3', names: ['old-host'] },
      { ip: '172.17.0.2', names: ['leg', 'legacy-host', 'legacy'] },
    ]);
  });

  it('give Docker\'s environment variables', () => {
    const s: State = structuredClone(state);
    s.sandboxes.eeee5555!.links = [{ target: 'cccc3333', alias: 'my-db' }];
    s.sandboxes.eeee5555!.endpoints.push({ id: 'x', network: 'n2', ifname: 'eth1', mac: '', v4: '10.1.0.9', aliases: [] });
    expect(linkEnv(s, s.sandboxes.eeee5555!)).toEqual({
      MY_DB_NAME: '/old/my-db',
      MY_DB_PORT: 'tcp://10.1.0.4:5432',
      MY_DB_PORT_5432_TCP: 'tcp://10.1.0.4:5432',
      MY_DB_PORT_5432_TCP_ADDR: '10.1.0.4',
      MY_DB_PORT_5432_TCP_PORT: '5432',
      MY_DB_PORT_5432_TCP_PROTO: 'tcp',
      MY_DB_ENV_PGUSER: 'app',
    });
  });
});

describe('references to sandboxes and networks', () => {
  const all = [{ id: 'd2aa11', name: 'f1' }, { id: 'c0ffee', name: 'd2' }, { id: 'c0f00d', name: 'x' }];
  it('a name wins over an id prefix that looks the same', () => {
    expect(byRef(all, 'd2')?.name).toBe('d2');
  });
  it('a full id, or an id prefix of 3 or more that names one', () => {
    expect(byRef(all, 'd2aa11')?.name).toBe('f1');
    expect(byRef(all, 'd2a')?.name).toBe('f1');
    expect(byRef(all, 'c0f')).toBeUndefined();
    expect(byRef(all, 'c0ff')?.name).toBe('d2');
  });
});
