/**
 * `berth docker-plugin install --start` is the one command that makes berth
 * Docker's driver: it writes the plugin spec and starts berthd serving the
 * plugin socket; `uninstall --stop` undoes both. The CLI runs inside a
 * test-made host namespace, so the berthd it starts lives there.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import { removeLeftovers } from '../../harness/leftovers.js';
import type { Topology } from '../../harness/topology.js';
import { testTopology } from '../helpers/kernel.js';
import { PrivateBpffs } from '../../src/bpf/bpffs.js';

const NAME = `berth-i${process.pid}`;
let topo: Topology;
let dir: string;
let specDir: string;
let bpffs: PrivateBpffs;

const berthInHost = (...args: string[]) => run('nsenter', [`--net=${topo.nsPath('host')}`, '--', process.execPath, projectPath('dist', 'src', 'cli', 'berth.cjs'), ...args], { timeoutMs: 30_000 });

function activate(socket: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path: '/Plugin.Activate', method: 'POST' }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve(JSON.parse(text)));
    });
    req.on('error', reject);
    req.end('{}');
  });
}

beforeAll(async () => {
  topo = testTopology();
  await topo.addNetns('host');
  dir = await mkdtemp(join(tmpdir(), 'berth-test-state-'));
  specDir = await mkdtemp(join(tmpdir(), 'berth-test-specs-'));
  // berthd's datapath pins go to a bpffs of the test's own, never the machine's /sys/fs/bpf.
  bpffs = await PrivateBpffs.create('berth-test-bpffs-');
});

afterAll(async () => {
  const pid = Number((await readFile(join(dir, 'state', 'berthd.pid'), 'utf8').catch(() => '')).trim());
  if (pid) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* stopped by the test */
    }
  }
  await removeLeftovers(join(dir, 'state'));
  await rm(dir, { recursive: true, force: true });
  await rm(specDir, { recursive: true, force: true });
  await topo?.destroy();
  await bpffs?.release();
});

describe('berth docker-plugin install --start / uninstall --stop', () => {
  it('writes the spec and starts berthd serving the plugin, then removes and stops both', async () => {
    const sock = join(dir, 'plugin.sock');
    const common = ['--name', NAME, '--spec-dir', specDir];
    const out = (await berthInHost('docker-plugin', 'install', ...common, '--start', '--bpffs', bpffs.path, '--plugin-socket', sock, '--state-dir', join(dir, 'state'), '--berthd-socket', join(dir, 'api.sock'))).stdout;
    expect(out).toContain(`berthd serves it; now: docker network create -d ${NAME} --ipam-driver ${NAME} NET`);
    expect(await readFile(join(specDir, `${NAME}.spec`), 'utf8')).toContain(`unix://${sock}`);
    expect(await activate(sock)).toEqual({ Implements: ['NetworkDriver', 'IpamDriver'] });
    const pid = Number((await readFile(join(dir, 'state', 'berthd.pid'), 'utf8')).trim());
    // It runs in the namespace the command ran in: its default bridge is there, not in the root namespace.
    expect((await run('ip', ['-n', topo.ns('host'), '-o', 'link'])).stdout).toMatch(/berth0/);
    // A second install finds the socket served and starts nothing.
    await berthInHost('docker-plugin', 'install', ...common, '--start', '--bpffs', bpffs.path, '--plugin-socket', sock, '--state-dir', join(dir, 'state'), '--berthd-socket', join(dir, 'api.sock'));
    expect(Number((await readFile(join(dir, 'state', 'berthd.pid'), 'utf8')).trim())).toBe(pid);

    const down = (await berthInHost('docker-plugin', 'uninstall', ...common, '--stop', '--state-dir', join(dir, 'state'))).stdout;
    expect(down).toContain(`removed the ${NAME} plugin spec`);
    expect(down).toContain(`stopped berthd (pid ${pid})`);
    expect(existsSync(join(specDir, `${NAME}.spec`))).toBe(false);
    expect(() => process.kill(pid, 0)).toThrow();
  });
});
