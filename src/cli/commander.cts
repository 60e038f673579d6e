/**
 * commander, for what the plain parser (parse.cts) and the help writer
 * (help.cts) leave to it: errors and unusual command lines. The recorded definitions (spec.cts) are replayed
 * into commander's objects, call by call, so its help and messages are what
 * they were when the definitions were written against commander itself.
 *
 * commander is required by its file where the package has it
 * (node_modules/commander beside berth's package.json, in a checkout and in
 * the installed package, which bundles it): by name, its package.json
 * "exports" would load node's ES module resolver, ~3 ms. Anywhere else, by name.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../package.cjs';
import type * as spec from './spec.cjs';

type Commander = typeof import('commander');
type CCommand = import('commander').Command;

function load(): Commander {
  const file = join(projectRoot, 'node_modules', 'commander', 'index.js');
  return (existsSync(file) ? require(file) : require('commander')) as Commander;
}

function toOption(c: Commander, o: spec.Option): import('commander').Option {
  const out = new c.Option(o.flags, o.description);
  for (const [method, args] of o.calls) (out as unknown as Record<string, (...a: unknown[]) => unknown>)[method]!(...args);
  return out;
}

/** @lite's definitions on commander's @cmd; of @lite's sub-commands only @only when given. */
function replay(c: Commander, lite: spec.Command, cmd: CCommand, root: { lite: spec.Command; cmd: CCommand }, only?: spec.Command): void {
  for (const [method, args] of lite.calls) {
    if (method === 'command') {
      const sub = args[0] as spec.Command;
      if (only && sub !== only) continue;
      replay(c, sub, cmd.command(sub.name), root);
    } else if (method === 'option') {
      cmd.addOption(toOption(c, args[0] as spec.Option));
    } else {
      (cmd as unknown as Record<string, (...a: unknown[]) => unknown>)[method]!(...args);
    }
  }
  // The actions and hooks see the recorded commands, with commander's parse in opts().
  const sync = (): void => {
    root.lite.parsed = root.cmd.opts();
    lite.parsed = cmd.opts();
  };
  if (lite.actionFn) {
    const fn = lite.actionFn;
    cmd.action(async (...a: unknown[]) => {
      sync();
      await fn(...a.slice(0, -2), lite.parsed, lite);
    });
  }
  for (const h of lite.preAction) {
    cmd.hook('preAction', () => {
      sync();
      return h(lite, lite) as void;
    });
  }
}

/**
 * commander's command for the definitions of @root; with @only (a top-level
 * command's name or alias), just that command and the global options are
 * made (the ~40 commands and their options are a few ms).
 */
export function toCommander(root: spec.Command, only?: string): CCommand {
  const c = load();
  const sub = only === undefined ? undefined : root.find(only);
  const cmd = new c.Command(root.name);
  replay(c, root, cmd, { lite: root, cmd }, sub);
  return cmd;
}

/** Runs @argv through commander, from the definitions of @root (@only: see toCommander). */
export function parseWithCommander(root: spec.Command, argv: string[], only?: string): Promise<unknown> {
  return toCommander(root, only).parseAsync(argv);
}
