/**
 * The datapath interface: the one place the control plane hands packet
 * decisions to a backend (bpf, nftables or iptables). desired.ts resolves the
 * controller's state into one DesiredDatapath (every decision made: which
 * publishes install a mapping, per family, loopback or not, the sysctls
 * forwarding needs); the controller calls apply() with it after every change
 * and on start, and a backend only translates it, making the kernel match it
 * exactly and touching only what it owns. Nothing else in berth knows which
 * backend runs. The types of what backends answer (status, events, explain)
 * live here too.
 */
import type { Proto } from '../store/model.js';
import type { Sysctl } from './sysctl.js';

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
  /**
   * a routed network: @subnet4 spans every host's block, those of other
   * hosts reached through the uplink; traffic within it crosses the uplink
   * untranslated both ways (never masqueraded, admitted from there as from
   * the bridge, under the same icc)
   */
  routed?: boolean;
  /** a routed network: this host's block of @subnet4; its addresses never arrive from the uplink (forged) */
  block4?: string;
  /**
   * The operator's publish policy (berthd --publish-allow, -o publish.allow),
   * resolved: only these sources (and the host's loopback ones) reach the
   * published ports of this network's sandboxes. Absent: every source.
   */
  publishAllow?: string[];
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

/**
 * One published port range of one address family, resolved: its network
 * installs port mappings (bridged, not internal) and its sandbox has an
 * address of @family. A publish on every address of a dual-stack sandbox is
 * two of these.
 */
export interface DpPublish {
  sandbox: string;
  network: string;
  family: 4 | 6;
  /** '' = every host address of @family; else one address of @family */
  hostIp: string;
  /** bound to a loopback address (127/8, ::1): reached from the host itself only */
  loopback: boolean;
  hostPort: number;
  /** consecutive ports, mapped 1:1 */
  count: number;
  /** the sandbox's address of @family */
  target: string;
  containerPort: number;
  proto: Proto;
  /** the publish has a source allow-list: sources of @family outside @allow are refused (all of them when @allow is empty) */
  restricted: boolean;
  /** the allow-list's prefixes (or addresses) of @family */
  allow: string[];
  /** the operator's publish policy over this publish (not for loopback binds): its prefixes of @family, and where it comes from */
  policy?: { allow: string[]; from: string };
  /** with @policy: the sources of @family whose connections are translated (the policy and loopback, narrowed by @allow) */
  admit?: string[];
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

/** The resolved intent (desired.ts): what every backend is told, and only translates. */
export interface DesiredDatapath {
  /** interface towards the outside world, when known (masquerade goes out of any non-berth interface otherwise) */
  uplink?: string;
  networks: DpNetwork[];
  endpoints: DpEndpoint[];
  /** publishes that install a mapping, one per range and family, in the state's order */
  publishes: DpPublish[];
  links: DpLink[];
  /** kernel settings the intent needs whichever backend carries it (forwarding); a backend adds those of its own mechanism */
  sysctls: Sysctl[];
}

/** Packets and bytes by a name (a drop reason, a published port). */
export type Counts = Record<string, { packets: number; bytes: number }>;

/** Traffic the eBPF datapath counted: per network (sent by its sandboxes, delivered into it) and per published port ("tcp/8080"). */
export interface DpTraffic {
  networks: Record<string, { outPackets: number; outBytes: number; inPackets: number; inBytes: number }>;
  publishes: Counts;
}

/** A backend's last apply, as status() shows it (apply-record.ts). */
export interface LastApplyStatus {
  /** ISO 8601; null: nothing applied yet by this berthd */
  lastApply: string | null;
  lastApplyMs?: number;
  /** bpf: ms per phase (netlink, compile, maps, sysctls, attach) */
  lastApplyPhases?: Record<string, number>;
  warnings?: string[];
}

export interface BpfStatusDetail extends Partial<LastApplyStatus> {
  /** the bpffs directory holding berth's pins */
  root: string;
  /** false: this berthd has not loaded its programs yet (only the pinned drop counters are read) */
  loaded?: false;
  /** hook -> program id */
  programs?: Record<string, number>;
  attachments?: number;
  maps?: Record<string, { entries: number; max: number }>;
  /** connection table entries over its size, 0 to 1 */
  ctFill?: number;
  drops?: Counts;
  /** the kernel's own drops on berth's interfaces; null: not watched here */
  kernelDrops?: Counts | null;
  traffic?: DpTraffic;
  /** event counters, by DpStat name */
  stats?: Record<string, number>;
}

export interface IptablesStatusDetail extends Partial<LastApplyStatus> {
  /** iptables is not installed: nothing else is known */
  error?: string;
  backend?: 'nf_tables' | 'legacy';
  version?: string;
  /** family -> "table/chain" -> rules */
  rules?: Record<string, Record<string, number>>;
  drops?: Counts;
  sysctls?: Record<string, string>;
}

export interface NftablesStatusDetail extends Partial<LastApplyStatus> {
  /** nft is not installed: nothing else is known */
  error?: string;
  version?: string;
  /** berth's tables present in the kernel ("inet berth", "bridge berth") */
  tables?: string[];
  /** set name -> elements berth keeps in it */
  elements?: Record<string, number>;
  drops?: Counts;
  sysctls?: Record<string, string>;
}

/** What a backend reports of itself, by kind: readers narrow on kind, nothing casts. */
export type DatapathStatus =
  | { kind: 'bpf'; detail: BpfStatusDetail }
  | { kind: 'iptables'; detail: IptablesStatusDetail }
  | { kind: 'nftables'; detail: NftablesStatusDetail }
  | { kind: 'none'; detail: Record<string, never> };

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
  readonly kind: 'bpf' | 'iptables' | 'nftables' | 'none';
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
  /** Fixed capacities a desired state must fit (absent: none). */
  limits?(): DatapathLimits;
}

export interface DatapathLimits {
  /** published-port entries: one per DpPublish (a port or range, per family) */
  publishEntries: number;
}
