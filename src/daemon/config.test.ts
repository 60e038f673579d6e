import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommanderError } from 'commander';
import { OPTIONS, configReport, daemonCommand, flagOf, formatConfig, parseConfigText, readConfigFile, resolveConfig, type DaemonFlags } from './config.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, content: unknown): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}

/** Parses berthd's argv; resolves with the flags the action got, or rejects with commander's message. */
async function parseFlags(argv: string[]): Promise<DaemonFlags> {
  let got: DaemonFlags | undefined;
  let err = '';
  const cmd = daemonCommand(async (f) => {
    got = f;
  })
    .exitOverride()
    .configureOutput({ writeErr: (s) => (err += s), writeOut: () => undefined });
  try {
    await cmd.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) throw new Error(err || e.message);
    throw e;
  }
  return got!;
}

describe('the option table and the command line', () => {
  it('gives every option exactly one flag, the kebab-case of its key, and no flag without a key', () => {
    const opts = daemonCommand(async () => undefined).options;
    const keyed = opts.filter((o) => o.long !== '--config' && o.long !== '--print-config');
    expect(keyed.map((o) => o.attributeName())).toEqual(OPTIONS.map((s) => s.key));
    for (const o of keyed) expect(o.long).toBe(flagOf(o.attributeName()));
    expect(flagOf('driftCheckMs')).toBe('--drift-check-ms');
  });

  it('leaves flags not given out of the action\'s options, so the file and defaults can fill them', async () => {
    expect(await parseFlags(['--dns-port', '5353', '--bridge', 'br7'])).toEqual({ dnsPort: 5353, bridge: 'br7' });
  });

  it('refuses a bad flag value naming the flag, the value and what is expected', async () => {
    await expect(parseFlags(['--ct-max', 'lots'])).rejects.toThrow(/--ct-max: 'lots' is not a number of entries; expected an integer from 1024 to 67108864/);
    await expect(parseFlags(['--dns-port', '70000'])).rejects.toThrow(/--dns-port: '70000' is not a port; expected an integer from 1 to 65535/);
    await expect(parseFlags(['--datapath', 'ebpf'])).rejects.toThrow(/--datapath: 'ebpf' is not valid; expected one of auto, bpf, nftables, iptables/);
    await expect(parseFlags(['--bip', '172.17.0.1'])).rejects.toThrow(/--bip: '172.17.0.1' is not valid; expected an address\/prefix such as 172.17.0.1\/16/);
    // The control: good values of the same flags parse.
    expect(await parseFlags(['--ct-max', '65536', '--dns-port', '65535', '--datapath', 'bpf', '--bip', '10.9.0.1/24'])).toEqual({ ctMax: 65536, dnsPort: 65535, datapath: 'bpf', bip: '10.9.0.1/24' });
  });
});

