/**
 * berthd's configuration: one table of options that both the command line
 * (commander) and the config file (/etc/berth/berthd.json) are built from, so
 * no flag exists without its key. A key is the camelCase of its flag
 * (--state-dir: "stateDir"). Precedence: flag > environment > file > default.
 */
import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { BerthError } from '../errors.js';
import { parseIp, parsePrefix } from '../ipam/addr.js';
import { parseMetricsAddr } from '../metrics/server.js';
import { DEFAULT_SOCKET } from '../api/defaults.cjs';
import { parsePublishAllow } from '../datapath/publish-policy.js';
import type { DaemonOptions } from './berthd.js';

export const DEFAULT_CONFIG_FILE = '/etc/berth/berthd.json';

export type Key = keyof DaemonOptions;
export type Source = 'default' | 'file' | 'env' | 'flag';
type Value = string | number;

type Kind =
  | { type: 'string'; /** throws with what is wrong when the text is not acceptable */ check?: (v: string) => void; expected: string }
  | { type: 'int'; min: number; max: number }
  | { type: 'enum'; choices: readonly string[] };

interface Spec {
  key: Key;
  /** the flag's argument placeholder: --state-dir <dir> */
  arg: string;
  help: string;
  kind: Kind;
  default?: Value;
  /** an environment variable that sets it (below a flag, above the file) */
  env?: string;
  /** what a value is, for messages: "'lots' is not a number of entries" */
  what?: string;
}

const path = (what: string): Kind => ({ type: 'string', expected: what });
const cidr = (example: string, hostBits: boolean): Kind => ({ type: 'string', check: (v) => void parsePrefix(v, 'prefix', hostBits), expected: `an address/prefix such as ${example}` });
const ifname: Kind = {
  type: 'string',
  check: (v) => {
    if (v.length > 15 || /[\s/:]/.test(v) || v === '.' || v === '..') throw new Error('not an interface name');
  },
  expected: 'an interface name (at most 15 characters, no spaces, "/" or ":")',
};
const store: Kind = {
  type: 'string',
  check: (v) => {
    if (v !== 'embedded' && !/^etcds?:\/\/[^,\s/]+:\d{1,5}(,[^,\s/]+:\d{1,5})*$/.test(v)) throw new Error('not a store');
  },
  expected: '"embedded" or etcd://HOST:PORT[,HOST:PORT...] (etcds:// for TLS)',
};
const ipv4: Kind = {
  type: 'string',
  check: (v) => {
    if (parseIp(v).family !== 4) throw new Error('not IPv4');
  },
  expected: 'an IPv4 address',
};
/** An error a check throws to have its message (naming the bad part of a value) shown. */
class Detail extends Error {}
const prefixList: Kind = {
  type: 'string',
  check: (v) => {
    try {
      parsePublishAllow(v, 'list');
    } catch (e) {
      throw new Detail((e as Error).message.replace(/^list: /, ''));
    }
  },
  expected: 'CIDR[,CIDR...] such as 192.168.0.0/16,2001:db8::/32',
};
const hostPort: Kind = { type: 'string', check: (v) => void parseMetricsAddr(v), expected: 'HOST:PORT such as 127.0.0.1:9464 or [::1]:9464' };

