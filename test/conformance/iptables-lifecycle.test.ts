/**
 * The datapath over berthd's life: which one `--datapath auto` picks and why,
 * repair after another tool flushed or reloaded the tables, the operator's
 * BERTH-USER hook, reconcile on restart, and nothing of berth's left once its
 * networks are gone or the datapath is torn down. In test-made namespaces
 * only; iptables commands run inside the host namespace.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import type { Topology } from '../../harness/topology.js';
import { testTopology } from '../helpers/kernel.js';
import { UPLINK } from '../../harness/berthd.js';
import { Agent, World } from '../helpers/conformance.js';

const DRIVER = projectPath('test', 'conformance', 'dp-driver.mjs');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function apiGet(socket: string, path: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath: socket, path }, (r) => {
      let body = '';
      r.on('data', (d: Buffer) => (body += d.toString()));
      r.on('end', () => resolve(JSON.parse(body) as Record<string, unknown>));
    }).on('error', reject);
  });
}

/** berth's lines in iptables-save (v4 and v6) and ebtables-save of namespace @ns, without comments. */
async function berthLines(ns: string): Promise<string[]> {
  const out: string[] = [];
  for (const [tool, tag] of [['iptables-save', '4'], ['ip6tables-save', '6'], ['ebtables-save', 'eb']] as const) {
    const { stdout } = await run('ip', ['netns', 'exec', ns, tool]);
    let table = '';
    for (const l of stdout.split('\n')) {
      if (l.startsWith('*')) table = l.slice(1);
      if (/BERTH-/.test(l)) out.push(`${tag} ${table} ${l.replace(/ \[\d+:\d+\]$/, '')}`);
    }
  }
  return out;
}

async function until(what: string, ok: () => Promise<boolean>, ms = 5000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await ok()) return Date.now() - t0;
    await sleep(100);
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

