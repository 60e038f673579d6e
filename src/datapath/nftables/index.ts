/**
 * The nftables datapath: berth's behaviour in its own tables (`inet berth`,
 * `bridge berth`) with a constant list of rules (ruleset.ts) and the intent
 * as elements of sets and maps (sets.ts). The first apply of a berthd (and
 * one after drift) writes the tables whole; every later one only the
 * elements that changed since the last (script.ts), each one `nft -f`
 * transaction. Drift is judged on the tables listed without their elements
 * (with handles: a table recreated by a firewall reload shows), so a check
 * costs the same at 10 or 10,000 ports. Conntrack flushes, hairpin mode and
 * the bridge sysctls are the iptables datapath's (same kernel mechanisms).
 */
import type { Logger } from 'pino';
import type { Datapath, DatapathStatus, DesiredDatapath, DpExplainQuery, DpExplainResult } from '../datapath.js';
import { run } from '../../exec.js';
import { nl } from '../../netlink/index.js';
import { BerthError } from '../../errors.js';
import { SysctlKeeper } from '../sysctl.js';
import { SerialQueue } from '../../serial.js';
import { ApplyTimer, lastApplyStatus, type LastApply } from '../apply-record.js';
import { changedFronts } from '../desired.js';
import { ConntrackFlusher } from '../iptables/conntrack.js';
import { ensureHairpin } from '../iptables/hairpin.js';
import { iptablesSysctls } from '../iptables/sysctl.js';
import { removeLeftovers, traceExplain } from '../iptables/explain.js';
import { TABLE_NAME, type NftTable } from './ruleset.js';
import { renderSets, type Elements } from './sets.js';
import { diffScript, fingerprint, fullScript, teardownScript } from './script.js';
import { readDrops } from './drops.js';

const TABLES: NftTable[] = ['inet', 'bridge'];

/** Hairpin mode on new bridge ports (../iptables/hairpin.ts says why); -force: a port removed meanwhile must not stop the others. */
async function setHairpin(ports: string[]): Promise<void> {
  if (!ports.length) return;
  await run('ip', ['-force', '-batch', '-'], { input: ports.map((p) => `link set dev ${p} type bridge_slave hairpin on`).join('\n') + '\n' }).catch(() => undefined);
}

async function nft(args: string[], input?: string): Promise<string> {
  return (await run('nft', args, { timeoutMs: 60_000, ...(input !== undefined ? { input } : {}) })).stdout;
}

/** berth's tables that exist now. */
async function presentTables(): Promise<NftTable[]> {
  const out = await nft(['list', 'tables']);
  return TABLES.filter((t) => new RegExp(`^table ${t} ${TABLE_NAME}$`, 'm').test(out));
}

export class NftablesDatapath implements Datapath {
  readonly kind = 'nftables' as const;
  /** the elements in the kernel after the last apply; undefined: write the tables whole next time */
  private elements: Elements | undefined;
  /** fingerprint() of the tables right after the last apply */
  private fp: string | undefined;
  /** set again only when the wanted set changed, or drifted() saw one reset */
  private readonly sysctls = new SysctlKeeper({ skipUnchanged: true });
  /** bridge ports already put in hairpin mode by this process */
  private readonly hairpinned = new Set<string>();
  private last: LastApply | undefined;
  private published: DesiredDatapath | undefined;
  private readonly conntrack: ConntrackFlusher;
  private readonly queue = new SerialQueue();

  private constructor(private readonly log: Logger, private readonly version: string | undefined) {
    this.conntrack = new ConntrackFlusher(log);
  }

  static async create(opts: { log: Logger }): Promise<NftablesDatapath> {
    const version = await run('nft', ['--version']).then((r) => r.stdout.trim(), () => undefined);
    return new NftablesDatapath(opts.log, version);
  }

  private need(): void {
    if (!this.version) throw new BerthError('unavailable', 'the nftables datapath needs the nft command: install nftables');
  }

  /** Both tables without their elements (nft -f does not list: one run a table); a missing one lists as such, which is drift too. */
  private async listing(): Promise<string> {
    const parts = await Promise.all(TABLES.map((t) => nft(['-t', '-a', 'list', 'table', t, TABLE_NAME]).catch(() => `no table ${t} ${TABLE_NAME}`)));
    return fingerprint(parts.join('\n'));
  }

  apply(desired: DesiredDatapath): Promise<void> {
    return this.queue.run(() => this.applyNow(desired));
  }