/** Every berthd option. Order is the order of --help and of --print-config. */
export const OPTIONS: readonly Spec[] = [
  { key: 'stateDir', arg: 'dir', help: 'state directory', kind: path('a directory path'), default: '/var/lib/berth' },
  { key: 'socket', arg: 'path', help: 'API unix socket', kind: path('a socket path'), default: DEFAULT_SOCKET, env: 'BERTH_SOCKET' },
  { key: 'datapath', arg: 'kind', help: 'datapath', kind: { type: 'enum', choices: ['auto', 'bpf', 'nftables', 'iptables'] }, default: 'auto' },
  { key: 'uplink', arg: 'iface', help: "interface towards the outside world (for NAT; default: the default route's)", kind: ifname },
  { key: 'logLevel', arg: 'level', help: 'log level', kind: { type: 'enum', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] }, default: 'info', env: 'BERTH_LOG_LEVEL' },
  { key: 'bip', arg: 'cidr', help: 'default bridge network: gateway address and prefix', kind: cidr('172.17.0.1/16', true), default: '172.17.0.1/16' },
  { key: 'fixedCidr', arg: 'cidr', help: 'default bridge network: range addresses are allocated from', kind: cidr('172.17.1.0/24', false) },
  { key: 'bridge', arg: 'name', help: 'default bridge network: bridge device name', kind: ifname, default: 'berth0' },
  { key: 'dnsPort', arg: 'port', help: 'port of the embedded DNS servers', kind: { type: 'int', min: 1, max: 65535 }, default: 53, what: 'a port' },
  { key: 'driftCheckMs', arg: 'ms', help: 'how often to look for datapath changes made outside berth', kind: { type: 'int', min: 1, max: 86_400_000 }, default: 2000, what: 'a number of milliseconds' },
  { key: 'dockerPlugin', arg: 'socket', help: "serve Docker's NetworkDriver and IpamDriver plugin protocol on this unix socket (see `berth docker-plugin install`)", kind: path('a socket path') },
  { key: 'store', arg: 'url', help: 'cluster store for global (overlay) networks: embedded (this host only) or etcd://HOST:PORT[,HOST:PORT...] (etcds:// for TLS)', kind: store, default: 'embedded' },
  { key: 'hostGrace', arg: 'seconds', help: "with --store etcd://: how long another host's registration may stay lapsed (its berthd gone for 10 s) before its endpoints are withdrawn here; they come back when it returns", kind: { type: 'int', min: 0, max: 86_400 }, default: 30, what: 'a number of seconds' },
  { key: 'advertiseAddr', arg: 'ip', help: "with --store etcd://: this host's underlay IPv4 address (default: the --uplink's one address, else the default route's)", kind: ipv4 },
  { key: 'ctMax', arg: 'entries', help: 'eBPF datapath: connection table entries, two a flow (a pinned table of another size is migrated)', kind: { type: 'int', min: 1024, max: 1 << 26 }, what: 'a number of entries' },
  { key: 'pubMax', arg: 'entries', help: 'eBPF datapath: published-port entries, one a port or range per family (default 65536; a change rewrites the table)', kind: { type: 'int', min: 16, max: 1 << 20 }, what: 'a number of entries' },
  { key: 'bpffs', arg: 'dir', help: 'bpffs mount where the datapath and the overlay pin their maps and links (mounted if it is not)', kind: path('a directory path'), default: '/sys/fs/bpf' },
  { key: 'etcdCacert', arg: 'file', help: 'with etcds://: CA certificate of the etcd servers', kind: path('a file path') },
  { key: 'etcdCert', arg: 'file', help: 'with etcds://: client certificate', kind: path('a file path') },
  { key: 'etcdKey', arg: 'file', help: 'with etcds://: client key', kind: path('a file path') },
  { key: 'resolvConf', arg: 'path', help: 'the host resolv.conf: what sandboxes inherit and where the embedded DNS forwards', kind: path('a file path'), default: '/etc/resolv.conf' },
  { key: 'publishAllow', arg: 'cidrs', help: "the only sources that reach any published port (the host's 127.0.0.1/::1 always do); a publish's --publish-allow and a network's -o publish.allow narrow it (default: every source)", kind: prefixList, what: 'a list of source prefixes' },
  { key: 'metricsAddr', arg: 'host:port', help: 'also serve Prometheus metrics (GET /metrics) over TCP here, e.g. 127.0.0.1:9464; the API socket always serves them', kind: hostPort },
];

const byKey = new Map(OPTIONS.map((s) => [s.key as string, s]));

/** --state-dir for stateDir. */
export function flagOf(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

function expected(k: Kind): string {
  if (k.type === 'int') return `an integer from ${k.min} to ${k.max}`;
  if (k.type === 'enum') return `one of ${k.choices.join(', ')}`;
  return k.expected;
}

/** Why @raw is no value of @s, or its value. @where names the flag, variable or file key. */
function parseValue(s: Spec, raw: unknown, where: string, fromText: boolean): Value {
  const show = fromText ? `'${String(raw)}'` : JSON.stringify(raw);
  const bad = () => new BerthError('bad-request', `${where}: ${show} is not ${s.what ?? 'valid'}; expected ${expected(s.kind)}`);
  const k = s.kind;
  if (k.type === 'int') {
    // The file takes a JSON number, a flag its decimal text.
    const n = fromText ? (typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN) : raw;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < k.min || n > k.max) throw bad();
    return n;
  }
  if (typeof raw !== 'string' || raw === '') throw bad();
  if (k.type === 'enum') {
    if (!k.choices.includes(raw)) throw bad();
    return raw;
  }
  try {
    k.check?.(raw);
  } catch (e) {
    if (e instanceof Detail) throw new BerthError('bad-request', `${where}: ${show} is not ${s.what ?? 'valid'} (${e.message}); expected ${expected(s.kind)}`);
    throw bad();
  }
  return raw;
}

export interface EffectiveConfig {
  /** the config file looked at; read: it existed and was applied */
  file: { path: string; read: boolean; explicit: boolean };
  options: DaemonOptions;
  sources: Record<Key, Source>;
}

/** The JSON shape of an effective configuration: what --print-config, the API info and `berth doctor` show. */
export interface ConfigReport {
  file: string;
  fileRead: boolean;
  values: Record<string, { value: Value | null; source: Source }>;
}

/**
 * Reads a config file: a JSON object of option keys. A missing file is fine
 * unless it was named explicitly (--config); anything else wrong is refused,
 * naming the file, the key and the value.
 */
export async function readConfigFile(file: string, explicit: boolean): Promise<Partial<Record<Key, Value>> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !explicit) return undefined;
    throw new BerthError('bad-request', `config file ${file}: cannot be read (${code ?? (e as Error).message})${code === 'ENOENT' ? ': it does not exist' : ''}`);
  }
  return parseConfigText(text, file);
}

