/**
 * A test "host": a network namespace with berthd running inside it (entered
 * with nsenter so berthd shares the root mount namespace, where sandbox
 * namespaces are pinned), an uplink veth to an "ext" namespace playing the
 * outside world, and a CLI bound to its socket. Cleanup works also when
 * berthd was killed: it reads the state file for what to remove.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, tryRun } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import type { Topology } from '../../src/netns/topology.js';
import type { State } from '../../src/store/model.js';
import { removeLeftovers } from '../../src/daemon/leftovers.js';

export const UPLINK = { host: '198.18.0.1', ext: '198.18.0.2' };

export class TestHost {
  proc: ChildProcess | undefined;
  readonly socket: string;
  readonly resolvConf: string;
  logs = '';

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
    // The machine's resolv.conf is not the test's business: upstream DNS is the ext namespace.
    await writeFile(h.resolvConf, `nameserver ${UPLINK.ext}\nsearch test.internal\n`);
    await h.start(extraArgs);
    return h;
  }

  args(extra: string[] = []): string[] {
    return ['--state-dir', this.stateDir, '--socket', this.socket, '--log-level', 'info', '--resolv-conf', this.resolvConf, ...extra];
  }

  async start(extraArgs: string[] = []): Promise<void> {
    const child = spawn('nsenter', [`--net=${this.nsPath}`, '--', process.execPath, projectPath('dist', 'src', 'daemon', 'berthd.js'), ...this.args(extraArgs)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = child;
    this.logs = '';
    child.stdout!.on('data', (d: Buffer) => (this.logs += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.logs += d.toString()));
    for (let i = 0; i < 400; i++) {
      if (this.logs.includes('berthd ready')) return;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`berthd exited (${child.exitCode ?? child.signalCode}) during start:\n${this.logs}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`berthd did not become ready:\n${this.logs}`);
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
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await done;
    this.proc = undefined;
  }

  /** Stops berthd, kills sandbox processes and removes every namespace and file berthd made. */
  async destroy(): Promise<void> {
    await this.kill('SIGKILL');
    await removeLeftovers(this.stateDir);
    await rm(this.stateDir, { recursive: true, force: true });
  }
}
