/**
 * The iptables programs berth drives: which backend the host uses (nf_tables
 * or legacy, from `iptables -V`), the matching save/restore binaries for
 * IPv4, IPv6 and ebtables, and running them. One restore per family per
 * change; never one process per rule.
 */
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { CommandError, run } from '../../exec.js';
import type { Family } from './chains.js';
import { parseSave, type Saved } from './restore.js';

export type Backend = 'nf_tables' | 'legacy';

export interface Tool {
  save: string;
  restore: string;
}

export interface Binaries {
  backend: Backend;
  /** `iptables -V`'s first line */
  version: string;
  /** absent: that family cannot be programmed here (said in status and the log) */
  tools: Partial<Record<Family, Tool>>;
}

const SEARCH = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

async function which(name: string): Promise<string | undefined> {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SEARCH];
  for (const d of dirs) {
    const p = join(d, name);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

async function firstOf(names: string[]): Promise<string | undefined> {
  for (const n of names) {
    const p = await which(n);
    if (p) return p;
  }
  return undefined;
}

/** undefined when iptables is not installed at all. */
export async function detectBinaries(): Promise<Binaries | undefined> {
  const iptables = await which('iptables');
  if (!iptables) return undefined;
  const { stdout, stderr } = await run(iptables, ['-V'], { timeoutMs: 5000 });
  const version = (stdout + stderr).trim().split('\n')[0] ?? '';
  // iptables before 1.8 has only the legacy backend and does not say so.
  const backend: Backend = version.includes('nf_tables') ? 'nf_tables' : 'legacy';
  const kind = backend === 'nf_tables' ? 'nft' : 'legacy';
  const tools: Partial<Record<Family, Tool>> = {};
  const names: Record<Family, string> = { ip4: 'iptables', ip6: 'ip6tables', eb: 'ebtables' };
  for (const f of ['ip4', 'ip6', 'eb'] as const) {
    // The generic names are the legacy programs on old systems; for ebtables only the backend-specific one is trusted.
    const generic = f === 'eb' || backend === 'nf_tables' ? [] : [`${names[f]}-restore`];
    const restore = await firstOf([`${names[f]}-${kind}-restore`, ...generic]);
    const save = await firstOf([`${names[f]}-${kind}-save`, ...(generic.length ? [`${names[f]}-save`] : [])]);
    if (restore && save) tools[f] = { save, restore };
  }
  return { backend, version, tools };
}

export class Tables {
  constructor(readonly bin: Binaries) {}

  async save(family: Family): Promise<Saved> {
    const t = this.bin.tools[family];
    if (!t) return new Map();
    return parseSave((await run(t.save, [], { timeoutMs: 30_000 })).stdout);
  }

  /** `*-save -c`: the same text with each rule's [packets:bytes] (drops.ts reads them). */
  async saveCounters(family: Family): Promise<string> {
    const t = this.bin.tools[family];
    if (!t) return '';
    return (await run(t.save, ['-c'], { timeoutMs: 30_000 })).stdout;
  }

  /** One atomic restore of @script (--noflush: only the chains it names change). */
  async restore(family: Family, script: string): Promise<void> {
    const t = this.bin.tools[family];
    if (!t || !script) return;
    // The legacy backend serialises writers with the xtables lock: wait for it rather than fail.
    const args = this.bin.backend === 'legacy' && family !== 'eb' ? ['-w', '10', '--noflush'] : ['--noflush'];
    try {
      await run(t.restore, args, { timeoutMs: 60_000, input: script });
    } catch (e) {
      // "line N failed": name the rule, so the error says what was refused.
      const n = /line (\d+) failed/.exec(e instanceof CommandError ? e.stderr : '')?.[1];
      if (n) (e as Error).message += ` (line ${n}: '${script.split('\n')[Number(n) - 1] ?? ''}')`;
      throw e;
    }
  }
}
