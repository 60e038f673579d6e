/**
 * The Controller owns all state (networks, sandboxes, endpoints, IPAM) and is
 * the only writer of the store. It is a registry (core.ts) and a serial
 * queue: every mutation runs alone, in arrival order, and after each one the
 * commit hooks bring the rest of the host along (held ports, the datapath,
 * and whatever upper layers register, such as the cluster store). The
 * behaviour of each CNM object lives in its own file; nothing here talks to
 * the kernel.
 */
import { badRequest } from '../errors.js';
import { SerialQueue } from '../serial.js';
import { phase, timed } from '../timing.js';
import { desiredDatapath } from '../datapath/desired.js';
import type { DatapathStatus, DesiredDatapath } from '../datapath/datapath.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord, State } from '../store/model.js';
import type { ProcessSpec } from '../sandbox/process.js';

import { Core, type ClusterView, type ControllerOptions, type GlobalScope, type NodeView } from './core.js';
import type { ConnectRequest, CreateNetworkRequest, RunRequest, UpdateRequest } from './requests.js';
import { createNetwork, ensureDefaultNetwork, pruneNetworks, removeNetwork } from './networks.js';
import { connectSandbox, disconnectSandbox, removeSandbox, runSandbox, updateSandbox } from './sandboxes.js';
import { processSpec, processStatus, readOutput } from './processes.js';
import { reconcile } from './reconcile.js';
import { namedEvents, type NamedEvent } from './observe.js';
import { explain as explainFlow, type ExplainRequest, type Explanation } from './explain.js';
import type { DpEventBatch } from '../datapath/datapath.js';


/** Runs after every operation, failed ones too (their undo changed the state as well). */
export type CommitHook = (state: State) => Promise<void>;

export class Controller {
  private readonly queue = new SerialQueue();
  private readonly hooks: CommitHook[] = [];
  /** the desired datapath last applied, as JSON ('' = apply in full next time) */
  private applied = '';
  /**
   * The state objects the datapath and the held ports last followed. Every
   * change replaces the state object (Core.commit): an operation that changed
   * nothing (the drift check every few seconds) costs neither the desired
   * state's JSON nor the ports' walk, which at 50,000 published ports were
   * 10-20 ms of berthd's CPU each time.
   */
  private appliedFrom: State | undefined;
  private portsFrom: State | undefined;
  /** the remote links (JSON) the datapath last followed */
  private appliedRemote = '';

  private constructor(private readonly core: Core) {
    core.enqueue = (fn) => this.exclusive(fn);
  }

  static async open(opts: ControllerOptions): Promise<Controller> {
    const c = new Controller(new Core(await opts.store.load(), opts));
    await ensureDefaultNetwork(c.core);
    await c.core.persist();
    return c;
  }

  get log() {
    return this.core.log;
  }

  /** A read-only view of the current state (callers must not mutate it). */
  snapshot(): State {
    return this.core.state;
  }

  /**
   * Runs @fn alone in the serial queue with the registry; the commit hooks
   * follow it. Upper layers (the Docker adapter, the cluster) build their
   * operations on this; @fn must not call exclusive() itself.
   */
  exclusive<T>(fn: (core: Core) => Promise<T>): Promise<T> {
    const queued = performance.now();
    return this.queue.run(async () => {
      // waiting behind other mutations is part of berthd's share of a request
      phase('queue', performance.now() - queued);
      try {
        return await fn(this.core);
      } finally {
        await this.afterCommit();
      }
    });
  }

  /** Registers @hook to run after every operation (after the datapath is applied). */
  onCommit(hook: CommitHook): void {
    this.hooks.push(hook);
  }

  /** Serves networks of scope 'global' through @scope (a cluster store). */
  setGlobalScope(scope: GlobalScope): void {
    this.core.global = scope;
  }

  /**
   * The operation's commits reach the store before its answer, and the rest
   * of the host follows them. The store's write is synchronous (the disk's
   * fsync runs behind, see EmbeddedStore.save): it goes while the datapath's
   * first kernel calls are out, not before them. A crash between the two
   * leaves datapath entries of no recorded object, which the next start's
   * full apply removes.
   */
  private async afterCommit(): Promise<void> {
    const { state, opts } = this.core;
    const t0 = performance.now();
    if (opts.ports && !(state === this.portsFrom && opts.ports.settled)) {
      opts.ports.sync(Object.values(state.sandboxes).flatMap((s) => s.publish));
      this.portsFrom = state;
    }
    const t1 = performance.now();
    phase('ports', t1 - t0);
    const dp = timed('datapath', () => this.syncDatapath(this.core.reapply));
    dp.catch(() => undefined);
    // the apply's first kernel calls leave in this turn's microtasks; the write follows them
    await new Promise<void>((r) => setImmediate(r));
    try {
      await this.core.persist();
    } finally {
      await dp;
      const t2 = performance.now();
      for (const hook of this.hooks) await hook(this.core.state);
      phase('hooks', performance.now() - t2);
      this.core.log.debug({ ports: +(t1 - t0).toFixed(2), datapath: +(t2 - t1).toFixed(2), hooks: +(performance.now() - t2).toFixed(2) }, 'committed');
    }
  }

  /** The datapath intent resolved from the current state: what every backend is told. */
  desired(remote = this.core.global?.remoteLinks?.(this.core.state)): DesiredDatapath {
    return desiredDatapath(this.core.state, this.core.opts.uplink, this.core.opts.publishAllow, remote);
  }

