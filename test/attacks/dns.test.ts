/**
 * Hostile neighbours against the embedded DNS, on both datapaths: a LAN
 * neighbour routing a network's subnet through the host, a sandbox of
 * another network and the host's own other address all ask the network's
 * gateway to resolve a name outside; none is answered and the upstream (the
 * fake one in ext) sees none of their queries. Control first: a sandbox of the
 * network is answered, its query forwarded, and it resolves its peer by name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPLINK } from '../../harness/berthd.js';
import { run } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import { World, type WorldSpec } from '../helpers/conformance.js';

const DATAPATHS = (process.env.BERTH_CONFORMANCE_DATAPATHS ?? 'iptables,bpf').split(',').filter(Boolean);

const SPEC: WorldSpec = {
  networks: [
    { name: 'home', args: ['--subnet', '10.88.0.0/24'] },
    { name: 'other', args: ['--subnet', '10.89.0.0/24'] },
  ],
  sandboxes: [
    { name: 'n1', network: 'home' },
    { name: 'n2', network: 'home' },
    { name: 'o1', network: 'other' },
  ],
  listen: { tcp: [], udp: [] },
};
const GW = '10.88.0.1';

/** The fake upstream in ext, and every query it saw as "client name". */
class Upstream {
  readonly seen: string[] = [];
  private constructor(private readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      if (l.startsWith('seen ')) this.seen.push(l.slice(5));
    });
  }
  static async start(netnsPath: string): Promise<Upstream> {
    const proc = spawn('nsenter', [`--net=${netnsPath}`, '--', process.execPath, projectPath('test', 'helpers', 'fake-upstream.mjs'), UPLINK.ext], { stdio: ['ignore', 'pipe', 'inherit'] });
    const u = new Upstream(proc);
    await new Promise((r) => proc.stdout!.once('data', r));
    return u;
  }
  names(): string[] {
    return this.seen.map((s) => s.split(' ')[1]!);
  }
  stop(): void {
    this.proc.kill('SIGKILL');
  }
}

/** dig's short answer, or null when nothing came back (dig exits 9: no reply). */
async function dig(w: World, from: string, name: string, opts: { tcp?: boolean; bind?: string; server?: string } = {}): Promise<string | null> {
  const args = [`@${opts.server ?? GW}`, name, '+short', '+tries=1', '+time=2', ...(opts.tcp ? ['+tcp'] : []), ...(opts.bind ? ['-b', opts.bind] : [])];
  const r = await w.agent(from).exec('dig', args, 8000);
  if (r.code === 9) return null;
  if (r.code !== 0) throw new Error(`dig from ${from} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}

async function drops(w: World): Promise<Record<string, number>> {
  const d = JSON.parse((await w.h.berth('datapath', '--format', 'json')).stdout) as { detail?: { drops?: Record<string, { packets: number }> } };
  return Object.fromEntries(Object.entries(d.detail?.drops ?? {}).map(([k, v]) => [k, v.packets]));
}

describe.each(DATAPATHS)('the embedded DNS is no open resolver (%s datapath)', (datapath) => {
  let w: World;
  let up: Upstream;

  beforeAll(async () => {
    w = await World.build(datapath, SPEC);
    up = await Upstream.start(w.topo.nsPath('ext'));
    // The LAN neighbour routes the user network's subnet through the host, as a neighbour on a flat LAN could.
    await run('ip', ['-n', w.topo.ns('ext'), 'route', 'add', '10.88.0.0/24', 'via', UPLINK.host]);
  }, 120_000);

  afterAll(async () => {
    up?.stop();
    await w?.destroy();
  });

  it('control: a sandbox of the network is answered (its peer by name, outside names forwarded)', async () => {
    expect(await dig(w, 'n1', 'n2')).toBe(w.sb('n2').v4);
    expect(await dig(w, 'n1', 'ok.outside.test')).toBe('203.0.113.7');
    // over TCP too (the fake upstream speaks UDP only: a name of ours)
    expect(await dig(w, 'n1', 'n2', { tcp: true })).toBe(w.sb('n2').v4);
    expect(up.names()).toEqual(['ok.outside.test']);
    // The LAN neighbour's probe can reach the host at all: the uplink answers its ping.
    await w.agent('ext').sh('ping', '-c1', '-W2', UPLINK.host);
  });

  it('a LAN neighbour gets no answer over UDP or TCP, and nothing reaches the upstream; the drop is counted', async () => {
    const before = await drops(w);
    expect(await dig(w, 'ext', 'lan.outside.test')).toBeNull();
    expect(await dig(w, 'ext', 'n2', { tcp: true })).toBeNull();
    expect(await dig(w, 'ext', 'n2')).toBeNull();
    const after = await drops(w);
    expect((after['dns-outside'] ?? 0) - (before['dns-outside'] ?? 0)).toBeGreaterThanOrEqual(3);
    expect(up.names().filter((n) => n.startsWith('lan'))).toEqual([]);
  });

  it('a sandbox of another network gets no answer from this network\'s gateway', async () => {
    // control: o1 reaches its own network's resolver and is forwarded
    expect(await dig(w, 'o1', 'own.outside.test', { server: '10.89.0.1' })).toBe('203.0.113.7');
    const before = await drops(w);
    expect(await dig(w, 'o1', 'cross.outside.test')).toBeNull();
    expect(await dig(w, 'o1', 'n2', { tcp: true })).toBeNull();
    const after = await drops(w);
    expect((after['dns-outside'] ?? 0) - (before['dns-outside'] ?? 0)).toBeGreaterThanOrEqual(2);
    expect(up.names().filter((n) => n.startsWith('cross'))).toEqual([]);
  });

  it('the host itself (its uplink address) gets no answer either', async () => {
    expect(await dig(w, 'host', 'hostq.outside.test', { bind: UPLINK.host })).toBeNull();
    expect(await dig(w, 'host', 'n2', { bind: UPLINK.host, tcp: true })).toBeNull();
    expect(up.names().filter((n) => n.startsWith('hostq'))).toEqual([]);
  });

  it('afterwards the network\'s sandboxes are still answered', async () => {
    expect(await dig(w, 'n2', 'n1')).toBe(w.sb('n1').v4);
    expect(await dig(w, 'n2', 'again.outside.test')).toBe('203.0.113.7');
  });
});
