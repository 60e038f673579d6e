/**
 * `berth doctor`: what this host offers berth, which datapath berth would run
 * and why. Read-only: probes load throwaway programs and attach nothing.
 */
import { addon, type ProbeResult } from '../native/addon.js';
import { BPFFS_ROOT } from '../bpf/bpffs.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readDrops } from '../datapath/bpf/counters.js';
import { tryRun } from '../exec.js';
import { askDaemon, formatDaemon, type DaemonReport } from './daemon.js';

export interface ToolInfo {
  present: boolean;
  version?: string;
  /** iptables only: which backend the binary drives */
  backend?: 'nf_tables' | 'legacy';
}

export interface DatapathChoice {
  choice: 'bpf' | 'nftables' | 'iptables' | 'none';
  reason: string;
  /** the kernel and privileges would carry the eBPF datapath */
  bpfCapable: boolean;
  /** what the bpf datapath lacks here; empty when it is usable */
  bpfMissing: string[];
}

export interface DoctorReport {
  kernel: string;
  libbpf: { version: string; mode: 'in-tree' | 'system'; inTree: boolean };
  bpf: ProbeResult;
  xdp: { native: string; generic: boolean };
  tools: { iptables: ToolInfo; ip6tables: ToolInfo; iptablesRestore: ToolInfo; nft: ToolInfo; ip: ToolInfo };
  datapath: DatapathChoice;
  /** the pinned eBPF datapath's drops by reason (the verdict counters), when one is pinned in the bpffs */
  drops: { pinned: string; byReason: Record<string, { packets: number; bytes: number }> } | null;
  warnings: string[];
  /** the berthd at the socket asked about (`berth doctor`), when one was */
  daemon?: DaemonReport;
}

async function tool(cmd: string, args: string[]): Promise<ToolInfo> {
  try {
    const r = await tryRun(cmd, args, { timeoutMs: 5000 });
    const text = (r.stdout + r.stderr).trim().split('\n')[0] ?? '';
    return { present: true, version: text };
  } catch {
    return { present: false };
  }
}

/** What the bpf datapath needs that @p lacks. */
export function bpfMissing(p: ProbeResult): string[] {
  const missing: string[] = [];
  if (!p.caps.bpf && !p.caps.sysAdmin) missing.push('CAP_BPF (or CAP_SYS_ADMIN)');
  if (!p.caps.netAdmin) missing.push('CAP_NET_ADMIN');
  if (!p.btf) missing.push('kernel BTF (/sys/kernel/btf/vmlinux)');
  if (!p.progSchedCls) missing.push(`tc BPF programs (sched_cls)${p.progLoadError ? `: ${p.progLoadError}` : ''}`);
  if (!p.ringbuf) missing.push('BPF ring buffer maps');
  return missing;
}

/** What `--datapath auto` runs on this host, and why. */
export function chooseDatapath(p: ProbeResult, iptables: ToolInfo, nft?: ToolInfo): DatapathChoice {
  const missing = bpfMissing(p);
  if (missing.length === 0) {
    const hook = p.tcx ? 'tcx links' : 'clsact qdiscs (no tcx in this kernel)';
    return { choice: 'bpf', reason: `kernel ${p.kernel} has everything the eBPF datapath needs; tc programs attach through ${hook}`, bpfCapable: true, bpfMissing: [] };
  }
  // The fallback: berth's own nftables tables (sets and maps, O(1) in ports and pairs), else iptables chains.
  if (nft?.present) {
    return { choice: 'nftables', reason: `eBPF datapath unavailable: missing ${missing.join(', ')}; nft (${nft.version ?? 'present'}) carries the fallback`, bpfCapable: false, bpfMissing: missing };
  }
  if (iptables.present) {
    return { choice: 'iptables', reason: `eBPF datapath unavailable: missing ${missing.join(', ')}`, bpfCapable: false, bpfMissing: missing };
  }
  return { choice: 'none', reason: `eBPF datapath unavailable (missing ${missing.join(', ')}), nft is not installed and iptables is not installed`, bpfCapable: false, bpfMissing: missing };
}

