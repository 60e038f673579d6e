/** What `berth docker-plugin install|uninstall` do: the spec file, and a berthd started or stopped for it. */
import { spawn } from 'node:child_process';
import { mkdir, open, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { projectPath } from '../paths.js';

export { installPluginSpec, uninstallPluginSpec } from '../docker/install.js';

export function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(socket);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Starts berthd detached (it outlives this command), logging to STATE/berthd.log, and waits for the plugin socket. */
export async function startBerthd(pluginSocket: string, stateDir: string, apiSocket: string, bpffs: string): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const log = await open(join(stateDir, 'berthd.log'), 'a', 0o600);
  try {
    const child = spawn(process.execPath, [projectPath('dist', 'src', 'daemon', 'berthd.js'), '--state-dir', stateDir, '--socket', apiSocket, '--docker-plugin', pluginSocket, '--bpffs', bpffs], {
      detached: true,
      stdio: ['ignore', log.fd, log.fd],
    });
    child.unref();
    for (let i = 0; i < 200; i++) {
      if (await answers(pluginSocket)) return;
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await log.close();
  }
  throw new Error(`berthd did not come up serving ${pluginSocket}: see ${join(stateDir, 'berthd.log')}`);
}

/** Stops the berthd that holds @stateDir (SIGTERM: its sandboxes and datapath stay). */
export async function stopBerthd(stateDir: string): Promise<string> {
  const pid = Number((await readFile(join(stateDir, 'berthd.pid'), 'utf8').catch(() => '')).trim());
  if (!pid) return `no berthd holds ${stateDir}`;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return `no berthd holds ${stateDir}`;
  }
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return `stopped berthd (pid ${pid})`;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`berthd (pid ${pid}) did not stop within 10 s`);
}
