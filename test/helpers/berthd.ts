/**
 * A test "host": a network namespace with berthd running inside it (entered
 * with nsenter so berthd shares the root mount namespace, where sandbox
 * namespaces are pinned), an uplink veth to an "ext" namespace playing the
 * outside world, and a CLI bound to its socket. Cleanup works also when
 * berthd was killed: it reads the state file for what to remove.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, tryRun } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import type { Topology } from '../../src/netns/topology.js';
import type { State } from '../../src/store/model.js';
import { removeLeftovers } from '../../src/daemon/leftovers.js';
import { BerthdProcess } from '../../src/daemon/spawn.js';
import { PrivateBpffs } from '../../src/bpf/bpffs.js';

export const UPLINK = { host: '198.18.0.1', ext: '198.18.0.2' };

export class TestHost {
  private daemon: BerthdProcess | undefined;
  readonly socket: string;
  readonly resolvConf: string;

  /** berthd's bpffs: a private one, so that no pin lands in the machine's /sys/fs/bpf */
  bpffs: PrivateBpffs | undefined;

  private constructor(
    readonly topo: Topology,
    readonly short: string,
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

  /** Makes namespaces @short and ext joined by an uplink, and starts berthd in @short. */
  static async create(topo: Topology, short = 'host', extraArgs: string[] = []): Promise<TestHost> {
    await topo.addNetns(short);
    await topo.addNetns('ext');
    await topo.veth({ ns: short, name: 'uplink0', addr: `${UPLINK.host}/24` }, { ns: 'ext', name: 'eth0', addr: `${UPLINK.ext}/24` });
    const dir = await mkdtemp(join(tmpdir(), 'berth-test-state-'));
    const h = new TestHost(topo, short, dir);
    if (!extraArgs.includes('--bpffs')) {
      h.bpffs = await PrivateBpffs.create('berth-test-bpffs-');
      extraArgs = ['--bpffs', h.bpffs.path, ...extraArgs];
    }
    // The machine's resolv.conf is not the test's business: upstream DNS is the ext namespace.
    await writeFile(h.resolvConf, `nameserver ${UPLINK.ext}\nsearch test.internal\n`);
    await h.start(extraArgs);
    return h;
  }

  args(extra: string[] = []): string[] {
    return ['--state-dir', this.stateDir, '--socket', this.socket, '--log-level', 'info', '--resolv-conf', this.resolvConf, ...extra];
  }

  /** The running berthd's process, while there is one. */
  get proc(): ChildProcess | undefined {
    return this.daemon?.running ? this.daemon.proc : undefined;
  }

  /** What the current (or last) berthd logged. */
  get logs(): string {
    return this.daemon?.logs ?? '';
  }

  async start(extraArgs: string[] = []): Promise<void> {
    const bpffs = this.bpffs && !extraArgs.includes('--bpffs') ? ['--bpffs', this.bpffs.path] : [];
    this.daemon = await BerthdProcess.start(this.nsPath, this.args([...bpffs, ...extraArgs]));
  }

  /** Runs `berth` against this host's berthd; rejects on a non-zero exit. */
  berth(...args: string[]) {
    return run(process.execPath, [projectPath('dist', 'src', 'cli', 'berth.js'), '--socket', this.socket, ...args], { timeoutMs: 30_000 });
  }

  /** Runs `berth` and resolves with its exit code and output instead of rejecting. */
  berthTry(...args: string[]) {
    return tryRun(process.execPath, [projectPath('dist', 'src', 'cli', 'berth.js'), '--socket', this.socket, ...args], { timeoutMs: 30_000 });
  }

  async state(): Promise<State> {
    return JSON.parse(await readFile(join(this.stateDir, 'state.json'), 'utf8')) as State;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.daemon?.stop(signal);
  }

  /** Stops berthd, kills sandbox processes and removes every namespace and file berthd made. */
  async destroy(): Promise<void> {
    await this.kill('SIGKILL');
    await removeLeftovers(this.stateDir);
    await rm(this.stateDir, { recursive: true, force: true });
    await this.bpffs?.release();
    this.bpffs = undefined;
  }
}