  private async applyNow(desired: DesiredDatapath): Promise<void> {
    this.need();
    const timer = new ApplyTimer();
    const first = !this.last;
    if (first) await removeLeftovers();
    const r = renderSets(desired);
    timer.mark('render');
    const warnings = [...r.warnings];
    // The first apply of this process over berth's tables already in the kernel: berthd restarted over them
    // (the state it applies is the one they were made from; flushing would cut live flows).
    const restarted = first && (await presentTables()).includes('inet');
    // Between drift checks the tables are taken to be as last written: a diff that no longer fits them
    // (a table deleted meanwhile) fails as a whole, and the tables are written whole instead.
    let whole = !this.elements || !this.fp;
    const before = this.elements;
    this.elements = undefined;
    if (!whole) {
      const script = diffScript(before!, r.elements);
      if (script) {
        try {
          await nft(['-f', '-'], script);
        } catch (e) {
          this.log.warn({ err: (e as Error).message.slice(0, 500) }, 'nftables datapath: the element changes did not apply; writing the tables whole');
          whole = true;
        }
      }
    }
    if (whole) {
      try {
        await nft(['-f', '-'], fullScript(r.elements));
      } catch (e) {
        throw new BerthError('unavailable', `nftables datapath: nft refused berth's tables: ${(e as Error).message.slice(0, 2000)}`);
      }
      this.hairpinned.clear();
      this.sysctls.forget();
    }
    timer.mark(whole ? 'write' : 'elements');
    this.elements = r.elements;
    if (whole) this.fp = await this.listing();
    const flush = restarted ? Promise.resolve() : this.conntrack.flush(changedFronts(this.published, desired));
    this.published = desired;
    const ports = new Set(r.ports);
    for (const p of this.hairpinned) if (!ports.has(p)) this.hairpinned.delete(p);
    const fresh = r.ports.filter((p) => !this.hairpinned.has(p));
    // A whole write looks at every port first; a new port is set straight away (one `ip` run, beside the flush).
    await Promise.all([flush, whole ? ensureHairpin(fresh) : setHairpin(fresh)]);
    for (const p of fresh) this.hairpinned.add(p);
    timer.mark('flush');
    // Forwarding only once the policy is in place.
    const { changed, missing } = await this.sysctls.ensure([...desired.sysctls, ...iptablesSysctls(r.bridges)]);
    timer.mark('sysctls');
    for (const k of missing) warnings.push(`${k} does not exist (br_netfilter not loaded): traffic between sandboxes of one bridge bypasses icc=false and links`);
    this.last = timer.done({ warnings, missing });
    const level = warnings.length ? 'warn' : changed.length || whole ? 'info' : 'debug';
    this.log[level]({ ms: this.last.ms, whole, networks: desired.networks.length, publishes: desired.publishes.length, ...(changed.length ? { sysctls: changed } : {}), ...(warnings.length ? { warnings } : {}) }, 'nftables datapath applied');
  }

  async drifted(): Promise<boolean> {
    if (!this.fp || !this.version) return false;
    const now = await this.listing();
    if (now !== this.fp) {
      const a = new Set(this.fp.split('\n'));
      const b = new Set(now.split('\n'));
      this.log.warn({ missing: [...a].filter((l) => !b.has(l)).slice(0, 5), unexpected: [...b].filter((l) => !a.has(l)).slice(0, 5) }, 'berth nftables tables changed outside berth');
      this.fp = undefined;
      return true;
    }
    return this.sysctls.drifted(this.log);
  }

  teardown(): Promise<void> {
    return this.queue.run(async () => {
      this.elements = undefined;
      this.fp = undefined;
      const published = this.published;
      this.published = undefined;
      if (!this.version) return;
      const present = await presentTables();
      if (present.length) {
        await nft(['-f', '-'], teardownScript(present));
        this.log.info({ tables: present }, 'berth nftables tables removed');
      }
      await this.conntrack.flush(changedFronts(published, undefined));
    });
  }

  /** `berth explain` with the kernel's own trace (../iptables/explain.ts), through berth's nft tables. */
  async explain(q: DpExplainQuery): Promise<DpExplainResult> {
    if (q.from === 'sandbox' && this.last?.missing.length) {
      throw new BerthError('unavailable', `berth explain from a sandbox needs br_netfilter (${this.last.missing.join(', ')} missing)`);
    }
    return this.queue.run(async () => {
      let gatewayMac: string | undefined;
      if (q.from === 'sandbox' && !q.dstMac) {
        const ep = this.published?.endpoints.find((e) => e.hostIf === q.hostIf);
        const br = this.published?.networks.find((n) => n.id === ep?.network)?.bridge;
        gatewayMac = br ? (await nl.linkList()).find((l) => l.name === br)?.mac : undefined;
      }
      return traceExplain(q, gatewayMac, this.published, async () => undefined, this.log);
    });
  }

  async status(): Promise<DatapathStatus> {
    if (!this.version) return { kind: 'nftables', detail: { error: 'nft is not installed' } };
    const present = await presentTables();
    const elements: Record<string, number> = {};
    for (const [k, m] of Object.entries(this.elements ?? {})) if (m.size) elements[k] = m.size;
    const drops = present.length ? await readDrops(present) : {};
    return {
      kind: 'nftables',
      detail: { version: this.version, tables: present.map((t) => `${t} ${TABLE_NAME}`), elements, drops, sysctls: this.sysctls.values(), ...lastApplyStatus(this.last) },
    };
  }
}
