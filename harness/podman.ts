/**
 * A podman of the harness's own, run inside a harness-made namespace (entered
 * with nsenter --net, so it shares the root mount namespace where its
 * container namespaces are pinned) with its own roots, containers.conf and
 * CNI configuration directory under /tmp: the CNI backend, calling only the
 * plugins in the given plugin directory (berth-cni), or (backend 'netavark',
 * for the benchmark to compare with) podman's own netavark, whose firewall
 * rules land in that namespace. Podman 4.3's libcni
 * speaks CNI up to 1.0.0. Images are imported from busybox-static (no
 * registry). destroy() removes its containers, ends what it left running
 * (found by its roots), and unmounts and removes its roots.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, tryRun } from '../src/exec.js';
import { endProcessesMentioning } from './procs.js';

const APPLETS = ['sh', 'ip', 'ping', 'sleep', 'cat', 'hostname', 'nslookup', 'nc', 'echo', 'ifconfig', 'route', 'httpd', 'true'];

export class Podman {
  readonly netDir: string;
  private readonly conf: string;

  private constructor(readonly dir: string, readonly nsPath: string) {
    this.netDir = join(dir, 'net.d');
    this.conf = join(dir, 'containers.conf');
  }

  /** A podman whose CNI plugins are those of @pluginDir, to be run in the namespace at @nsPath. */
  static async create(nsPath: string, pluginDir: string, opts: { dirPrefix?: string; backend?: 'cni' | 'netavark' } = {}): Promise<Podman> {
    const dir = await mkdtemp(join(tmpdir(), opts.dirPrefix ?? 'berth-podman-'));
    const p = new Podman(dir, nsPath);
    await mkdir(p.netDir, { recursive: true });
    await mkdir(join(dir, 'tmp'), { recursive: true });
    // default_ulimits = []: this machine refuses rlimit changes, which runc otherwise fails on.
    await writeFile(p.conf, [
      '[containers]', 'default_ulimits = []', 'log_driver = "k8s-file"', '',
      '[network]', `network_backend = "${opts.backend ?? 'cni'}"`, `network_config_dir = "${p.netDir}"`, `cni_plugin_dirs = ["${pluginDir}"]`, '',
      '[engine]', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"', `events_logfile_path = "${join(dir, 'events.log')}"`, `tmp_dir = "${join(dir, 'tmp')}"`,
      `volume_path = "${join(dir, 'volumes')}"`, '',
    ].join('\n'));
    return p;
  }

  /** Writes conflist @name (a network podman lists and attaches containers to). */
  async addNetwork(name: string, conflist: unknown): Promise<void> {
    await writeFile(join(this.netDir, `${name}.conflist`), JSON.stringify(conflist, null, 2));
  }

  private argv(args: string[]): string[] {
    return [`--net=${this.nsPath}`, '--', 'env', `CONTAINERS_CONF=${this.conf}`, 'podman', '--root', join(this.dir, 'root'), '--runroot', join(this.dir, 'runroot'),
      '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--tmpdir', join(this.dir, 'tmp'), ...args];
  }

  podman(...args: string[]) {
    return run('nsenter', this.argv(args), { timeoutMs: 120_000 });
  }

  /** `podman` with a time limit of its own. */
  podmanFor(timeoutMs: number, ...args: string[]) {
    return run('nsenter', this.argv(args), { timeoutMs });
  }

  podmanTry(...args: string[]) {
    return tryRun('nsenter', this.argv(args), { timeoutMs: 120_000 });
  }

  /** Imports a tiny image from busybox-static: /bin/busybox and its applets as symlinks. */
  async importBusybox(tag: string): Promise<void> {
    const root = join(this.dir, 'rootfs');
    await mkdir(join(root, 'bin'), { recursive: true });
    await run('cp', ['/bin/busybox', join(root, 'bin', 'busybox')]);
    for (const a of APPLETS) await run('ln', ['-sf', 'busybox', join(root, 'bin', a)]);
    for (const d of ['etc', 'proc', 'sys', 'dev', 'tmp', 'www']) await mkdir(join(root, d), { recursive: true });
    await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
    await writeFile(join(root, 'www', 'index.html'), 'berth-podman\n');
    const tar = join(this.dir, 'rootfs.tar');
    await run('tar', ['-C', root, '-cf', tar, '.']);
    await this.podman('import', '--change', 'CMD ["/bin/sh"]', tar, tag);
  }

  async destroy(): Promise<void> {
    await this.podmanTry('rm', '-a', '-f', '-t', '0').catch(() => undefined);
    await endProcessesMentioning(this.dir);
    const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').map((l) => (l.split(' ')[1] ?? '').replace(/\\040/g, ' '));
    for (const m of mounts.filter((m) => m.startsWith(this.dir + '/')).sort((a, b) => b.length - a.length)) await tryRun('umount', ['-l', m]);
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