  /** Hands the datapath the desired state when it changed since the last apply (or when @force). */
  private async syncDatapath(force = false): Promise<void> {
    const dp = this.core.opts.datapath;
    if (!dp) return;
    const from = this.core.state;
    // The other input besides the state: links with an end on another host (routed networks), from the cluster store.
    const remote = this.core.global?.remoteLinks?.(from);
    const remoteKey = remote?.length ? JSON.stringify(remote) : '';
    if (!force && from === this.appliedFrom && remoteKey === this.appliedRemote) return;
    const desired = this.desired(remote);
    const key = JSON.stringify(desired);
    if (!force && key === this.applied) {
      this.appliedFrom = from;
      this.appliedRemote = remoteKey;
      return;
    }
    const t0 = performance.now();
    const took = (ok: boolean) => this.core.opts.onApply?.((performance.now() - t0) / 1000, ok);
    await dp.apply(desired).then(() => took(true), (e: unknown) => {
      took(false);
      throw e;
    });
    this.core.reapply = false;
    this.applied = key;
    this.appliedFrom = from;
    this.appliedRemote = remoteKey;
  }

  // ------------------------------------------------------- reads

  network(ref: string): NetworkRecord {
    return this.core.network(ref);
  }

  sandbox(ref: string): SandboxRecord {
    return this.core.sandbox(ref);
  }

  processSpec(sb: SandboxRecord, cmd: string[]): ProcessSpec {
    return processSpec(this.core.state, this.core.sandboxDir(sb.id), sb, cmd);
  }

  /** The sandbox's command output from byte @offset on. */
  output(sb: SandboxRecord, offset: number): Promise<{ text: string; next: number }> {
    return readOutput(this.core.sandboxDir(sb.id), offset);
  }

  status(sb: SandboxRecord): 'running' | 'exited' | 'created' {
    return processStatus(sb);
  }

  /** The cluster's hosts, when global networks are served (berthd --store etcd://...). */
  clusterView(): ClusterView | undefined {
    return this.core.global?.view();
  }

  /** The cluster's hosts, ready or lapsed; refused on a berthd without a cluster store. */
  nodes(): NodeView[] {
    if (!this.core.global) throw badRequest('this berthd is in no cluster: start it with --store etcd://HOST:PORT to have nodes');
    return this.core.global.nodes();
  }

  /** What the datapath reports of itself: its kind, table fill, drop counters. */
  async datapathStatus(): Promise<DatapathStatus> {
    const dp = this.core.opts.datapath;
    const st: DatapathStatus = dp ? await dp.status() : { kind: 'none', detail: {} };
    // The overlay's programs run beside either datapath: their policy drops count as the datapath's, by the same reasons.
    const ovl = this.core.opts.overlay;
    if (ovl && st.kind !== 'none') {
      const drops = { ...(st.detail.drops ?? {}) };
      for (const [reason, c] of Object.entries(await ovl.policy.dropCounts().catch(() => ({})))) {
        const cur = drops[reason] ?? { packets: 0, bytes: 0 };
        drops[reason] = { packets: cur.packets + c.packets, bytes: cur.bytes + c.bytes };
      }
      st.detail.drops = drops;
    }
    return st;
  }

  /** Datapath events after @since, each with the sandboxes and networks its addresses belong to. */
  datapathEvents(since: number, filter: { sandbox?: string; network?: string } = {}): Promise<DpEventBatch & { events: NamedEvent[] }> {
    return namedEvents(this.core.state, this.core.opts.datapath, since, filter);
  }

  /** `berth explain`: the datapath's own answer for a synthetic new connection. */
  explain(req: ExplainRequest): Promise<Explanation> {
    if (!req || typeof req !== 'object' || typeof req.src !== 'string' || typeof req.dst !== 'string') throw badRequest('explain needs {"src": ..., "dst": ...}');
    return explainFlow(this.core.state, this.core.opts.datapath, req);
  }

  // ------------------------------------------------------- mutations

  createNetwork(req: CreateNetworkRequest): Promise<NetworkRecord> {
    return this.exclusive((core) => createNetwork(core, req));
  }

  removeNetwork(ref: string): Promise<void> {
    return this.exclusive((core) => removeNetwork(core, ref));
  }

  pruneNetworks(): Promise<string[]> {
    return this.exclusive((core) => pruneNetworks(core));
  }

  run(req: RunRequest): Promise<SandboxRecord> {
    return this.exclusive((core) => runSandbox(core, req));
  }

  removeSandbox(ref: string, force: boolean): Promise<void> {
    return this.exclusive((core) => removeSandbox(core, ref, force));
  }

  update(ref: string, req: UpdateRequest): Promise<SandboxRecord> {
    return this.exclusive((core) => updateSandbox(core, ref, req));
  }

  connect(netRef: string, req: ConnectRequest): Promise<EndpointRecord> {
    return this.exclusive((core) => connectSandbox(core, netRef, req));
  }

  disconnect(netRef: string, sandboxRef: string): Promise<void> {
    return this.exclusive((core) => disconnectSandbox(core, netRef, sandboxRef));
  }

  /** Re-applies the datapath when something outside berth changed it; true when it did. */
  repairDatapath(): Promise<boolean> {
    return this.exclusive(async (core) => {
      const dp = core.opts.datapath;
      if (!dp || !(await dp.drifted())) return false;
      core.log.warn({ datapath: dp.kind }, 'datapath changed outside berth (firewall reload?): re-applying');
      core.reapply = true;
      return true;
    });
  }

  /** Replays the store over the kernel (see reconcile.ts); the datapath is then applied in full. */
  reconcile(): Promise<{ created: string[]; removed: string[] }> {
    return this.exclusive(async (core) => {
      const out = await reconcile(core);
      this.applied = ''; // on start the kernel may hold anything: apply in full
      this.appliedFrom = undefined;
      return out;
    });
  }
}