describe('berthd with --datapath iptables', () => {
  let w: World;
  const ns = () => w.h.ns;
  const ipt = (...args: string[]) => run('ip', ['netns', 'exec', ns(), ...args]);
  let ext: Agent;

  beforeAll(async () => {
    w = await World.build('iptables', {
      networks: [{ name: 'n1', args: ['--subnet', '10.90.0.0/24'] }, { name: 'n2', args: ['--subnet', '10.91.0.0/24'] }],
      sandboxes: [{ name: 'a', network: 'n1', args: ['-p', '8080:80'] }, { name: 'b', network: 'n2' }],
      listen: { tcp: [80, 7000], udp: [] },
    }, ['--drift-check-ms', '200']);
    ext = w.agent('ext');
  }, 60_000);

  afterAll(async () => {
    await w?.destroy();
  }, 60_000);

  it('runs iptables as asked and says so (API and log)', async () => {
    const info = await apiGet(w.h.socket, '/v1/info');
    expect(info.datapath).toMatchObject({ requested: 'iptables', choice: 'iptables', reason: 'requested with --datapath iptables' });
    expect(w.h.logs).toMatch(/"datapath":"iptables","reason":"[^"]+","msg":"datapath chosen"/);
    expect((await berthLines(ns())).some((l) => l.includes('-A BERTH-DNAT') && l.includes('--dport 8080'))).toBe(true);
  });

  it('is isolated and published as expected before anything is disturbed', async () => {
    expect((await w.agent('b').probe('tcp', w.sb('a').v4, 7000)).ok).toBe(false);
    expect((await ext.probe('tcp', UPLINK.host, 8080)).reply?.by).toBe('a');
  });

  it('repairs a flush of its chain by another process, and the policy holds again', async () => {
    const before = await berthLines(ns());
    // Frozen, berthd cannot repair yet: the flush really opens the networks to each other.
    process.kill(w.h.proc!.pid!, 'SIGSTOP');
    try {
      await ipt('iptables', '-F', 'BERTH-FORWARD');
      expect((await w.agent('b').probe('tcp', w.sb('a').v4, 7000)).ok, 'with BERTH-FORWARD flushed, isolation is gone').toBe(true);
    } finally {
      process.kill(w.h.proc!.pid!, 'SIGCONT');
    }
    const ms = await until('BERTH-FORWARD repaired', async () => JSON.stringify(await berthLines(ns())) === JSON.stringify(before));
    expect(ms).toBeLessThan(3000);
    expect(w.h.logs).toMatch(/berth rules changed outside berth/);
    expect((await w.agent('b').probe('tcp', w.sb('a').v4, 7000)).ok).toBe(false);
  });

  it.each([
    ['a deleted FORWARD jump', ['iptables', '-D', 'FORWARD', '-j', 'BERTH-FORWARD']],
    ['a flushed raw chain (IPv6)', ['ip6tables', '-t', 'raw', '-F', 'BERTH-PREROUTING']],
    ['a flushed ebtables chain', ['ebtables', '-t', 'nat', '-F', 'BERTH-ANTISPOOF']],
    ['a firewall reload that drops every berth rule', ['sh', '-c', 'iptables-save | grep -v BERTH | iptables-restore']],
    ['ip_forward turned off', ['sysctl', '-qw', 'net.ipv4.ip_forward=0']],
  ])('repairs %s', async (_what, cmd) => {
    const before = await berthLines(ns());
    await ipt(...cmd);
    await until('repaired', async () => JSON.stringify(await berthLines(ns())) === JSON.stringify(before) && (await ipt('sysctl', '-n', 'net.ipv4.ip_forward')).stdout.trim() === '1');
    // FORWARD order: the operator's hook first, then berth's.
    const fwd = (await ipt('iptables', '-S', 'FORWARD')).stdout.split('\n').filter((l) => l.includes('BERTH-'));
    expect(fwd).toEqual(['-A FORWARD -j BERTH-USER', '-A FORWARD -j BERTH-FORWARD']);
    expect((await ext.probe('tcp', UPLINK.host, 8080)).reply?.by).toBe('a');
  });

  it('runs the operator\'s BERTH-USER rules first and never flushes them', async () => {
    await ipt('iptables', '-A', 'BERTH-USER', '-s', `${UPLINK.ext}/32`, '-p', 'tcp', '--dport', '80', '-j', 'DROP');
    try {
      expect((await ext.probe('tcp', UPLINK.host, 8080)).ok).toBe(false);
      // A change makes berth apply everything again: the operator's rule stays, and still wins.
      await w.h.berth('run', '-d', '--name', 'c', '--network', 'n1', '--', 'sleep', 'infinity');
      expect((await ipt('iptables', '-S', 'BERTH-USER')).stdout).toContain(`-s ${UPLINK.ext}/32`);
      expect((await ext.probe('tcp', UPLINK.host, 8080)).ok).toBe(false);
    } finally {
      await ipt('iptables', '-D', 'BERTH-USER', '-s', `${UPLINK.ext}/32`, '-p', 'tcp', '--dport', '80', '-j', 'DROP');
      await w.h.berth('rm', '-f', 'c');
    }
    expect((await ext.probe('tcp', UPLINK.host, 8080)).reply?.by).toBe('a');
  });

  it('on start, removes rules of its own it did not write and restores missing ones, and what an interrupted explain left', async () => {
    const before = await berthLines(ns());
    await w.h.kill('SIGKILL');
    await ipt('iptables', '-I', 'BERTH-FORWARD', '-j', 'ACCEPT');
    await ipt('iptables', '-t', 'nat', '-D', 'POSTROUTING', '-j', 'BERTH-POSTROUTING');
    // ... and what an explain interrupted by the kill would have left: its trace table and its veth pair.
    await ipt('nft', 'add table inet berth_explain; add chain inet berth_explain post { type filter hook postrouting priority 500; }');
    await ipt('ip', 'link', 'add', 'berthxoabc123', 'type', 'veth', 'peer', 'name', 'berthxiabc123');
    expect(await berthLines(ns())).not.toEqual(before);
    await w.h.start(['--datapath', 'iptables', '--drift-check-ms', '200']);
    expect(await berthLines(ns())).toEqual(before);
    expect((await ipt('nft', 'list', 'tables')).stdout).not.toContain('berth_explain');
    expect((await ipt('ip', '-br', 'link')).stdout).not.toMatch(/^berthx[io]abc123/m);
    expect((await ext.probe('tcp', UPLINK.host, 8080)).reply?.by).toBe('a');
  });

  it('keeps nothing of removed sandboxes and networks: only the default bridge\'s rules stay', async () => {
    await w.h.berth('rm', '-f', 'a', 'b');
    await w.h.berth('network', 'rm', 'n1', 'n2');
    const lines = await berthLines(ns());
    expect(lines.filter((l) => /bb-|bv[0-9a-f]|10\.9[01]\.|--dport 8080/.test(l))).toEqual([]);
    // What remains is the default bridge (berth0), which cannot be removed.
    expect(lines.some((l) => l.includes('berth0'))).toBe(true);
  });
});

