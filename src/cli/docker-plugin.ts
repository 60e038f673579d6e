/** `berth docker-plugin install|uninstall`: the plugin spec that makes dockerd find berthd's driver. */
import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { mkdir, open, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { projectPath } from '../paths.js';
import { DEFAULT_SOCKET } from '../api/client.js';
import { DEFAULT_PLUGIN_NAME, DEFAULT_PLUGIN_SOCKET, PLUGIN_SPEC_DIR, installPluginSpec, uninstallPluginSpec } from '../docker/install.js';

export function addDockerPluginCommands(program: Command): void {
  const dp = program.command('docker-plugin').description('make berth Docker\'s network and IPAM driver (berthd --docker-plugin SOCKET serves it)');
  dp.command('install')
    .description('write the plugin spec dockerd discovers: `docker network create -d NAME --ipam-driver NAME ...`')
    .option('--name <name>', 'driver name (the spec file name)', DEFAULT_PLUGIN_NAME)
    .option('--plugin-socket <path>', 'the socket berthd serves with --docker-plugin', DEFAULT_PLUGIN_SOCKET)
    .option('--spec-dir <dir>', 'where dockerd looks for plugin specs', PLUGIN_SPEC_DIR)
    .option('--start', 'also start berthd serving the plugin socket, unless something already serves it', false)
    .option('--state-dir <dir>', 'with --start: berthd\'s state directory', '/var/lib/berth')
    .option('--berthd-socket <path>', 'with --start: berthd\'s API socket', DEFAULT_SOCKET)
    .option('--bpffs <dir>', 'with --start: the bpffs berthd pins its datapath into', '/sys/fs/bpf')
    .action(async (o: { name: string; pluginSocket: string; specDir: string; start: boolean; stateDir: string; berthdSocket: string; bpffs: string }) => {
      if (o.start && !(await answers(o.pluginSocket))) await startBerthd(o.pluginSocket, o.stateDir, o.berthdSocket, o.bpffs);
      const path = await installPluginSpec(o.name, o.pluginSocket, o.specDir);
      process.stdout.write(`${path} -> unix://${o.pluginSocket}\n`);
      process.stdout.write(o.start ? `berthd serves it; now: docker network create -d ${o.name} --ipam-driver ${o.name} NET\n` : `run berthd with --docker-plugin ${o.pluginSocket}; then: docker network create -d ${o.name} --ipam-driver ${o.name} NET\n`);
    });
  dp.command('uninstall')
    .description('remove the plugin spec (remove the Docker networks using it first)')
    .option('--name <name>', 'driver name (the spec file name)', DEFAULT_PLUGIN_NAME)
    .option('--spec-dir <dir>', 'where dockerd looks for plugin specs', PLUGIN_SPEC_DIR)
    .option('--stop', 'also stop the berthd of --state-dir (its sandboxes keep running)', false)
    .option('--state-dir <dir>', 'with --stop: berthd\'s state directory', '/var/lib/berth')
    .action(async (o: { name: string; specDir: string; stop: boolean; stateDir: string }) => {
      const removed = await uninstallPluginSpec(o.name, o.specDir);
      process.stdout.write(removed ? `removed the ${o.name} plugin spec\n` : `no ${o.name} plugin spec installed\n`);
      if (o.stop) process.stdout.write((await stopBerthd(o.stateDir)) + '\n');
    });
}

function answers(socket: string): Promise<boolean> {
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
async function startBerthd(pluginSocket: string, stateDir: string, apiSocket: string, bpffs: string): Promise<void> {
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
async function stopBerthd(stateDir: string): Promise<string> {
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
