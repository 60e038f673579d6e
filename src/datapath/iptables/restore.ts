/**
 * iptables-save text in, iptables-restore --noflush text out: pure functions.
 * A script declares each of berth's chains (":CHAIN - [0:0]" flushes it in
 * --noflush mode) and writes all its rules, so one restore per family makes
 * the whole change in one transaction. Rules of other owners are never
 * touched; berth's jumps are inserted only where missing.
 */
import { CHAIN, isOwnedChain, jumpsFor, tablesFor, type Family } from './chains.js';
import type { TableRules } from './render.js';

export interface SavedTable {
  /** chain -> policy ('-' for user chains of iptables; ebtables user chains have one too) */
  chains: Map<string, string>;
  /** chain -> rule specs (what follows "-A CHAIN "), in order */
  rules: Map<string, string[]>;
}
export type Saved = Map<string, SavedTable>;

const BUILTINS = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING', 'BROUTING']);

export function parseSave(text: string): Saved {
  const out: Saved = new Map();
  let cur: SavedTable | undefined;
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      cur = { chains: new Map(), rules: new Map() };
      out.set(line.slice(1).trim(), cur);
    } else if (!cur) {
      continue;
    } else if (line.startsWith(':')) {
      const [name = '', policy = '-'] = line.slice(1).split(/\s+/);
      cur.chains.set(name, policy);
      if (!cur.rules.has(name)) cur.rules.set(name, []);
    } else if (line.startsWith('-A ')) {
      const rest = line.slice(3);
      const sp = rest.indexOf(' ');
      const chain = sp < 0 ? rest : rest.slice(0, sp);
      const spec = sp < 0 ? '' : rest.slice(sp + 1).trim();
      if (!cur.rules.has(chain)) cur.rules.set(chain, []);
      cur.rules.get(chain)!.push(spec);
    }
  }
  return out;
}

/** The chain a rule jumps or goes to, if any. */
export function targetOf(spec: string): string | undefined {
  return /(?:^|\s)-[jg] (\S+)/.exec(spec)?.[1];
}

/** The declaration that flushes (or creates) a chain in a restore script. */
function declare(family: Family, chain: string): string {
  return family === 'eb' ? `:${chain} RETURN` : `:${chain} - [0:0]`;
}

/**
 * Moves berth's jumps in one built-in chain to exactly @want (in order), touching
 * nothing else: when they already are, no line; otherwise ours are deleted and
 * re-inserted where the first of them was (or at the top).
 */
function fixJumps(builtin: string, current: string[], want: string[], targets: Set<string>): string[] {
  const ours = current.map((spec, i) => ({ spec, i })).filter((r) => targets.has(targetOf(r.spec) ?? ''));
  if (ours.length === want.length && ours.every((r, k) => r.spec === want[k])) return [];
  const at = ours.length ? ours[0]!.i + 1 : 1;
  return [
    ...ours.map((r) => `-D ${builtin} ${r.spec}`),
    ...[...want].reverse().map((spec) => `-I ${builtin} ${at} ${spec}`),
  ];
}

/** The restore script that makes @family's berth chains equal @desired, given what the kernel has (@current). */
export function applyScript(family: Family, desired: TableRules, current: Saved): string {
  const lines: string[] = [];
  const jumps = jumpsFor(family);
  for (const table of tablesFor(family)) {
    const want = desired[table] ?? {};
    const cur = current.get(table);
    const body: string[] = [];
    const chains = Object.keys(want);
    // The operator's hook is created once and then left alone: declaring it again would flush it.
    const tableJumps = jumps.filter((j) => j.table === table);
    const needUser = tableJumps.some((j) => j.target === CHAIN.user) && !cur?.chains.has(CHAIN.user);
    if (needUser) body.push(declare(family, CHAIN.user));
    for (const c of chains) body.push(declare(family, c));
    // berth chains this version no longer uses (an older berth's): flush now, delete below.
    const stale = [...(cur?.chains.keys() ?? [])].filter((c) => isOwnedChain(c) && c !== CHAIN.user && !chains.includes(c));
    for (const c of stale) body.push(declare(family, c));
    for (const c of chains) for (const spec of want[c]!) body.push(`-A ${c} ${spec}`);
    // Jumps into stale chains go too, or those chains could not be deleted.
    const targets = new Set([...tableJumps.map((j) => j.target), ...stale]);
    for (const builtin of new Set(tableJumps.map((j) => j.builtin))) {
      const wantSpecs = tableJumps.filter((j) => j.builtin === builtin).map((j) => j.spec);
      body.push(...fixJumps(builtin, cur?.rules.get(builtin) ?? [], wantSpecs, targets));
    }
    for (const c of stale) if (!referencedByOthers(cur!, c, stale)) body.push(`-X ${c}`);
    lines.push(`*${table}`, ...body, 'COMMIT');
  }
  return lines.join('\n') + '\n';
}

/** Whether a chain other than berth's (or a built-in jump berth does not own) still refers to @chain. */
function referencedByOthers(t: SavedTable, chain: string, goingAway: string[]): boolean {
  for (const [c, specs] of t.rules) {
    if (isOwnedChain(c) || goingAway.includes(c)) continue;
    if (BUILTINS.has(c)) continue; // built-in jumps to it are deleted in the same script
    if (specs.some((s) => targetOf(s) === chain)) return true;
  }
  return false;
}

/** The restore script that removes every jump into, and every chain of, berth's (BERTH-USER too); '' when there is none. */
export function teardownScript(family: Family, current: Saved): string {
  const lines: string[] = [];
  for (const [table, t] of current) {
    const owned = [...t.chains.keys()].filter(isOwnedChain);
    const body: string[] = [];
    for (const [c, specs] of t.rules) {
      if (!BUILTINS.has(c)) continue;
      for (const s of specs) if (isOwnedChain(targetOf(s) ?? '')) body.push(`-D ${c} ${s}`);
    }
    for (const c of owned) body.push(declare(family, c));
    for (const c of owned) if (!referencedByOthers(t, c, owned)) body.push(`-X ${c}`);
    if (body.length) lines.push(`*${table}`, ...body, 'COMMIT');
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}

/**
 * What berth owns in @saved, as comparable text: its jumps in the built-in
 * chains and its chains' rules (BERTH-USER only as present or not: its rules
 * are the operator's). Two equal views mean nothing of berth's changed.
 */
export function ownedView(family: Family, saved: Saved): string {
  const out: string[] = [];
  for (const table of tablesFor(family)) {
    const t = saved.get(table);
    if (!t) continue;
    for (const [c, specs] of t.rules) {
      if (!BUILTINS.has(c)) continue;
      for (const s of specs) if (isOwnedChain(targetOf(s) ?? '')) out.push(`${table} ${c} ${s}`);
    }
    for (const c of [...t.chains.keys()].filter(isOwnedChain).sort()) {
      out.push(`${table} :${c}`);
      if (c === CHAIN.user) continue;
      for (const s of t.rules.get(c) ?? []) out.push(`${table} ${c} ${s}`);
    }
  }
  return out.join('\n');
}

/** Rules per berth chain ("table/CHAIN" -> count). */
export function ruleCounts(family: Family, saved: Saved): Record<string, number> {
  const out: Record<string, number> = {};
  for (const table of tablesFor(family)) {
    const t = saved.get(table);
    if (!t) continue;
    for (const c of [...t.chains.keys()].filter(isOwnedChain).sort()) out[`${table}/${c}`] = t.rules.get(c)?.length ?? 0;
  }
  return out;
}
