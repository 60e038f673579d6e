/**
 * `berth docker-plugin install|uninstall`: the plugin spec that makes dockerd
 * find berthd's driver. The work is docker-plugin-run.ts, loaded when one runs.
 */
import type { Command } from './spec.cjs';
import { DEFAULT_SOCKET } from '../api/defaults.cjs';
import { DEFAULT_PLUGIN_NAME, DEFAULT_PLUGIN_SOCKET, PLUGIN_SPEC_DIR } from '../docker/defaults.cjs';

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
      const { answers, startBerthd, installPluginSpec } = await import('./docker-plugin-run.js');
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
      const { stopBerthd, uninstallPluginSpec } = await import('./docker-plugin-run.js');
      const removed = await uninstallPluginSpec(o.name, o.specDir);
      process.stdout.write(removed ? `removed the ${o.name} plugin spec\n` : `no ${o.name} plugin spec installed\n`);
      if (o.stop) process.stdout.write((await stopBerthd(o.stateDir)) + '\n');
    });
}
