/**
 * `berth inspect` and `berth network inspect` output: the JSON array (the
 * default, as docker's), a summary table, or docker's `-f` habits: a Go
 * template printed once per object, or `table TEMPLATE` with a header made
 * from the fields the template names.
 */
import type { NetworkView, SandboxView } from '../api/views.js';
import { printJson, table } from './table.cjs';
import { compile } from './template.js';

export type InspectKind = 'sandbox' | 'network';

function sandboxRow(s: SandboxView): string[] {
  const nets = Object.entries(s.NetworkSettings.Networks).map(([n, e]) => `${n}=${[e.IPAddress, e.IPv6Address].filter(Boolean).join(',')}`);
  const status = s.State.Status === 'exited' ? `exited (${s.State.ExitCode ?? '?'})` : s.State.Status;
  return [s.Name, s.Id.slice(0, 12), status, nets.join(' ') || s.HostConfig.NetworkMode, s.NetworkSettings.Ports.join(', ')];
}

function networkRow(n: NetworkView): string[] {
  const cfg = n.IPAM.Config;
  return [n.Name, n.Id.slice(0, 12), n.Driver, n.Scope, cfg.map((c) => c.Subnet).join(','), cfg.map((c) => c.Gateway).join(','), String(Object.keys(n.Containers).length)];
}

const HEADERS: Record<InspectKind, string[]> = {
  sandbox: ['NAME', 'SANDBOX ID', 'STATUS', 'NETWORKS', 'PORTS'],
  network: ['NAME', 'NETWORK ID', 'DRIVER', 'SCOPE', 'SUBNET', 'GATEWAY', 'SANDBOXES'],
};

/** The header of one column of a `table` template: the last name of the first field it shows, upper-cased. */
export function columnHeader(cell: string): string {
  const m = /\{\{[^}]*?(?:\$[A-Za-z0-9_]*)?((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/.exec(cell);
  if (m) return m[1]!.split('.').pop()!.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toUpperCase();
  return /\{\{/.test(cell) ? '' : cell.trim().toUpperCase();
}

/** What `inspect -f FORMAT` prints for @items. */
export function formatInspect(kind: InspectKind, items: unknown[], format: string | undefined): string {
  if (format === undefined || format === 'json') return JSON.stringify(items, null, 2) + '\n';
  if (format === 'table') {
    const rows = kind === 'sandbox' ? (items as SandboxView[]).map(sandboxRow) : (items as NetworkView[]).map(networkRow);
    return table(HEADERS[kind], rows);
  }
  const tableOf = /^table\s+([\s\S]*)$/.exec(format);
  if (tableOf) {
    // As docker does, a typed "\t" separates the columns.
    const source = tableOf[1]!.replace(/\\t/g, '\t');
    const t = compile(source);
    const headers = source.split('\t').map(columnHeader);
    return table(headers, items.map((it) => t.execute(it).split('\t')));
  }
  const t = compile(format);
  return items.map((it) => t.execute(it) + '\n').join('');
}

export function printInspect(kind: InspectKind, items: unknown[], format: string | undefined): void {
  if (format === undefined || format === 'json') return printJson(items);
  process.stdout.write(formatInspect(kind, items, format));
}
