/**
 * The daemon-backed commands: network *, run, exec, rm, ps, inspect, port.
 * Only the definitions' recorder and the table printer load with them; what an action needs
 * besides the API is imported when it runs.
 */
import { Command, InvalidArgumentError, Option } from './spec.cjs';
import type { NetworkView, SandboxView } from '../api/views.js';
import type { ProcessSpec } from '../sandbox/process.js';
import { printJson, table } from './table.cjs';
import type { Exposure } from '../controller/exposure.js';
import type { DatapathStatus, DpEventView } from '../datapath/datapath.js';

/** berthd's API as the commands use it; the client behind it is loaded on the first call. */
export interface Api {
  call<T>(method: string, path: string, body?: unknown): Promise<T>;
}

const collect = (v: string, prev: string[]) => [...prev, v];
const formatOption = () => new Option('--format <format>', 'output format').choices(['table', 'json']).default('table');
const inspectFormat = () =>
  new Option('-f, --format <format>', "json (the default), table, 'table TEMPLATE', or a Go template as docker's: '{{.Name}} {{json .NetworkSettings.Networks}}'");

async function inspect(kind: 'sandbox' | 'network', items: Promise<unknown[]>, format: string | undefined): Promise<void> {
  const { printInspect } = await import('./inspect.js');
  printInspect(kind, await items, format);
}

