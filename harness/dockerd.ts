/**
 * A dockerd of the harness's own inside a harness-made namespace: entered
 * with nsenter (not `ip netns exec`, which remounts /sys), its own data and
 * exec roots, pidfile and socket under /tmp. By default it has no docker0
 * (--bridge=none) and no iptables of Docker's, so the networks under test
 * are berth's; with ownNetworking it is Docker as it ships, for the benchmark
 * to compare with. destroy() ends it by its pidfile, ends whatever
 * containerd-shim it left (found by its own roots), and unmounts and removes
 * its roots.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, tryRun } from '../src/exec.js';
import { endProcessesMentioning, tryKill } from './procs.js';

/** Docker leaves networking alone: no bridge, no iptables rules, no forwarding sysctl. */
const NO_NETWORKING = ['--bridge=none', '--iptables=false', '--ip6tables=false', '--ip-forward=false'];
const APPLETS = ['sh', 'ip', 'ping', 'sleep', 'cat', 'hostname', 'nslookup', 'wget', 'nc', 'echo', 'ifconfig', 'route', 'httpd', 'true'];
const KEEP_LOG = 100_000;

export interface DockerdOptions {
  /** Docker's own networking as it ships (docker0, its iptables rules); default: none, the networks are berth's */
  ownNetworking?: boolean;
  /** prefix of the temporary directory holding the roots and the socket */
  dirPrefix?: string;
  /** how long dockerd may take to answer */
  timeoutMs?: number;
  /** gets the dockerd before anything can fail: the caller then destroys it, also on failure */
  onCreated?: (d: Dockerd) => void;
}

export class Dockerd {
  private proc: ChildProcess | undefined;
  logs = '';
  /** dockerd's pid, from its pidfile once it answers */
  pid = 0;
  readonly socket: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly pidfile: string;

  private constructor(readonly dir: string, readonly nsPath: string, readonly extraArgs: string[], readonly timeoutMs: number) {
    this.socket = join(dir, 'docker.sock');
    this.dataRoot = join(dir, 'data');
    this.execRoot = join(dir, 'exec');
    this.pidfile = join(dir, 'dockerd.pid');
  }

  static async create(nsPath: string, extraArgs: string[] = [], opts: DockerdOptions = {}): Promise<Dockerd> {
    const dir = await mkdtemp(join(tmpdir(), opts.dirPrefix ?? 'berth-dockerd-'));
    const d = new Dockerd(dir, nsPath, [...(opts.ownNetworking ? [] : NO_NETWORKING), ...extraArgs], opts.timeoutMs ?? 30_000);
    opts.onCreated?.(d);
    try {
      await d.start();
    } catch (e) {
      if (!opts.onCreated) await d.destroy();
      throw e;
    }
    return d;
  }

  get env(): NodeJS.ProcessEnv {
    return { ...process.env, DOCKER_HOST: `unix://${this.socket}` };
  }

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async start(): Promise<void> {
    this.logs = '';
    this.proc = spawn('nsenter', [`--net=${this.nsPath}`, '--', 'dockerd', '--data-root', this.dataRoot, '--exec-root', this.execRoot, '--pidfile', this.pidfile,
      '-H', `unix://${this.socket}`, ...this.extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer) => (this.logs = (this.logs + b.toString()).slice(-KEEP_LOG));
    this.proc.stdout!.on('data', keep);
    this.proc.stderr!.on('data', keep);
    const deadline = Date.now() + this.timeoutMs;
    const tail = () => this.logs.slice(-3000);
    for (;;) {
      if (this.proc.exitCode !== null) throw new Error(`dockerd exited (${this.proc.exitCode}):\n${tail()}`);
      if ((await tryRun('docker', ['-H', `unix://${this.socket}`, 'version', '--format', '{{.Server.Version}}'])).code === 0) break;
      if (Date.now() > deadline) throw new Error(`dockerd did not answer in ${this.timeoutMs / 1000} s:\n${tail()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    this.pid = Number((await readFile(this.pidfile, 'utf8').catch(() => '')).trim());
  }

  docker(...args: string[]) {
    return this.dockerFor(60_000, ...args);
  }

  /** `docker` with a time limit of its own (a run with many published ports takes minutes). */
  dockerFor(timeoutMs: number, ...args: string[]) {
    return run('docker', ['-H', `unix://${this.socket}`, ...args], { timeoutMs });
  }

  dockerTry(...args: string[]) {
    return tryRun('docker', ['-H', `unix://${this.socket}`, ...args], { timeoutMs: 60_000 });
  }

  /** Imports a tiny image from busybox-static: /bin/busybox and @applets as symlinks to it. */
  async importBusybox(tag: string, applets: string[] = APPLETS): Promise<void> {
    const root = join(this.dir, 'rootfs');
    await mkdir(join(root, 'bin'), { recursive: true });
    await run('cp', ['/bin/busybox', join(root, 'bin', 'busybox')]);
    for (const a of applets) await run('ln', ['-sf', 'busybox', join(root, 'bin', a)]);
    for (const d of ['etc', 'proc', 'sys', 'dev', 'tmp']) await mkdir(join(root, d), { recursive: true });
    await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
    const tar = join(this.dir, 'rootfs.tar');
    await run('tar', ['-C', root, '-cf', tar, '.']);
    await this.docker('import', '-c', 'CMD ["/bin/sh"]', tar, tag);
  }

  /** SIGTERM by pidfile (SIGKILL after 20 s), and wait for the process to go. */
  async stop(): Promise<void> {
    const pid = Number((await readFile(this.pidfile, 'utf8').catch(() => '')).trim());
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const done = new Promise((r) => p.once('exit', r));
      if (pid) tryKill(pid, 'SIGTERM');
      else p.kill('SIGTERM');
      const t = setTimeout(() => (pid ? tryKill(pid, 'SIGKILL') : p.kill('SIGKILL')), 20_000);
      await done;
      clearTimeout(t);
    }
  }

  /** Stops dockerd, ends what it left running under its roots, unmounts and removes them. */
  async destroy(): Promise<void> {
    await this.stop().catch(() => undefined);
    // containerd and its shims outlive dockerd with --live-restore; find ours by our roots.
    await endProcessesMentioning(this.dir);
    const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').map((l) => (l.split(' ')[1] ?? '').replace(/\\040/g, ' '));
    for (const m of mounts.filter((m) => m.startsWith(this.dir + '/')).sort((a, b) => b.length - a.length)) {
      await tryRun('umount', ['-l', m]);
    }
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
