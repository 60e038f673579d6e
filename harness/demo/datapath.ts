/**
 * The datapath part of `berth demo`, with berthd running in the demo's host
 * namespace: a published port reached from the outside namespace (the
 * client's address kept), a sandbox's connection out masqueraded to the
 * uplink's address, an icc=false network where only a link's exposed port
 * opens and only from the linker, and the datapath's verdict counters. Real
 * TCP connections between namespaces, made by peer.mjs under nsenter.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { ApiClient } from '../../src/api/client.cjs';
import type { SandboxView } from '../../src/api/views.js';
import type { DatapathStatus } from '../../src/datapath/datapath.js';
import { run } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import type { Topology } from '../topology.js';

const PEER = projectPath('harness', 'demo', 'peer.mjs');
const HOST = '198.18.0.1';
const EXT = '198.18.0.2';

export interface Probe {
  from: string;
  to: string;
  ok: boolean;
  /** the client address the server saw */
  peer?: string;
  error?: string;
}

export interface DatapathDemo {
  published: Probe;
  masquerade: Probe;
  link: Probe;
  linkOtherPort: Probe;
  linkReverse: Probe;
  drops: Record<string, { packets: number }>;
}

type Say = (line: string) => void;

async function serve(netns: string, port: number): Promise<ChildProcess> {
  const p = spawn('nsenter', [`--net=${netns}`, '--', process.execPath, PEER, 'serve', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    p.once('exit', (code) => reject(new Error(`peer server on port ${port} exited (${code})`)));
    createInterface({ input: p.stdout! }).once('line', () => resolve());
  });
  return p;
}

async function connect(netns: string, host: string, port: number, from: string, to: string): Promise<Probe> {
  const r = await run('nsenter', [`--net=${netns}`, '--', process.execPath, PEER, 'connect', host, String(port), '1000']);
  return { from, to, ...(JSON.parse(r.stdout) as { ok: boolean; peer?: string; error?: string }) };
}

export async function datapathDemo(api: ApiClient, topo: Topology, say: Say): Promise<DatapathDemo> {
  const servers: ChildProcess[] = [];
  try {
    await api.call('POST', '/v1/networks', { name: 'shop', subnets: ['10.124.0.0/24'] });
    await api.call('POST', '/v1/networks', { name: 'vault', subnets: ['10.125.0.0/24'], options: { icc: 'false' } });
    await api.call('POST', '/v1/sandboxes', { name: 'shopweb', network: 'shop', cmd: ['sleep', 'infinity'], publish: ['8080:80'] });
    await api.call('POST', '/v1/sandboxes', { name: 'db', network: 'vault', cmd: ['sleep', 'infinity'], expose: ['5432'] });
    await api.call('POST', '/v1/sandboxes', { name: 'app', network: 'vault', cmd: ['sleep', 'infinity'], links: ['db'] });
    const sb = async (n: string) => api.call<SandboxView>('GET', `/v1/sandboxes/${n}`);
    const [web, db, app] = await Promise.all([sb('shopweb'), sb('db'), sb('app')]);
    const ip = (s: SandboxView) => Object.values(s.NetworkSettings.Networks)[0]!.IPAddress;
    const ns = (s: SandboxView) => s.NetworkSettings.SandboxKey;
    for (const [netns, port] of [[ns(web), 80], [ns(db), 5432], [ns(db), 22], [ns(app), 5432], [topo.nsPath('ext'), 7000]] as const) servers.push(await serve(netns, port));

    say('\n== the eBPF datapath (berthd above runs it; every packet below crossed tc programs, no proxy)');
    const published = await connect(topo.nsPath('ext'), HOST, 8080, 'ext', `${HOST}:8080 (published by shopweb:80)`);
    say(`   ext -> ${published.to}: ${published.ok ? `reached; shopweb saw client ${published.peer} (source kept)` : `FAILED (${published.error})`}`);
    const masquerade = await connect(ns(web), EXT, 7000, 'shopweb', `${EXT}:7000 (outside)`);
    say(`   shopweb -> ${masquerade.to}: ${masquerade.ok ? `reached; ext saw ${masquerade.peer} (masqueraded to the uplink)` : `FAILED (${masquerade.error})`}`);
    const link = await connect(ns(app), ip(db), 5432, 'app', `db ${ip(db)}:5432 (linked, exposed)`);
    const linkOtherPort = await connect(ns(app), ip(db), 22, 'app', `db ${ip(db)}:22 (not exposed)`);
    const linkReverse = await connect(ns(db), ip(app), 5432, 'db', `app ${ip(app)}:5432 (the other way)`);
    say('   network vault has icc=false; app has --link db; db exposes 5432:');
    for (const p of [link, linkOtherPort, linkReverse]) say(`     ${p.from} -> ${p.to}: ${p.ok ? 'reached' : `blocked (${p.error})`}`);
    const status = await api.call<DatapathStatus>('GET', '/v1/datapath');
    const drops = (status.detail as { drops?: Record<string, { packets: number }> }).drops ?? {};
    say(`   verdict counters (drops by reason): ${Object.entries(drops).map(([k, v]) => `${k}=${v.packets}`).join(' ') || 'none'}`);
    for (const n of ['shopweb', 'db', 'app']) await api.call('DELETE', `/v1/sandboxes/${n}?force=1`);
    for (const n of ['shop', 'vault']) await api.call('DELETE', `/v1/networks/${n}`);
    return { published, masquerade, link, linkOtherPort, linkReverse, drops };
  } finally {
    for (const s of servers) s.kill('SIGKILL');
  }
}
