/** One berthd per state directory and per socket: a second one is refused, naming the first. */
import { open, readFile, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
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
