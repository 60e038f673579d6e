/**
 * The berth command line's definitions (recorded, spec.cts): the global
 * options, the commands of this file and those of commands.cts,
 * docker-plugin.cts and service-commands.cts. Actions load what they use.
 */
import { Command, Option } from './spec.cjs';
import type { Api } from './commands.cjs';
import { DEFAULT_SOCKET } from '../api/defaults.cjs';

type Adder = (program: Command, api: () => Api) => void;

/**
 * The files of further commands, each with the top-level names it defines:
 * only the one a command line names is loaded. A name missing here costs
 * nothing but time: the command is not found in the record, and all are
 * recorded then (test/cli/startup.test.ts checks this table against them).
 */
export const COMMAND_FILES: { names: readonly string[]; add: () => Adder }[] = [
  { names: ['network', 'run', 'update', 'exec', 'rm', 'ps', 'inspect', 'exposure', 'explain', 'monitor', 'datapath', 'port'], add: () => (require('./commands.cjs') as typeof import('./commands.cjs')).addDaemonCommands },
  { names: ['docker-plugin'], add: () => (p) => (require('./docker-plugin.cjs') as typeof import('./docker-plugin.cjs')).addDockerPluginCommands(p) },
  { names: ['install-service', 'uninstall-service'], add: () => (p) => (require('./service-commands.cjs') as typeof import('./service-commands.cjs')).addServiceCommands(p) },
  { names: ['node'], add: () => (require('./node-commands.cjs') as typeof import('./node-commands.cjs')).addNodeCommands },
];

const formatOption = () => new Option('--format <format>', 'output format').choices(['table', 'json']).default('table');
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Applies --log-level to the process's logger (loaded here, by the commands that log). */
async function applyLogLevel(level: string): Promise<void> {
  (await import('../log.js')).setLogLevel(level as 'warn');
}

/**
 * The berth command line, as recorded definitions (spec.cts); with @only,
 * only that top-level command (and the global options), unless no command
 * has that name (an alias, a typo): then all, for commander to resolve the
 * alias or name the typo.
 */
export function buildCli(only?: string): Command {
  if (only !== undefined) {
    const one = record(only);
    if (one.commands.length) return one;
  }
  return record(undefined);
}

function record(only: string | undefined): Command {
  const program = new Command('berth')
    .description('container networking on an eBPF datapath')
    .option('--socket <path>', 'berthd API socket', process.env.BERTH_SOCKET ?? DEFAULT_SOCKET)
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default(process.env.BERTH_LOG_LEVEL ?? 'warn'))
    .option('-v, --version', 'berth\'s, node\'s, libbpf\'s, the datapath ABI\'s and the running berthd\'s versions (berth version)')
    // The logger reads the level when it is first loaded, which is after this.
    .hook('preAction', (cmd) => void (process.env.BERTH_LOG_LEVEL = cmd.opts().logLevel));
  program.only = only;
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

  // version, doctor and demo are this file's own: no other file is needed for them.
  if (only === 'version' || only === 'doctor' || only === 'demo') return program;
  const named = only === undefined ? undefined : COMMAND_FILES.find((f) => f.names.includes(only));
  for (const f of named ? [named] : COMMAND_FILES) f.add()(program, api);
  return program;
}