export function addDaemonCommands(program: Command, client: () => Api): void {
  const network = program.command('network').description('manage networks');

  network
    .command('create')
    .description('create a network')
    .argument('<name>')
    .addOption(new Option('-d, --driver <driver>', 'driver').choices(['bridge', 'macvlan', 'overlay', 'routed']).default('bridge'))
    .option('--subnet <cidr>', 'subnet (one IPv4 and one IPv6 at most)', collect, [])
    .option('--gateway <ip>', 'gateway address', collect, [])
    .option('--ip-range <cidr>', 'range dynamic addresses are taken from', collect, [])
    .option('--aux-address <name=ip>', 'address to reserve', collect, [])
    .option('--internal', 'no access to the outside', false)
    .option('--ipv6', 'dual-stack', false)
    .option('-o, --opt <key=value>', 'driver option', collect, [])
    .action(async (name: string, o: { driver: string; subnet: string[]; gateway: string[]; ipRange: string[]; auxAddress: string[]; internal: boolean; ipv6: boolean; opt: string[] }) => {
      const { parseKeyValues } = await import('../controller/options.js');
      const n = await client().call<NetworkView>('POST', '/v1/networks', {
        name, driver: o.driver, subnets: o.subnet, gateways: o.gateway, ipRanges: o.ipRange,
        auxAddresses: parseKeyValues(o.auxAddress, 'aux-address'), internal: o.internal, ipv6: o.ipv6, options: parseKeyValues(o.opt, 'option'),
      });
      process.stdout.write(n.Id + '\n');
    });

  network
    .command('ls')
    .alias('list')
    .description('list networks')
    .addOption(formatOption())
    .action(async (o: { format: string }) => {
      const list = await client().call<NetworkView[]>('GET', '/v1/networks');
      if (o.format === 'json') return printJson(list);
      process.stdout.write(table(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], list.map((n) => [n.Id.slice(0, 12), n.Name, n.Driver, n.Scope])));
    });

  network
    .command('inspect')
    .description('show networks in detail (JSON, a table, or through a template)')
    .argument('<name...>')
    .addOption(inspectFormat())
    .action(async (names: string[], o: { format?: string }) => {
      await inspect('network', Promise.all(names.map((n) => client().call<NetworkView>('GET', `/v1/networks/${encodeURIComponent(n)}`))), o.format);
    });

  network
    .command('rm')
    .alias('remove')
    .description('remove networks')
    .argument('<name...>')
    .action(async (names: string[]) => {
      for (const n of names) {
        await client().call('DELETE', `/v1/networks/${encodeURIComponent(n)}`);
        process.stdout.write(n + '\n');
      }
    });

  network
    .command('connect')
    .description('connect a sandbox to a network')
    .argument('<network>')
    .argument('<sandbox>')
    .option('--ip <ip>', 'IPv4 address')
    .option('--ip6 <ip>', 'IPv6 address')
    .option('--alias <name>', 'network-scoped alias', collect, [])
    .action(async (net: string, sandbox: string, o: { ip?: string; ip6?: string; alias: string[] }) => {
      await client().call('POST', `/v1/networks/${encodeURIComponent(net)}/connect`, { sandbox, ip: o.ip, ip6: o.ip6, aliases: o.alias });
    });

  network
    .command('disconnect')
    .description('disconnect a sandbox from a network')
    .argument('<network>')
    .argument('<sandbox>')
    .action(async (net: string, sandbox: string) => {
      await client().call('POST', `/v1/networks/${encodeURIComponent(net)}/disconnect`, { sandbox });
    });

  network
    .command('prune')
    .description('remove all networks without endpoints')
    .action(async () => {
      const r = await client().call<{ removed: string[] }>('POST', '/v1/networks/prune');
      for (const n of r.removed) process.stdout.write(n + '\n');
    });

  program
    .command('run')
    .description('create a sandbox and run a command in it')
    .argument('<cmd...>', 'command and arguments (after --)')
    .option('-d, --detach', 'return once it runs', false)
    .option('--name <name>', 'sandbox name')
    .option('--network <net>', 'NET, host, none or container:NAME', 'bridge')
    .option('--ip <ip>', 'IPv4 address on the network')
    .option('--ip6 <ip>', 'IPv6 address on the network')
    .option('--network-alias <name>', 'network-scoped alias', collect, [])
    .option('-p, --publish <spec>', 'publish [HOSTIP:][HOSTPORT[-END]:]CPORT[-END][/PROTO]', collect, [])
    .option('-P, --publish-all', 'publish every exposed port on a random host port', false)
    .option('--publish-allow <cidr>', 'sources allowed to reach the published ports', collect, [])
    .option('--egress-allow <dest>', 'only destinations outside its networks it may open: CIDR[:PORT[/PROTO]], [IPV6-CIDR]:PORT[/PROTO], or none', collect, [])
    .option('--expose <port>', 'expose PORT[/PROTO] (links, -P)', collect, [])
    .option('--link <name[:alias]>', 'link to another sandbox', collect, [])
    .option('--dns <ip>', 'DNS server', collect, [])
    .option('--dns-search <domain>', 'DNS search domain', collect, [])
    .option('--hostname <name>', 'hostname')
    .option('--add-host <host:ip>', 'extra /etc/hosts entry', collect, [])
    .option('-e, --env <k=v>', 'environment variable', collect, [])
    .action(async (cmd: string[], o: Record<string, unknown>) => {
      const sb = await client().call<SandboxView>('POST', '/v1/sandboxes', {
        name: o.name, network: o.network, ip: o.ip, ip6: o.ip6, networkAliases: o.networkAlias, publish: o.publish, publishAll: o.publishAll,
        publishAllow: o.publishAllow, egressAllow: o.egressAllow, expose: o.expose, links: o.link, dns: o.dns, dnsSearch: o.dnsSearch, hostname: o.hostname,
        addHosts: o.addHost, env: o.env, cmd,
      });
      if (o.detach) {
        process.stdout.write(sb.Id + '\n');
        return;
      }
      // Attached: follow the command's output until it exits, and exit with its code.
      let offset = 0;
      let settle = 0;
      for (;;) {
        const r = await client().call<{ text: string; next: number; status: string; exitCode: number | null }>('GET', `/v1/sandboxes/${sb.Id}/logs?offset=${offset}`);
        process.stdout.write(r.text);
        offset = r.next;
        // berthd records the exit code a moment after the process is gone.
        if (r.status !== 'running' && !r.text && (r.exitCode !== null || ++settle > 50)) {
          process.exitCode = r.exitCode ?? 0;
          return;
        }
        if (!r.text) await new Promise((res) => setTimeout(res, 100));
      }
    });

  program
    .command('update')
    .description('change a sandbox without restarting it: its egress allow-list (new connections follow it)')
    .argument('<sandbox>')
    .option('--egress-allow <dest>', 'replace the list: CIDR[:PORT[/PROTO]], [IPV6-CIDR]:PORT[/PROTO], or none (nothing outside)', collect, [])
    .option('--egress-clear', 'drop the list: the network\'s default (-o egress=allow|deny) applies again', false)
    .action(async (name: string, o: { egressAllow: string[]; egressClear: boolean }) => {
      const sb = await client().call<SandboxView>('POST', `/v1/sandboxes/${encodeURIComponent(name)}/update`, { egressAllow: o.egressAllow, egressClear: o.egressClear });
      process.stdout.write(sb.Name + '\n');
    });

  program
    .command('exec')
    .description('run a command in a running sandbox')
    .argument('<sandbox>')
    .argument('<cmd...>')
    .action(async (name: string, cmd: string[]) => {
      const spec = await client().call<ProcessSpec>('POST', `/v1/sandboxes/${encodeURIComponent(name)}/exec`, { cmd });
      const [{ spawn }, { reachableFrom, sandboxArgv, sandboxEnv }] = await Promise.all([import('node:child_process'), import('../sandbox/process.js')]);
      const argv = sandboxArgv(reachableFrom(spec));
      const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit', env: sandboxEnv(spec) });
      const code = await new Promise<number>((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 128 : 1))));
      process.exitCode = code;
    });

  program
    .command('rm')
    .description('remove sandboxes')
    .argument('<sandbox...>')
    .option('-f, --force', 'kill a running sandbox first', false)
    .action(async (names: string[], o: { force: boolean }) => {
      for (const n of names) {
        await client().call('DELETE', `/v1/sandboxes/${encodeURIComponent(n)}${o.force ? '?force=1' : ''}`);
        process.stdout.write(n + '\n');
      }
    });

  program
    .command('ps')
    .description('list sandboxes')
    .option('-a, --all', 'include exited ones', false)
    .addOption(formatOption())
    .action(async (o: { all: boolean; format: string }) => {
      const list = (await client().call<SandboxView[]>('GET', '/v1/sandboxes')).filter((s) => o.all || s.State.Status === 'running');
      if (o.format === 'json') return printJson(list);
      process.stdout.write(
        table(['SANDBOX ID', 'NAME', 'COMMAND', 'STATUS', 'PORTS', 'NETWORKS'], list.map((s) => [
          s.Id.slice(0, 12), s.Name, JSON.stringify(s.Config.Cmd.join(' ').slice(0, 30)),
          s.State.Status === 'exited' ? `exited (${s.State.ExitCode ?? '?'})` : s.State.Status,
          s.NetworkSettings.Ports.join(', '), Object.keys(s.NetworkSettings.Networks).join(',') || s.HostConfig.NetworkMode,
        ])),
      );
    });

  program
    .command('inspect')
    .description('show sandboxes in detail (JSON, a table, or through a template)')
    .argument('<sandbox...>')
    .addOption(inspectFormat())
    .action(async (names: string[], o: { format?: string }) => {
      await inspect('sandbox', Promise.all(names.map((n) => client().call<SandboxView>('GET', `/v1/sandboxes/${encodeURIComponent(n)}`))), o.format);
    });

  program
    .command('exposure')
    .description('what this host exposes: published ports, and who can reach whom on which ports')
    .addOption(formatOption())
    .action(async (o: { format: string }) => {
      const e = await client().call<Exposure>('GET', '/v1/exposure');
      if (o.format === 'json') return printJson(e);
      process.stdout.write(table(['PROTO', 'BIND', 'HOST PORTS', 'SANDBOX', 'CONTAINER PORTS', 'NETWORK', 'ALLOW', 'LIMITED BY'],
        e.published.map((p) => [p.proto, p.bind, p.hostPorts, p.sandbox, p.containerPorts, p.network, p.allow.join(',') || 'none', p.limits.map((l) => l.by).join('; ') || '-'])));
      process.stdout.write('\n' + table(['FROM', 'TO', 'NETWORK', 'PORTS'], e.reachability.map((r) => [r.from, r.to, r.network, r.ports.join(',')])));
    });

  program
    .command('explain')
    .description('would a new connection from SRC to DST pass, and why: on eBPF the loaded programs run on a synthetic packet; on iptables a real packet is traced through the rules by the kernel and stopped before delivery (SRC, DST: a sandbox, an address, external:IP, or host as SRC)')
    .argument('<src>')
    .argument('<dst>')
    .addOption(new Option('--proto <proto>', 'protocol').choices(['tcp', 'udp', 'icmp', 'sctp']).default('tcp'))
    .option('--port <n>', 'destination port (default 80)', (v) => {
      if (!/^\d+$/.test(v) || Number(v) > 65535) throw new InvalidArgumentError(`'${v}' is not a port number`);
      return Number(v);
    })
    .option('--src-ip <ip>', 'send from this address instead of the sandbox\'s own')
    .option('--src-mac <mac>', 'send with this MAC instead of the sandbox\'s own')
    .addOption(formatOption())
    .action(async (src: string, dst: string, o: { proto: string; port?: number; srcIp?: string; srcMac?: string; format: string }) => {
      const r = await client().call<{ from: string; to: string; proto: string; port?: number; verdict: string; explanation: string; rule: string; reason?: string; trace?: string[] }>('POST', '/v1/explain', {
        src, dst, proto: o.proto, ...(o.port !== undefined ? { port: o.port } : {}), ...(o.srcIp ? { srcIp: o.srcIp } : {}), ...(o.srcMac ? { srcMac: o.srcMac } : {}),
      });
      if (o.format === 'json') return printJson(r);
      process.stdout.write(`${r.from} -> ${r.to} ${r.port ? `${r.port}/` : ''}${r.proto}: ${r.verdict.toUpperCase()} (${r.reason ?? r.rule})\n  ${r.explanation}\n`);
      if (r.trace?.length) process.stdout.write(`  the kernel's trace, rule by rule:\n${r.trace.map((l) => `    ${l}\n`).join('')}`);
      if (r.verdict === 'drop') process.exitCode = 1;
    });

  program
    .command('monitor')
    .description('live datapath events: drops with their reason, new connections with their translation (eBPF datapath)')
    .option('--sandbox <name>', 'only events from or to this sandbox')
    .option('--network <name>', 'only events from or to this network')
    .addOption(new Option('--type <type>', 'drop: every drop; policy: drops by a policy decision; flow: new connections').choices(['drop', 'flow', 'policy']))
    .option('--count <n>', 'stop after this many events', (v) => {
      if (!/^[1-9]\d*$/.test(v)) throw new InvalidArgumentError(`'${v}' is not a positive count`);
      return Number(v);
    })
    .addOption(formatOption())
    .action(async (o: { sandbox?: string; network?: string; type?: string; count?: number; format: string }) => {
      const POLICY = new Set(['icc', 'isolation', 'internal', 'allowlist', 'publish-policy', 'egress', 'spoof-ip', 'spoof-mac', 'spoof-arp', 'loopback', 'direct', 'family']);
      const q = new URLSearchParams({ ...(o.sandbox ? { sandbox: o.sandbox } : {}), ...(o.network ? { network: o.network } : {}) });
      type Ev = DpEventView & { from?: string; to?: string; fromNetwork?: string; toNetwork?: string };
      // The first call starts the watch; only what happens after it is shown.
      let since = (await client().call<{ next: number }>('GET', `/v1/datapath/events?${q}&since=0`)).next;
      let shown = 0;
      let lost = 0;
      if (o.format !== 'json') process.stderr.write('watching the datapath (Ctrl-C to stop)\n');
      for (;;) {
        const b = await client().call<{ events: Ev[]; next: number; lost: number }>('GET', `/v1/datapath/events?${q}&since=${since}`);
        since = b.next;
        if (b.lost > lost && o.format !== 'json') process.stderr.write(`(${b.lost - lost} events lost to the rate limit or a full buffer)\n`);
        lost = b.lost;
        for (const e of b.events) {
          if (o.type === 'flow' ? e.kind !== 'flow' : o.type ? e.kind !== 'drop' || (o.type === 'policy' && !POLICY.has(e.reason ?? '')) : false) continue;
          const end = (a: string, p: number, sb?: string, net?: string) => `${a}${p ? `:${p}` : ''}${sb ? ` (${sb}${net ? `@${net}` : ''})` : ''}`;
          if (o.format === 'json') process.stdout.write(JSON.stringify(e) + '\n');
          else {
            const what = e.kind === 'drop' ? `DROP ${e.reason}` : `FLOW${e.nsrc ? ` as ${e.nsrc}:${e.nsport} -> ${e.ndst}:${e.ndport}` : ''}`;
            process.stdout.write(`${e.time} ${e.hook.padEnd(9)} ${e.proto.padEnd(6)} ${end(e.src, e.sport, e.from, e.fromNetwork)} -> ${end(e.dst, e.dport, e.to, e.toNetwork)}  ${what}\n`);
          }
          if (o.count && ++shown >= o.count) return;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    });

  program
    .command('datapath')
    .description('the datapath in use: table fill, attachments and drops by reason')
    .addOption(formatOption())
    .action(async (o: { format: string }) => {
      const s = await client().call<DatapathStatus>('GET', '/v1/datapath');
      if (o.format === 'json') return printJson(s);
      const d = s.detail as { maps?: Record<string, { entries: number; max: number }>; drops?: Record<string, { packets: number }>; kernelDrops?: Record<string, { packets: number }> | null; attachments?: number; lastApplyMs?: number };
      process.stdout.write(`datapath  ${s.kind}${d.attachments !== undefined ? `, ${d.attachments} attachments` : ''}${d.lastApplyMs !== undefined ? `, last apply ${d.lastApplyMs} ms` : ''}\n`);
      if (d.maps) process.stdout.write('\n' + table(['MAP', 'ENTRIES', 'MAX'], Object.entries(d.maps).map(([k, v]) => [k, String(v.entries), String(v.max)])));
      if (d.drops) process.stdout.write('\n' + table(['DROP REASON', 'PACKETS'], Object.entries(d.drops).map(([k, v]) => [k, String(v.packets)])));
      if (d.kernelDrops) process.stdout.write('\n' + table(['KERNEL DROP REASON (berth\'s interfaces)', 'PACKETS'], Object.entries(d.kernelDrops).map(([k, v]) => [k, String(v.packets)])));
      if (s.kind !== 'bpf') process.stdout.write('\n' + JSON.stringify(s.detail, null, 2) + '\n');
    });

  program
    .command('port')
    .description('list a sandbox\'s published ports')
    .argument('<sandbox>')
    .action(async (name: string) => {
      const sb = await client().call<SandboxView>('GET', `/v1/sandboxes/${encodeURIComponent(name)}`);
      for (const p of sb.NetworkSettings.Ports) {
        const [host, cont] = p.split('->');
        process.stdout.write(`${cont} -> ${host}\n`);
      }
    });
}
