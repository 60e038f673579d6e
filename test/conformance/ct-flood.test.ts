/**
 * The connection table under a flood of spoofed SYNs to a published port,
 * on both datapaths. Two connections are held across it, each one's far
 * side speaking first after the flood (so a lost entry cannot be rebuilt
 * from the client's next packet): one from outside into the sandbox through
 * the published port, one from the sandbox out through the masquerade.
 * Then fresh connections, both ways, must complete.
 *
 * eBPF: the established table is cut to 4,096 entries and the flood is
 * 100,000 SYNs from 127 spoofed addresses with random ports, sent from
 * every CPU. In one table
 * it evicts both held flows (their next packets then leave untranslated and
 * the clients reset them); in the unconfirmed table (berth_dp_ct_new) it
 * only churns itself. iptables: the kernel's conntrack table is the whole
 * machine's and its size is settable only in the root namespace, so the
 * flood (50,000) stays below it; what is checked is that the entries exist
 * and the connections hold.
 *
 * The spoofed sources are the upper half of ext's own 198.51.100.0/24, and
 * ext routes that half into a blackhole: the answers never leave ext.
 */
import { availableParallelism } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import { UPLINK } from '../../harness/berthd.js';
import { World } from '../helpers/conformance.js';

const FLOOD = projectPath('test', 'conformance', 'flood.py');
const SILENCE_S = 25;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Held { connected: boolean; hello: boolean; echo: boolean; error: string | null }

const CASES = [
  { datapath: 'bpf', syns: 100_000, args: ['--ct-max', '4096'] },
  { datapath: 'iptables', syns: 50_000, args: [] },
] as const;

describe.each(CASES)('a SYN flood at a published port ($datapath)', ({ datapath, syns, args }) => {
  let w: World;

  beforeAll(async () => {
    w = await World.build(datapath, {
      networks: [{ name: 'fl', args: ['--subnet', '10.97.0.0/24'] }],
      sandboxes: [{ name: 'srv', network: 'fl', args: ['-p', '8080:80', '-p', '8081:81'] }],
      listen: { tcp: [81], udp: [] },
    }, [...args]);
    await run('ip', ['-n', w.topo.ns('ext'), 'route', 'add', 'blackhole', '198.51.100.128/25']);
    await w.agent('ext').listen('tcp', 9001);
  }, 120_000);

  afterAll(async () => {
    await w?.destroy();
  }, 60_000);

  /** Entries the datapath holds: the eBPF tables' fill, or the host namespace's conntrack count. */
  async function entries(): Promise<{ established: number; unconfirmed: number; max: number }> {
    if (datapath === 'bpf') {
      const s = JSON.parse((await w.h.berth('datapath', '--format', 'json')).stdout) as { detail: { maps: Record<string, { entries: number; max: number }> } };
      return { established: s.detail.maps.berth_dp_ct!.entries, unconfirmed: s.detail.maps.berth_dp_ct_new!.entries, max: s.detail.maps.berth_dp_ct!.max };
    }
    const { stdout } = await run('ip', ['netns', 'exec', w.h.ns, 'conntrack', '-C']);
    return { established: Number(stdout.trim()), unconfirmed: 0, max: 0 };
  }

  it('held connections survive and new ones complete', async () => {
    const srv = w.agent('srv');
    const ext = w.agent('ext');
    // The probes work before the flood: new connections both ways.
    expect((await ext.probe('tcp', UPLINK.host, 8081, { timeoutMs: 3000 })).ok).toBe(true);
    expect((await srv.probe('tcp', UPLINK.ext, 9001, { timeoutMs: 3000 })).ok).toBe(true);

    const servers = [srv.exec('python3', [FLOOD, 'quiet', '80'], 90_000), ext.exec('python3', [FLOOD, 'quiet', '9000'], 90_000)];
    await sleep(500);
    const held = [
      ext.exec('python3', [FLOOD, 'held', UPLINK.host, '8080', String(SILENCE_S)], 90_000),
      srv.exec('python3', [FLOOD, 'held', UPLINK.ext, '9000', String(SILENCE_S)], 90_000),
    ];
    await sleep(1500);
    const before = await entries();

    const t0 = Date.now();
    // From every CPU: the kernel's LRU keeps a per-CPU list of recent entries that only that CPU's inserts flush.
    const cpus = availableParallelism();
    const floods = await Promise.all(Array.from({ length: cpus }, (_, cpu) =>
      ext.exec('taskset', ['-c', String(cpu), 'python3', FLOOD, 'syn', '198.51.100', UPLINK.host, '8080', String(Math.ceil(syns / cpus))], 60_000)));
    for (const f of floods) expect(f.code, f.stderr).toBe(0);
    expect(floods.reduce((n, f) => n + (JSON.parse(f.stdout) as { sent: number }).sent, 0)).toBeGreaterThanOrEqual(syns);
    const after = await entries();
    // The flood must still be going on in the tables when the held flows speak again.
    expect(Date.now() - t0, 'the flood took longer than the held connections stay silent').toBeLessThan((SILENCE_S - 5) * 1000);
    if (datapath === 'bpf') {
      // Far more SYNs than the established table holds, and they went to the unconfirmed one.
      expect(after.max).toBe(4096);
      expect(after.unconfirmed).toBeGreaterThan(8 * after.max);
      expect(after.established).toBeLessThanOrEqual(before.established + 8);
    } else {
      expect(after.established - before.established).toBeGreaterThan(syns * 0.9);
    }

    // New connections complete after the flood, both ways.
    for (let i = 0; i < 5; i++) {
      expect((await ext.probe('tcp', UPLINK.host, 8081, { timeoutMs: 3000 })).ok, `inbound connection ${i}`).toBe(true);
      expect((await srv.probe('tcp', UPLINK.ext, 9001, { timeoutMs: 3000 })).ok, `outbound connection ${i}`).toBe(true);
    }
    const [inbound, outbound] = (await Promise.all(held)).map((r) => JSON.parse(r.stdout) as Held);
    expect(inbound, 'held inbound connection (through the published port)').toEqual({ connected: true, hello: true, echo: true, error: null });
    expect(outbound, 'held outbound connection (masqueraded)').toEqual({ connected: true, hello: true, echo: true, error: null });
    await Promise.all(servers);
  }, 120_000);
});
