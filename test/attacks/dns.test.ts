/**
 * Hostile neighbours against the embedded DNS, on both datapaths: a LAN
 * neighbour routing a network's subnet through the host, a sandbox of
 * another network and the host's own other address all ask the network's
 * gateway to resolve a name outside; none is answered and the upstream (the
 * fake one in ext) sees none of their queries. Control first: a sandbox of the
 * network is answered, its query forwarded, and it resolves its peer by name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPLINK } from '../../harness/berthd.js';
import { run } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import { World, type WorldSpec } from '../helpers/conformance.js';
import { parsePrometheusText, sampleValue } from '../helpers/promtext.js';
import { DATAPATHS } from '../helpers/datapaths.js';

const SPEC: WorldSpec = {
  networks: [
    { name: 'home', args: ['--subnet', '10.88.0.0/24'] },
    { name: 'other', args: ['--subnet', '10.89.0.0/24'] },
  ],
  sandboxes: [
    { name: 'n1', network: 'home' },
    { name: 'n2', network: 'home' },
    { name: 'o1', network: 'other' },
    // its upstream (--dns) is an address nobody holds on the uplink: its forwarded queries go unanswered
    { name: 'n3', network: 'home', args: ['--dns', '198.18.0.99'] },
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

/** berthd's embedded DNS counters, scraped from GET /metrics on the API socket. */
function dnsMetrics(w: World): Promise<{ notAdmitted: number; rateLimited: number; forwarded: number; unanswered: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: w.h.socket, path: '/metrics', method: 'GET' }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        const f = parsePrometheusText(text);
        resolve({
          notAdmitted: sampleValue(f, 'berth_dns_refused_queries_total', { reason: 'not-admitted' }) ?? NaN,
          rateLimited: sampleValue(f, 'berth_dns_refused_queries_total', { reason: 'rate-limited' }) ?? NaN,
          forwarded: sampleValue(f, 'berth_dns_forwarded_queries_total') ?? NaN,
          unanswered: sampleValue(f, 'berth_dns_unanswered_queries_total') ?? NaN,
        });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** A sandbox floods its gateway with @n queries for distinct outside names as fast as it can (UDP, replies not awaited). */
const FLOOD = (gw: string, n: number) => `
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(${n}):
    name = b''.join(bytes([len(p)]) + p for p in [b'flood%d' % i, b'outside', b'test']) + b'\\0'
    s.sendto(struct.pack('>HHHHHH', i, 0x0100, 1, 0, 0, 0) + name + struct.pack('>HH', 1, 1), ('${gw}', 53))
`;

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

  it('the DNS counters in the metrics move under what triggers them: forwarding, a flood over the rate limit, an upstream that never answers', async () => {
    const a = await dnsMetrics(w);
    expect(a.forwarded).toBeGreaterThan(0); // the controls above were forwarded
    expect(await dig(w, 'n1', 'counted.outside.test')).toBe('203.0.113.7');
    const b = await dnsMetrics(w);
    expect(b.forwarded - a.forwarded).toBe(1);
    // A flood of 600 forwarded names from one sandbox: the first 200 (the burst) and the refill go on, the rest is REFUSED.
    await w.agent('n2').sh('python3', '-c', FLOOD(GW, 600));
    // Counted as berthd reads them (a datagram the socket buffer could not hold is not a query): wait until they settle.
    let c = await dnsMetrics(w);
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const next = await dnsMetrics(w);
      const settled = next.forwarded === c.forwarded && next.rateLimited === c.rateLimited;
      c = next;
      if (settled && up.names().filter((n) => n.startsWith('flood')).length === c.forwarded - b.forwarded) break;
    }
    expect(c.forwarded + c.rateLimited - b.forwarded - b.rateLimited).toBeLessThanOrEqual(600);
    expect(c.rateLimited - b.rateLimited).toBeGreaterThan(0);
    // what was forwarded is exactly what reached the upstream: the refused ones never left
    expect(up.names().filter((n) => n.startsWith('flood')).length).toBe(c.forwarded - b.forwarded);
    // n3's upstream never answers: its query is forwarded and counted unanswered (the client gets SERVFAIL).
    const r = await w.agent('n3').exec('dig', [`@${GW}`, 'lost.outside.test', '+tries=1', '+time=6'], 10_000);
    expect(r.stdout).toContain('status: SERVFAIL');
    const d = await dnsMetrics(w);
    expect([d.forwarded - c.forwarded, d.unanswered - c.unanswered]).toEqual([1, 1]);
    expect(d.notAdmitted).toBe(c.notAdmitted);
  });
});
