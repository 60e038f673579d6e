/** `berth docker-plugin install|uninstall`: the plugin spec that makes dockerd find berthd's driver. */
import type { Command } from 'commander';
import { DEFAULT_PLUGIN_NAME, DEFAULT_PLUGIN_SOCKET, PLUGIN_SPEC_DIR, installPluginSpec, uninstallPluginSpec } from '../docker/install.js';

export function addDockerPluginCommands(program: Command): void {
  const dp = program.command('docker-plugin').description('make berth Docker\'s network and IPAM driver (berthd --docker-plugin SOCKET serves it)');
  dp.command('install')
    .description('write the plugin spec dockerd discovers: `docker network create -d NAME --ipam-driver NAME ...`')
    .option('--name <name>', 'driver name (the spec file name)', DEFAULT_PLUGIN_NAME)
    .option('--plugin-socket <path>', 'the socket berthd serves with --docker-plugin', DEFAULT_PLUGIN_SOCKET)
    .option('--spec-dir <dir>', 'where dockerd looks for plugin specs', PLUGIN_SPEC_DIR)
    .action(async (o: { name: string; pluginSocket: string; specDir: string }) => {
      const path = await installPluginSpec(o.name, o.pluginSocket, o.specDir);
      process.stdout.write(`${path} -> unix://${o.pluginSocket}\nrun berthd with --docker-plugin ${o.pluginSocket}; then: docker network create -d ${o.name} --ipam-driver ${o.name} NET\n`);
    });
  dp.command('uninstall')
    .description('remove the plugin spec (remove the Docker networks using it first)')
    .option('--name <name>', 'driver name (the spec file name)', DEFAULT_PLUGIN_NAME)
    .option('--spec-dir <dir>', 'where dockerd looks for plugin specs', PLUGIN_SPEC_DIR)
    .action(async (o: { name: string; specDir: string }) => {
      const removed = await uninstallPluginSpec(o.name, o.specDir);
      process.stdout.write(removed ? `removed the ${o.name} plugin spec\n` : `no ${o.name} plugin spec installed\n`);
    });
}
