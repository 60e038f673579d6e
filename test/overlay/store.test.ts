/**
 * The cluster store against a real etcd (Debian's etcd-server) on loopback,
 * a port of its own: cluster-wide IPAM never hands out an address twice,
 * even to hosts allocating at the same moment; names and VNIs are unique;
 * a watch carries one host's endpoints to another; and with etcd gone,
 * operations fail within the store timeout, naming the store.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { EtcdStore, parseEtcdUrl, STORE_TIMEOUT_MS } from '../../src/store/etcd.js';
import { Cluster } from '../../src/cluster/cluster.js';
import { makePool } from '../../src/ipam/ipam.js';
import type { NetworkRecord, State } from '../../src/store/model.js';
import { BerthError } from '../../src/errors.js';
import { tryRun } from '../../src/exec.js';

const log = pino({ level: 'silent' });
const port = 20000 + (process.pid % 20000);
const url = `etcd://127.0.0.1:${port}`;
let etcd: ChildProcess;
let dir: string;
const clusters: Cluster[] = [];

async function cluster(id: string, underlay: string, prefix: string): Promise<Cluster> {
  const c = new Cluster(new EtcdStore(parseEtcdUrl(url), prefix, log), id, id, underlay, log);
  await c.join();
  clusters.push(c);
  return c;
}

function network(id: string, name: string, vni: number, subnet: string): NetworkRecord {
  return {
    id, name, driver: 'overlay', scope: 'global', internal: false, ipv6: false, options: {}, pools: [makePool({ subnet })],
    bridge: `bb-${id.slice(0, 12)}`, vxlan: { vni, port: 4789 }, isDefault: false, created: new Date().toISOString(),
  };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-test-etcd-'));
  etcd = spawn('etcd', ['--name', 'unit', '--data-dir', dir, '--listen-client-urls', `http://127.0.0.1:${port}`, '--advertise-client-urls', `http://127.0.0.1:${port}`,
    '--listen-peer-urls', `http://127.0.0.1:${port + 1}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${port + 1}`, '--initial-cluster', `unit=http://127.0.0.1:${port + 1}`], { stdio: 'ignore' });
  const deadline = Date.now() + 20_000;
  while ((await tryRun('etcdctl', ['--endpoints', `http://127.0.0.1:${port}`, '--dial-timeout', '1s', 'endpoint', 'health'])).code !== 0) {
    if (Date.now() > deadline) throw new Error('etcd did not start');
    await new Promise((r) => setTimeout(r, 200));
  }
}, 30_000);

afterAll(async () => {
  for (const c of clusters) await c.leave().catch(() => undefined);
  if (etcd.exitCode === null && etcd.signalCode === null) {
    const done = new Promise((r) => etcd.once('exit', r));
    etcd.kill('SIGKILL');
    await done;
  }
  await rm(dir, { recursive: true, force: true });
});

describe('cluster store on etcd', () => {
  it('hosts allocating at the same moment never get the same address', async () => {
    const a = await cluster('host-a', '192.0.2.1', '/t1/');
    const b = await cluster('host-b', '192.0.2.2', '/t1/');
    const pool = makePool({ subnet: '10.9.0.0/26' });
    const net = network('n'.repeat(64), 'n1', 100, '10.9.0.0/26');
    await a.createNetwork(net);
    const got = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).allocate(net.id, pool, `ep${i}`)));
    expect(new Set(got).size).toBe(40);
    expect(got).not.toContain('10.9.0.1'); // the gateway
    // A requested address already held elsewhere is refused, naming it.
    await expect(a.allocate(net.id, pool, 'x', got[0])).rejects.toThrow(`address ${got[0]} is already in use in the cluster`);
  });

  it('network names and VNIs are unique across the cluster', async () => {
    const a = await cluster('host-c', '192.0.2.3', '/t2/');
    await a.createNetwork(network('a'.repeat(64), 'same', 200, '10.8.0.0/24'));
    await expect(a.createNetwork(network('b'.repeat(64), 'same', 201, '10.8.1.0/24'))).rejects.toThrow(/network 'same' already exists in the cluster/);
    await expect(a.createNetwork(network('c'.repeat(64), 'other', 200, '10.8.2.0/24'))).rejects.toThrow(/VXLAN id 200 is used/);
  });

  it('a host\'s endpoints reach the others through the watch, with its underlay address', async () => {
    const a = await cluster('host-d', '192.0.2.4', '/t3/');
    const b = await cluster('host-e', '192.0.2.5', '/t3/');
    const net = network('d'.repeat(64), 'w', 300, '10.7.0.0/24');
    await a.createNetwork(net);
    const state: State = {
      version: 1, instance: 'x', networks: { [net.id]: net },
      sandboxes: {
        s1: {
          id: 's1', name: 'web', created: '', mode: 'networks', netnsPath: '', hostname: 'web', dns: [], dnsSearch: [], addHosts: [], env: [], links: [],
          expose: [], publish: [], publishAll: false, publishAllow: [], cmd: [],
          endpoints: [{ id: 'e1', network: net.id, ifname: 'eth0', mac: '02:b7:0a:07:00:02', v4: '10.7.0.2', aliases: ['www'] }],
        },
      },
    };
    const seen = new Promise<void>((resolve) => b.on('changed', () => b.endpoints(net.id).size && resolve()));
    await a.syncLocal(state);
    await seen;
    expect(b.remoteEndpoints(() => 300)).toEqual([{ vni: 300, mac: '02:b7:0a:07:00:02', v4: '10.7.0.2', hostIp: '192.0.2.4' }]);
    expect(b.peerAddresses()).toContain('192.0.2.4');
    // Removed locally: withdrawn from the store, address released.
    await a.syncLocal({ ...state, sandboxes: {} });
    expect(a.endpoints(net.id).size).toBe(0);
    expect(a.allocated(net.id).size).toBe(0);
  });

  it('with etcd gone, operations fail within the store timeout, naming the store', async () => {
    const a = await cluster('host-f', '192.0.2.6', '/t4/');
    const done = new Promise((r) => etcd.once('exit', r));
    etcd.kill('SIGKILL');
    await done;
    const t0 = Date.now();
    const err = await a.allocate('z'.repeat(64), makePool({ subnet: '10.6.0.0/24' }), 'e').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BerthError);
    expect((err as BerthError).kind).toBe('unavailable');
    expect((err as Error).message).toContain(`cluster store ${url}`);
    expect(Date.now() - t0).toBeLessThan(STORE_TIMEOUT_MS + 2000);
  });
});
