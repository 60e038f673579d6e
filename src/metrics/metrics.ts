/**
 * berthd's Prometheus metrics, in a registry of their own (prom-client's
 * global one is left alone). What the datapath counts itself (drops by
 * reason, table fill, its event counters) is read from Datapath.status() once
 * per scrape and mirrored here; what berthd sees happen (apply latency,
 * reconcile runs) is observed as it happens.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { DatapathStatus } from '../datapath/datapath.js';
import type { State } from '../store/model.js';
import type { DnsStats } from '../dns/resolver.js';

/** What the metrics read at scrape time: the controller gives both. */
export interface MetricsSource {
  snapshot(): State;
  datapathStatus(): Promise<DatapathStatus>;
}

export type ReconcileKind = 'start' | 'drift';
/** start: ok or failed; drift (the periodic check): clean, repaired or failed */
export type ReconcileOutcome = 'ok' | 'clean' | 'repaired' | 'failed';

/** A counter whose value the datapath keeps: set to the datapath's total at each scrape. */
function mirror(c: Counter<string>, labels: Record<string, string>, value: number): void {
  c.inc(labels, Math.max(0, value));
}

export class Metrics {
  readonly registry = new Registry();
  private readonly datapath = new Gauge({ name: 'berth_datapath_info', help: 'The datapath in use (1 for the one in use)', labelNames: ['datapath'], registers: [this.registry] });
  private readonly drops = new Counter({ name: 'berth_datapath_drops_total', help: 'Packets the datapath dropped, by reason', labelNames: ['reason'], registers: [this.registry] });
  private readonly dropBytes = new Counter({ name: 'berth_datapath_drop_bytes_total', help: 'Bytes of the packets the datapath dropped, by reason', labelNames: ['reason'], registers: [this.registry] });
  private readonly mapEntries = new Gauge({ name: 'berth_datapath_map_entries', help: 'Entries in a datapath map (connection table, endpoints, published ports, ...)', labelNames: ['map'], registers: [this.registry] });
  private readonly mapMax = new Gauge({ name: 'berth_datapath_map_max_entries', help: 'The size of a datapath map: its limit', labelNames: ['map'], registers: [this.registry] });
  private readonly ctFill = new Gauge({ name: 'berth_datapath_ct_fill_ratio', help: 'Connection table fill, 0 to 1 (entries over size)', registers: [this.registry] });
  private readonly stats = new Counter({ name: 'berth_datapath_events_total', help: 'Datapath event counters (connections created, redirects, NAT retries, lost monitor events, ...)', labelNames: ['event'], registers: [this.registry] });
  private readonly netPackets = new Counter({ name: 'berth_network_packets_total', help: 'Packets sandboxes of a network sent (direction=out) and the datapath delivered into it (direction=in)', labelNames: ['network', 'direction'], registers: [this.registry] });
  private readonly netBytes = new Counter({ name: 'berth_network_bytes_total', help: 'Bytes sandboxes of a network sent (out) and the datapath delivered into it (in)', labelNames: ['network', 'direction'], registers: [this.registry] });
  private readonly pubPackets = new Counter({ name: 'berth_published_port_packets_total', help: 'Packets of flows through a published port (by its first host port), both ways', labelNames: ['proto', 'port'], registers: [this.registry] });
  private readonly pubBytes = new Counter({ name: 'berth_published_port_bytes_total', help: 'Bytes of flows through a published port (by its first host port), both ways', labelNames: ['proto', 'port'], registers: [this.registry] });
  private readonly kernelDrops = new Counter({ name: 'berth_kernel_drops_total', help: 'The kernel\'s own drops of packets on berth\'s interfaces, by the kernel\'s drop reason', labelNames: ['reason'], registers: [this.registry] });
  private readonly statusErrors = new Counter({ name: 'berth_datapath_status_errors_total', help: 'Scrapes whose datapath status could not be read', registers: [this.registry] });
  private readonly apply = new Histogram({
    name: 'berth_datapath_apply_seconds', help: 'Time to make the datapath match the desired state (map updates, or an iptables-restore), by outcome',
    labelNames: ['outcome'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [this.registry],
  });
  private readonly reconciles = new Counter({ name: 'berth_reconcile_runs_total', help: 'Reconcile runs: the replay of the store at start, and the periodic check for changes made outside berth', labelNames: ['kind', 'outcome'], registers: [this.registry] });
  private readonly sandboxes = new Gauge({ name: 'berth_sandboxes', help: 'Sandboxes, by network mode', labelNames: ['mode'], registers: [this.registry] });
  private readonly networks = new Gauge({ name: 'berth_networks', help: 'Networks, by driver', labelNames: ['driver'], registers: [this.registry] });
  private readonly dnsRefused = new Counter({ name: 'berth_dns_refused_queries_total', help: 'Queries the embedded DNS servers turned away: from outside their network (dropped unanswered) or over a client\'s forwarding rate (REFUSED)', labelNames: ['reason'], registers: [this.registry] });
  private readonly dnsForwarded = new Counter({ name: 'berth_dns_forwarded_queries_total', help: 'Queries the embedded DNS servers forwarded to upstream servers', registers: [this.registry] });
  private readonly dnsUnanswered = new Counter({ name: 'berth_dns_unanswered_queries_total', help: 'Forwarded queries no upstream answered (the client got SERVFAIL or nothing)', registers: [this.registry] });
  private readonly published = new Gauge({ name: 'berth_published_ports', help: 'Published host ports (a range counts each port), by protocol', labelNames: ['proto'], registers: [this.registry] });

  constructor(
    private readonly source: MetricsSource,
    private readonly log?: Logger,
    /** the embedded DNS servers' counters (berthd's DnsManager) */
    private readonly dns?: () => DnsStats,
  ) {
    for (const outcome of ['ok', 'failed']) this.reconciles.inc({ kind: 'start', outcome }, 0);
    for (const outcome of ['clean', 'repaired', 'failed']) this.reconciles.inc({ kind: 'drift', outcome }, 0);
  }

  observeApply(seconds: number, ok: boolean): void {
    this.apply.observe({ outcome: ok ? 'ok' : 'failed' }, seconds);
  }

  reconciled(kind: ReconcileKind, outcome: ReconcileOutcome): void {
    this.reconciles.inc({ kind, outcome });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text, with what is read at scrape time brought up to date first. */
  async render(): Promise<string> {
    this.fromState(this.source.snapshot());
    this.fromDns();
    await this.fromDatapath();
    return this.registry.metrics();
  }

  private fromState(s: State): void {
    this.sandboxes.reset();
    this.networks.reset();
    this.published.reset();
    for (const mode of ['networks', 'host', 'none', 'container', 'external']) this.sandboxes.set({ mode }, 0);
    for (const sb of Object.values(s.sandboxes)) this.sandboxes.inc({ mode: sb.mode });
    for (const n of Object.values(s.networks)) this.networks.inc({ driver: n.driver });
    for (const proto of ['tcp', 'udp', 'sctp']) this.published.set({ proto }, 0);
    for (const p of Object.values(s.sandboxes).flatMap((sb) => sb.publish)) this.published.inc({ proto: p.proto }, p.count);
  }

  private fromDns(): void {
    if (!this.dns) return;
    const d = this.dns();
    for (const c of [this.dnsRefused, this.dnsForwarded, this.dnsUnanswered]) c.reset();
    mirror(this.dnsRefused, { reason: 'not-admitted' }, d.notAdmitted);
    mirror(this.dnsRefused, { reason: 'rate-limited' }, d.rateLimited);
    mirror(this.dnsForwarded, {}, d.forwarded);
    mirror(this.dnsUnanswered, {}, d.unanswered);
  }

  private async fromDatapath(): Promise<void> {
    let st: DatapathStatus;
    try {
      st = await this.source.datapathStatus();
    } catch (e) {
      this.statusErrors.inc();
      this.log?.warn({ err: (e as Error).message }, 'metrics: datapath status unreadable');
      return;
    }
    this.datapath.reset();
    this.datapath.set({ datapath: st.kind }, 1);
    // Drops by reason on either backend; tables, events and traffic only the eBPF datapath counts.
    const drops = st.kind === 'none' ? undefined : st.detail.drops;
    const bpf = st.kind === 'bpf' ? st.detail : undefined;
    for (const c of [this.drops, this.dropBytes, this.stats]) c.reset();
    this.mapEntries.reset();
    this.mapMax.reset();
    for (const [reason, v] of Object.entries(drops ?? {})) {
      mirror(this.drops, { reason }, v.packets);
      mirror(this.dropBytes, { reason }, v.bytes);
    }
    for (const [map, v] of Object.entries(bpf?.maps ?? {})) {
      this.mapEntries.set({ map }, v.entries);
      this.mapMax.set({ map }, v.max);
    }
    if (typeof bpf?.ctFill === 'number') this.ctFill.set(bpf.ctFill);
    for (const [name, v] of Object.entries(bpf?.stats ?? {})) mirror(this.stats, { event: snake(name) }, v);
    for (const c of [this.netPackets, this.netBytes, this.pubPackets, this.pubBytes, this.kernelDrops]) c.reset();
    for (const [network, v] of Object.entries(bpf?.traffic?.networks ?? {})) {
      mirror(this.netPackets, { network, direction: 'out' }, v.outPackets);
      mirror(this.netPackets, { network, direction: 'in' }, v.inPackets);
      mirror(this.netBytes, { network, direction: 'out' }, v.outBytes);
      mirror(this.netBytes, { network, direction: 'in' }, v.inBytes);
    }
    for (const [key, v] of Object.entries(bpf?.traffic?.publishes ?? {})) {
      const [proto, port] = key.split('/') as [string, string];
      mirror(this.pubPackets, { proto, port }, v.packets);
      mirror(this.pubBytes, { proto, port }, v.bytes);
    }
    for (const [reason, v] of Object.entries(bpf?.kernelDrops ?? {})) mirror(this.kernelDrops, { reason }, v.packets);
  }
}

/** CtCreated -> ct_created */
const snake = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
