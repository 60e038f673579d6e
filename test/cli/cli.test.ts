/** The berth command as a user runs it (the compiled CLI, in a child process). */
import { describe, expect, it } from 'vitest';
import { run } from '../../src/exec.js';
import { listNetns } from '../../harness/topology.js';
import { projectPath } from '../../src/paths.js';
import type { DemoResult } from '../../harness/demo/index.js';

const berth = (...args: string[]) => run('node', [projectPath('dist', 'src', 'cli', 'berth.cjs'), ...args], { timeoutMs: 60_000 });

describe('berth doctor', () => {
  it('prints a table naming the libbpf build and the datapath', async () => {
    const { stdout } = await berth('doctor');
    expect(stdout).toMatch(/^libbpf\s+v1\.5 \(in-tree, static\)$/m);
    expect(stdout).toMatch(/^datapath\s+bpf: kernel .* has everything the eBPF datapath needs/m);
  });

  it('--format json parses and agrees', async () => {
    const r = JSON.parse((await berth('doctor', '--format', 'json')).stdout);
    expect(r.libbpf.inTree).toBe(true);
    expect(r.datapath).toMatchObject({ choice: 'bpf', bpfCapable: true });
  });

  it('refuses an unknown format, naming it', async () => {
    await expect(berth('doctor', '--format', 'yaml')).rejects.toThrow(/'yaml' is invalid/);
  });
});

describe('berth demo', () => {
  it('counts real packets in its own topology and removes it', async () => {
    const r = JSON.parse((await berth('demo', '--format', 'json')).stdout) as DemoResult;
    const get = (ifname: string, hook: string) => r.counts.find((c) => c.ifname === ifname && c.hook === hook)?.packets ?? 0;
    // 5 pings in and 5 replies out on the uplink, 3 pings in on the container side (plus ARP, maybe IPv6 chatter).
    expect(get('uplink0', 'tc-ingress')).toBeGreaterThanOrEqual(5);
    expect(get('uplink0', 'tc-egress')).toBeGreaterThanOrEqual(5);
    expect(get('c1-host', 'xdp')).toBeGreaterThanOrEqual(6);
    expect(r.drops).toEqual([{ reason: 'proto-filter', packets: 3 }]);
    expect(r.udpDelivered).toBe(false);
    expect(r.events.some((e) => e.src === '198.18.0.2' && e.dst === '198.18.0.1' && e.l4proto === 1)).toBe(true);
    expect(r.attachments).toHaveLength(4);
    expect(r.controlPlane.sandboxes.map((s) => s.name).sort()).toEqual(['client', 'web']);
    const web = r.controlPlane.sandboxes.find((s) => s.name === 'web')!;
    expect(r.controlPlane.resolved).toMatch(new RegExp(`^${web.ip.replace(/\./g, '\\.')}\\s+web$`));
    expect(r.controlPlane.pingOk).toBe(true);
    // The eBPF datapath: published port from outside with the client's address, masquerade, icc=false with a link.
    const p = r.controlPlane.packets;
    expect(r.controlPlane.datapath).toBe('bpf');
    expect(p.published).toMatchObject({ ok: true, peer: '198.18.0.2' });
    expect(p.masquerade).toMatchObject({ ok: true, peer: '198.18.0.1' });
    expect(p.link.ok).toBe(true);
    expect([p.linkOtherPort.ok, p.linkReverse.ok]).toEqual([false, false]);
    expect(p.drops.icc?.packets).toBeGreaterThanOrEqual(2);
    expect(await listNetns('berth-demo-')).toEqual([]);
  });
});