/** @socket: also ask the berthd there for its datapath and effective configuration. */
export async function doctor(opts: { bpffs?: string; socket?: string } = {}): Promise<DoctorReport> {
  const a = addon();
  const lib = a.libbpf();
  const probe = await a.probe({ bpffs: opts.bpffs ?? BPFFS_ROOT });
  const [iptables, ip6tables, iptablesRestore, nft, ip] = await Promise.all([
    tool('iptables', ['-V']),
    tool('ip6tables', ['-V']),
    tool('iptables-restore', ['-V']),
    tool('nft', ['--version']),
    tool('ip', ['-V']),
  ]);
  if (iptables.version) iptables.backend = iptables.version.includes('nf_tables') ? 'nf_tables' : 'legacy';
  const warnings: string[] = [];
  const inTree = lib.mode === 'in-tree';
  if (!inTree) {
    warnings.push(`libbpf is the SYSTEM's ${lib.version}, not berth's pinned in-tree build: the source could not be fetched at build time`);
  }
  if (!probe.bpffs.mounted) {
    warnings.push(`bpffs is not mounted at ${probe.bpffs.path}: berthd mounts it before pinning`);
  }
  // The verdict counters live in a pinned map: readable whether berthd runs or not.
  const pin = join(probe.bpffs.path, 'berth', 'berth_dp_drops');
  let drops: DoctorReport['drops'] = null;
  if (existsSync(pin)) {
    try {
      drops = { pinned: pin, byReason: await readDrops(await a.openPinnedMap(pin)) };
    } catch (e) {
      warnings.push(`the datapath's drop counters at ${pin} are unreadable: ${(e as Error).message}`);
    }
  }
  const daemon = opts.socket ? await askDaemon(opts.socket) : undefined;
  for (const h of daemon?.routed ?? []) if (h.warning) warnings.push(h.warning);
  return {
    kernel: probe.kernel,
    libbpf: { version: lib.version, mode: lib.mode, inTree },
    bpf: probe,
    // Native XDP depends on the driver (veth has it); generic works on any device.
    xdp: { native: probe.progXdp ? 'driver-dependent (veth: yes)' : 'no', generic: probe.progXdp },
    tools: { iptables, ip6tables, iptablesRestore, nft, ip },
    datapath: chooseDatapath(probe, iptables, nft),
    drops,
    warnings,
    ...(daemon ? { daemon } : {}),
  };
}

const yes = (b: boolean) => (b ? 'yes' : 'NO');

export function formatDoctor(r: DoctorReport): string {
  const t = r.tools;
  const lines = [
    `kernel            ${r.kernel}`,
    `libbpf            ${r.libbpf.version} (${r.libbpf.inTree ? 'in-tree, static' : 'SYSTEM libbpf-dev: in-tree build unavailable'})`,
    `BTF               ${yes(r.bpf.btf)}`,
    `tc programs       ${yes(r.bpf.progSchedCls)}${r.bpf.progLoadError ? ` (${r.bpf.progLoadError})` : ''}`,
    `tcx links         ${yes(r.bpf.tcx)}`,
    `XDP               native: ${r.xdp.native}, generic: ${yes(r.xdp.generic)}`,
    `ring buffer       ${yes(r.bpf.ringbuf)}`,
    `bpffs             ${r.bpf.bpffs.path}: ${r.bpf.bpffs.mounted ? 'mounted' : 'not mounted'}`,
    `capabilities      CAP_BPF ${yes(r.bpf.caps.bpf)}, CAP_NET_ADMIN ${yes(r.bpf.caps.netAdmin)}, CAP_SYS_ADMIN ${yes(r.bpf.caps.sysAdmin)}`,
    `iptables          ${t.iptables.present ? `${t.iptables.version} [${t.iptables.backend}]` : 'not installed'}`,
    `ip6tables         ${t.ip6tables.present ? t.ip6tables.version : 'not installed'}`,
    `nft               ${t.nft.present ? t.nft.version : 'not installed'}`,
    `datapath          ${r.datapath.choice}: ${r.datapath.reason}`,
    `drops (bpf)       ${r.drops ? Object.entries(r.drops.byReason).map(([k, v]) => `${k}=${v.packets}`).join(' ') || 'none' : 'no eBPF datapath pinned here'}`,
  ];
  if (r.daemon) lines.push(...formatDaemon(r.daemon));
  for (const w of r.warnings) lines.push(`warning           ${w}`);
  return lines.join('\n');
}
