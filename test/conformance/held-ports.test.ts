/**
 * Held host ports never take berthd's last file descriptors: under an
 * open-file limit smaller than what is published, berthd holds ports up to
 * its budget (the limit less a reserve of a quarter, at most 4,096), says so
 * once, and keeps working: new sandboxes are made (netlink sockets,
 * namespaces), and every published port is still served by the datapath,
 * held or not. Before, the held sockets ran berthd out of descriptors and a
 * 50,000-port sandbox failed with EMFILE opening a netlink socket.
 */
import { readdir, readlink } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPLINK } from '../../harness/berthd.js';
import { holdBudget } from '../../src/drivers/ports.js';
import { World } from '../helpers/conformance.js';

const LIMIT = 1000;
const RANGE = { first: 30000, count: 1500 }; // more than the budget under LIMIT

describe('held ports and the open-file limit (bpf)', () => {
  let w: World;
  const reaches = async (port: number) => (await w.agent('ext').probe('tcp', UPLINK.host, port, { timeoutMs: 3000 })).reply?.by;
  const fds = async () => {
    const pid = w.h.proc!.pid!;
    const names = await readdir(`/proc/${pid}/fd`);
    const links = await Promise.all(names.map((n) => readlink(`/proc/${pid}/fd/${n}`).catch(() => '')));
    return { all: names.length, sockets: links.filter((l) => l.startsWith('socket:')).length };
  };
  /** Binds @port/tcp on the host's addresses from another program: 'free' or the errno name. */
  const bindFromOther = async (port: number) =>
    (await w.agent('host').sh('python3', '-c', `import socket,errno\ns=socket.socket()\ntry:\n  s.bind(('0.0.0.0', ${port})); print('free')\nexcept OSError as e: print(errno.errorcode[e.errno])`)).trim();

  beforeAll(async () => {
    w = await World.build('bpf', {
      networks: [{ name: 'hp', args: ['--subnet', '10.97.0.0/24'] }],
      sandboxes: [{ name: 'a', network: 'hp', args: ['-p', `${RANGE.first}-${RANGE.first + RANGE.count - 1}:1000-${1000 + RANGE.count - 1}`] }],
      listen: { tcp: [1000, 1000 + RANGE.count - 1, 80], udp: [] },
    });
  }, 60_000);

  afterAll(async () => {
    await w?.destroy();
  }, 60_000);

  it('with room, every published port is held (the probe of a held port works)', async () => {
    expect(await bindFromOther(RANGE.first)).toBe('EADDRINUSE');
    expect(await bindFromOther(RANGE.first + RANGE.count - 1)).toBe('EADDRINUSE');
    expect(await bindFromOther(RANGE.first + RANGE.count)).toBe('free');
  });

  it(`under an open-file limit of ${LIMIT}, berthd holds up to its budget, warns once, and keeps working`, async () => {
    await w.h.kill('SIGTERM');
    await w.h.start(['--datapath', 'bpf'], undefined, ['prlimit', `--nofile=${LIMIT}:${LIMIT}`, '--']);
    const budget = holdBudget(LIMIT);
    const f = await fds();
    expect(f.all).toBeLessThanOrEqual(LIMIT - 100);
    expect(f.sockets).toBeGreaterThanOrEqual(budget);
    expect(w.h.process!.logs).toMatch(/open-file budget for held ports is reached/);
    // the first ports are held, the last one is past the budget: another program could bind it (documented)
    expect(await bindFromOther(RANGE.first)).toBe('EADDRINUSE');
    expect(await bindFromOther(RANGE.first + RANGE.count - 1)).toBe('free');
    // the datapath serves held and unheld ports alike
    expect(await reaches(RANGE.first)).toBe('a');
    expect(await reaches(RANGE.first + RANGE.count - 1)).toBe('a');
    // and berthd still has descriptors for its own work: a new sandbox publishing 300 more ports (checked
    // free one by one, none of them held past the budget)
    await w.h.berth('run', '-d', '--name', 'b', '--network', 'hp', '-p', '9700-9999:1000-1299', '--', 'sleep', 'infinity');
    expect((await w.h.berth('inspect', 'b')).stdout).toContain('9700');
    expect((await fds()).all).toBeLessThanOrEqual(LIMIT - 100);
    await w.h.berth('rm', '-f', 'b');
    expect((await fds()).all).toBeLessThanOrEqual(LIMIT - 100);
  });
});
