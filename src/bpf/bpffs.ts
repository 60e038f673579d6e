/** bpffs mounts: the host's /sys/fs/bpf for berthd, private ones for tests and demos. */
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, tryRun } from '../exec.js';
import { BerthError } from '../errors.js';

export const BPFFS_ROOT = '/sys/fs/bpf';

/**
 * A bpffs instance of its own in a temporary directory: pins made there are
 * invisible to the host's /sys/fs/bpf and vanish on release().
 */
export class PrivateBpffs {
  private constructor(readonly path: string) {}

  static async create(prefix = 'berth-bpffs-'): Promise<PrivateBpffs> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    try {
      await run('mount', ['-t', 'bpf', 'bpf', dir]);
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
    return new PrivateBpffs(dir);
  }

  async release(): Promise<void> {
    await tryRun('umount', [this.path]);
    await rm(this.path, { recursive: true, force: true });
  }
}

/**
 * Mounts a bpffs at @path unless one is there. berthd does it first of all,
 * before anything (the overlay, the datapath) loads a program that pins.
 */
export async function ensureBpffs(path: string): Promise<void> {
  const r = await tryRun('findmnt', ['-n', '-o', 'FSTYPE', '--mountpoint', path]);
  if (r.code === 0 && r.stdout.trim() === 'bpf') return;
  await stat(path).catch(() => mkdir(path, { recursive: true }));
  try {
    await run('mount', ['-t', 'bpf', 'bpf', path]);
  } catch (e) {
    throw new BerthError('unavailable', `bpffs is not mounted at ${path} and mounting it failed: ${(e as Error).message}`);
  }
}