/** The checked values of a config file's text (@file names it in errors). */
export function parseConfigText(text: string, file: string): Partial<Record<Key, Value>> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new BerthError('bad-request', `config file ${file}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new BerthError('bad-request', `config file ${file}: expected a JSON object of option keys such as {"stateDir": "/var/lib/berth"}, not ${Array.isArray(doc) ? 'an array' : JSON.stringify(doc)}`);
  }
  const out: Partial<Record<Key, Value>> = {};
  for (const [key, raw] of Object.entries(doc)) {
    const s = byKey.get(key);
    if (!s) {
      const camel = key.replace(/^-+/, '').replace(/[-_]([a-z])/g, (_m, c: string) => c.toUpperCase());
      const hint = byKey.has(camel) ? `did you mean "${camel}"?` : `known keys: ${OPTIONS.map((o) => o.key).join(', ')}`;
      throw new BerthError('bad-request', `config file ${file}: unknown key "${key}" (${hint})`);
    }
    out[s.key] = parseValue(s, raw, `config file ${file}: key "${key}"`, false);
  }
  return out;
}

export interface ConfigInputs {
  /** values given as flags, already parsed (commander's opts) */
  flags: Partial<Record<Key, Value>>;
  /** --config, when given */
  configFile?: string;
  env?: NodeJS.ProcessEnv;
}

/** The effective configuration: flag > environment > file > default, with each value's source. */
export async function resolveConfig(i: ConfigInputs): Promise<EffectiveConfig> {
  const explicit = i.configFile !== undefined;
  const path = i.configFile ?? DEFAULT_CONFIG_FILE;
  const fromFile = await readConfigFile(path, explicit);
  const env = i.env ?? {};
  const options: Record<string, Value> = {};
  const sources = {} as Record<Key, Source>;
  for (const s of OPTIONS) {
    const envText = s.env ? env[s.env] : undefined;
    let v: Value | undefined;
    let src: Source = 'default';
    if (i.flags[s.key] !== undefined) [v, src] = [i.flags[s.key]!, 'flag'];
    else if (envText !== undefined && envText !== '') [v, src] = [parseValue(s, envText, `environment variable ${s.env}`, true), 'env'];
    else if (fromFile?.[s.key] !== undefined) [v, src] = [fromFile[s.key]!, 'file'];
    else v = s.default;
    sources[s.key] = src;
    if (v !== undefined) options[s.key] = v;
  }
  return { file: { path, read: fromFile !== undefined, explicit }, options: options as unknown as DaemonOptions, sources };
}

export function configReport(c: EffectiveConfig): ConfigReport {
  const values: ConfigReport['values'] = {};
  for (const s of OPTIONS) values[s.key] = { value: (c.options[s.key] as Value | undefined) ?? null, source: c.sources[s.key] };
  return { file: c.file.path, fileRead: c.file.read, values };
}

/** The configuration as rows of KEY, VALUE, SOURCE. */
export function configRows(r: ConfigReport): string[][] {
  return Object.entries(r.values).map(([k, v]) => [k, v.value === null ? '-' : String(v.value), v.source]);
}

/** --print-config's text. */
export function formatConfig(r: ConfigReport): string {
  const rows = [['KEY', 'VALUE', 'SOURCE'], ...configRows(r)];
  const w = [0, 1].map((i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) => `${row[0]!.padEnd(w[0]! + 3)}${row[1]!.padEnd(w[1]! + 3)}${row[2]}`);
  return [`config file: ${r.file} (${r.fileRead ? 'read' : 'not present'})`, ...lines].join('\n') + '\n';
}

/** What the berthd command line gives its action: the flags given, and the two that are not options. */
export type DaemonFlags = Partial<Record<Key, Value>> & { config?: string; printConfig?: boolean };

/**
 * The berthd command: one flag a table entry, no commander defaults (a value
 * absent from opts was not given, so the file and defaults can fill it).
 */
export function daemonCommand(action: (flags: DaemonFlags) => Promise<void>): Command {
  const program = new Command('berthd')
    .description(`the berth daemon\n\nEvery option can also be set in the config file (--config; default ${DEFAULT_CONFIG_FILE}), a JSON object keyed by the option's camelCase name (--state-dir: "stateDir"). Flags override the environment, which overrides the file.`)
    .option('--config <file>', `config file (default: ${DEFAULT_CONFIG_FILE}, skipped when it does not exist)`)
    .option('--print-config', 'print the effective configuration with the source of each value (default, file, env, flag) and exit');
  for (const s of OPTIONS) {
    const extra = [s.default !== undefined ? `default: ${s.default}` : '', s.env ? `env: ${s.env}` : '', `key: "${s.key}"`].filter(Boolean).join(', ');
    const o = new Option(`${flagOf(s.key)} <${s.arg}>`, `${s.help} (${extra})`).argParser((v: string) => {
      try {
        return parseValue(s, v, flagOf(s.key), true);
      } catch (e) {
        throw new InvalidArgumentError((e as Error).message);
      }
    });
    program.addOption(o);
  }
  return program.action(action);
}
