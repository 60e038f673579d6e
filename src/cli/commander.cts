/**
 * commander, as the CLI's definitions use it, required by its file where the
 * package has it (node_modules/commander beside berth's package.json, in a
 * checkout and in the installed package, which bundles it). Requiring the
 * package by name resolves its package.json "exports", which loads node's ES
 * module resolver: about 3 ms of every command. Anywhere else, by name.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../package.cjs';

type Commander = typeof import('commander');

function load(): Commander {
  const file = join(projectRoot, 'node_modules', 'commander', 'index.js');
  return (existsSync(file) ? require(file) : require('commander')) as Commander;
}

const commander = load();
// Each name is the class and, as in commander's own typings, its instances' type.
export const Command = commander.Command;
export type Command = import('commander').Command;
export const Option = commander.Option;
export type Option = import('commander').Option;
export const InvalidArgumentError = commander.InvalidArgumentError;
export type InvalidArgumentError = import('commander').InvalidArgumentError;
