/**
 * The eBPF datapath's publish table has the size berthd is given
 * (--pub-max): `berth datapath` shows its fill, a request that would not
 * fit is refused naming the sizes and leaves nothing behind, a range costs
 * one entry whatever its length, and a restart with another size rewrites
 * the table with every publish still reachable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPLINK } from '../../harness/berthd.js';
import { World } from '../helpers/conformance.js';

type Sizes = Record<string, { entries: number; max: number }>;

describe('the publish table\'s size (bpf, --pub-max)', () => {
  let w: World;
  const fill = async () => (JSON.parse((await w.h.berth('datapath', '--format', 'json')).stdout) as { detail: { maps: Sizes } }).detail.maps.berth_dp_pub!;
  const reaches = async (port: number) => (await w.agent('ext').probe('tcp', UPLINK.host, port, { timeoutMs: 3000 })).reply?.by;

  beforeAll(async () => {
    w = await World.build('bpf', {
      networks: [{ name: 'pt', args: ['--subnet', '10.98.0.0/24'] }],
      sandboxes: [{ name: 'a', network: 'pt', args: ['-p', '9510:80', '-p', '9511:80', '-p', '9512:80', '-p', '9513:80'] }],
      listen: { tcp: [80], udp: [] },
    }, ['--pub-max', '16']);
  }, 60_000);

  afterAll(async () => {
    await w?.destroy();
  }, 60_000);

  it('shows its size and fill', async () => {
    const f = await fill();
    expect(f.max).toBe(16);
    expect(f.entries).toBeGreaterThanOrEqual(4);
    expect(await reaches(9513)).toBe('a');
  });

  it('refuses what would not fit, naming the sizes, and keeps nothing of it', async () => {
    const before = await fill();
    const per = before.entries / 4; // entries a single-port publish costs (one a family)
    const ports = Array.from({ length: Math.floor((16 - before.entries) / per) + 1 }, (_, i) => ['-p', `${9520 + i}:80`]).flat();
    const r = await w.h.berthTry('run', '-d', '--name', 'b', '--network', 'pt', ...ports, '--', 'sleep', 'infinity');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/published ports: \d+ entries .* do not fit the eBPF datapath's publish table of 16; start berthd with a larger --pub-max/);
    expect((await w.h.berthTry('inspect', 'b')).code).not.toBe(0);
    expect(await fill()).toEqual(before);
    expect(await reaches(9510)).toBe('a');
    // The control: one port less fits.
    await w.h.berth('run', '-d', '--name', 'b', '--network', 'pt', ...ports.slice(2), '--', 'sleep', 'infinity');
    expect((await fill()).entries).toBeLessThanOrEqual(16);
    await w.h.berth('rm', '-f', 'b');
    expect(await fill()).toEqual(before);
  });

  it('a range is one entry, whatever its length', async () => {
    const before = await fill();
    const per = before.entries / 4;
    await w.h.berth('run', '-d', '--name', 'r', '--network', 'pt', '-p', '20000-22999:1000-3999', '--', 'sleep', 'infinity');
    expect((await fill()).entries).toBe(before.entries + per);
    await w.h.berth('rm', '-f', 'r');
  });

  it('a restart with another size rewrites the table; out-of-range sizes are refused naming them', async () => {
    const before = await fill();
    await w.h.kill('SIGTERM');
    await expect(w.h.start(['--datapath', 'bpf', '--pub-max', '8'])).rejects.toThrow(/--pub-max: '8' is not a number of entries; expected an integer from 16 to 1048576/);
    await expect(w.h.start(['--datapath', 'bpf', '--pub-max', 'lots'])).rejects.toThrow(/'lots' is not a number of entries/);
    await w.h.start(['--datapath', 'bpf', '--pub-max', '64']);
    expect(await fill()).toEqual({ entries: before.entries, max: 64 });
    for (const p of [9510, 9511, 9512, 9513]) expect(await reaches(p)).toBe('a');
  });
});
