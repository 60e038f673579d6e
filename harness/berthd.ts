/**
 * berthd as tests, the benchmark and the demo run it. BerthdProcess starts
 * berthd as a child inside a network namespace (entered with nsenter, so it
 * keeps the root mount namespace where sandbox namespaces are pinned) and
 * waits until it serves its API. BerthHost is a whole "host": a namespace
 * with berthd in it, an uplink veth to an "ext" namespace playing the outside
 * world, its own state directory and private bpffs (no pin lands in the
 * machine's /sys/fs/bpf). Cleanup works also after berthd was killed: the
 * state file says what to remove.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../src/api/client.cjs';
import { PrivateBpffs } from '../src/bpf/bpffs.js';
import { run, tryRun } from '../src/exec.js';
import { projectPath } from '../src/paths.js';
import type { State } from '../src/store/model.js';
import { removeLeftovers } from './leftovers.js';
import { bounded } from './procs.js';
import type { Topology } from './topology.js';

const BERTHD = projectPath('dist', 'src', 'daemon', 'berthd.js');
const BERTH = projectPath('dist', 'src', 'cli', 'berth.cjs');

export class BerthdProcess {
  logs = '';

  private constructor(readonly proc: ChildProcess) {
    proc.stdout!.on('data', (d: Buffer) => (this.logs += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (this.logs += d.toString()));
  }

  /**
   * @wrapper: a command berthd runs under, e.g. setpriv dropping capabilities.
   * @command: berthd itself (default: node and this checkout's dist/), e.g. an installed package's bin/berthd.
   */
  static async start(netnsPath: string, args: string[], opts: { timeoutMs?: number; wrapper?: string[]; command?: string[] } = {}): Promise<BerthdProcess> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const proc = spawn('nsenter', [`--net=${netnsPath}`, '--', ...(opts.wrapper ?? []), ...(opts.command ?? [process.execPath, BERTHD]), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const b = new BerthdProcess(proc);
    const deadline = Date.now() + timeoutMs;
    while (!b.logs.includes('berthd ready')) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`berthd exited (${proc.exitCode ?? proc.signalCode}) during start:\n${b.logs}`);
      }
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`berthd did not become ready in ${timeoutMs} ms:\n${b.logs}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    return b;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.running) return;
    const done = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill(signal);
    await done;
  }
}

/** Runs the compiled `berth` CLI against @socket; rejects on a non-zero exit. */
export function berthCli(socket: string, ...args: string[]) {
  return run(process.execPath, [BERTH, '--socket', socket, ...args], { timeoutMs: 30_000 });
}

/** The same, resolving with the exit code and output instead of rejecting. */
export function berthCliTry(socket: string, ...args: string[]) {
  return tryRun(process.execPath, [BERTH, '--socket', socket, ...args], { timeoutMs: 30_000 });
}

/** The uplink's addresses: the host's, and the outside world's (also the host's upstream DNS). */
export const UPLINK = { host: '198.18.0.1', ext: '198.18.0.2' };

export interface BerthHostOptions {
  /** short name of the outside world's namespace (default "ext") */
  ext?: string;
  /** prefixes of the temporary state directory and the private bpffs */
  statePrefix?: string;
  bpffsPrefix?: string;
  /** how long berthd may take to become ready */
  timeoutMs?: number;
  /** gets the host before anything can fail: the caller then destroys it, also on failure */
  onCreated?: (h: BerthHost) => void;
  /** the berthd command to run (default: this checkout's), e.g. an installed package's bin/berthd */
  berthd?: string[];
}

export class BerthHost {
  private daemon: BerthdProcess | undefined;
  /** the berthd command start() runs; undefined: this checkout's */
  berthdCommand: string[] | undefined;
  readonly socket: string;
  readonly resolvConf: string;
  /** berthd's bpffs: a private one, so that no pin lands in the machine's /sys/fs/bpf */
  bpffs: PrivateBpffs | undefined;

  private constructor(
    readonly topo: Topology,
    readonly short: string,
    readonly ext: string,
    readonly stateDir: string,
  ) {
    this.socket = join(stateDir, 'berth.sock');
    this.resolvConf = join(stateDir, 'host-resolv.conf');
  }

  get ns(): string {
    return this.topo.ns(this.short);
  }

  get nsPath(): string {
    return this.topo.nsPath(this.short);
  }

  get extPath(): string {
    return this.topo.nsPath(this.ext);
  }

  get api(): ApiClient {
    return new ApiClient(this.socket);
  }

  /**
   * Makes namespaces @short and ext joined by an uplink, and starts berthd in
   * @short with @extraArgs (the first start only). Without opts.onCreated a
   * failure removes what was made already.
   */
  static async create(topo: Topology, short = 'host', extraArgs: string[] = [], opts: BerthHostOptions = {}): Promise<BerthHost> {
    const dir = await mkdtemp(join(tmpdir(), opts.statePrefix ?? 'berth-test-state-'));
    const h = new BerthHost(topo, short, opts.ext ?? 'ext', dir);
    h.berthdCommand = opts.berthd;
    opts.onCreated?.(h);
    try {
      await topo.addNetns(short);
      await topo.addNetns(h.ext);
      await topo.veth({ ns: short, name: 'uplink0', addr: `${UPLINK.host}/24` }, { ns: h.ext, name: 'eth0', addr: `${UPLINK.ext}/24` });
      let args = extraArgs;
      if (!args.includes('--bpffs')) {
        h.bpffs = await PrivateBpffs.create(opts.bpffsPrefix ?? 'berth-test-bpffs-');
        args = ['--bpffs', h.bpffs.path, ...args];
      }
      // The machine's resolv.conf is not the harness's business: upstream DNS is the ext namespace.
      await writeFile(h.resolvConf, `nameserver ${UPLINK.ext}\nsearch test.internal\n`);
      await h.start(args, opts.timeoutMs);
    } catch (e) {
      if (!opts.onCreated) await h.destroy();
      throw e;
    }
    return h;
  }

  args(extra: string[] = []): string[] {
    return ['--state-dir', this.stateDir, '--socket', this.socket, '--log-level', 'info', '--resolv-conf', this.resolvConf, ...extra];
  }

  /** The running berthd's process, while there is one. */
  get proc(): ChildProcess | undefined {
    return this.daemon?.running ? this.daemon.proc : undefined;
  }

  /** The current (or last) berthd. */
  get process(): BerthdProcess | undefined {
    return this.daemon;
  }

  /** What the current (or last) berthd logged. */
  get logs(): string {
    return this.daemon?.logs ?? '';
  }

  /** @wrapper: a command berthd runs under inside the namespace (e.g. `unshare -m`: a private mount namespace). */
  async start(extraArgs: string[] = [], timeoutMs?: number, wrapper?: string[]): Promise<void> {
    const bpffs = this.bpffs && !extraArgs.includes('--bpffs') ? ['--bpffs', this.bpffs.path] : [];
    this.daemon = await BerthdProcess.start(this.nsPath, this.args([...bpffs, ...extraArgs]), {
      ...(timeoutMs ? { timeoutMs } : {}),
      ...(this.berthdCommand ? { command: this.berthdCommand } : {}),
      ...(wrapper ? { wrapper } : {}),
    });
  }

  /** Runs `berth` against this host's berthd; rejects on a non-zero exit. */
  berth(...args: string[]) {
    return berthCli(this.socket, ...args);
  }

  /** Runs `berth` and resolves with its exit code and output instead of rejecting. */
  berthTry(...args: string[]) {
    return berthCliTry(this.socket, ...args);
  }

  async state(): Promise<State> {
    return JSON.parse(await readFile(join(this.stateDir, 'state.json'), 'utf8')) as State;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.daemon?.stop(signal);
  }

  /**
   * Stops berthd (@graceful: SIGTERM first, for up to 5 s), kills sandbox
   * processes and removes every namespace and file berthd made, and its bpffs.
   */
  async destroy(opts: { graceful?: boolean } = {}): Promise<void> {
    if (opts.graceful && this.daemon?.running) await bounded(this.daemon.stop('SIGTERM'), 5_000).catch(() => undefined);
    await this.kill('SIGKILL').catch(() => undefined);
    await removeLeftovers(this.stateDir);
    await rm(this.stateDir, { recursive: true, force: true });
    await this.bpffs?.release().catch(() => undefined);
    this.bpffs = undefined;
  }
}
