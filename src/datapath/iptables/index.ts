/**
 * The iptables datapath: berth's behaviour as rules in its own chains
 * (render.ts translates the resolved intent into them), applied with one
 * iptables-restore --noflush per family (restore.ts writes the script,
 * backend.ts runs it), plus the intent's sysctls and those of sysctl.ts. What
 * it last applied is remembered as iptables-save showed it afterwards, which
 * is what drifted() compares against. Once the rules are in, conntrack
 * entries of the publish front ends the intent says changed are flushed
 * (conntrack.ts), so existing flows follow the new rules. status() counts
 * drops by reason from the DROP rules' counters (drops.ts).
 */
import type { Logger } from 'pino';
import type { Datapath, DatapathStatus, DesiredDatapath, DpExplainQuery, DpExplainResult } from '../datapath.js';
import { nl } from '../../netlink/index.js';
import { BerthError } from '../../errors.js';
import { CHAIN, FAMILIES, type Family } from './chains.js';
import { render, type TableRules } from './render.js';
import { applyScript, ownedView, ruleCounts, teardownScript } from './restore.js';
import { detectBinaries, Tables, type Binaries } from './backend.js';
import { ensureHairpin } from './hairpin.js';
import { iptablesSysctls } from './sysctl.js';
import { SysctlKeeper } from '../sysctl.js';
import { SerialQueue } from '../../serial.js';
import { ApplyTimer, lastApplyStatus, type LastApply } from '../apply-record.js';
import { changedFronts } from '../desired.js';
import { ConntrackFlusher } from './conntrack.js';
import { addDrops, type Drops } from './drops.js';
import { removeLeftovers, specResolver, traceExplain } from './explain.js';

export class IptablesDatapath implements Datapath {
  readonly kind = 'iptables' as const;
  /** family -> ownedView() right after the last apply */
  private applied: Partial<Record<Family, string>> | undefined;
  /** family -> the rendered rules of the last apply */
  private rendered: Partial<Record<Family, string>> = {};
  /** every apply reads and sets them: the policy goes in first, forwarding after */
  private readonly sysctls = new SysctlKeeper({ skipUnchanged: false });
  private last: LastApply | undefined;
  /** the desired state of the last apply whose rules all went in: what conntrack flushes compare against */
  private published: DesiredDatapath | undefined;
  private readonly conntrack: ConntrackFlusher;
  /** applies, teardowns and explains, one at a time: an explain's trace is read against the rules it met */
  private readonly queue = new SerialQueue();

  private constructor(
    private readonly log: Logger,
    private readonly bin: Binaries | undefined,
  ) {
    this.conntrack = new ConntrackFlusher(log);
  }

  static async create(opts: { log: Logger }): Promise<IptablesDatapath> {
    const bin = await detectBinaries();
    if (bin) {
      const absent = FAMILIES.filter((f) => !bin.tools[f]);
      opts.log.debug({ backend: bin.backend, version: bin.version, tools: bin.tools }, 'iptables backend');
      if (absent.length) opts.log.warn({ absent }, `no save/restore programs for ${absent.join(', ')} with the ${bin.backend} backend: those rules cannot be applied`);
    }
    return new IptablesDatapath(opts.log, bin);
  }

  private tables(): Tables {
    if (!this.bin?.tools.ip4) throw new BerthError('unavailable', 'the iptables datapath needs iptables-restore and iptables-save: install iptables');
    return new Tables(this.bin);
  }

  apply(desired: DesiredDatapath): Promise<void> {
    return this.queue.run(() => this.applyNow(desired));
  }

  private async applyNow(desired: DesiredDatapath): Promise<void> {
    const timer = new ApplyTimer();
    // The first apply of this berthd: what an explain of a berthd that stopped in the middle left.
    if (!this.last && this.bin?.backend === 'nf_tables') await removeLeftovers();
    const tables = this.tables();
    const r = render(desired);
    const warnings = [...r.warnings];
    const applied: Partial<Record<Family, string>> = {};
    /** the kernel had published-port rules of berth's before this apply */
    let hadDnat = false;
    await Promise.all(FAMILIES.map(async (f) => {
      if (!this.bin!.tools[f]) {
        warnings.push(`${f} rules not applied: no ${f === 'eb' ? 'ebtables' : f === 'ip6' ? 'ip6tables' : 'iptables'} save/restore for the ${this.bin!.backend} backend`);
        return;
      }
      const cur = await tables.save(f);
      if (f !== 'eb' && (cur.get('nat')?.rules.get(CHAIN.dnat)?.length ?? 0) > 0) hadDnat = true;
      const want = JSON.stringify(r.rules[f]);
      // Every restore that replaces rules waits for the kernel's commit (10-30 ms): skip a family nothing changed in.
      if (this.applied?.[f] !== undefined && this.rendered[f] === want && ownedView(f, cur) === this.applied[f]) {
        applied[f] = this.applied[f];
        return;
      }
      this.rendered[f] = undefined;
      try {
        await tables.restore(f, applyScript(f, r.rules[f], cur));
      } catch (e) {
        // MAC/ARP anti-spoofing is on top of the IP rules: without it the rest still holds, loudly.
        if (f !== 'eb') throw e;
        warnings.push(`ebtables anti-spoofing not applied: ${(e as Error).message}`);
        return;
      }
      const after = await tables.save(f);
      applied[f] = ownedView(f, after);
      this.rendered[f] = want;
      const bad = countMismatch(r.rules[f], ruleCounts(f, after));
      if (bad.length) this.log.warn({ family: f, chains: bad }, 'rules in the kernel differ from those just applied (another writer at the same moment?)');
    }));
    // Only now that the new rules are in: a packet between flush and restore would recreate the old entry.
    // The first apply of this process: with berth's rules already in the kernel, berthd restarted over them
    // (the state it applies is the one they were made from; flushing would cut live flows); without, every publish is new.
    if (this.published || !hadDnat) await this.conntrack.flush(changedFronts(this.published, desired));
    this.published = desired;
    await ensureHairpin(r.ports);
    // Forwarding only once the policy is in place.
    const { changed, missing } = await this.sysctls.ensure([...desired.sysctls, ...iptablesSysctls(r.bridges)]);
    for (const k of missing) warnings.push(`${k} does not exist (br_netfilter not loaded): traffic between sandboxes of one bridge bypasses icc=false, links and anti-spoofing`);
    this.applied = applied;
    this.last = timer.done({ warnings, missing });
    const ms = this.last.ms;
    const level = warnings.length ? 'warn' : changed.length ? 'info' : 'debug';
    this.log[level]({ ms, networks: desired.networks.length, publishes: desired.publishes.length, ...(changed.length ? { sysctls: changed } : {}), ...(warnings.length ? { warnings } : {}) }, 'iptables datapath applied');
  }

