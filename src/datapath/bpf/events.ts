/**
 * The eBPF datapath's event stream for `berth monitor`: drops with their
 * reason and new connections with their translation, from the ring buffer
 * berth_dp_events. The programs emit only while someone watches (the
 * switches in berth_dp_cfg), at most `rate` events a second per CPU, and
 * count what they could not send; the last few thousand events are kept
 * here for the pollers. Watching stops a while after the last poll.
 */
import type { Logger } from 'pino';
import type { RawMap } from '../../native/addon.js';
import { RingBuffer } from '../../bpf/ringbuf.js';
import { CfgFlag, dpCfg, dpEvent, dpHookName, dropReasons, EventKind, type DpEvent } from '../../bpf/abi.js';
import { u32 } from '../../bpf/codec.js';
import { bigToIp } from '../../ipam/addr.js';
import type { DpEventBatch, DpEventView } from '../datapath.js';

const KEEP = 4096;
const IDLE_MS = 15_000;
const PROTOS: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6', 132: 'sctp' };

/** A 16-byte datapath address as text (IPv4-mapped ones as IPv4). */
export function addrText(b: Buffer): string {
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  return bigToIp(BigInt('0x' + b.toString('hex')), 6);
}

export class EventWatch {
  private rb: RingBuffer<DpEvent> | undefined;
  private readonly kept: DpEventView[] = [];
  private seq = 0;
  private idle: NodeJS.Timeout | undefined;
  /** monotonic ns -> wall clock ms */
  private readonly offsetMs = Date.now() - Number(process.hrtime.bigint() / 1_000_000n);

  constructor(
    private readonly events: RawMap,
    private readonly cfg: RawMap,
    private readonly lostCount: () => Promise<number>,
    private readonly log: Logger,
    readonly rate = 2000,
  ) {}

  async poll(since: number): Promise<DpEventBatch> {
    if (!this.rb) await this.start();
    if (this.idle) clearTimeout(this.idle);
    this.idle = setTimeout(() => void this.stop().catch(() => undefined), IDLE_MS);
    this.idle.unref();
    const events = this.kept.filter((e) => e.seq > since);
    return { events, next: this.seq, lost: (await this.lostCount()) + (this.rb?.stats().lost ?? 0) };
  }

  private async setSwitches(on: boolean): Promise<void> {
    const k = u32.encode(0);
    const cur = dpCfg.decode((await this.cfg.lookup(k))!);
    await this.cfg.update(k, dpCfg.encode({ ...cur, flags: on ? CfgFlag.EventsDrop | CfgFlag.EventsFlow : 0, eventRate: on ? this.rate : 0 }));
  }

  private async start(): Promise<void> {
    this.rb = new RingBuffer(this.events, dpEvent, (e) => this.keep(e));
    await this.setSwitches(true);
    this.log.info({ rate: this.rate }, 'datapath events on (berth monitor)');
  }

  async stop(): Promise<void> {
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
    if (!this.rb) return;
    await this.setSwitches(false);
    this.rb.close();
    this.rb = undefined;
    this.log.info('datapath events off: nobody watches');
  }

  private keep(e: DpEvent): void {
    const flow = e.kind === EventKind.Flow;
    this.kept.push({
      seq: ++this.seq,
      time: new Date(this.offsetMs + Number(e.tsNs / 1_000_000n)).toISOString(),
      kind: flow ? 'flow' : 'drop',
      ...(flow ? {} : { reason: dropReasons[e.reason]?.name ?? String(e.reason) }),
      hook: dpHookName[e.hook] ?? String(e.hook),
      ifindex: e.ifindex,
      proto: PROTOS[e.proto] ?? String(e.proto),
      src: addrText(e.saddr),
      dst: addrText(e.daddr),
      sport: e.sport,
      dport: e.dport,
      ...(flow && !e.ndaddr.every((x) => x === 0) ? { nsrc: addrText(e.nsaddr), ndst: addrText(e.ndaddr), nsport: e.nsport, ndport: e.ndport } : {}),
    });
    if (this.kept.length > KEEP) this.kept.splice(0, this.kept.length - KEEP);
  }
}
