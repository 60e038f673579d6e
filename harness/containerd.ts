/**
 * A containerd of the harness's own (Debian's 1.6) inside a harness-made
 * namespace, entered with nsenter --net: its own root, state, socket and
 * config under /tmp, the CRI plugin off. `ctr run --cni` calls CNI itself
 * (go-cni in the ctr process) from fixed places, /etc/cni/net.d (the first
 * configuration file by name) and /opt/cni/bin, with no flag or variable to
 * change them; ctr() therefore runs ctr in a private mount namespace where
 * a tmpfs covers /opt and the harness's directories are bound over those
 * two, so nothing is written to the machine's own. destroy() ends
 * containerd, the shims it left (found by its directory) and removes it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, tryRun } from '../src/exec.js';
import { endProcessesMentioning, tryKill } from './procs.js';

const APPLETS = ['sh', 'ip', 'ping', 'sleep', 'cat', 'nslookup', 'nc', 'echo', 'httpd', 'printf', 'true'];
const KEEP_LOG = 50_000;

export class Containerd {
  private proc: ChildProcess | undefined;
  logs = '';
  readonly socket: string;
  /** what ctr sees as /etc/cni/net.d */
  readonly netDir: string;
  /** what ctr sees as /opt/cni/bin */
  readonly binDir: string;
  /** a busybox-static root filesystem for `ctr run --rootfs` */
  readonly rootfs: string;

  private constructor(readonly dir: string, readonly nsPath: string) {
    this.socket = join(dir, 'containerd.sock');
    this.netDir = join(dir, 'net.d');
    this.binDir = join(dir, 'bin');
    this.rootfs = join(dir, 'rootfs');
  }

  /** Starts containerd in the namespace at @nsPath; CNI plugins are copied from @pluginFiles (paths). */
  static async create(nsPath: string, pluginFiles: string[], opts: { timeoutMs?: number } = {}): Promise<Containerd> {
    const c = new Containerd(await mkdtemp(join(tmpdir(), 'berth-containerd-')), nsPath);
    try {
      for (const d of [c.netDir, c.binDir, join(c.rootfs, 'bin')]) await mkdir(d, { recursive: true });
      for (const f of pluginFiles) await copyFile(f, join(c.binDir, f.split('/').pop()!));
      await run('cp', ['/bin/busybox', join(c.rootfs, 'bin', 'busybox')]);
      for (const a of APPLETS) await run('ln', ['-sf', 'busybox', join(c.rootfs, 'bin', a)]);
      for (const d of ['etc', 'proc', 'sys', 'dev', 'tmp', 'www']) await mkdir(join(c.rootfs, d), { recursive: true });
      await writeFile(join(c.rootfs, 'www', 'index.html'), 'berth-ctr\n');
      await writeFile(join(c.dir, 'config.toml'), [
        'version = 2', `root = "${join(c.dir, 'root')}"`, `state = "${join(c.dir, 'state')}"`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]', '[grpc]', `  address = "${c.socket}"`, '',
      ].join('\n'));
      await c.start(opts.timeoutMs ?? 30_000);
    } catch (e) {
      await c.destroy();
      throw e;
    }
    return c;
  }

  private async start(timeoutMs: number): Promise<void> {
    this.proc = spawn('nsenter', [`--net=${this.nsPath}`, '--', 'containerd', '--config', join(this.dir, 'config.toml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer) => (this.logs = (this.logs + b.toString()).slice(-KEEP_LOG));
    this.proc.stdout!.on('data', keep);
    this.proc.stderr!.on('data', keep);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.proc.exitCode !== null) throw new Error(`containerd exited (${this.proc.exitCode}):\n${this.logs.slice(-3000)}`);
      if ((await tryRun('ctr', ['--address', this.socket, 'version'])).code === 0) return;
      if (Date.now() > deadline) throw new Error(`containerd did not answer in ${timeoutMs / 1000} s:\n${this.logs.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The argv that runs `ctr @args` in the namespace, with the harness's CNI directories where ctr looks. */
  argv(args: string[]): string[] {
    const script = 'mount -t tmpfs berth-ctr /opt && mkdir -p /opt/cni/bin && mount --bind "$1" /opt/cni/bin && mount --bind "$2" /etc/cni/net.d && shift 2 && exec ctr "$@"';
    return [`--net=${this.nsPath}`, '--', 'unshare', '-m', '--propagation', 'private', 'sh', '-c', script, 'sh', this.binDir, this.netDir,
      '--address', this.socket, '-n', 'berth', ...args];
  }

  ctr(...args: string[]) {
    return run('nsenter', this.argv(args), { timeoutMs: 60_000 });
  }

  ctrTry(...args: string[]) {
    return tryRun('nsenter', this.argv(args), { timeoutMs: 60_000 });
  }

  async destroy(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const done = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      const t = setTimeout(() => p.pid && tryKill(p.pid, 'SIGKILL'), 10_000);
      await done;
      clearTimeout(t);
    }
    await endProcessesMentioning(this.dir);
    const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').map((l) => (l.split(' ')[1] ?? '').replace(/\\040/g, ' '));
    for (const m of mounts.filter((m) => m.startsWith(this.dir + '/')).sort((a, b) => b.length - a.length)) await tryRun('umount', ['-l', m]);
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
