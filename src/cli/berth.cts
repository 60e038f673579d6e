#!/usr/bin/env node
/**
 * The berth command line. Start-up is most of what a short command costs, so
 * this file, the command definitions and what `berth ps` and `berth version`
 * need (the API client, the package's version, the build's versions file)
 * are CommonJS (.cts): node's ES module loader is not started for them. The
 * definitions are recorded (spec.cts) and a plain command line is run from
 * the record with node's util.parseArgs (parse.cts) and help is written
 * from it (help.cts); commander is loaded for errors and unusual command
 * lines only (commander.cts). Each action loads what it uses when
 * it runs, with require() for the CommonJS modules and import() for the rest
 * (the doctor, the demo, the logger, inspect's templates), and `berth --help`
 * loads none of them (test/cli/startup.test.ts checks the module graph).
 */
import { buildCli } from './definitions.cjs';
import type { Command } from './spec.cjs';
import { NotPlain, plainCall } from './parse.cjs';

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

/** Writing the help @argv asks for, when it only asks for that (the help writer is loaded then). */
function helpCall(cli: Command, argv: string[]): (() => Promise<void>) | undefined {
  if (!argv.slice(2).some((a) => a === 'help' || a === '-h' || a === '--help')) return undefined;
  const { formatHelp, helpAsked } = require('./help.cjs') as typeof import('./help.cjs');
  const of = helpAsked(cli, argv.slice(2));
  return of && (async () => void process.stdout.write(formatHelp(of)));
}

const { argv, command } = commandOf(process.argv);
const cli = buildCli(command);
let call: (() => Promise<unknown>) | undefined;
try {
  call = helpCall(cli, argv) ?? plainCall(cli, argv);
} catch (e) {
  if (!(e instanceof NotPlain)) throw e;
  if (process.env.BERTH_CLI_DEBUG) process.stderr.write(`berth: parsed by commander: ${e.message}\n`);
}
(call ? call() : (require('./commander.cjs') as typeof import('./commander.cjs')).parseWithCommander(cli, argv, command)).catch((e: unknown) => {
  const err = e as Error & { code?: string };
  process.stderr.write(`berth: ${err.message}\n`);
  process.exitCode = 1;
});
