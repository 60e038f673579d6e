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
import { Command, Option } from './commander.cjs';
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

/** A command that is not the one being run: every builder call on it is accepted and ignored (no options made, no listeners). */
function skipped(): Command {
  const dummy: Command = new Proxy({} as Command, { get: () => () => dummy });
  return dummy;
}

/**
 * @root as the definitions see it when only the top-level command @name will
 * run: its other commands are skipped (defining all ~40 commands and their
 * options is a few ms of every run). @matched is told when @name was defined.
 */
function onlyCommand(root: Command, name: string, matched: () => void): Command {
  return new Proxy(root, {
    get(target, key) {
      if (key === 'command') {
        return (nameAndArgs: string, ...rest: unknown[]) => {
          if (nameAndArgs.split(' ')[0] !== name) return skipped();
          matched();
          return (target.command as (...a: unknown[]) => Command)(nameAndArgs, ...rest);
        };
      }
      const v = Reflect.get(target, key) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/**
 * The berth command line; with @only, just that top-level command (and the
 * global options). A name that is no command's (an alias, a typo) gets the
 * whole tree, so that commander resolves the alias or names the typo.
 */
export function buildCli(only?: string): Command {
  if (only !== undefined) {
    let found = false;
    const cli = buildTree(only, () => (found = true));
    if (found) return cli;
  }
  return buildTree(undefined, () => undefined);
}

function buildTree(only: string | undefined, matched: () => void): Command {
  const root = new Command('berth')
    .description('container networking on an eBPF datapath')
    .option('--socket <path>', 'berthd API socket', process.env.BERTH_SOCKET ?? DEFAULT_SOCKET)
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default(process.env.BERTH_LOG_LEVEL ?? 'warn'))
    .option('-v, --version', 'berth\'s, node\'s, libbpf\'s, the datapath ABI\'s and the running berthd\'s versions (berth version)')
    // The logger reads the level when it is first loaded, which is after this.
    .hook('preAction', (cmd) => void (process.env.BERTH_LOG_LEVEL = cmd.opts().logLevel));
  const program = only === undefined ? root : onlyCommand(root, only, matched);
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
  return root;
}

/**
 * The top-level command @argv names after the global options (undefined: none,
 * or an option such as --help); `berth [GLOBAL OPTIONS] -v|--version` is
 * `berth version` (commander's own --version prints one string and cannot
 * ask berthd), so the returned argv has it rewritten.
 */
function commandOf(argv: string[]): { argv: string[]; command: string | undefined } {
  const out = [...argv];
  for (let i = 2; i < out.length; i++) {
    const a = out[i]!;
    if (a === '-v' || a === '--version') out[i] = 'version';
    else if (a === '--socket' || a === '--log-level') {
      i++;
      continue;
    } else if (a.startsWith('--socket=') || a.startsWith('--log-level=')) continue;
    const c = out[i]!;
    // `help CMD` prints another command's help: that needs the whole tree.
    return { argv: out, command: c.startsWith('-') || c === 'help' ? undefined : c };
  }
  return { argv: out, command: undefined };
}

const { argv, command } = commandOf(process.argv);
buildCli(command)
  .parseAsync(argv)
  .catch((e: unknown) => {
    const err = e as Error & { code?: string };
    process.stderr.write(`berth: ${err.message}\n`);
    process.exitCode = 1;
  });
