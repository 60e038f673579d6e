#!/usr/bin/env node
/** The berth command line. */
import { Command, Option } from 'commander';
import { setLogLevel } from '../log.js';
import { doctor, formatDoctor } from '../doctor/doctor.js';
import { runDemo } from './demo.js';
import { printJson } from './table.js';
import { addDaemonCommands } from './commands.js';
import { addDockerPluginCommands } from './docker-plugin.js';
import { ApiClient, DEFAULT_SOCKET } from '../api/client.js';

const formatOption = () => new Option('--format <format>', 'output format').choices(['table', 'json']).default('table');


export function buildCli(): Command {
  const program = new Command('berth')
    .description('container networking on an eBPF datapath')
    .option('--socket <path>', 'berthd API socket', process.env.BERTH_SOCKET ?? DEFAULT_SOCKET)
    .option('--log-level <level>', 'log level (fatal, error, warn, info, debug, trace)', process.env.BERTH_LOG_LEVEL ?? 'warn')
    .hook('preAction', (cmd) => setLogLevel(cmd.opts().logLevel));

  program
    .command('doctor')
    .description('what this host offers berth and which datapath it would use, and why')
    .addOption(formatOption())
    .option('--bpffs <dir>', 'bpffs mount berthd pins into (its drop counters are read from there)', '/sys/fs/bpf')
    .action(async (opts: { format: string; bpffs: string }) => {
      const r = await doctor({ bpffs: opts.bpffs, socket: program.opts().socket });
      if (opts.format === 'json') printJson(r);
      else process.stdout.write(formatDoctor(r) + '\n');
    });

  program
    .command('demo')
    .description('build a namespace topology, show berth at work in it, and remove it')
    .addOption(formatOption())
    .action(async (opts: { format: string }) => {
      process.exitCode = await runDemo(opts.format, program.opts().logLevel);
    });

  addDaemonCommands(program, () => new ApiClient(program.opts().socket));
  addDockerPluginCommands(program);
  return program;
}

buildCli()
  .parseAsync(process.argv)
  .catch((e: unknown) => {
    const err = e as Error & { code?: string };
    process.stderr.write(`berth: ${err.message}\n`);
    process.exitCode = 1;
  });
