/**
 * The controller's registry: the state, the drivers and the daemon's options,
 * with the few primitives every concern shares (lookups, paths, committing a
 * draft of the state). One Core exists per Controller; the behaviour of each
 * CNM object lives in its own file and is handed the Core. Code that holds a
 * Core runs inside the controller's serial queue (see Controller.exclusive).
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { conflict, notFound } from '../errors.js';
import { byRef, shortId } from './names.js';
import type { EmbeddedStore } from '../store/embedded.js';
import type { DaemonConfig, NetworkRecord, SandboxRecord, State } from '../store/model.js';
import type { NetworkDriver } from '../drivers/driver.js';
import { BridgeDriver } from '../drivers/bridge.js';
import { MacvlanDriver } from '../drivers/macvlan.js';
import { OverlayDriver } from '../drivers/overlay.js';
import { RoutedDriver } from '../drivers/routed.js';
import type { OverlayDataplane } from '../datapath/overlay/dataplane.js';
import type { Datapath, DpLink } from '../datapath/datapath.js';
import { desiredDatapath } from '../datapath/desired.js';
import type { PortHolder } from '../drivers/ports.js';
import { sandboxNetnsPath } from '../drivers/netns.js';
import { timed } from '../timing.js';
import type { CreateNetworkRequest } from './requests.js';

export interface ControllerEvents {
  /** a user-defined network came up or went away: the DNS server follows it */
  networkUp?(n: NetworkRecord): Promise<void>;
  networkDown?(n: NetworkRecord): Promise<void>;
}

export interface ControllerOptions {
  store: EmbeddedStore;
  stateDir: string;
  /** the host resolv.conf sandboxes inherit (read when their files are written) */
  resolvConf?: string;
  config: DaemonConfig;
  log: Logger;
  events?: ControllerEvents;
  /** the packet datapath; told the whole desired state after every change */
  datapath?: Datapath;
  uplink?: string;
  /** berthd --publish-allow, normalised: the only sources that reach published ports */
  publishAllow?: string[];
  /** the overlay dataplane (berthd --store etcd://...), which the overlay driver drives */
  overlay?: OverlayDataplane;
  /** hold every published host port with a bound socket (berthd does; see drivers/ports.ts) */
  ports?: PortHolder;
  /** told how long each datapath apply took (the metrics' histogram) */
  onApply?(seconds: number, ok: boolean): void;
}

/**
 * The contract for networks of scope 'global': networks that live in a
 * cluster store and are mirrored on every host. The controller asks it to
 * create and delete such networks and to allocate their addresses; the
 * cluster module (src/cluster/global.ts) implements it on a cluster store.
 */
export interface GlobalScope {
  /** Creates global network @name in the cluster and on this host. */
  createNetwork(core: Core, req: CreateNetworkRequest, name: string): Promise<NetworkRecord>;
  /** Removes @n from the cluster (refused while any host has endpoints on it). */
  deleteNetwork(n: NetworkRecord): Promise<void>;
  /** An IPv4 address of @n for @owner, taken in the cluster store (the local pool then only records it). */
  allocate(n: NetworkRecord, owner: string, requested?: string): Promise<string | undefined>;
  /** The cluster's hosts and whether its store is reachable (`berth network inspect`). */
  view(): ClusterView;
  /** A sandbox of another host that a --link may name (a routed network's member or an overlay endpoint), by name or id */
  linkTarget?(state: State, ref: string): { id: string; name: string } | undefined;
  /** Links with one end on another host (routed networks), for the datapath */
  remoteLinks?(state: State): DpLink[];
  /** Every host the cluster knows, ready or lapsed (`berth node ls`). */
  nodes(): NodeView[];
}

/** A host of the cluster as this host sees it (src/cluster/members.ts keeps it). */
export interface NodeView {
  id: string;
  name: string;
  underlay: string;
  /** this berthd's own host */
  self: boolean;
  /** ready: registered now; lapsed: its registration expired */
  state: 'ready' | 'lapsed';
  /** when this berthd last saw its registration (now for a ready host; null: lapsed before this berthd started) */
  lastSeen: string | null;
  /** seconds its registration has been gone, as seen here */
  lapsedFor?: number;
  /** lapsed beyond the grace period: its endpoints are withdrawn on this host */
  withdrawn: boolean;
  /** endpoints the store holds for it */
  endpoints: number;
}

