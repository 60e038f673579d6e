/**
 * Where the eBPF datapath's programs are attached: the uplink and host
 * programs as tcx links pinned under <root>/links (a new berthd attaches
 * next to the old and then detaches it: no gap), the sandbox program as a
 * cls_bpf filter on each sandbox's host-side veth.
 */
import { readdir, rm } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BpfLink } from '../../bpf/link.js';
import { addon } from '../../native/addon.js';
import { nl } from '../../netlink/index.js';
import { KDROPS_PIN, PROGRAMS, type Hook, type Loaded } from './programs.js';
import type { CompiledMaps } from './compile.js';

/** The cls_bpf filter carrying the sandbox program on a veth: berth's own handle and priority. */
const SANDBOX_FILTER = { handle: 0xbe7e, priority: 0xbe7 };

export class Attachments {
  /** pin path -> ifindex of every attachment this process made or adopted */
  readonly attached = new Map<string, number>();
  /** sandbox veth -> ifindex of the cls_bpf filters this process attached */
  private readonly filters = new Map<string, number>();

  constructor(readonly linkDir: string) {}

  get size(): number {
    return this.attached.size + this.filters.size;
  }

  pinPath(hook: Hook, ifname: string): string {
    return join(this.linkDir, `${hook}-${ifname}`);
  }

  /** The ifindex of an attached uplink, if any. */
  uplink(): number | undefined {
    return [...this.attached.entries()].find(([p]) => p.startsWith(this.pinPath('uplink', '')))?.[1];
  }

  /** Attaches each program where it belongs, replaces attachments of older programs, removes stale ones. */
  async sync(l: Loaded, c: CompiledMaps): Promise<number> {
    let changed = await this.syncSandboxFilters(l, c);
    const want = new Map<string, { hook: Hook; ifindex: number }>();
    for (const u of c.uplinks) want.set(this.pinPath('uplink', u.ifname), { hook: 'uplink', ifindex: u.ifindex });
    want.set(this.pinPath('host', 'lo'), { hook: 'host', ifindex: 1 });
    // a directory of a few pins: read synchronously (cheaper than a thread-pool round trip on every apply)
    const pinned = new Set(readdirSync(this.linkDir).map((f) => join(this.linkDir, f)));
    for (const [path, w] of want) {
      const prog = l.programs[w.hook];
      if (this.attached.get(path) === w.ifindex && pinned.has(path)) continue;
      const old = pinned.has(path) ? await BpfLink.fromPin(path).catch(() => undefined) : undefined;
      const oi = old?.info;
      if (old && oi && !oi.detached && oi.ifindex === w.ifindex && oi.progId === prog.info.id) {
        old.close();
        this.attached.set(path, w.ifindex);
        continue;
      }
      // The new program goes in first; the old one (an earlier berthd's) leaves after: no gap.
      const link = await prog.attachTc({ ifindex: w.ifindex, direction: PROGRAMS[w.hook].direction, mode: 'tcx' });
      try {
        if (old) {
          await old.detach().catch(() => undefined);
          old.close();
          await rm(path, { force: true });
        }
        await link.pin(path);
      } finally {
        link.close();
      }
      this.attached.set(path, w.ifindex);
      changed++;
    }
    for (const path of pinned) {
      if (want.has(path) || path === join(this.linkDir, KDROPS_PIN)) continue;
      await detachPin(path);
      this.attached.delete(path);
      changed++;
    }
    return changed;
  }

  /**
   * Sandbox veths carry the program as a cls_bpf filter at berth's own handle
   * and priority on their clsact qdisc, not as a tcx link: attaching a tcx
   * link waits for an RCU grace period (about 11 ms here, on every sandbox
   * attach), a filter does not. A filter needs no pin to outlive berthd, and
   * a new berthd swaps its program in atomically (replace). The first apply
   * of a process (re)attaches every veth; later ones only new veths.
   */
  private async syncSandboxFilters(l: Loaded, c: CompiledMaps): Promise<number> {
    const prog = l.programs.container;
    let changed = 0;
    const want = new Map(c.attach.map((a) => [a.ifname, a.ifindex]));
    for (const [ifname, ifindex] of want) {
      if (this.filters.get(ifname) === ifindex) continue;
      (await prog.attachTc({ ifindex, direction: 'ingress', mode: 'clsact', ...SANDBOX_FILTER, replace: true })).close();
      this.filters.set(ifname, ifindex);
      changed++;
    }
    for (const [ifname, ifindex] of this.filters) {
      if (want.has(ifname)) continue;
      // Usually the veth went with its sandbox, and the filter with it.
      await addon().tcFilter({ ifindex, direction: 'ingress', ...SANDBOX_FILTER, remove: true }).catch(() => undefined);
      this.filters.delete(ifname);
      changed++;
    }
    return changed;
  }

  /** Removes every pinned attachment, and berth's filter from every veth (another berthd's included). */
  async teardown(): Promise<void> {
    if (existsSync(this.linkDir)) for (const f of await readdir(this.linkDir)) await detachPin(join(this.linkDir, f));
    for (const v of (await nl.linkList({})).filter((x) => x.kind === 'veth')) {
      await addon().tcFilter({ ifindex: v.ifindex, direction: 'ingress', ...SANDBOX_FILTER, remove: true }).catch(() => undefined);
    }
    this.filters.clear();
    this.attached.clear();
  }
}

async function detachPin(path: string): Promise<void> {
  const old = await BpfLink.fromPin(path).catch(() => undefined);
  if (old) {
    await old.detach().catch(() => undefined);
    old.close();
  }
  await rm(path, { force: true });
}
