/**
 * Flushing conntrack entries keyed on a published port's front end (host
 * address:host port) when that publish is added, removed or changed (which
 * front ends changed, the intent says: changedFronts in ../desired.ts).
 *
 * NAT is decided once per connection, on its first packet: an entry made
 * before a publish existed keeps its flow on the host (no DNAT), and one made
 * for an old backend keeps DNAT-ing to that address after the sandbox was
 * replaced (Docker's UDP restart black-hole), until the entry expires (UDP:
 * 30 s, refreshed by every packet; 120 s once replied to). Deleting those
 * entries right after the new rules are in place makes the next packet of the
 * flow a new connection, translated by the rules as they are now.
 *
 * Entries are selected by their ORIGINAL direction: protocol, destination port
 * and, for a host-IP-bound publish, destination address. All deletions of one
 * apply are one `conntrack -R FILE` (conntrack-tools) run in berthd's own
 * namespace: for a few ports, conntrack's filtered deletes, one line per port;
 * for more (a large range), one dump of the table per family and deletes by
 * exact tuple, because each filtered delete walks the whole table (18 s for a
 * 1,000-port range here, against about 50 ms this way).
 */
import { access, constants, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { familyOf } from '../../ipam/addr.js';
import { CommandError, run } from '../../exec.js';
import { frontKey, type FrontEnd } from '../desired.js';

/** Up to this many ports in all, flushes use conntrack's filtered deletes, one line per port. */
export const FILTERED_MAX_PORTS = 64;

/** Filtered `conntrack -R` lines: every entry to each port of @fronts (both families unless bound). */
export function filteredLines(fronts: FrontEnd[]): string[] {
  const lines: string[] = [];
  for (const f of fronts) {
    const fam = f.hostIp ? familyOf(f.hostIp) : undefined;
    const families = fam === 4 ? ['ipv4'] : fam === 6 ? ['ipv6'] : f.hostIp ? [] : ['ipv4', 'ipv6'];
    for (const family of families) {
      const dst = f.hostIp ? ` --orig-dst ${f.hostIp}` : '';
      for (let port = f.hostPort; port < f.hostPort + Math.max(1, f.count); port++) lines.push(`-D -f ${family} -p ${f.proto} --orig-port-dst ${port}${dst}`);
    }
  }
  return lines;
}

/** The original tuple of one conntrack entry, as `conntrack -L` prints it. */
export interface Entry {
  family: 'ipv4' | 'ipv6';
  proto: string;
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

/** Parses `conntrack -L -f FAMILY` output; entries without ports (ICMP) are left out. */
export function parseEntries(text: string, family: Entry['family']): Entry[] {
  const out: Entry[] = [];
  for (const line of text.split('\n')) {
    const proto = /^(\w+)\s/.exec(line)?.[1];
    // The first src/dst/sport/dport on a line are the original direction's.
    const src = / src=(\S+)/.exec(line)?.[1];
    const dst = / dst=(\S+)/.exec(line)?.[1];
    const sport = / sport=(\d+)/.exec(line)?.[1];
    const dport = / dport=(\d+)/.exec(line)?.[1];
    if (proto && src && dst && sport && dport) out.push({ family, proto, src, dst, sport: Number(sport), dport: Number(dport) });
  }
  return out;
}

/**
 * `conntrack -R` lines deleting, by their exact original tuple, the entries
 * whose destination is the front end of one of @fronts. Selecting from one dump
 * costs the same for a 1,000-port range as for one port.
 */
export function deleteLines(entries: Entry[], fronts: FrontEnd[]): string[] {
  // protocol|port -> the host addresses bound there ('' = every address): each entry is one lookup, so
  // 10,000 single-port fronts over a table of 100,000 entries cost 110,000 steps, not a billion.
  const at = new Map<string, Set<string>>();
  for (const f of fronts) {
    for (let port = f.hostPort; port < f.hostPort + Math.max(1, f.count); port++) {
      const k = `${f.proto}|${port}`;
      let s = at.get(k);
      if (!s) at.set(k, (s = new Set()));
      s.add(f.hostIp);
    }
  }
  const lines: string[] = [];
  for (const e of entries) {
    const ips = at.get(`${e.proto}|${e.dport}`);
    if (ips && (ips.has('') || ips.has(e.dst))) lines.push(`-D -f ${e.family} -p ${e.proto} -s ${e.src} -d ${e.dst} --sport ${e.sport} --dport ${e.dport}`);
  }
  return lines;
}

const SEARCH = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

async function findConntrack(): Promise<string | undefined> {
  for (const d of [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SEARCH]) {
    const p = join(d, 'conntrack');
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Runs the flushes; never throws (the rules are in place either way), says what went wrong once. */
export class ConntrackFlusher {
  private bin: string | null | undefined;
  private warnedMissing = false;

  constructor(private readonly log: Logger) {}

  async flush(fronts: FrontEnd[]): Promise<void> {
    if (!fronts.length) return;
    if (this.bin === undefined) this.bin = (await findConntrack()) ?? null;
    if (!this.bin) {
      if (!this.warnedMissing) {
        this.log.warn('conntrack (conntrack-tools) is not installed: after a publish is added, removed or changed, existing flows to its host port keep their old translation until their conntrack entries expire (install the conntrack package)');
        this.warnedMissing = true;
      }
      return;
    }
    const t0 = performance.now();
    const bin = this.bin;
    let lines: string[];
    try {
      // Few ports: conntrack's own filtered deletes. Many (a large range): one dump and exact deletes,
      // since a filtered delete walks the whole table once per port.
      const ports = fronts.reduce((n, f) => n + Math.max(1, f.count), 0);
      if (ports <= FILTERED_MAX_PORTS) {
        lines = filteredLines(fronts);
      } else {
        const dumps = await Promise.all((['ipv4', 'ipv6'] as const).map(async (family) => parseEntries((await run(bin, ['-L', '-f', family], { timeoutMs: 30_000 })).stdout, family)));
        lines = deleteLines(dumps.flat(), fronts);
      }
    } catch (e) {
      const msg = e instanceof CommandError ? e.stderr.trim() || e.message : (e as Error).message;
      this.log.warn({ err: msg }, 'conntrack table not read: entries of changed publishes not flushed');
      return;
    }
    if (!lines.length) return;
    // `-R -` opens /dev/stdin, which cannot be opened when stdin is the socket node gives a child: a file, then.
    const dir = await mkdtemp(join(tmpdir(), 'berth-conntrack-'));
    try {
      const file = join(dir, 'flush');
      await writeFile(file, lines.join('\n') + '\n', { mode: 0o600 });
      // One process for all of them; a line matching nothing is not an error in batch mode.
      await run(this.bin, ['-R', file], { timeoutMs: 30_000 });
    } catch (e) {
      const msg = e instanceof CommandError ? e.stderr.trim() || e.message : (e as Error).message;
      this.log.warn({ err: msg, lines: lines.length }, 'conntrack entries of changed publishes not flushed');
      return;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    this.log.debug({ ms: Math.round((performance.now() - t0) * 10) / 10, fronts: fronts.map(frontKey), lines: lines.length }, 'conntrack entries of changed publishes flushed');
  }
}
