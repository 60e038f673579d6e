/**
 * The layouts of the pinned maps a berthd is about to load its programs
 * over, checked before anything is touched. libbpf reuses a pin only when its
 * type, key and value sizes, max_entries and flags are exactly the object's;
 * a newer berthd whose maps changed would otherwise fail half-way (or, worse,
 * copy flows across a changed layout). Each pinned map that differs is:
 *
 * - replaced, when user space rewrites it in full on every start (the
 *   intent's maps, the publish table, the settings) or its contents are
 *   transient (monitor's ring buffer): the new programs get a new map, filled
 *   before they are attached;
 * - resized, when only max_entries differs: its entries are copied into the
 *   new map (the connection table has its own migration, conntrack.ts);
 * - refused otherwise, naming the map and both layouts, before any pin is
 *   removed or any program replaced.
 */
import { readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { BpfObject } from '../../bpf/object.js';
import { addon, type RawMap, type RawMapInfo } from '../../native/addon.js';
import { bpfObjectPath } from '../../paths.js';
import { BerthError } from '../../errors.js';
import { MAPS } from './maps.js';
import { mapSizes, PROGRAMS, type TableSizes } from './programs.js';

export type Layout = Pick<RawMapInfo, 'type' | 'keySize' | 'valueSize' | 'maxEntries' | 'flags'>;

/** Maps rebuilt from the store by every start's first apply, or holding nothing that must outlive a berthd. */
const REBUILT = new Set<string>([
  ...Object.values(MAPS).map((m) => m.name),
  'berth_dp_pub', 'berth_dp_pubsel', 'berth_dp_allow', 'berth_dp_cfg',
  'berth_dp_events', 'berth_dp_evrate',
]);

/** The connection table: resized by conntrack.ts, never replaced (its entries are the flows). */
const CT = 'berth_dp_ct';

export function describeLayout(l: Layout): string {
  return `${l.type} key ${l.keySize} B, value ${l.valueSize} B, max_entries ${l.maxEntries}, flags 0x${l.flags.toString(16)}`;
}

function sameBut(a: Layout, b: Layout, ignoreMax: boolean): boolean {
  return a.type === b.type && a.keySize === b.keySize && a.valueSize === b.valueSize && a.flags === b.flags && (ignoreMax || a.maxEntries === b.maxEntries);
}

/** Every pinned map the datapath's objects declare, with the layout this build creates it with (@sizes applied). */
export async function expectedLayouts(root: string, sizes: TableSizes): Promise<Map<string, Layout>> {
  const out = new Map<string, Layout>();
  const objects = [...new Set([...Object.values(PROGRAMS).map((p) => p.object), 'kdrops'])];
  for (const name of objects) {
    const o = await BpfObject.open(bpfObjectPath(name), { pinRoot: root, maxEntries: mapSizes(sizes) });
    try {
      for (const m of o.maps()) if (m.pinPath && !out.has(m.name)) out.set(m.name, m);
    } finally {
      o.close();
    }
  }
  return out;
}

export interface PinPlan {
  /** maps whose pin is set aside and a new map made; entries copied over when resize */
  aside: { name: string; copy: boolean }[];
}

/**
 * Compares every pin under @root with what this build expects; throws
 * (changing nothing) when one cannot be reused, replaced or migrated.
 */
export async function planPins(root: string, sizes: TableSizes): Promise<PinPlan> {
  const plan: PinPlan = { aside: [] };
  if (!existsSync(root)) return plan;
  const want = await expectedLayouts(root, sizes);
  const refused: string[] = [];
  const check = async (name: string, pin: string, exp: Layout) => {
    const m = await addon().openPinnedMap(pin);
    const have = m.info();
    m.close();
    if (sameBut(have, exp, false)) return 'same';
    if (sameBut(have, exp, true)) return 'resize';
    if (REBUILT.has(name)) return 'replace';
    refused.push(`map ${name} pinned at ${pin} is ${describeLayout(have)}; this berthd expects ${describeLayout(exp)}`);
    return 'refused';
  };
  for (const [name, exp] of want) {
    const pin = join(root, name);
    // A migration an earlier berthd left half-way is finished from this pin: it must be of the same layout but for its size.
    if (name === CT && existsSync(`${pin}_resizing`)) await check(name, `${pin}_resizing`, exp);
    if (!existsSync(pin)) continue;
    const r = await check(name, pin, exp);
    if (name === CT || r === 'same' || r === 'refused') continue;
    plan.aside.push({ name, copy: r === 'resize' && !REBUILT.has(name) });
  }
  if (refused.length) {
    throw new BerthError('conflict', `the pinned eBPF datapath cannot be taken over: ${refused.join('; ')}. Its entries cannot be migrated to the new layout; nothing was changed. Start the berthd that made it, or remove ${root} (established flows through it are lost), then start again`);
  }
  return plan;
}

/** Pins set aside while the new programs load over new maps; the old maps stay in use by the old programs until they are detached. */
export class PinsAside {
  private constructor(
    private readonly root: string,
    private readonly old: { name: string; copy: boolean; map: RawMap }[],
    private readonly log: Logger,
  ) {}

  static async setAside(root: string, plan: PinPlan, log: Logger): Promise<PinsAside> {
    const old: { name: string; copy: boolean; map: RawMap }[] = [];
    for (const a of plan.aside) {
      const pin = join(root, a.name);
      if (!existsSync(pin)) continue;
      const map = await addon().openPinnedMap(pin);
      // bpffs cannot rename a pin: pinned again under another name, then unpinned from this one.
      await rm(`${pin}_old`, { force: true });
      await map.pin(`${pin}_old`);
      await rm(pin);
      old.push({ ...a, map });
      log.info({ map: a.name, was: describeLayout(map.info()), copy: a.copy }, a.copy ? 'pinned map resized: its entries are copied' : 'pinned map of another layout replaced: rebuilt from the state');
    }
    return new PinsAside(root, old, log);
  }

  /** Copies the resized maps' entries into the new maps (what fits). */
  async copy(maps: Map<string, RawMap>): Promise<void> {
    for (const o of this.old) {
      const to = maps.get(o.name);
      if (!o.copy || !to) continue;
      const info = to.info();
      const { keys, values, count } = await o.map.entries();
      const stride = o.map.info().valueBytes;
      let copied = 0;
      for (let i = 0; i < count; i++) {
        const k = keys.subarray(i * info.keySize, (i + 1) * info.keySize);
        // Arrays: indices past the new size have nowhere to go; hashes: the new map may be full.
        if (info.type.includes('array') && k.readUInt32LE(0) >= info.maxEntries) continue;
        try {
          await to.update(k, values.subarray(i * stride, (i + 1) * stride));
          copied++;
        } catch {
          break;
        }
      }
      this.log.info({ map: o.name, copied, of: count }, 'pinned map migrated');
    }
  }

  /** Puts the old pins back (the new programs failed to load): the running datapath stays as it was. */
  async restore(): Promise<void> {
    for (const o of this.old) {
      const pin = join(this.root, o.name);
      if (!existsSync(pin)) await o.map.pin(pin).catch(() => undefined);
      await rm(`${pin}_old`, { force: true });
      o.map.close();
    }
    this.old.length = 0;
  }

  /** The new programs are attached: the old maps go with the old programs (also those a crashed start set aside). */
  async finish(): Promise<void> {
    for (const o of this.old) o.map.close();
    this.old.length = 0;
    for (const f of await readdir(this.root).catch(() => [] as string[])) {
      if (f.endsWith('_old')) await rm(join(this.root, f), { force: true });
    }
  }
}
