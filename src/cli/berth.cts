#!/usr/bin/env node
/**
 * The berth command line. Start-up is most of what a short command costs, so
 * this file, the command definitions and what `berth ps` and `berth version`
 * need (the API client, the addon's loader, the package's version) are
 * CommonJS (.cts): node's ES module loader is not started for them. The
 * definitions import only commander; each action loads what it uses when it
 * runs, with require() for the CommonJS modules and import() for the rest
 * (the doctor, the demo, the logger, inspect's templates), and `berth --help`
 * loads none of them (test/cli/startup.test.ts checks the module graph).
 */
import { Command, Option } from 'commander';
import { addDaemonCommands, type Api } from './commands.cjs';
import { addDockerPluginCommands } from './docker-plugin.cjs';
import { addServiceCommands } from './service-commands.cjs';
import { DEFAULT_SOCKET } from '../api/defaults.cjs';

const formatOption = () => new Option('--format <format>', 'output format').choices(['table', 'json']).default('table');
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Applies --log-level to the process's logger (loaded here, by the commands that log). */
async function applyLogLevel(level: string): Promise<void> {
  (await import('../log.js')).setLogLevel(level as 'warn');
}

export function buildCli(): Command {
  const program = new Command('berth')
    .description('container networking on an eBPF datapath')
    .option('--socket <path>', 'berthd API socket', process.env.BERTH_SOCKET ?? DEFAULT_SOCKET)
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default(process.env.BERTH_LOG_LEVEL ?? 'warn'))
    .option('-v, --version', 'berth\'s, node\'s, libbpf\'s, the datapath ABI\'s and the running berthd\'s versions (berth version)')
    // The logger reads the level when it is first loaded, which is after this.
    .hook('preAction', (cmd) => void (process.env.BERTH_LOG_LEVEL = cmd.opts().logLevel));
  const socket = (): string => program.opts().socket;
  const api = (): Api => ({
    async call<T>(method: string, path: string, body?: unknown): Promise<T> {
      const { ApiClient } = require('../api/client.cjs') as typeof import('../api/client.cjs');
      return new ApiClient(socket()).call<T>(method, path, body);
    },
  });

  program
    .command('version')
    .description('berth\'s, node\'s, libbpf\'s, the datapath ABI\'s and the running berthd\'s versions')
    .addOption(formatOption())
    .action(async (opts: { format: string }) => {
      const { printVersion } = require('./version.cjs') as typeof import('./version.cjs');
      await printVersion(socket(), opts.format);
    });

  program
    .command('doctor')
    .description('what this host offers berth and which datapath it would use, and why')
    .addOption(formatOption())
    .option('--bpffs <dir>', 'bpffs mount berthd pins into (its drop counters are read from there)', '/sys/fs/bpf')
    .action(async (opts: { format: string; bpffs: string }) => {
      await applyLogLevel(program.opts().logLevel);
      const { doctor, formatDoctor } = await import('../doctor/doctor.js');
      const r = await doctor({ bpffs: opts.bpffs, socket: program.opts().socket });
      if (opts.format === 'json') (require('./table.cjs') as typeof import('./table.cjs')).printJson(r);
      else process.stdout.write(formatDoctor(r) + '\n');
    });

  program
    .command('demo')
    .description('build a namespace topology, show berth at work in it, and remove it')
    .addOption(formatOption())
    .action(async (opts: { format: string }) => {
      const { runDemo } = await import('./demo.js');
      process.exitCode = await runDemo(opts.format, program.opts().logLevel);
    });

  addDaemonCommands(program, api);
  addDockerPluginCommands(program);
  addServiceCommands(program);
  return program;
}

/** `berth [GLOBAL OPTIONS] -v|--version` is `berth version`: commander's own --version prints one string and cannot ask berthd. */
function versionAlias(argv: string[]): string[] {
  const out = [...argv];
  for (let i = 2; i < out.length; i++) {
    const a = out[i]!;
    if (a === '-v' || a === '--version') {
      out[i] = 'version';
      break;
    }
    if (a === '--socket' || a === '--log-level') i++;
    else if (!a.startsWith('--socket=') && !a.startsWith('--log-level=')) break;
  }
  return out;
}

buildCli()
  .parseAsync(versionAlias(process.argv))
  .catch((e: unknown) => {
    const err = e as Error & { code?: string };
    process.stderr.write(`berth: ${err.message}\n`);
    process.exitCode = 1;
  });
