/**
 * `nft -f` scripts for berth's tables (pure), each run as one transaction:
 *  - full: makes the tables exactly ruleset.ts + the elements (every chain
 *    but the operator's `user` flushed and rewritten, every set flushed and
 *    refilled); used on the first apply of a berthd and after drift;
 *  - diff: only the elements that changed between two element sets (deleted
 *    by key, added whole; a changed map value is a delete and an add);
 *  - teardown: both tables deleted.
 */
import { CHAINS, SETS, TABLE_NAME, USER_CHAIN, chainRules, counterName, INET_REASONS, BRIDGE_REASONS, type NftTable } from './ruleset.js';
import type { Elements } from './sets.js';

const where = (t: NftTable) => `${t} ${TABLE_NAME}`;
const tableOf = new Map(SETS.map((s) => [s.name, s.table]));
/** Elements per line: nft parses long element lists fast, but keeps each statement's line within limits. */
const CHUNK = 2000;

function elementLines(verb: 'add' | 'delete', set: string, items: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(`${verb} element ${where(tableOf.get(set)!)} ${set} { ${items.slice(i, i + CHUNK).join(', ')} }`);
  return out;
}

export function fullScript(el: Elements): string {
  const lines: string[] = [];
  for (const t of ['inet', 'bridge'] as const) lines.push(`add table ${where(t)}`);
  for (const c of CHAINS) {
    lines.push(`add chain ${where(c.table)} ${c.name}${c.base ? ` { ${c.base} }` : ''}`);
    if (c.name !== USER_CHAIN) lines.push(`flush chain ${where(c.table)} ${c.name}`);
  }
  for (const r of INET_REASONS) lines.push(`add counter ${where('inet')} ${counterName(r)}`);
  for (const r of BRIDGE_REASONS) lines.push(`add counter ${where('bridge')} ${counterName(r)}`);
  for (const s of SETS) {
    const flags = s.interval ? ' flags interval;' : '';
    lines.push(`add ${s.map ? 'map' : 'set'} ${where(s.table)} ${s.name} { ${s.typeof ? 'typeof' : 'type'} ${s.type};${flags} }`);
    lines.push(`flush ${s.map ? 'map' : 'set'} ${where(s.table)} ${s.name}`);
  }
  for (const [chain, { table, rules }] of Object.entries(chainRules())) for (const r of rules) lines.push(`add rule ${where(table)} ${chain} ${r}`);
  for (const s of SETS) lines.push(...elementLines('add', s.name, [...el[s.name]!.values()]));
  return lines.join('\n') + '\n';
}

/** The changes from @before to @after, or '' when nothing changed. */
export function diffScript(before: Elements, after: Elements): string {
  const del: string[] = [];
  const add: string[] = [];
  for (const s of SETS) {
    const a = before[s.name] ?? new Map<string, string>();
    const b = after[s.name] ?? new Map<string, string>();
    const gone: string[] = [];
    const come: string[] = [];
    for (const [k, v] of a) if (b.get(k) !== v) gone.push(k);
    for (const [k, v] of b) if (a.get(k) !== v) come.push(v);
    del.push(...elementLines('delete', s.name, gone));
    add.push(...elementLines('add', s.name, come));
  }
  return del.length + add.length ? [...del, ...add].join('\n') + '\n' : '';
}

/** Deletes berth's tables; @present: those that exist ("inet", "bridge"). */
export function teardownScript(present: NftTable[]): string {
  return present.map((t) => `delete table ${where(t)}`).join('\n') + (present.length ? '\n' : '');
}

/**
 * What drift is judged on: the tables as `nft -t -a list` prints them (terse:
 * no elements; with handles, so a table or chain deleted and recreated shows),
 * without the counters' values and the operator's `user` chain.
 */
export function fingerprint(listing: string): string {
  const out: string[] = [];
  let skip = false;
  for (const raw of listing.split('\n')) {
    const l = raw.trim();
    if (/^chain user \{/.test(l)) skip = true;
    if (skip) {
      if (l === '}') skip = false;
      continue;
    }
    if (/^packets \d+ bytes \d+$/.test(l) || !l) continue;
    out.push(l);
  }
  return out.join('\n');
}
