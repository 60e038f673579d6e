/**
 * The plain command line, parsed with node's util.parseArgs from the recorded
 * definitions (spec.cts): known options anywhere before `--`, the global ones
 * with the command's own, values checked against their choices and parsers,
 * the arguments counted. Anything else (help, an unknown command or option, a
 * missing or refused value, a missing or extra argument, a value that looks
 * like an option) is not decided here: the caller hands the command line to
 * commander, which prints the help or names the error as it always has. So a
 * command line either runs here exactly as commander would run it, or goes to
 * commander.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Command, Option } from './spec.cjs';

/** Why the plain parser stepped aside (for tests and for the curious: BERTH_CLI_DEBUG=1). */
export class NotPlain extends Error {}

/**
 * The command path @args name: top-level command (and sub-command of a group)
 * with the positions of their names in @args, the global options' values
 * skipped over.
 */
function commandPath(root: Command, args: string[]): { path: Command[]; at: number[] } {
  const path: Command[] = [];
  const at: number[] = [];
  let cur = root;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      if (path.length) throw new NotPlain(`an option (${a}) between a group and its command`);
      const o = findOption(root.options, a);
      if (!o) throw new NotPlain(`${a} before the command`);
      if (o.takesValue && !a.includes('=')) i++;
      continue;
    }
    const next = cur.find(a);
    if (!next) throw new NotPlain(`no command '${a}' under '${cur.name}'`);
    path.push(next);
    at.push(i);
    cur = next;
    if (!cur.commands.length) return { path, at };
  }
  throw new NotPlain(path.length ? `group '${cur.name}' without a command` : 'no command');
}

function findOption(options: Option[], arg: string): Option | undefined {
  const flag = arg.split('=')[0]!;
  return options.find((o) => (o.long !== undefined && flag === `--${o.long}`) || (o.short !== undefined && flag === `-${o.short}`));
}

/** opts() of @options from what parseArgs found: defaults, then each value in order through its choices and parser. */
function optionValues(options: Option[], values: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const o of options) {
    let v = o.defaultValue;
    for (const given of (values[o.long ?? o.short!] as (string | boolean)[] | undefined) ?? []) {
      if (typeof given === 'boolean') {
        v = true;
        continue;
      }
      if (o.choiceList && !o.choiceList.includes(given)) throw new NotPlain(`--${o.long} ${given} is not one of its choices`);
      try {
        v = o.parser ? o.parser(given, v) : given;
      } catch (e) {
        throw new NotPlain(`--${o.long} ${given}: ${(e as Error).message}`);
      }
    }
    if (v !== undefined) out[o.key] = v;
  }
  return out;
}

/**
 * @argv (node's: [node, script, ...]) as a call of its command's action, or
 * NotPlain thrown when commander should have it.
 */
export function plainCall(root: Command, argv: string[]): () => Promise<unknown> {
  const args = argv.slice(2);
  const dashes = args.indexOf('--');
  for (const a of dashes < 0 ? args : args.slice(0, dashes)) {
    if (a === '-h' || a === '--help' || a.startsWith('--help=')) throw new NotPlain('help');
  }
  const { path, at } = commandPath(root, args);
  const leaf = path.at(-1)!;
  if (!leaf.actionFn) throw new NotPlain(`'${leaf.name}' has no action`);
  if (path.slice(0, -1).some((g) => g.options.length || g.preAction.length)) throw new NotPlain('a group with options of its own');
  const all = [...root.options, ...leaf.options];
  if (all.some((o) => o.unusual)) throw new NotPlain('an option of a kind parsed by commander only');
  const names = new Set<string>();
  for (const o of all) {
    for (const n of [o.long && `--${o.long}`, o.short && `-${o.short}`]) {
      if (!n) continue;
      if (names.has(n)) throw new NotPlain(`${n} is both a global option and '${leaf.name}''s`);
      names.add(n);
    }
  }
  const config: ParseArgsConfig['options'] = {};
  for (const o of all) config[o.long ?? o.short!] = { type: o.takesValue ? 'string' : 'boolean', multiple: true, ...(o.long && o.short ? { short: o.short } : {}) };
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: args.filter((_, i) => !at.includes(i)), options: config, strict: true, allowPositionals: true });
  } catch (e) {
    throw new NotPlain((e as Error).message);
  }
  root.parsed = optionValues(root.options, parsed.values);
  leaf.parsed = optionValues(leaf.options, parsed.values);
  const rest = parsed.positionals;
  const callArgs: unknown[] = [];
  for (const a of leaf.arguments) {
    if (a.variadic) {
      if (a.required && !rest.length) throw new NotPlain(`missing <${a.name}...>`);
      callArgs.push(rest.splice(0));
    } else {
      if (!rest.length) {
        if (a.required) throw new NotPlain(`missing <${a.name}>`);
        callArgs.push(undefined);
      } else callArgs.push(rest.shift());
    }
  }
  if (rest.length) throw new NotPlain(`extra arguments: ${rest.join(' ')}`);
  return async () => {
    for (const h of root.preAction) await h(root, leaf);
    return leaf.actionFn!(...callArgs, leaf.parsed, leaf);
  };
}
