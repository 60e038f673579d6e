import { describe, expect, it } from 'vitest';
import type { DesiredDatapath, DpPublish } from '../datapath.js';
import { outermost, renderSets } from './sets.js';
import { diffScript, fingerprint, fullScript } from './script.js';
import { chainRules } from './ruleset.js';
import { addDrops } from './drops.js';

const pub = (p: Partial<DpPublish>): DpPublish => ({
  sandbox: 'a', network: 'n1', family: 4, hostIp: '', loopback: false, hostPort: 8080, count: 1, target: '10.60.0.2',
  containerPort: 80, proto: 'tcp', restricted: false, allow: [], ...p,
});

const desired = (publishes: DpPublish[]): DesiredDatapath => ({
  networks: [
    { id: 'n1', name: 'front', bridge: 'bb-1', subnet4: '10.60.0.0/24', gateway4: '10.60.0.1', internal: false, icc: true, masquerade: true },
    { id: 'n2', name: 'quiet', bridge: 'bb-2', subnet4: '10.61.0.0/24', gateway4: '10.61.0.1', internal: false, icc: false, masquerade: true },
  ],
  endpoints: [{ sandbox: 'a', network: 'n1', hostIf: 'v1', mac: '02:00:00:00:00:01', v4: '10.60.0.2' }],
  publishes,
  links: [{ network: 'n2', client: 'c', target: 't', clientV4: '10.61.0.3', targetV4: '10.61.0.2', port: 5432, proto: 'tcp' }],
  sysctls: [],
});

describe('nftables sets', () => {
  it('a published port is one hash map element; a same-port range one interval; a shifted range one element a port', () => {
    const e = renderSets(desired([pub({}), pub({ hostPort: 9000, containerPort: 9000, count: 100 }), pub({ hostPort: 7000, containerPort: 70, count: 3, proto: 'udp' }), pub({ hostIp: '198.18.0.1', hostPort: 8090, containerPort: 90 })])).elements;
    expect([...e.pubany4!.values()]).toEqual(['tcp . 8080 : 10.60.0.2 . 80', 'udp . 7000 : 10.60.0.2 . 70', 'udp . 7001 : 10.60.0.2 . 71', 'udp . 7002 : 10.60.0.2 . 72']);
    expect([...e.pubhost4!.values()]).toEqual(['198.18.0.1 . tcp . 8090 : 10.60.0.2 . 90']);
    expect([...e.dnat4!.values()]).toEqual(['0.0.0.0/0 . 0.0.0.0/0 . tcp . 9000-9099 : 10.60.0.2']);
    expect([...e.pubfwd4!.keys()]).toEqual(['10.60.0.2 . tcp . 9000-9099 . 0.0.0.0/0', '10.60.0.2 . udp . 70-72 . 0.0.0.0/0']);
    expect([...e.pubfwdany4!.keys()]).toEqual(['10.60.0.2 . tcp . 80']);
    expect([...e.pubfwdhost4!.keys()]).toEqual(['10.60.0.2 . tcp . 90 . 198.18.0.1']);
  });

  it('an allow-list is the source field, nested prefixes once; restricted host ports close', () => {
    const e = renderSets(desired([pub({ hostIp: '198.18.0.1', restricted: true, allow: ['10.0.0.0/8', '10.1.0.0/16', '192.0.2.7/32'] })])).elements;
    expect([...e.dnatport4!.keys()]).toEqual(['198.18.0.1 . 10.0.0.0/8 . tcp . 8080', '198.18.0.1 . 192.0.2.7/32 . tcp . 8080']);
    expect([...e.restricted4!.keys()]).toEqual(['198.18.0.1 . tcp . 8080']);
    expect(outermost(['10.0.0.0/8', '10.0.0.0/8', '10.2.0.0/16', 'fd00::/8'])).toEqual(['10.0.0.0/8', 'fd00::/8']);
  });

  it('links, icc and anti-spoofing are elements; the rule list does not depend on the intent', () => {
    const e = renderSets(desired([])).elements;
    expect([...e.links4!.keys()]).toEqual(['10.61.0.3 . 10.61.0.2 . tcp . 5432']);
    expect([...e.intra!.values()]).toEqual(['"bb-1" . "bb-1" : accept', '"bb-2" . "bb-2" : jump icc_links']);
    expect([...e.own4!.keys()]).toEqual(['"v1" . 10.60.0.2']);
    const rules = (d: DesiredDatapath) => fullScript(renderSets(d).elements).split('\n').filter((l) => l.startsWith('add rule'));
    const many = Array.from({ length: 500 }, (_, i) => pub({ hostPort: 10000 + i, containerPort: 10000 + i }));
    expect(rules(desired(many))).toEqual(rules(desired([])));
    expect(rules(desired([])).length).toBe(Object.values(chainRules()).reduce((n, c) => n + c.rules.length, 0));
  });

  it('a change is the changed elements only: deleted by key, added whole', () => {
    const a = renderSets(desired([pub({}), pub({ hostPort: 8081 })])).elements;
    const b = renderSets(desired([pub({}), pub({ hostPort: 8082 })])).elements;
    expect(diffScript(a, a)).toBe('');
    expect(diffScript(a, b).split('\n').filter(Boolean)).toEqual([
      'delete element inet berth pubany4 { tcp . 8081 }',
      'add element inet berth pubany4 { tcp . 8082 : 10.60.0.2 . 80 }',
    ]);
  });

  it('drift is judged without the operator\'s chain and the counters\' values', () => {
    const l = 'table inet berth { # handle 4\n\tcounter drop-icc { # handle 9\n\t\tpackets 3 bytes 180\n\t}\n\tchain user { # handle 2\n\t\tip saddr 1.2.3.4 drop # handle 30\n\t}\n\tchain icc_links { # handle 5\n\t}\n}';
    expect(fingerprint(l)).toBe(fingerprint(l.replace('packets 3 bytes 180', 'packets 9 bytes 999').replace('ip saddr 1.2.3.4 drop', '')));
    expect(fingerprint(l)).not.toBe(fingerprint(l.replace('# handle 5', '# handle 6')));
  });

  it('drops by reason from the named counters', () => {
    const json = JSON.stringify({ nftables: [{ metainfo: {} }, { counter: { family: 'inet', name: 'drop-icc', table: 'berth', handle: 1, packets: 2, bytes: 120 } }, { counter: { family: 'inet', name: 'other', table: 'berth', handle: 2, packets: 5, bytes: 5 } }] });
    expect(addDrops({ icc: { packets: 1, bytes: 60 } }, json)).toEqual({ icc: { packets: 3, bytes: 180 } });
  });
});
