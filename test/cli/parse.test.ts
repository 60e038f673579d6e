/**
 * The plain parser (src/cli/parse.cts, node's util.parseArgs over the
 * recorded definitions) against commander over the same definitions: every
 * command line the plain parser takes reaches the same action with the same
 * arguments and options as through commander; the ones it steps aside for are
 * help or errors, which commander prints (checked on the compiled CLI); the
 * help berth writes itself is commander's, for every command. No kernel
 * objects.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { tryRun } from '../../src/exec.js';
import { projectPath } from '../../src/paths.js';
import type * as Spec from '../../src/cli/spec.cjs';

const require = createRequire(import.meta.url);
const dist = (f: string) => projectPath('dist', 'src', 'cli', f);
const { buildCli } = require(dist('definitions.cjs')) as { buildCli: (only?: string) => Spec.Command };
const { plainCall, NotPlain } = require(dist('parse.cjs')) as typeof import('../../src/cli/parse.cjs');
const { parseWithCommander, toCommander } = require(dist('commander.cjs')) as typeof import('../../src/cli/commander.cjs');
const { formatHelp, helpAsked } = require(dist('help.cjs')) as typeof import('../../src/cli/help.cjs');
const BERTH = dist('berth.cjs');

interface Seen {
  command: string;
  args: unknown[];
  opts: Record<string, unknown>;
  globals: Record<string, unknown>;
}

/** The CLI's definitions with every action replaced by one that records what it got. */
function recordingCli(only?: string): { cli: Spec.Command; seen: Seen[] } {
  const cli = buildCli(only);
  const seen: Seen[] = [];
  const walk = (c: Spec.Command, path: string[]) => {
    for (const sub of c.commands) {
      const name = [...path, sub.name].join(' ');
      if (sub.actionFn) {
        sub.actionFn = (...a: unknown[]) => {
          seen.push({ command: name, args: a.slice(0, -2), opts: { ...(a.at(-2) as Record<string, unknown>) }, globals: { ...cli.opts() } });
        };
      }
      walk(sub, [...path, sub.name]);
    }
  };
  walk(cli, []);
  return { cli, seen };
}

const PLAIN: string[][] = [
  ['ps'],
  ['ps', '-a', '--format', 'json'],
  ['--socket', '/x.sock', 'ps', '-a'],
  ['ps', '--socket=/y.sock', '--log-level', 'debug'],
  ['--log-level=info', 'version', '--format=json'],
  ['version'],
  ['network', 'create', '-d', 'overlay', '--subnet', '10.1.0.0/24', '--subnet', 'fd00::/64', '-o', 'a=b', '--opt', 'c=d', '--internal', 'n1'],
  ['network', 'list'],
  ['network', 'ls', '--format', 'json'],
  ['network', 'rm', 'a', 'b'],
  ['network', 'connect', '--ip', '10.0.0.5', 'n1', 'web', '--alias', 'x', '--alias', 'y'],
  ['run', '-d', '--name', 'web', '-p', '80:80', '-p81', '-P', '--network', 'n1', '--', 'sh', '-c', 'echo --help -x'],
  ['run', '-dP', '--egress-allow', '10.0.0.0/8:443/tcp', '--', 'true'],
  ['run', 'true'],
  ['exec', 'web', '--', 'ls', '-la'],
  ['rm', '-f', 'a', 'b'],
  ['inspect', '-f', '{{.Name}} {{json .State}}', 'a', 'b'],
  ['network', 'inspect', 'n', '--format', 'json'],
  ['explain', 'a', 'b', '--port', '80', '--proto', 'udp', '--src-ip', '10.0.0.9'],
  ['monitor', '--count', '3', '--type', 'policy'],
  ['update', 'web', '--egress-clear'],
  ['docker-plugin', 'install', '--start', '--name', 'x'],
  ['docker-plugin', 'uninstall', '--stop'],
  ['install-service', '--root', '/tmp/r', '--config', '/etc/b.json'],
  ['doctor', '--bpffs', '/sys/fs/bpf/x'],
];

