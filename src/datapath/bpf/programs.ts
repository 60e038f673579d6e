/**
 * The eBPF datapath's programs and the maps they share: which program goes on
 * which hook, loading them against the pinned maps (an earlier berthd's carry
 * over) and the optional kernel-drop tracer.
 */
import { rm, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { BpfObject, type BpfProgram } from '../../bpf/object.js';
import { BpfLink } from '../../bpf/link.js';
import { addon, type RawMap } from '../../native/addon.js';
import { bpfObjectPath } from '../../paths.js';

export const PROGRAMS = {
  container: { object: 'tc_container', program: 'berth_from_container', direction: 'ingress' },
  uplink: { object: 'tc_uplink', program: 'berth_from_uplink', direction: 'ingress' },
  host: { object: 'tc_host', program: 'berth_from_host', direction: 'egress' },
} as const;
export type Hook = keyof typeof PROGRAMS;

export interface Loaded {
  objects: BpfObject[];
  programs: Record<Hook, BpfProgram>;
  maps: Map<string, RawMap>;
}

export function mapOf(l: Loaded | undefined, name: string): RawMap {
  const m = l?.maps.get(name);
  if (!m) throw new Error(`the datapath has no map ${name}`);
  return m;
}

/** The sizes of the tables berthd configures: connection-table entries, and publish-table entries a generation. */
export interface TableSizes {
  ctMax: number;
  pubMax: number;
}

/** Every map whose size follows @s (a pinned one must match it to be reused). */
export function mapSizes(s: TableSizes): Record<string, number> {
  // berth_dp_traffic: two counters a network (BERTH_NET_MAX of them) and one a publish.
  return { berth_dp_ct: s.ctMax, berth_dp_pub: 2 * s.pubMax, berth_dp_traffic: 2 * 4096 + s.pubMax };
}

/** Loads every program; the first object pins the maps (or reuses an earlier berthd's pins), the others reuse them. */
export async function loadPrograms(root: string, linkDir: string, sizes: TableSizes, log: Logger): Promise<Loaded> {
  const objects: BpfObject[] = [];
  try {
    const programs = {} as Record<Hook, BpfProgram>;
    for (const [hook, p] of Object.entries(PROGRAMS) as [Hook, (typeof PROGRAMS)[Hook]][]) {
      const o = await BpfObject.load(bpfObjectPath(p.object), { pinRoot: root, maxEntries: mapSizes(sizes), consts: { cfg_pub_max: sizes.pubMax } });
      objects.push(o);
      programs[hook] = o.program(p.program);
    }
    const maps = new Map<string, RawMap>();
    for (const m of objects[0]!.maps()) if (!m.internal) maps.set(m.name, objects[0]!.rawMap(m.name));
    const kdrops = await loadKernelDrops(root, linkDir, sizes, log);
    if (kdrops) {
      objects.push(kdrops);
      maps.set('berth_dp_kdrops', kdrops.rawMap('berth_dp_kdrops'));
    }
    return { objects, programs, maps };
  } catch (e) {
    for (const o of objects) o.close();
    throw e;
  }
}

/** The pin of the kernel-drop tracer's link, among the attachments' pins. */
export const KDROPS_PIN = 'kdrops';

/**
 * bpf/kdrops.c on the kfree_skb tracepoint: the kernel's own drops of
 * berth's traffic, by the kernel's reason. Optional: without it (no BTF
 * for tracing, a locked-down kernel) the datapath works, and says so.
 */
async function loadKernelDrops(root: string, linkDir: string, sizes: TableSizes, log: Logger): Promise<BpfObject | undefined> {
  const pin = join(linkDir, KDROPS_PIN);
  try {
    const inum = (await stat('/proc/self/ns/net')).ino;
    const o = await BpfObject.load(bpfObjectPath('kdrops'), { pinRoot: root, maxEntries: mapSizes(sizes), consts: { cfg_netns_inum: inum } });
    const old = existsSync(pin) ? await BpfLink.fromPin(pin).catch(() => undefined) : undefined;
    const link = await o.program('berth_kfree_skb').attachTracing();
    try {
      if (old) {
        old.close();
        await rm(pin, { force: true });
      }
      await link.pin(pin);
    } finally {
      link.close();
    }
    return o;
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'the kernel\'s drop reasons are not watched (kfree_skb tracing unavailable)');
    return undefined;
  }
}

export async function openPinned(root: string, name: string): Promise<RawMap> {
  return addon().openPinnedMap(join(root, name));
}
