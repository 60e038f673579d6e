/**
 * `--datapath auto` on a host where BPF is unavailable: berthd runs without
 * CAP_BPF, CAP_SYS_ADMIN and CAP_PERFMON (dropped from its bounding set with
 * setpriv), so the kernel refuses its probe programs. It must pick nftables
 * (nft is installed here; iptables only without it), say why, and refuse
 * `--datapath bpf` naming what is missing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/client.cjs';
import { BerthdProcess } from '../../harness/berthd.js';
import { removeLeftovers } from '../../harness/leftovers.js';
import { run } from '../../src/exec.js';
import type { Topology } from '../../harness/topology.js';
import { testTopology } from '../helpers/kernel.js';

const NO_BPF = ['setpriv', '--bounding-set', '-bpf,-sys_admin,-perfmon', '--'];

let topo: Topology;
let dir: string;

beforeAll(async () => {
  topo = testTopology();
  await topo.addNetns('host');
  dir = await mkdtemp(join(tmpdir(), 'berth-test-state-'));
});

afterAll(async () => {
  await removeLeftovers(dir);
  await rm(dir, { recursive: true, force: true });
  await topo?.destroy();
});

describe('a berthd that may not use BPF', () => {
  it('--datapath auto picks nftables, says why, and programs it', async () => {
    const d = await BerthdProcess.start(topo.nsPath('host'), ['--state-dir', dir, '--socket', join(dir, 's.sock'), '--resolv-conf', '/dev/null', '--log-level', 'info'], { wrapper: NO_BPF });
    try {
      const info = await new ApiClient(join(dir, 's.sock')).call<{ datapath: { choice: string; reason: string; bpfMissing: string[] } }>('GET', '/v1/info');
      expect(info.datapath.choice).toBe('nftables');
      expect(info.datapath.reason).toMatch(/^eBPF datapath unavailable: missing CAP_BPF \(or CAP_SYS_ADMIN\), tc BPF programs \(sched_cls\)/);
      expect(info.datapath.bpfMissing).toContain('CAP_BPF (or CAP_SYS_ADMIN)');
      expect(d.logs).toMatch(/"datapath":"nftables","reason":"eBPF datapath unavailable: missing CAP_BPF/);
      const masq = (await run('ip', ['netns', 'exec', topo.ns('host'), 'nft', 'list', 'set', 'inet', 'berth', 'masqsrc4'])).stdout;
      expect(masq).toMatch(/elements = \{ 172\.17\.0\.0\/16 \}/);
    } finally {
      await d.stop('SIGTERM');
    }
  });

  it('--datapath bpf refuses to start, naming what is missing', async () => {
    const r = await run('nsenter', [`--net=${topo.nsPath('host')}`, '--', ...NO_BPF, process.execPath, 'dist/src/daemon/berthd.js', '--state-dir', dir, '--socket', join(dir, 's.sock'), '--datapath', 'bpf']).then(
      () => 'started',
      (e: Error) => e.message,
    );
    expect(r).toMatch(/--datapath bpf: .*lacks CAP_BPF \(or CAP_SYS_ADMIN\), tc BPF programs \(sched_cls\)/);
  });
});