describe('the iptables datapath on its own (apply and teardown in a fresh namespace)', () => {
  let topo: Topology;
  let ns: string;
  const ipt = (...args: string[]) => run('ip', ['netns', 'exec', ns, ...args]);
  const drive = (...steps: string[]) => new Promise<string>((resolve, reject) => {
    const c = spawn('nsenter', [`--net=${topo.nsPath('dp')}`, '--', process.execPath, DRIVER, ...steps], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`dp-driver ${steps.join(' ')} failed (${code}): ${err}`))));
  });
  /** Everyone else's rules and non-default policies. */
  const others = async () => {
    const parts: string[] = [];
    for (const tool of ['iptables-save', 'ip6tables-save', 'ebtables-save']) {
      let table = '';
      for (const l of (await ipt(tool)).stdout.split('\n')) {
        if (l.startsWith('*')) table = l;
        // Their rules, and every policy that is not the default (a table berth's apply creates comes with ACCEPT policies).
        if ((l.startsWith('-A ') && !/BERTH-/.test(l)) || (/^:[A-Z]+ (DROP|RETURN)/.test(l))) parts.push(`${tool} ${table} ${l.replace(/ \[\d+:\d+\]$/, '')}`);
      }
    }
    return parts;
  };

  beforeAll(async () => {
    topo = testTopology();
    ns = await topo.addNetns('dp');
    // Someone else's firewall: a policy and rules berth must leave exactly as they are.
    await ipt('iptables', '-P', 'FORWARD', 'DROP');
    await ipt('iptables', '-A', 'FORWARD', '-i', 'eth9', '-j', 'ACCEPT');
    await ipt('iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'eth9', '-j', 'MASQUERADE');
    await ipt('ip6tables', '-A', 'INPUT', '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT');
    await ipt('ebtables', '-t', 'nat', '-A', 'PREROUTING', '-i', 'eth9', '-j', 'ACCEPT');
  });

  afterAll(async () => {
    await topo?.destroy();
  });

  it('apply() of an empty desired state leaves the jumps and empty chains, and changes nobody else\'s rules', async () => {
    const theirs = await others();
    expect(theirs).toHaveLength(5);
    await drive('apply-empty', 'apply-empty');
    const lines = await berthLines(ns);
    const rules = lines.filter((l) => / -A BERTH-/.test(l));
    expect(rules, 'no rule inside berth chains').toEqual([]);
    const jumps = lines.filter((l) => / -A [A-Z]+ .*-j BERTH-/.test(l));
    expect(jumps).toEqual([
      '4 raw -A PREROUTING -j BERTH-PREROUTING',
      '4 filter -A INPUT -j BERTH-INPUT',
      '4 filter -A FORWARD -j BERTH-USER',
      '4 filter -A FORWARD -j BERTH-FORWARD',
      '4 nat -A PREROUTING ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j BERTH-DNAT',
      '4 nat -A OUTPUT -m addrtype --dst-type LOCAL -j BERTH-DNAT',
      '4 nat -A POSTROUTING -j BERTH-POSTROUTING',
      '6 raw -A PREROUTING -j BERTH-PREROUTING',
      '6 filter -A INPUT -j BERTH-INPUT',
      '6 filter -A FORWARD -j BERTH-USER',
      '6 filter -A FORWARD -j BERTH-FORWARD',
      '6 nat -A PREROUTING ! -d ::1/128 -m addrtype --dst-type LOCAL -j BERTH-DNAT',
      '6 nat -A OUTPUT ! -d ::1/128 -m addrtype --dst-type LOCAL -j BERTH-DNAT',
      '6 nat -A POSTROUTING -j BERTH-POSTROUTING',
      'eb nat -A PREROUTING -j BERTH-ANTISPOOF',
    ]);
    // berth's jumps go first; everyone else's rules and policies are unchanged.
    expect((await ipt('iptables', '-S', 'FORWARD')).stdout.split('\n').slice(0, 4)).toEqual(['-P FORWARD DROP', '-A FORWARD -j BERTH-USER', '-A FORWARD -j BERTH-FORWARD', '-A FORWARD -i eth9 -j ACCEPT']);
    expect(await others()).toEqual(theirs);
  });

  it('drifted() sees a change made by someone else, and a new apply puts it right', async () => {
    const out = await drive('apply-empty', 'drifted', 'run:iptables -A BERTH-FORWARD -j DROP', 'drifted', 'apply-empty', 'drifted', 'run:iptables -D FORWARD -j BERTH-USER', 'drifted', 'apply-empty');
    expect(out.trim().split('\n').map((l) => (JSON.parse(l) as { drifted: boolean }).drifted)).toEqual([false, true, false, true]);
    expect((await berthLines(ns)).filter((l) => / -A BERTH-/.test(l))).toEqual([]);
    expect((await ipt('iptables', '-S', 'FORWARD')).stdout.split('\n').slice(1, 3)).toEqual(['-A FORWARD -j BERTH-USER', '-A FORWARD -j BERTH-FORWARD']);
  });

  it('teardown() removes every jump and chain of berth\'s, BERTH-USER included, and nothing else', async () => {
    const theirs = await others();
    await ipt('iptables', '-A', 'BERTH-USER', '-j', 'RETURN');
    await drive('apply-empty', 'teardown');
    expect(await berthLines(ns)).toEqual([]);
    expect(await others()).toEqual(theirs);
    expect((await ipt('iptables', '-S', 'FORWARD')).stdout.split('\n')[0]).toBe('-P FORWARD DROP');
    // Idempotent: nothing left to remove is no error.
    await drive('teardown');
  });
});
