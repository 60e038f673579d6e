/**
 * The eBPF datapath outlives berthd: an iperf3 stream and a TCP conversation
 * through published ports keep flowing while berthd is SIGKILLed and started
 * again (which loads new programs against the pinned maps and swaps them in).
 * No process stands in for a published port, before or after.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPLINK } from '../../harness/berthd.js';
import { World } from '../helpers/conformance.js';
import { projectPath } from '../../src/paths.js';
import { run } from '../../src/exec.js';

const ECHO = projectPath('test', 'conformance', 'echo.py');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Iperf {
  intervals: { sum: { bytes: number; seconds: number } }[];
  end: { sum_received?: { bytes: number } };
  error?: string;
}

describe('the bpf datapath across a berthd crash and restart', () => {
  let w: World;

  beforeAll(async () => {
    w = await World.build('bpf', {
      networks: [{ name: 'web', args: ['--subnet', '10.86.0.0/24'] }],
      sandboxes: [{ name: 'srv', network: 'web', args: ['-p', '5201:5201', '-p', '8070:7007'] }],
      listen: { tcp: [], udp: [] },
    });
  }, 60_000);

  afterAll(async () => {
    await w?.destroy();
  }, 60_000);

  it('keeps an iperf3 flow and a TCP connection through published ports alive', async () => {
    const srv = w.agent('srv');
    const ext = w.agent('ext');
    const iperfServer = srv.exec('iperf3', ['-s', '-1', '-p', '5201'], 30_000);
    const echoServer = srv.exec('python3', [ECHO, 'serve', '7007', '20'], 30_000);
    await sleep(500);
    const iperf = ext.exec('iperf3', ['-c', UPLINK.host, '-p', '5201', '-t', '6', '-i', '0.5', '-J'], 30_000);
    const talk = ext.exec('python3', [ECHO, 'talk', UPLINK.host, '8070', '6', '50'], 30_000);
    await sleep(1500);
    await w.h.kill('SIGKILL');
    expect(w.h.proc).toBeUndefined();
    await sleep(1500);
    await w.h.start(['--datapath', 'bpf']);
    const [ip, tk] = await Promise.all([iperf, talk]);
    await Promise.all([iperfServer, echoServer]);

    const r = JSON.parse(ip.stdout) as Iperf;
    expect(r.error, ip.stderr).toBeUndefined();
    expect(r.intervals.length).toBeGreaterThanOrEqual(11);
    // Not one half-second without data: the flow never stalled.
    const empty = r.intervals.filter((i) => i.sum.bytes === 0).map((i) => i.sum.seconds);
    expect(empty, 'intervals without a byte').toEqual([]);
    expect(r.end.sum_received?.bytes ?? 0).toBeGreaterThan(0);

    const t = JSON.parse(tk.stdout) as { sent: number; echoed: number; maxWaitMs: number; error: string | null };
    expect(t.error).toBeNull();
    expect(t.echoed).toBe(t.sent);
    expect(t.sent).toBeGreaterThan(50);
    // No echo waited anywhere near the second berthd was down (a datapath gone with berthd would stall
    // the conversation until the restart, 2 s and more); CPU contention alone can cost a few hundred ms.
    expect(t.maxWaitMs).toBeLessThan(1000);
  }, 60_000);

  it('a connection table of a new size takes the live flows with it', async () => {
    const srv = w.agent('srv');
    const ext = w.agent('ext');
    const status = async () => JSON.parse((await w.h.berth('datapath', '--format', 'json')).stdout) as { detail: { maps: Record<string, { entries: number; max: number }> } };
    expect((await status()).detail.maps.berth_dp_ct!.max).toBe(262144);
    const echoServer = srv.exec('python3', [ECHO, 'serve', '7007', '20'], 30_000);
    await sleep(300);
    const talk = ext.exec('python3', [ECHO, 'talk', UPLINK.host, '8070', '4', '50'], 30_000);
    await sleep(1000);
    await w.h.kill('SIGKILL');
    await w.h.start(['--datapath', 'bpf', '--ct-max', '65536']);
    const t = JSON.parse((await talk).stdout) as { sent: number; echoed: number; maxWaitMs: number; error: string | null };
    await echoServer;
    expect(t.error).toBeNull();
    expect(t.echoed).toBe(t.sent);
    expect(t.maxWaitMs).toBeLessThan(1000);
    const after = (await status()).detail.maps.berth_dp_ct!;
    expect(after.max).toBe(65536);
    expect(after.entries).toBeGreaterThanOrEqual(2);
    expect(w.h.logs).toMatch(/"from":262144,"to":65536,"msg":"connection table size changed: migrating its entries"/);
    // A size berth cannot use is refused by name, and nothing changes.
    await w.h.kill('SIGKILL');
    await expect(w.h.start(['--datapath', 'bpf', '--ct-max', 'lots'])).rejects.toThrow(/'lots' is not a number of entries/);
    await w.h.start(['--datapath', 'bpf', '--ct-max', '65536']);
  }, 60_000);

  it('the restarted berthd runs the programs it loaded, and nothing listens on published ports', async () => {
    const info = JSON.parse((await w.h.berth('datapath', '--format', 'json')).stdout) as { kind: string; detail: { attachments: number; programs: Record<string, number> } };
    expect(info.kind).toBe('bpf');
    expect(info.detail.attachments).toBeGreaterThanOrEqual(3);
    const listeners = (await run('ip', ['netns', 'exec', w.h.ns, 'ss', '-Htlnp'])).stdout;
    expect(listeners).not.toMatch(/:(5201|8070)\s/);
  });
});
