/**
 * The CLI's command definitions as data. The builder has the shape of
 * commander's (command, option, addOption, argument, alias, action, hook)
 * but only records: a command line that parses plainly is run from the record
 * with node's util.parseArgs (parse.cts), and commander is loaded only for
 * help, for errors and for anything unusual (commander.cts replays the record
 * into commander's objects, so help text and error messages are commander's).
 * Loading commander is ~10 ms of every run (it loads node:child_process).
 */

/** A parser's refusal of a value: commander's own class has this code, and names the option before the message. */
export class InvalidArgumentError extends Error {
  readonly code = 'commander.invalidArgument';
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'InvalidArgumentError';
  }
}

/** A value parser, as commander types it (each knows its previous value's type). */
export type Parser = (value: string, previous: any) => unknown;
/** One builder call, to be replayed on commander's object. */
export type Call = [method: string, args: unknown[]];

export class Option {
  readonly short?: string;
  readonly long?: string;
  /** takes a value (`<value>`) */
  readonly takesValue: boolean;
  /** something the fast parser does not do (an optional or variadic value): commander parses such a command line */
  readonly unusual: boolean;
  choiceList?: readonly string[];
  defaultValue?: unknown;
  parser?: Parser;
  readonly calls: Call[] = [];

  constructor(
    readonly flags: string,
    readonly description?: string,
  ) {
    const parts = flags.split(/[ |,]+/);
    for (const p of parts) {
      if (/^-[^-]$/.test(p)) this.short = p.slice(1);
      else if (/^--[^-]/.test(p)) this.long = p.slice(2);
    }
    const value = parts.find((p) => /^[<[]/.test(p));
    this.takesValue = value !== undefined;
    this.unusual = (value !== undefined && (value.startsWith('[') || value.includes('...'))) || this.long === undefined || this.long.startsWith('no-');
  }

  /** The key of opts(), as commander names it: the long flag camel-cased, else the short one. */
  get key(): string {
    const name = this.long ?? this.short ?? '';
    return name.replace(/-([a-z0-9])/gi, (_, c: string) => c.toUpperCase());
  }

  choices(values: readonly string[]): this {
    this.choiceList = values;
    this.calls.push(['choices', [values]]);
    return this;
  }

  default(value: unknown): this {
    this.defaultValue = value;
    this.calls.push(['default', [value]]);
    return this;
  }

  argParser(fn: Parser): this {
    this.parser = fn;
    this.calls.push(['argParser', [fn]]);
    return this;
  }
}

export interface ArgumentSpec {
  name: string;
  description?: string;
  required: boolean;
  variadic: boolean;
}

type ActionFn = (...args: any[]) => unknown;
type HookFn = (thisCommand: Command, actionCommand: Command) => unknown;

export class Command {
  readonly commands: Command[] = [];
  readonly options: Option[] = [];
  readonly arguments: ArgumentSpec[] = [];
  readonly aliases: string[] = [];
  readonly preAction: HookFn[] = [];
  actionFn?: ActionFn;
  desc = '';
  /** in the order made: commander gets them in that order, which is the order of its help */
  readonly calls: (Call | ['command', [Command]] | ['option', [Option]])[] = [];
  parent?: Command;
  /** the options parsed (by either parser), what opts() answers */
  parsed: Record<string, unknown> = {};

  constructor(readonly name = '') {}

  /**
   * Set on the root: only the top-level command of this name is recorded, the
   * others' builder calls go to a sink (recording all ~40 commands and their
   * options is a few ms of every run).
   */
  only?: string;

  command(name: string): Command {
    if (!/^[a-z][a-z-]*$/.test(name)) throw new Error(`command '${name}': only a plain name is supported here (add arguments with argument())`);
    if (this.only !== undefined && this.only !== name) return SINK;
    const c = new Command(name);
    c.parent = this;
    this.commands.push(c);
    this.calls.push(['command', [c]]);
    return c;
  }

  description(text: string): this {
    this.desc = text;
    this.calls.push(['description', [text]]);
    return this;
  }

  /** As commander's: option(flags, description, default) or option(flags, description, parser, default). */
  option(flags: string, description?: string, parser?: Parser, defaultValue?: unknown): this;
  option(flags: string, description?: string, defaultValue?: unknown): this;
  option(flags: string, description?: string, parserOrDefault?: unknown, defaultValue?: unknown): this {
    const o = new Option(flags, description);
    if (typeof parserOrDefault === 'function') {
      o.default(defaultValue);
      o.argParser(parserOrDefault as Parser);
    } else if (parserOrDefault !== undefined) {
      o.default(parserOrDefault);
    }
    return this.addOption(o);
  }

  addOption(o: Option): this {
    this.options.push(o);
    this.calls.push(['option', [o]]);
    return this;
  }

  argument(name: string, description?: string): this {
    const m = /^([<[])([a-z][a-zA-Z-]*)(\.\.\.)?[>\]]$/.exec(name);
    if (!m) throw new Error(`argument '${name}': expected <name>, [name], <name...> or [name...]`);
    if (this.arguments.at(-1)?.variadic) throw new Error(`argument '${name}' after a variadic one`);
    this.arguments.push({ name: m[2]!, required: m[1] === '<', variadic: m[3] !== undefined, ...(description === undefined ? {} : { description }) });
    this.calls.push(['argument', description === undefined ? [name] : [name, description]]);
    return this;
  }

  alias(name: string): this {
    this.aliases.push(name);
    this.calls.push(['alias', [name]]);
    return this;
  }

  action(fn: ActionFn): this {
    this.actionFn = fn;
    return this;
  }

  hook(event: 'preAction', fn: HookFn): this {
    this.preAction.push(fn);
    return this;
  }

  opts<T extends Record<string, unknown> = Record<string, any>>(): T {
    return this.parsed as T;
  }

  /** The sub-command called @name (or aliased so). */
  find(name: string): Command | undefined {
    return this.commands.find((c) => c.name === name || c.aliases.includes(name));
  }
}

/** A command that is not recorded: every builder call on it is accepted and ignored. */
const SINK: Command = new Proxy({} as Command, { get: (_, key) => (key === 'then' ? undefined : () => SINK) });
