/**
 * A dockerd of the test's own inside a test-made namespace: entered with
 * nsenter (not `ip netns exec`, which remounts /sys), its own data and exec
 * roots and socket under /tmp, no docker0 (--bridge=none) and no iptables of
 * Docker's: the networks under test are berth's. stop() ends it by its
 * pidfile, ends whatever containerd-shim it left (found by its own roots),
 * and unmounts and removes its roots.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, tryRun } from '../../src/exec.js';
import { processesMentioning, tryKill } from '../../src/devtools/procs.js';

export class TestDockerd {
  private proc: ChildProcess | undefined;
  logs = '';
  readonly socket: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly pidfile: string;

  private constructor(readonly dir: string, readonly nsPath: string, readonly extraArgs: string[]) {
    this.socket = join(dir, 'docker.sock');
    this.dataRoot = join(dir, 'data');
    this.execRoot = join(dir, 'exec');
    this.pidfile = join(dir, 'dockerd.pid');
  }

  static async create(nsPath: string, extraArgs: string[] = []): Promise<TestDockerd> {
    const dir = await mkdtemp(join(tmpdir(), 'berth-dockerd-'));
    const d = new TestDockerd(dir, nsPath, extraArgs);
    try {
      await d.start();
    } catch (e) {
      await d.destroy();
      throw e;
    }
    return d;
  }

  get env(): NodeJS.ProcessEnv {
    return { ...process.env, DOCKER_HOST: `unix://${this.socket}` };
  }

  async start(): Promise<void> {
    this.logs = '';
    this.proc = spawn('nsenter', [`--net=${this.nsPath}`, '--', 'dockerd', '--data-root', this.dataRoot, '--exec-root', this.execRoot, '--pidfile', this.pidfile,
      '-H', `unix://${this.socket}`, '--bridge=none', '--iptables=false', '--ip6tables=false', '--ip-forward=false', ...this.extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (b: Buffer) => (this.logs += b.toString()));
    this.proc.stderr!.on('data', (b: Buffer) => (this.logs += b.toString()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (this.proc.exitCode !== null) throw new Error(`dockerd exited (${this.proc.exitCode}):\n${this.logs.slice(-3000)}`);
      if ((await tryRun('docker', ['-H', `unix://${this.socket}`, 'version', '--format', '{{.Server.Version}}'])).code === 0) return;
      if (Date.now() > deadline) throw new Error(`dockerd did not answer in 30 s:\n${this.logs.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  docker(...args: string[]) {
    return run('docker', ['-H', `unix://${this.socket}`, ...args], { timeoutMs: 60_000 });
  }

  dockerTry(...args: string[]) {
    return tryRun('docker', ['-H', `unix://${this.socket}`, ...args], { timeoutMs: 60_000 });
  }

  /** Imports a tiny image from busybox-static: /bin/busybox and its applets as symlinks. */
  async importBusybox(tag: string): Promise<void> {
    const root = join(this.dir, 'rootfs');
    await mkdir(join(root, 'bin'), { recursive: true });
    await run('cp', ['/bin/busybox', join(root, 'bin', 'busybox')]);
    for (const a of ['sh', 'ip', 'ping', 'sleep', 'cat', 'hostname', 'nslookup', 'wget', 'nc', 'echo', 'ifconfig', 'route', 'httpd', 'true']) {
      await run('ln', ['-sf', 'busybox', join(root, 'bin', a)]);
    }
    for (const d of ['etc', 'proc', 'sys', 'dev', 'tmp']) await mkdir(join(root, d), { recursive: true });
    await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
    const tar = join(this.dir, 'rootfs.tar');
    await run('tar', ['-C', root, '-cf', tar, '.']);
    await this.docker('import', '-c', 'CMD ["/bin/sh"]', tar, tag);
  }

  /** SIGTERM by pidfile, and wait for the process to go. */
  async stop(): Promise<void> {
    const pid = Number((await readFile(this.pidfile, 'utf8').catch(() => '')).trim());
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const done = new Promise((r) => p.once('exit', r));
      if (pid) process.kill(pid, 'SIGTERM');
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
    for (let i = 0; i < 3; i++) {
      const pids = await processesMentioning(this.dir);
      if (!pids.length) break;
      for (const pid of pids) tryKill(pid, i ? 'SIGKILL' : 'SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
    }
    const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1] ?? '').map((m) => m.replace(/\\040/g, ' '));
    for (const m of mounts.filter((m) => m.startsWith(this.dir + '/')).sort((a, b) => b.length - a.length)) {
      await tryRun('umount', ['-l', m]);
    }
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}


