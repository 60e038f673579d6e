/**
 * `berth monitor` and `berth explain`. monitor: datapath events from the programs' ring buffer, with the
 * sandboxes and networks their addresses belong to. A connection that
 * icc=false refuses shows as a drop with reason icc and both sandboxes; a
 * connection to a published port shows as a new flow with its translation.
 */
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../src/paths.js';
import { ApiClient } from '../../src/api/client.cjs';
import { UPLINK } from '../../harness/berthd.js';
import { World } from '../helpers/conformance.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('berth monitor on the bpf datapath', () => {
  let w: World;

  /** Starts `berth monitor ARGS --format json --count 1` and resolves with the event it prints. */
  function monitorOne(...args: string[]): { event: Promise<Record<string, unknown>>; ready: Promise<void> } {
    const p = spawn(process.execPath, [projectPath('dist', 'src', 'cli', 'berth.cjs'), '--socket', w.h.socket, 'monitor', ...args, '--format', 'json', '--count', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => p.kill('SIGKILL'), 15_000);
    const event = new Promise<Record<string, unknown>>((resolve, reject) => {
      createInterface({ input: p.stdout! }).once('line', (l) => resolve(JSON.parse(l) as Record<string, unknown>));
      p.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`berth monitor exited (${code}) without an event`));
      });
    });
    return { event, ready: sleep(800) };
  }

  beforeAll(async () => {
    w = await World.build('bpf', {
      networks: [{ name: 'quiet', args: ['--subnet', '10.89.0.0/24', '-o', 'icc=false'] }, { name: 'front', args: ['--subnet', '10.90.0.0/24'] }],
      sandboxes: [{ name: 'q1', network: 'quiet' }, { name: 'q2', network: 'quiet' }, { name: 'f1', network: 'front', args: ['-p', '8080:80'] }],
      listen: { tcp: [80, 7000], udp: [] },
    });
  }, 60_000);

  afterAll(async () => {
    await w?.destroy();
  }, 60_000);

  it('shows a connection icc=false refused, with the reason and both sandboxes', async () => {
    const m = monitorOne('--type', 'policy', '--sandbox', 'q2');
    await m.ready;
    const r = await w.agent('q2').probe('tcp', w.sb('q1').v4, 7000);
    expect(r.ok).toBe(false);
    const e = await m.event;
    expect(e).toMatchObject({ kind: 'drop', reason: 'icc', hook: 'container', proto: 'tcp', src: w.sb('q2').v4, dst: w.sb('q1').v4, dport: 7000, from: 'q2', to: 'q1', fromNetwork: 'quiet', toNetwork: 'quiet' });
  });

  it('shows a new connection to a published port with its translation', async () => {
    const m = monitorOne('--type', 'flow', '--network', 'front');
    await m.ready;
    expect((await w.agent('ext').probe('tcp', UPLINK.host, 8080)).ok).toBe(true);
    const e = await m.event;
    expect(e).toMatchObject({ kind: 'flow', hook: 'uplink', proto: 'tcp', src: UPLINK.ext, dst: UPLINK.host, dport: 8080, ndst: w.sb('f1').v4, ndport: 80, to: 'f1', toNetwork: 'front' });
  });

  it('berth explain names the deciding rule, and a bad reference by its value', async () => {
    const drop = await w.h.berthTry('explain', 'q2', 'q1', '--port', '7000');
    expect(drop.code).toBe(1);
    expect(drop.stdout).toMatch(/^q2 -> q1 7000\/tcp: DROP \(icc\)\n  dropped: within an icc=false network, without a link \(network 'quiet' has icc=false, and no link lets q2 open 7000\/tcp on q1\)$/m);
    const pub = await w.h.berthTry('explain', `external:${UPLINK.ext}`, UPLINK.host, '--port', '8080', '--format', 'json');
    expect(pub.code).toBe(0);
    expect(JSON.parse(pub.stdout)).toMatchObject({ verdict: 'pass', rule: 'publish', sandbox: 'f1', translated: { dst: w.sb('f1').v4, dport: 80, src: UPLINK.ext } });
    const bad = await w.h.berthTry('explain', 'nosuch', 'q1');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/source 'nosuch' is neither a sandbox, an address, external:IP nor host/);
    const badPort = await w.h.berthTry('explain', 'q2', 'q1', '--port', '70000');
    expect(badPort.stderr).toMatch(/'70000' is not a port number/);
    const mixed = await w.h.berthTry('explain', `external:${UPLINK.ext}`, 'fd00:99::1');
    expect(mixed.stderr).toContain(`source ${UPLINK.ext} is IPv4 but destination fd00:99::1 is IPv6`);
  });

  it('under a flood, rate-limits its events per CPU and counts the ones it did not send', async () => {
    type Batch = { events: { kind: string; dport: number }[]; next: number; lost: number };
    const api = new ApiClient(w.h.socket);
    // The first poll turns events on; wait for the programs to see the switch.
    await api.call<Batch>('GET', '/v1/datapath/events?since=0');
    await sleep(500);
    const before = await api.call<Batch>('GET', '/v1/datapath/events?since=0');
    const N = 20_000;
    // 20,000 datagrams q2 -> q1: every one is an icc drop, and as fast as Python sends (well under a second).
    const t0 = Date.now();
    const r = await w.agent('q2').exec('python3', ['-c', `import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor _ in range(${N}): s.sendto(b'x', ('${w.sb('q1').v4}', 9))`], 30_000);
    expect(r.code, r.stderr).toBe(0);
    const seconds = Math.ceil((Date.now() - t0) / 1000) + 1;
    await sleep(300);
    const after = await api.call<Batch>('GET', `/v1/datapath/events?since=${before.next}`);
    const sent = after.next - before.next;
    const lost = after.lost - before.lost;
    expect(after.events.some((e) => e.kind === 'drop' && e.dport === 9)).toBe(true);
    // At most 2,000 a second per CPU (the window the flood spans, a second more for its edges) ...
    expect(sent).toBeLessThanOrEqual(2000 * cpus().length * seconds);
    // ... and every drop not sent is counted as lost.
    expect(sent + lost).toBeGreaterThanOrEqual(N);
    expect(lost).toBeGreaterThan(0);
  });

  it('counts the kernel\'s own drops of berth\'s traffic by the kernel\'s reason', async () => {
    const kdrops = async () => (JSON.parse((await w.h.berth('datapath', '--format', 'json')).stdout) as { detail: { kernelDrops: Record<string, { packets: number }> | null } }).detail.kernelDrops;
    const before = (await kdrops())?.no_socket?.packets ?? 0;
    // UDP to a port of the host nobody listens on: the host's stack frees it, reason NO_SOCKET, on q1's bridge.
    for (let i = 0; i < 3; i++) await w.agent('q1').probe('udp', w.sb('q1').gateway, 9, { timeoutMs: 200 });
    expect((await kdrops())?.no_socket?.packets ?? 0).toBeGreaterThanOrEqual(before + 3);
  });

  it('refuses an unknown sandbox by name', async () => {
    const r = await w.h.berthTry('monitor', '--sandbox', 'nosuch', '--count', '1');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/nosuch/);
  });
});
