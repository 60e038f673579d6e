/**
 * One berthd per state directory and per socket, and one per pinned eBPF
 * datapath: a second one is refused, naming the first.
 */
import { mkdir, open, readdir, readFile, rmdir, unlink } from 'node:fs/promises';
import { fstatSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { addon } from '../native/addon.js';
import { conflict } from '../errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function isBerthd(pid: number): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes('berthd');
  } catch {
    return false;
  }
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class DaemonLock {
  private constructor(readonly file: string) {}

  static async acquire(stateDir: string, socket: string): Promise<DaemonLock> {
    const file = join(stateDir, 'berthd.pid');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(file, 'wx', 0o600);
        await fh.writeFile(`${process.pid}\n`);
        await fh.close();
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
        const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
        if (pid && pid !== process.pid && alive(pid) && (await isBerthd(pid))) {
          throw conflict(`another berthd (pid ${pid}) is using state directory ${stateDir}`);
        }
        await unlink(file).catch(() => undefined); // stale: its berthd is gone
      }
    }
    if (await socketAnswers(socket)) {
      await unlink(file).catch(() => undefined);
      throw conflict(`another berthd is serving socket ${socket}`);
    }
    return new DaemonLock(file);
  }

  async release(): Promise<void> {
    await unlink(this.file).catch(() => undefined);
  }
}

/**
 * The owner of the datapath pinned in a bpffs (<bpffs>/berth): two berthds
 * with their own state directories but one bpffs would otherwise share the
 * pinned maps and undo each other's entries. The owner holds an flock(2) on
 * <bpffs>/berth-owner (a bpffs holds directories, not files, and no '.' in names), which the
 * kernel drops when the owner exits however it exits, so a dead owner's pins
 * are taken over; inside it a directory named after the owner (pid, state
 * directory) says who it is.
 */
export class PinOwner {
  private constructor(
    private readonly dir: string,
    private readonly record: string,
    private fd: number | undefined,
  ) {}

  static ownerDir(bpffs: string): string {
    return join(bpffs, 'berth-owner');
  }

  static async acquire(bpffs: string, stateDir: string): Promise<PinOwner> {
    const dir = PinOwner.ownerDir(bpffs);
    for (let attempt = 0; ; attempt++) {
      await mkdir(dir, { recursive: true });
      const fd = addon().flockHold(dir);
      if (fd === null) {
        const o = await PinOwner.owner(bpffs);
        throw conflict(`another berthd (pid ${o?.pid ?? 'unknown'}, state directory ${o?.stateDir ?? 'unknown'}) owns the eBPF datapath pinned in ${join(bpffs, 'berth')}: stop it, or give this berthd a bpffs of its own (--bpffs DIR)`);
      }
      // A releasing owner removes the directory: a lock on the removed one is no lock.
      let same = false;
      try {
        same = fstatSync(fd).ino === statSync(dir).ino;
      } catch {
        /* removed meanwhile */
      }
      if (!same) {
        addon().flockRelease(fd);
        if (attempt < 5) continue;
        throw conflict(`could not lock ${dir}: it keeps being removed (another berthd starting and stopping?)`);
      }
      // Whoever is named there is gone (the lock is free): this berthd takes over.
      for (const f of await readdir(dir)) await rmdir(join(dir, f)).catch(() => undefined);
      const record = join(dir, `${process.pid} ${encodeURIComponent(stateDir).replaceAll('.', '%2E')}`.slice(0, 255));
      await mkdir(record);
      return new PinOwner(dir, record, fd);
    }
  }

  /** Who holds the pins of @bpffs, as its record says; undefined: nobody named. */
  static async owner(bpffs: string): Promise<{ pid: number; stateDir: string } | undefined> {
    const names = await readdir(PinOwner.ownerDir(bpffs)).catch(() => [] as string[]);
    const m = names.map((n) => /^(\d+) (.*)$/.exec(n)).find((x) => x);
    if (!m) return undefined;
    let stateDir = m[2]!;
    try {
      stateDir = decodeURIComponent(stateDir);
    } catch {
      /* cut short at 255 bytes: shown as it is */
    }
    return { pid: Number(m[1]), stateDir };
  }

  async release(): Promise<void> {
    if (this.fd === undefined) return;
    await rmdir(this.record).catch(() => undefined);
    await rmdir(this.dir).catch(() => undefined);
    addon().flockRelease(this.fd);
    this.fd = undefined;
  }
}
