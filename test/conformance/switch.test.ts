/**
 * Switching datapaths across a restart: berthd started with another
 * datapath removes everything of the one before (iptables chains and rules,
 * berth's nftables tables, or the eBPF datapath's attachments and pins) and
 * serves the same sandboxes with the new one.
 */
import { readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/exec.js';
import { UPLINK } from '../../harness/berthd.js';
import { World } from '../helpers/conformance.js';

describe('switching datapath across a restart', () => {
  let w: World;
  const rules = async () => {
    const out: string[] = [];
    for (const cmd of ['iptables-save', 'ip6tables-save']) out.push(...(await run('ip', ['netns', 'exec', w.h.ns, cmd])).stdout.split('\n'));
    return out.filter((l) => /BERTH/.test(l));
  };
  const programs = async () => (JSON.parse((await w.h.berth('datapath', '--format', 'json')).stdout) as { detail: { programs?: Record<string, number>; attachments?: number } }).detail;
  /** Whether the kernel still has program @id (loaded by anyone). */
  const progExists = async (id: number) => (await run('bpftool', ['prog', 'show', 'id', String(id)]).then(() => true, () => false));
  let progIds: number[] = [];
  const pins = async () => {
    const root = join(w.h.bpffs!.path, 'berth');
    return existsSync(root) ? readdir(root) : [];
  };
  const reach = async () => (await w.agent('ext').probe('tcp', UPLINK.host, 8080)).reply;
  /** berth's nftables tables in the test host's namespace */
  const nftTables = async () => (await run('ip', ['netns', 'exec', w.h.ns, 'nft', 'list', 'tables'])).stdout.split('\n').filter((l) => / berth$/.test(l.trim()));

  beforeAll(async () => {
    w = await World.build('iptables', {
      networks: [{ name: 'sw', args: ['--subnet', '10.88.0.0/24'] }],
      sandboxes: [{ name: 'a', network: 'sw', args: ['-p', '8080:80'] }],
      listen: { tcp: [80], udp: [] },
    });
  }, 60_000);

  afterAll(async () => {
    await w?.destroy();
  }, 60_000);

  it('iptables -> bpf: no chain of berth\'s stays, the programs serve the published port', async () => {
    expect((await rules()).length).toBeGreaterThan(0);
    expect((await reach())?.by).toBe('a');
    await w.h.kill('SIGKILL');
    await w.h.start(['--datapath', 'bpf']);
    expect(await rules()).toEqual([]);
    const d = await programs();
    expect(d.attachments).toBeGreaterThanOrEqual(3);
    progIds = Object.values(d.programs ?? {});
    expect(progIds).toHaveLength(3);
    for (const id of progIds) expect(await progExists(id)).toBe(true);
    expect(await pins()).toContain('berth_dp_ct');
    expect(await reach()).toMatchObject({ by: 'a', peer: UPLINK.ext });
  });

  it('bpf -> iptables: no program or pin of berth\'s stays, the rules serve the published port', async () => {
    await w.h.kill('SIGKILL');
    await w.h.start(['--datapath', 'iptables']);
    expect(await pins()).toEqual([]);
    // Detached and unpinned, the programs are gone from the kernel.
    for (const id of progIds) expect(await progExists(id), `program ${id}`).toBe(false);
    expect((await rules()).some((l) => l.includes('--dport 8080'))).toBe(true);
    expect(await reach()).toMatchObject({ by: 'a', peer: UPLINK.ext });
  });

  it('iptables -> nftables: no chain of berth\'s stays, berth\'s own tables serve the published port', async () => {
    expect(await nftTables()).toEqual([]);
    await w.h.kill('SIGKILL');
    await w.h.start(['--datapath', 'nftables']);
    expect(await rules()).toEqual([]);
    expect((await nftTables()).sort()).toEqual(['table bridge berth', 'table inet berth']);
    expect(await reach()).toMatchObject({ by: 'a', peer: UPLINK.ext });
  });

  it('nftables -> bpf -> nftables: no table of berth\'s stays, then no program or pin', async () => {
    await w.h.kill('SIGKILL');
    await w.h.start(['--datapath', 'bpf']);
    expect(await nftTables()).toEqual([]);
    const ids = Object.values((await programs()).programs ?? {});
    expect(ids).toHaveLength(3);
    expect(await reach()).toMatchObject({ by: 'a', peer: UPLINK.ext });
    await w.h.kill('SIGKILL');
    await w.h.start(['--datapath', 'nftables']);
    expect(await pins()).toEqual([]);
    for (const id of ids) expect(await progExists(id), `program ${id}`).toBe(false);
    expect(await rules()).toEqual([]);
    expect(await reach()).toMatchObject({ by: 'a', peer: UPLINK.ext });
  });

  it('nftables -> iptables: no table of berth\'s stays', async () => {
    await w.h.kill('SIGKILL');
    await w.h.start(['--datapath', 'iptables']);
    expect(await nftTables()).toEqual([]);
    expect((await rules()).some((l) => l.includes('--dport 8080'))).toBe(true);
    expect(await reach()).toMatchObject({ by: 'a', peer: UPLINK.ext });
  });
});
