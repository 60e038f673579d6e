/** bpffs mounts: the host's /sys/fs/bpf for berthd, private ones for tests and demos. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, tryRun } from '../exec.js';

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