describe('the config file', () => {
  it('takes every key of the table', async () => {
    const all = {
      stateDir: '/var/lib/b', socket: '/run/b.sock', datapath: 'iptables', uplink: 'eth1', logLevel: 'debug', bip: '10.1.0.1/24',
      fixedCidr: '10.1.0.128/25', bridge: 'br1', dnsPort: 5353, driftCheckMs: 500, dockerPlugin: '/run/d.sock', store: 'etcds://10.0.0.1:2379,10.0.0.2:2379',
      hostGrace: 60, advertiseAddr: '10.0.0.9', ctMax: 4096, pubMax: 131072, bpffs: '/sys/fs/bpf/x', etcdCacert: '/c', etcdCert: '/d', etcdKey: '/e', resolvConf: '/r', metricsAddr: '[::1]:9464',
      publishAllow: '192.168.0.0/16,2001:db8::/32',
    };
    expect(Object.keys(all).sort()).toEqual(OPTIONS.map((s) => s.key).sort());
    expect(parseConfigText(JSON.stringify(all), 'f.json')).toEqual(all);
  });

  it('is optional at the default path and required when named', async () => {
    const missing = join(dir, 'absent.json');
    expect(await readConfigFile(missing, false)).toBeUndefined();
    await expect(readConfigFile(missing, true)).rejects.toThrow(`config file ${missing}: cannot be read (ENOENT): it does not exist`);
    await expect(resolveConfig({ flags: {}, configFile: missing })).rejects.toThrow(missing);
  });

  it('refuses an unknown key naming it and the file, with the key meant when it is a flag spelling', () => {
    expect(() => parseConfigText('{"stateDir": "/x", "colour": "blue"}', '/etc/b.json')).toThrow(/^config file \/etc\/b.json: unknown key "colour" \(known keys: stateDir, socket, /);
    expect(() => parseConfigText('{"state-dir": "/x"}', '/etc/b.json')).toThrow('config file /etc/b.json: unknown key "state-dir" (did you mean "stateDir"?)');
    expect(() => parseConfigText('{"dns_port": 53}', '/etc/b.json')).toThrow('(did you mean "dnsPort"?)');
  });

  it('refuses text that is not a JSON object', () => {
    expect(() => parseConfigText('{"bip": ', 'b.json')).toThrow(/^config file b.json: not valid JSON/);
    expect(() => parseConfigText('[1]', 'b.json')).toThrow('config file b.json: expected a JSON object of option keys');
    expect(() => parseConfigText('"x"', 'b.json')).toThrow('not "x"');
  });

  const bad: [string, unknown, RegExp][] = [
    // integers: a JSON number in range, not text, not a fraction
    ['dnsPort', '53', /key "dnsPort": "53" is not a port; expected an integer from 1 to 65535$/],
    ['dnsPort', 53.5, /key "dnsPort": 53.5 is not a port; expected an integer from 1 to 65535$/],
    ['dnsPort', 0, /key "dnsPort": 0 is not a port/],
    ['ctMax', 100, /key "ctMax": 100 is not a number of entries; expected an integer from 1024 to 67108864$/],
    ['driftCheckMs', true, /key "driftCheckMs": true is not a number of milliseconds/],
    // choices
    ['datapath', 'nft', /key "datapath": "nft" is not valid; expected one of auto, bpf, nftables, iptables$/],
    ['logLevel', 'loud', /key "logLevel": "loud" is not valid; expected one of fatal, error, warn, info, debug, trace, silent$/],
    // strings: text, not empty, and of their form
    ['stateDir', 7, /key "stateDir": 7 is not valid; expected a directory path$/],
    ['socket', '', /key "socket": "" is not valid; expected a socket path$/],
    ['resolvConf', null, /key "resolvConf": null is not valid; expected a file path$/],
    ['bip', '172.17.0.1', /key "bip": "172.17.0.1" is not valid; expected an address\/prefix such as 172.17.0.1\/16$/],
    ['fixedCidr', '10.0.0.1/8', /key "fixedCidr": "10.0.0.1\/8" is not valid; expected an address\/prefix such as 172.17.1.0\/24$/],
    ['bridge', 'a-very-long-bridge-name', /key "bridge": "a-very-long-bridge-name" is not valid; expected an interface name/],
    ['uplink', 'eth 0', /key "uplink": "eth 0" is not valid; expected an interface name/],
    ['store', 'consul://x:1', /key "store": "consul:\/\/x:1" is not valid; expected "embedded" or etcd:\/\/HOST:PORT/],
    ['advertiseAddr', '2001:db8::1', /key "advertiseAddr": "2001:db8::1" is not valid; expected an IPv4 address$/],
    ['metricsAddr', '127.0.0.1', /key "metricsAddr": "127.0.0.1" is not valid; expected HOST:PORT/],
    // a list names its bad item
    ['publishAllow', '10.0.0.0/8,10.1.0/16', /key "publishAllow": "10.0.0.0\/8,10.1.0\/16" is not a list of source prefixes \('10.1.0\/16' is not an address\/prefix such as 192.168.0.0\/16 or 2001:db8::\/32\); expected CIDR\[,CIDR...\]/],
    ['publishAllow', '10.0.0.0/8,', /key "publishAllow": "10.0.0.0\/8," is not a list of source prefixes/],
  ];
  it.each(bad)('refuses a bad %s (%j) naming the file, the key, the value and what is expected', (key, value, message) => {
    const text = JSON.stringify({ [key]: value });
    expect(() => parseConfigText(text, '/etc/berth/berthd.json')).toThrow(message);
    expect(() => parseConfigText(text, '/etc/berth/berthd.json')).toThrow(/^config file \/etc\/berth\/berthd.json: key /);
  });

  it('accepts the good value of each of those keys (the control)', () => {
    const good = { dnsPort: 1, ctMax: 1024, driftCheckMs: 1, datapath: 'bpf', logLevel: 'silent', stateDir: 'rel/dir', socket: '/s', resolvConf: '/r', bip: '10.0.0.1/8', fixedCidr: '10.0.0.0/9', bridge: 'a23456789012345', uplink: 'eth0.7', store: 'etcd://h:2379', advertiseAddr: '10.0.0.1', metricsAddr: '0.0.0.0:1', publishAllow: '10.0.0.0/8' };
    expect(parseConfigText(JSON.stringify(good), 'f')).toEqual(good);
  });
});

describe('precedence and sources', () => {
  it('is flag over environment over file over default, and says which each value came from', async () => {
    const f = await file('prec.json', { bip: '10.2.0.1/24', bridge: 'brfile', dnsPort: 5300, socket: '/run/file.sock', logLevel: 'warn' });
    const c = await resolveConfig({ flags: { dnsPort: 5400 }, configFile: f, env: { BERTH_SOCKET: '/run/env.sock', BERTH_LOG_LEVEL: '' } });
    expect(c.file).toEqual({ path: f, read: true, explicit: true });
    expect(c.options).toMatchObject({ bip: '10.2.0.1/24', bridge: 'brfile', dnsPort: 5400, socket: '/run/env.sock', logLevel: 'warn', stateDir: '/var/lib/berth', datapath: 'auto' });
    expect(c.sources).toMatchObject({ bip: 'file', bridge: 'file', dnsPort: 'flag', socket: 'env', logLevel: 'file', stateDir: 'default' });
    expect('ctMax' in c.options).toBe(false);
    const r = configReport(c);
    expect(r.values.dnsPort).toEqual({ value: 5400, source: 'flag' });
    expect(r.values.ctMax).toEqual({ value: null, source: 'default' });
    const text = formatConfig(r);
    expect(text).toContain(`config file: ${f} (read)`);
    expect(text).toMatch(/^dnsPort\s+5400\s+flag$/m);
    expect(text).toMatch(/^socket\s+\/run\/env.sock\s+env$/m);
    expect(text).toMatch(/^bip\s+10.2.0.1\/24\s+file$/m);
    expect(text).toMatch(/^ctMax\s+-\s+default$/m);
  });

  it('refuses a bad environment value naming the variable', async () => {
    await expect(resolveConfig({ flags: {}, configFile: await file('empty.json', {}), env: { BERTH_LOG_LEVEL: 'chatty' } })).rejects.toThrow(
      "environment variable BERTH_LOG_LEVEL: 'chatty' is not valid; expected one of fatal",
    );
  });

  it('flags given on the command line win over the file end to end', async () => {
    const f = await file('e2e.json', { bridge: 'brfile', dnsPort: 5300 });
    const { config, printConfig, ...flags } = await parseFlags(['--config', f, '--print-config', '--dns-port', '5353']);
    expect([config, printConfig]).toEqual([f, true]);
    const c = await resolveConfig({ flags, configFile: config!, env: {} });
    expect([c.options.dnsPort, c.sources.dnsPort, c.options.bridge, c.sources.bridge]).toEqual([5353, 'flag', 'brfile', 'file']);
  });
});