  async drifted(): Promise<boolean> {
    if (!this.applied || !this.bin) return false;
    const tables = new Tables(this.bin);
    for (const f of FAMILIES) {
      const want = this.applied[f];
      if (want === undefined) continue;
      const now = ownedView(f, await tables.save(f));
      if (now !== want) {
        const a = new Set(want.split('\n'));
        const b = new Set(now.split('\n'));
        this.log.warn({ family: f, missing: [...a].filter((l) => !b.has(l)).slice(0, 5), unexpected: [...b].filter((l) => !a.has(l)).slice(0, 5) }, 'berth rules changed outside berth');
        return true;
      }
    }
    return this.sysctls.drifted(this.log);
  }

  teardown(): Promise<void> {
    return this.queue.run(() => this.teardownNow());
  }

  private async teardownNow(): Promise<void> {
    await removeLeftovers();
    this.applied = undefined;
    this.rendered = {};
    const published = this.published;
    this.published = undefined;
    if (!this.bin) return;
    const tables = new Tables(this.bin);
    for (const f of FAMILIES) {
      if (!this.bin.tools[f]) continue;
      const script = teardownScript(f, await tables.save(f));
      if (!script) continue;
      await tables.restore(f, script);
      this.log.info({ family: f }, 'berth chains removed');
    }
    // Flows translated by the removed rules would keep their translation until they expire.
    await this.conntrack.flush(changedFronts(published, undefined));
  }

  /**
   * `berth explain` with the kernel's own trace (explain.ts): the packet is
   * sent for real, traced through every rule, and stopped before it is
   * delivered or tracked. Needs the nf_tables backend (xtables-monitor).
   */
  async explain(q: DpExplainQuery): Promise<DpExplainResult> {
    if (this.bin?.backend !== 'nf_tables') {
      throw new BerthError('unavailable', `berth explain on the iptables datapath traces with nf_tables; this host's iptables uses the ${this.bin?.backend ?? 'missing'} backend`);
    }
    // Without br_netfilter, bridged packets pass no IP hook: neither berth's rules nor explain's stop would see them.
    if (q.from === 'sandbox' && this.last?.missing.length) {
      throw new BerthError('unavailable', `berth explain from a sandbox needs br_netfilter on the iptables datapath (${this.last.missing.join(', ')} missing)`);
    }
    const go = async (): Promise<DpExplainResult> => {
      let gatewayMac: string | undefined;
      if (q.from === 'sandbox' && !q.dstMac) {
        const ep = this.published?.endpoints.find((e) => e.hostIf === q.hostIf);
        const br = this.published?.networks.find((n) => n.id === ep?.network)?.bridge;
        gatewayMac = br ? (await nl.linkList()).find((l) => l.name === br)?.mac : undefined;
      }
      const tables = this.tables();
      return traceExplain(q, gatewayMac, this.published, specResolver((f) => tables.save(f)), this.log);
    };
    return this.queue.run(go);
  }

  async status(): Promise<DatapathStatus> {
    if (!this.bin) return { kind: 'iptables', detail: { error: 'iptables is not installed' } };
    const tables = new Tables(this.bin);
    const rules: Record<string, Record<string, number>> = {};
    const drops: Drops = {};
    for (const f of FAMILIES) {
      if (!this.bin.tools[f]) continue;
      rules[f] = ruleCounts(f, await tables.save(f));
      addDrops(drops, f, await tables.saveCounters(f).catch(() => ''));
    }
    return {
      kind: 'iptables',
      detail: {
        backend: this.bin.backend,
        version: this.bin.version,
        rules,
        drops,
        sysctls: this.sysctls.values(),
        ...lastApplyStatus(this.last),
      },
    };
  }
}

/** Chains whose rule count in the kernel is not the rendered one. */
function countMismatch(want: TableRules, got: Record<string, number>): string[] {
  const out: string[] = [];
  for (const [table, chains] of Object.entries(want)) {
    for (const [c, specs] of Object.entries(chains)) {
      if ((got[`${table}/${c}`] ?? -1) !== specs.length) out.push(`${table}/${c}: ${got[`${table}/${c}`] ?? 'absent'} != ${specs.length}`);
    }
  }
  return out;
}
