/**
 * Help text from the recorded definitions (spec.cts), laid out as commander
 * lays out its own (usage, description, arguments, options with choices and
 * defaults, commands, wrapped to the terminal's width), so `berth --help`
 * need not load commander. test/cli/parse.test.ts compares the two for every
 * command at several widths.
 */
import type { ArgumentSpec, Command, Option } from './spec.cjs';

const HELP_OPTION = { flags: '-h, --help', description: 'display help for command' };
const MIN_WIDTH_TO_WRAP = 40;

function argName(a: ArgumentSpec): string {
  const n = a.name + (a.variadic ? '...' : '');
  return a.required ? `<${n}>` : `[${n}]`;
}

/** Has the implicit `help [command]` sub-command: sub-commands and no action of its own. */
const hasHelpCommand = (c: Command): boolean => c.commands.length > 0 && !c.actionFn;

function usage(c: Command): string {
  const parts = ['[options]', ...(c.commands.length ? ['[command]'] : []), ...c.arguments.map(argName)];
  let ancestors = '';
  for (let p = c.parent; p; p = p.parent) ancestors = `${p.name} ${ancestors}`;
  return `${ancestors}${c.name}${c.aliases[0] ? `|${c.aliases[0]}` : ''} ${parts.join(' ')}`;
}

function optionDescription(o: Option): string {
  const extra: string[] = [];
  if (o.choiceList) extra.push(`choices: ${o.choiceList.map((v) => JSON.stringify(v)).join(', ')}`);
  if (o.defaultValue !== undefined && (o.takesValue || typeof o.defaultValue === 'boolean')) extra.push(`default: ${JSON.stringify(o.defaultValue)}`);
  if (!extra.length) return o.description ?? '';
  return o.description ? `${o.description} (${extra.join(', ')})` : `(${extra.join(', ')})`;
}

function subcommandTerm(c: Command): string {
  const args = c.arguments.map(argName).join(' ');
  return `${c.name}${c.aliases[0] ? `|${c.aliases[0]}` : ''}${c.options.length ? ' [options]' : ''}${args ? ` ${args}` : ''}`;
}

/** @text wrapped at whitespace to @width columns (commander's boxWrap). */
function wrap(text: string, width: number): string {
  if (width < MIN_WIDTH_TO_WRAP) return text;
  const out: string[] = [];
  for (const line of text.split(/\r\n|\n/)) {
    const chunks = line.match(/\s*\S+/g);
    if (!chunks) {
      out.push('');
      continue;
    }
    let cur = chunks.shift()!;
    for (const chunk of chunks) {
      if (cur.length + chunk.length <= width) cur += chunk;
      else {
        out.push(cur);
        cur = chunk.trimStart();
      }
    }
    out.push(cur);
  }
  return out.join('\n');
}

/** The help of @c, @width columns wide (commander's: the terminal's, else 80). */
export function formatHelp(c: Command, width = (process.stdout.isTTY ? process.stdout.columns : undefined) ?? 80): string {
  const options: [string, string][] = [...c.options.map((o): [string, string] => [o.flags, optionDescription(o)]), [HELP_OPTION.flags, HELP_OPTION.description]];
  const args: [string, string][] = c.arguments.some((a) => a.description) ? c.arguments.map((a) => [a.name, a.description ?? '']) : [];
  const commands: [string, string][] = c.commands.map((s) => [subcommandTerm(s), s.desc]);
  if (hasHelpCommand(c)) commands.push(['help [command]', 'display help for command']);
  const termWidth = Math.max(0, ...[...options, ...args, ...commands].map(([t]) => t.length));
  const item = ([term, description]: [string, string]): string => {
    if (!description) return `  ${term}`;
    const remaining = width - termWidth - 4;
    const text = remaining < MIN_WIDTH_TO_WRAP || /\n[^\S\r\n]/.test(description) ? description : wrap(description, remaining).replace(/\n/g, '\n' + ' '.repeat(termWidth + 2));
    return `  ${term.padEnd(termWidth)}  ${text.replace(/\n/g, '\n  ')}`;
  };
  const section = (heading: string, items: [string, string][]): string[] => (items.length ? [heading, ...items.map(item), ''] : []);
  return [
    `Usage: ${usage(c)}`,
    '',
    ...(c.desc ? [wrap(c.desc, width), ''] : []),
    ...section('Arguments:', args),
    ...section('Options:', options),
    ...section('Commands:', commands),
  ].join('\n');
}

/**
 * The command whose help @args ask for, when they are only that: `[CMD...]
 * -h|--help` or `help [CMD]`; undefined for anything else (commander has it).
 */
export function helpAsked(root: Command, args: string[]): Command | undefined {
  if (args[0] === 'help' && args.length <= 2) return args.length === 1 ? root : root.find(args[1]!);
  const last = args.at(-1);
  if (last !== '-h' && last !== '--help') return undefined;
  let cur = root;
  for (const a of args.slice(0, -1)) {
    const next = cur.find(a);
    if (!next) return undefined;
    cur = next;
  }
  return cur;
}