describe('the plain parser and commander', () => {
  it.each(PLAIN.map((a) => [a.join(' '), a]))('agree on `berth %s`', async (_, args) => {
    const argv = ['node', 'berth', ...args];
    const plain = recordingCli();
    await plainCall(plain.cli, argv)();
    const cmdr = recordingCli();
    await parseWithCommander(cmdr.cli, argv);
    expect(plain.seen).toHaveLength(1);
    expect(plain.seen).toEqual(cmdr.seen);
    // As berth runs it: only the command named recorded.
    const name = args.filter((a, i) => !a.startsWith('-') && !['--socket', '--log-level'].includes(args[i - 1] ?? ''))[0]!;
    const one = recordingCli(name);
    expect(one.cli.commands.map((c) => c.name)).toEqual([name]);
    await plainCall(one.cli, argv)();
    expect(one.seen).toEqual(cmdr.seen);
  });

  it('the recorder would see a difference (the control): other options, other arguments', async () => {
    const a = recordingCli();
    await plainCall(a.cli, ['node', 'berth', 'ps', '-a'])();
    const b = recordingCli();
    await parseWithCommander(b.cli, ['node', 'berth', 'ps'], 'ps');
    expect(a.seen[0]!.opts).not.toEqual(b.seen[0]!.opts);
    const c = recordingCli();
    await plainCall(c.cli, ['node', 'berth', 'rm', 'x'])();
    const d = recordingCli();
    await parseWithCommander(d.cli, ['node', 'berth', 'rm', 'y'], 'rm');
    expect(c.seen[0]!.args).not.toEqual(d.seen[0]!.args);
  });

  const ASIDE: [string[], RegExp][] = [
    [['netwrk'], /unknown command 'netwrk'/],
    [['ps', 'extra'], /too many arguments/],
    [['doctor', '--format', 'yaml'], /argument 'yaml' is invalid/],
    [['explain', 'a', 'b', '--port', '99999'], /'99999' is not a port number/],
    [['monitor', '--count', '0'], /'0' is not a positive count/],
    [['exec', 'web', 'ls', '-la'], /unknown option '-la'/],
    [['network', 'create'], /missing required argument 'name'/],
    [['ps', '--bogus'], /unknown option '--bogus'/],
    [['ps', '--format'], /argument missing/],
    [['ps', '-a=1'], /unknown option/],
  ];

  it.each(ASIDE.map(([a, m]) => [a.join(' '), a, m] as const))('leave `berth %s` to commander, which names the error', async (_, args, message) => {
    expect(() => plainCall(recordingCli().cli, ['node', 'berth', ...args])).toThrow(NotPlain);
    const r = await tryRun(process.execPath, [BERTH, '--socket', '/nonexistent/berth.sock', ...args]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: /);
    expect(r.stderr).toMatch(message);
  });

  it('leaves help to commander', async () => {
    for (const args of [['--help'], ['ps', '-h'], ['help', 'ps'], ['network'], ['network', 'create', '--help']]) {
      expect(() => plainCall(recordingCli().cli, ['node', 'berth', ...args])).toThrow(NotPlain);
    }
    // Past `--` a --help is the command's: the plain parser takes it.
    const { cli, seen } = recordingCli();
    await plainCall(cli, ['node', 'berth', 'run', '--', 'sh', '--help'])();
    expect(seen[0]!.args).toEqual([['sh', '--help']]);
  });
});

describe('the help berth writes itself', () => {
  /** Every command of @c, with its path of names. */
  const all = (c: Spec.Command, path: string[] = []): [string[], Spec.Command][] => [[path, c], ...c.commands.flatMap((s) => all(s, [...path, s.name]))];

  it('is commander\'s, for every command, at 80 columns, wider and narrower', () => {
    const cli = buildCli();
    const commands = all(cli);
    expect(commands.length).toBeGreaterThan(25);
    for (const width of [80, 132, 50, 30]) {
      const cmdr = toCommander(buildCli());
      for (const [path, c] of commands) {
        let want = cmdr;
        for (const n of path) want = want.commands.find((x) => x.name() === n)!;
        want.configureOutput({ getOutHelpWidth: () => width });
        expect(formatHelp(c, width), `berth ${path.join(' ')} --help at ${width} columns`).toBe(want.helpInformation());
      }
    }
  });

  it('differs when a definition does (the control)', () => {
    const a = buildCli();
    const b = buildCli();
    b.find('ps')!.option('--extra', 'one more');
    expect(formatHelp(a.find('ps')!, 80)).not.toBe(formatHelp(b.find('ps')!, 80));
  });

  it('is written for `--help`, `CMD... --help` and `help [CMD]`, and commander has the rest', async () => {
    const cli = buildCli();
    expect(helpAsked(cli, ['--help'])).toBe(cli);
    expect(helpAsked(cli, ['help'])).toBe(cli);
    expect(helpAsked(cli, ['help', 'ps'])).toBe(cli.find('ps'));
    expect(helpAsked(cli, ['network', 'list', '-h'])).toBe(cli.find('network')!.find('ls'));
    for (const other of [['ps', '-a', '--help'], ['--socket', 'x', '--help'], ['help', 'nope'], ['nope', '--help'], ['ps']]) expect(helpAsked(cli, other)).toBeUndefined();
    const r = await tryRun(process.execPath, [BERTH, 'network', 'create', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(formatHelp(cli.find('network')!.find('create')!, 80));
  });
});
