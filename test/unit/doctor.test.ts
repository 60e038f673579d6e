import { describe, expect, it } from 'vitest';
import { chooseDatapath, doctor } from '../../src/doctor/doctor.js';
import type { ProbeResult } from '../../src/native/addon.js';

const full: ProbeResult = {
  kernel: '6.18.0',
  btf: true,
  tcx: true,
  netkit: false,
  ringbuf: true,
  progSchedCls: true,
  progXdp: true,
  bpffs: { path: '/sys/fs/bpf', mounted: true },
  caps: { bpf: true, netAdmin: true, sysAdmin: true },
};

describe('berth doctor on this machine', () => {
  it('reports the in-tree libbpf the addon links, and the bpf datapath', async () => {
    const r = await doctor();
    expect(r.libbpf).toEqual({ version: 'v1.5', mode: 'in-tree', inTree: true });
    expect(r.bpf.btf).toBe(true);
    expect(r.bpf.tcx).toBe(true);
    expect(r.datapath.bpfCapable).toBe(true);
    expect(r.datapath.choice).toBe('bpf');
    expect(r.datapath.reason).toMatch(/has everything the eBPF datapath needs; tc programs attach through tcx links$/);
    expect(r.tools.iptables.present).toBe(true);
    expect(r.tools.iptables.backend).toMatch(/^(nf_tables|legacy)$/);
  });
});

describe('choosing a datapath', () => {
  it('picks bpf when nothing is missing', () => {
    expect(chooseDatapath(full, { present: true }).choice).toBe('bpf');
    expect(chooseDatapath(full, { present: false }).choice).toBe('bpf');
  });

  it('says clsact when the kernel has no tcx', () => {
    expect(chooseDatapath({ ...full, tcx: false }, { present: true }).reason).toMatch(/clsact qdiscs \(no tcx/);
  });

  it('falls back to iptables openly, naming what bpf lacks', () => {
    const c = chooseDatapath({ ...full, caps: { bpf: false, netAdmin: true, sysAdmin: false }, progSchedCls: false, progLoadError: 'Operation not permitted' }, { present: true });
    expect(c.choice).toBe('iptables');
    expect(c.reason).toBe('eBPF datapath unavailable: missing CAP_BPF (or CAP_SYS_ADMIN), tc BPF programs (sched_cls): Operation not permitted');
  });

  it('falls back to nftables before iptables when nft is installed, naming what bpf lacks', () => {
    const c = chooseDatapath({ ...full, btf: false }, { present: true }, { present: true, version: 'nftables v1.0.6 (Lester Gooch #5)' });
    expect(c.choice).toBe('nftables');
    expect(c.reason).toBe('eBPF datapath unavailable: missing kernel BTF (/sys/kernel/btf/vmlinux); nft (nftables v1.0.6 (Lester Gooch #5)) carries the fallback');
    expect(chooseDatapath({ ...full, btf: false }, { present: true }, { present: false }).choice).toBe('iptables');
    expect(chooseDatapath(full, { present: true }, { present: true }).choice).toBe('bpf');
  });

  it('says so when neither datapath is possible', () => {
    const c = chooseDatapath({ ...full, btf: false }, { present: false });
    expect(c.choice).toBe('none');
    expect(c.reason).toMatch(/kernel BTF .* and iptables is not installed/);
  });
});
