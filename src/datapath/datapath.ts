/**
 * The datapath interface: the one place the control plane hands packet
 * decisions to a backend (bpf or iptables). The controller derives the whole
 * desired datapath from its state (desired.ts) and calls apply() after every
 * change and on start; a backend makes the kernel match it exactly, touching
 * only what it owns. Nothing else in berth knows which backend runs.
 */
import type { Proto } from '../store/model.js';

export interface DpNetwork {
  id: string;
  name: string;
  /** bridge device in the host namespace (bridge driver); absent for macvlan */
  bridge?: string;
  subnet4?: string;
  subnet6?: string;
  gateway4?: string;
  gateway6?: string;
  internal: boolean;
  /** traffic between sandboxes of this network (icc=false: only links pass) */
  icc: boolean;
  /** outbound traffic leaves with the uplink's address */
  masquerade: boolean;
}

/** One destination an egress allow-list admits: a prefix, optionally one port of one protocol. */
export interface DpEgressRule {
  cidr: string;
  port?: number;
  proto?: Proto;
}

export interface DpEndpoint {
  sandbox: string;
  network: string;
  /** host side of the veth, the port on the bridge */
  hostIf?: string;
  mac: string;
  v4?: string;
  v6?: string;
  /**
   * Present: new connections from this endpoint to destinations outside its
   * sandbox's networks (the outside world and the host's addresses other
   * than its gateway) are admitted only when a rule matches; replies of
   * admitted flows and published-port hairpin follow the usual rules.
   * Absent: unrestricted. (`berth run --egress-allow`, `-o egress=deny`.)
   */
  egress?: DpEgressRule[];
}

export interface DpPublish {
  sandbox: string;
  network: string;
  /** '' = every host address; '127.0.0.1' / '::1' = localhost only */
  hostIp: string;
  hostPort: number;
  /** consecutive ports, mapped 1:1 */
  count: number;
  containerV4?: string;
  containerV6?: string;
  containerPort: number;
  proto: Proto;
  /** source prefixes allowed; empty = all */
  allow: string[];
}

/** A Docker link: @client may open connections to @target's exposed @port, and nothing else opens. */
export interface DpLink {
  network: string;
  client: string;
  target: string;
  clientV4?: string;
  targetV4?: string;
  clientV6?: string;
  targetV6?: string;
  port: number;
  proto: Proto;
}

export interface DesiredDatapath {
  /** interface towards the outside world, when known (masquerade goes out of any non-berth interface otherwise) */
  uplink?: string;
  networks: DpNetwork[];
  endpoints: DpEndpoint[];
  publishes: DpPublish[];
  links: DpLink[];
}

export interface DatapathStatus {
  kind: 'bpf' | 'iptables' | 'none';
  /** human-readable summary: rule or map entry counts, last apply */
  detail: Record<string, unknown>;
}

/** One datapath event as `berth monitor` shows it. */
export interface DpEventView {
  seq: number;
  /** wall-clock time, ISO 8601 */
  time: string;
  kind: 'drop' | 'flow';
  /** drops: the reason's name */
  reason?: string;
  /** where the program ran: container (a sandbox's veth), uplink, host (lo) */
  hook: string;
  ifindex: number;
  proto: string;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** new connections: the tuple after translation */
  nsrc?: string;
  ndst?: string;
  nsport?: number;
  ndport?: number;
}

export interface DpEventBatch {
  events: DpEventView[];
  /** pass as `since` next time */
  next: number;
  /** events the datapath could not deliver (rate limit or a full ring buffer), since berthd started watching */
  lost: number;
}

/** A synthetic packet for `berth explain`, as it would arrive. */
export interface DpExplainQuery {
  /** where it comes from: a sandbox (through its veth @hostIf), the outside (an uplink), or the host itself */
  from: 'sandbox' | 'outside' | 'host';
  hostIf?: string;
  /** sandboxes: their namespace and the interface inside it (the iptables datapath sends the packet from there) */
  netns?: string;
  ifName?: string;
  /** the sender's MAC (sandboxes) and the MAC it sends to; outside: filled in by the datapath */
  srcMac?: string;
  dstMac?: string;
  src: string;
  dst: string;
  proto: 'tcp' | 'udp' | 'icmp' | 'sctp';
  sport: number;
  dport: number;
}

/** The datapath's own answer: what its programs did with the packet. */
export interface DpExplainResult {
  verdict: 'pass' | 'drop';
  delivered: 'sandbox' | 'outside' | 'host' | 'dropped';
  /** the interface it was sent to (a sandbox's host-side veth, or an uplink) */
  via?: string;
  rule: string;
  ruleText: string;
  reason?: string;
  reasonText?: string;
  translated?: { src: string; sport: number; dst: string; dport: number };
  /** iptables: the rules the kernel's trace saw the packet meet, in order */
  trace?: string[];
}

export interface Datapath {
  readonly kind: 'bpf' | 'iptables' | 'none';
  /** Makes the kernel match @desired exactly; idempotent and atomic where the backend allows. */
  apply(desired: DesiredDatapath): Promise<void>;
  /** True when something outside berth removed or changed what berth applied (e.g. a firewall reload). */
  drifted(): Promise<boolean>;
  /** Removes everything this backend ever installed (datapath switch, uninstall). */
  teardown(): Promise<void>;
  status(): Promise<DatapathStatus>;
  /** Events after @since (drops and new connections); watching starts with the first call and stops when nobody asks. */
  events?(since: number): Promise<DpEventBatch>;
  /** Runs the real datapath on a synthetic packet, changing nothing. */
  explain?(q: DpExplainQuery): Promise<DpExplainResult>;
}