export interface ClusterView {
  hosts: { id: string; name: string; underlay: string }[];
  connected: boolean;
}

export class Core {
  readonly drivers: Record<NetworkRecord['driver'], NetworkDriver>;
  readonly bridge = new BridgeDriver();
  readonly routed = new RoutedDriver();
  /** networks of scope 'global' (a cluster store): absent on a single host */
  global?: GlobalScope;
  /** set when the datapath must be re-applied though the desired state did not change (a new veth) */
  reapply = false;
  /** Queues @fn behind the running operation (for callbacks such as a process exit; never awaited from inside the queue). */
  enqueue: <T>(fn: (core: Core) => Promise<T>) => Promise<T> = () => Promise.reject(new Error('controller not open'));

  constructor(
    public state: State,
    readonly opts: ControllerOptions,
  ) {
    this.drivers = { bridge: this.bridge, macvlan: new MacvlanDriver(), overlay: new OverlayDriver(() => opts.overlay), routed: this.routed };
  }

  get log(): Logger {
    return this.opts.log;
  }

  driverOf(n: NetworkRecord): NetworkDriver {
    return this.drivers[n.driver];
  }

  /**
   * Runs @fn on a copy of the state; commits it to memory only if @fn
   * succeeds. The store is written once at the end of the operation
   * (persist(), from Controller.exclusive), before it answers, however many
   * commits it made: a create made two full rewrites of the state file, and
   * its kernel steps need not wait for one (a crash between the kernel step
   * and the write leaves objects of no recorded sandbox, which reconcile's
   * sweep removes on start, as it removes those of a sandbox recorded but
   * not made). @durable false: a fact a reboot voids anyway (see
   * EmbeddedStore.save).
   */
  async commit<T>(fn: (draft: State) => T, durable = true): Promise<T> {
    const draft = structuredClone(this.state);
    const out = fn(draft);
    this.admit(draft);
    this.state = draft;
    this.unsaved = this.unsaved === 'durable' || durable ? 'durable' : 'volatile';
    return out;
  }

  /** committed changes not written to the store yet, and whether one of them must be durable */
  private unsaved: 'durable' | 'volatile' | undefined;

  /** Writes the state to the store when a commit changed it since the last write. */
  async persist(): Promise<void> {
    const u = this.unsaved;
    if (!u) return;
    this.unsaved = undefined;
    try {
      await timed('store', () => this.opts.store.save(this.state, u === 'durable'));
    } catch (e) {
      this.unsaved = u;
      throw e;
    }
  }

  /** Refuses a state the datapath's fixed tables cannot hold, before anything of it is committed. */
  private admit(draft: State): void {
    const max = this.opts.datapath?.limits?.().publishEntries;
    if (max === undefined) return;
    const records = (s: State) => Object.values(s.sandboxes).reduce((n, sb) => n + sb.publish.length, 0);
    const now = records(draft);
    // A record is one entry a family at most: below half the table nothing needs counting.
    if (now <= records(this.state) || 2 * now <= max) return;
    const n = desiredDatapath(draft, this.opts.uplink, this.opts.publishAllow).publishes.length;
    if (n > max) {
      throw conflict(`published ports: ${n} entries (one a port or range and family) do not fit the eBPF datapath's publish table of ${max}; start berthd with a larger --pub-max`);
    }
  }

  network(ref: string): NetworkRecord {
    const n = byRef(Object.values(this.state.networks), ref);
    if (!n) throw notFound(`network '${ref}' not found`);
    return n;
  }

  sandbox(ref: string): SandboxRecord {
    const s = byRef(Object.values(this.state.sandboxes), ref);
    if (!s) throw notFound(`sandbox '${ref}' not found`);
    return s;
  }

  membersOf(n: NetworkRecord): SandboxRecord[] {
    return Object.values(this.state.sandboxes).filter((s) => s.endpoints.some((e) => e.network === n.id));
  }

  sandboxDir(id: string): string {
    return join(this.opts.stateDir, 'sandboxes', id);
  }

  netnsPathFor(id: string): string {
    return sandboxNetnsPath(this.state.instance, shortId(id));
  }
}
