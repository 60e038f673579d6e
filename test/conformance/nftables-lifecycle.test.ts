/**
 * The nftables datapath over berthd's life: berth's own tables with a
 * constant rule list, a change written as elements only, repair after
 * another tool flushed a chain, deleted a table or reloaded the whole
 * ruleset, the operator's `user` chain, reconcile on restart, and other
 * tools' tables left alone. In test-made namespaces only; nft runs inside
 * the host namespace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/exec.js';
import { UPLINK } from '../../harness/berthd.js';
import { Agent, World } from '../helpers/conformance.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => Promise<boolean>, ms = 5000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    // a table another tool just deleted cannot be listed yet: not repaired
    if (await ok().catch(() => false)) return Date.now() - t0;
    await sleep(100);
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

describe('berthd with --datapath nftables', () => {
  let w: World;
  let ext: Agent;
  const nft = async (...args: string[]) => (await run('ip', ['netns', 'exec', w.h.ns, 'nft', ...args])).stdout;
  /** berth's rules with their handles, chain by chain (no elements) */
  const rules = async () => (await nft('-a', '-t', 'list', 'table', 'inet', 'berth')).split('\n').filter((l) => /# handle \d+$/.test(l) && !/^\s*(table|chain|set|map|counter) /.test(l)).map((l) => l.trim());
  const elements = async (set: string) => (await nft('list', 'map', 'inet', 'berth', set)).replace(/\s+/g, ' ');

  beforeAll(async () => {
    w = await World.build('nftables', {
      networks: [{ name: 'n1', args: ['--subnet', '10.92.0.0/24'] }, { name: 'n2', args: ['--subnet', '10.93.0.0/24'] }],
      sandboxes: [{ name: 'a', network: 'n1', args: ['-p', '8080:80'] }, { name: 'b', network: 'n2' }],
      listen: { tcp: [80, 7000], udp: [] },
    }, ['--drift-check-ms', '200']);
    ext = w.agent('ext');
  }, 60_000);

  afterAll(async () => {
    await w?.destroy();
  }, 60_000);

  it('runs nftables as asked: berth\'s two tables, the published port an element of the DNAT map', async () => {
    expect(w.h.logs).toMatch(/"datapath":"nftables","reason":"[^"]+","msg":"datapath chosen"/);
    expect((await nft('list', 'tables')).split('\n').filter((l) => / berth$/.test(l)).sort()).toEqual(['table bridge berth', 'table inet berth']);
    expect(await elements('pubany4')).toContain(`tcp . 8080 : ${w.sb('a').v4} . 80`);
    expect((await w.agent('b').probe('tcp', w.sb('a').v4, 7000)).ok).toBe(false);
    expect((await ext.probe('tcp', UPLINK.host, 8080)).reply?.by).toBe('a');
  });

  it('a change is elements only: the rules and their handles stay, the new ports are elements', async () => {
    const before = await rules();
    expect(before.length).toBeGreaterThan(20);
    await w.h.berth('run', '-d', '--name', 'c', '--network', 'n1', '-p', '8085:80', '-p', '9000-9099:9000-9099', '--', 'sleep', 'infinity');
    try {
      expect(await rules()).toEqual(before);
      expect(await elements('pubany4')).toContain('tcp . 8085 :');
      expect(await elements('dnat4')).toContain(`0.0.0.0/0 . 0.0.0.0/0 . tcp . 9000-9099 : ${w.sb('a').v4.replace(/\.\d+$/, '.')}`);
    } finally {
      await w.h.berth('rm', '-f', 'c');
    }
    expect(await rules()).toEqual(before);
    expect(await elements('pubany4')).not.toContain('8085');
  });

  it('repairs a flushed chain; with berthd frozen the flush really opened the networks to each other', async () => {
    const before = await rules();
    process.kill(w.h.proc!.pid!, 'SIGSTOP');
    try {
      await nft('flush', 'chain', 'inet', 'berth', 'filter_forward');
      expect((await w.agent('b').probe('tcp', w.sb('a').v4, 7000)).ok, 'with filter_forward flushed, isolation is gone').toBe(true);
    } finally {
      process.kill(w.h.proc!.pid!, 'SIGCONT');
    }
    await until('filter_forward repaired', async () => (await rules()).length === before.length);
    expect(w.h.logs).toMatch(/berth nftables tables changed outside berth/);
    expect((await w.agent('b').probe('tcp', w.sb('a').v4, 7000)).ok).toBe(false);
  });

  it.each([
    ['a deleted bridge table', ['delete', 'table', 'bridge', 'berth']],
    ['a deleted rule', ['delete', 'rule', 'inet', 'berth', 'post_nat', 'handle', 'HANDLE']],
    ['a firewall reload that flushes the whole ruleset', ['flush', 'ruleset']],
  ])('repairs %s', async (_what, cmd) => {
    const count = (await rules()).length;
    if (cmd.includes('HANDLE')) {
      const h = /handle (\d+)$/.exec((await nft('-a', 'list', 'chain', 'inet', 'berth', 'post_nat')).split('\n').find((l) => /masquerade/.test(l))!)![1]!;
      cmd = cmd.map((x) => (x === 'HANDLE' ? h : x));
    }
    await nft(...cmd);
    await until('repaired', async () => (await rules()).length === count && /table bridge berth/.test(await nft('list', 'tables')));
    expect(await elements('pubany4')).toContain('tcp . 8080 :');
    expect((await ext.probe('tcp', UPLINK.host, 8080)).reply?.by).toBe('a');
  });

  it('runs the operator\'s rules in chain user first, never flushes them, and does not take them for drift', async () => {
    await nft('add', 'rule', 'inet', 'berth', 'user', 'ip', 'saddr', UPLINK.ext, 'tcp', 'dport', '80', 'drop');
    try {
      expect((await ext.probe('tcp', UPLINK.host, 8080)).ok).toBe(false);
      await sleep(600);
      expect(w.h.logs).not.toMatch(/changed outside berth[^\n]*\n[^\n]*user/);
      await w.h.berth('run', '-d', '--name', 'c', '--network', 'n1', '--', 'sleep', 'infinity');
      expect(await nft('list', 'chain', 'inet', 'berth', 'user')).toContain(`ip saddr ${UPLINK.ext} tcp dport 80 drop`);
      expect((await ext.probe('tcp', UPLINK.host, 8080)).ok).toBe(false);
    } finally {
      await nft('flush', 'chain', 'inet', 'berth', 'user');
      await w.h.berth('rm', '-f', 'c');
    }
    expect((await ext.probe('tcp', UPLINK.host, 8080)).reply?.by).toBe('a');
  });

  it('on start, rewrites its tables whole (a rule of its own it did not write goes) and leaves other tools\' tables alone', async () => {
    const before = await rules();
    await w.h.kill('SIGKILL');
    await nft('insert', 'rule', 'inet', 'berth', 'filter_forward', 'accept');
    await nft('add', 'table', 'inet', 'other; add chain inet other c { type filter hook forward priority 10; }; add rule inet other c iifname "eth9" accept');
    await w.h.start(['--datapath', 'nftables', '--drift-check-ms', '200']);
    try {
      const after = await rules();
      expect(after.length).toBe(before.length);
      expect(after.some((l) => /^accept #/.test(l))).toBe(false);
      expect(await nft('list', 'table', 'inet', 'other')).toContain('iifname "eth9" accept');
      expect((await w.agent('b').probe('tcp', w.sb('a').v4, 7000)).ok).toBe(false);
      expect((await ext.probe('tcp', UPLINK.host, 8080)).reply?.by).toBe('a');
    } finally {
      await nft('delete', 'table', 'inet', 'other');
    }
  });

  it('status counts drops by reason from the named counters', async () => {
    const d = JSON.parse((await w.h.berth('datapath', '--format', 'json')).stdout) as { kind: string; detail: { drops: Record<string, { packets: number }>; elements: Record<string, number> } };
    expect(d.kind).toBe('nftables');
    const before = d.detail.drops.isolation?.packets ?? 0;
    expect((await w.agent('b').probe('tcp', w.sb('a').v4, 7000)).ok).toBe(false);
    const after = (JSON.parse((await w.h.berth('datapath', '--format', 'json')).stdout) as typeof d).detail.drops.isolation?.packets ?? 0;
    expect(after).toBeGreaterThan(before);
    expect(d.detail.elements.pubany4).toBeGreaterThanOrEqual(1);
  });
});
