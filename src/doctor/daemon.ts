/** `berth doctor`'s look at a running berthd: whether it answers, its datapath and its effective configuration. */
import { ApiClient } from '../api/client.cjs';
import type { ConfigReport } from '../daemon/config.js';
import type { DatapathChoice } from './doctor.js';
import type { RoutedHop } from '../drivers/routed-underlay.js';

export interface DaemonReport {
  socket: string;
  answering: boolean;
  /** why it does not answer */
  error?: string;
  pid?: number;
  version?: string;
  datapath?: DatapathChoice & { requested?: string };
  config?: ConfigReport | null;
  /** its routed networks' routes to other hosts' blocks, judged (src/drivers/routed-underlay.ts) */
  routed?: Partial<RoutedHop>[];
}

interface Info { pid: number; version: string; datapath: DatapathChoice & { requested?: string }; config?: ConfigReport | null; routed?: Partial<RoutedHop>[] }

export async function askDaemon(socket: string, timeoutMs = 3000): Promise<DaemonReport> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const info = await Promise.race([
      new ApiClient(socket).call<Info>('GET', '/v1/info'),
      new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs))),
    ]);
    return { socket, answering: true, pid: info.pid, version: info.version, datapath: info.datapath, config: info.config ?? null, ...(info.routed ? { routed: info.routed } : {}) };
  } catch (e) {
    return { socket, answering: false, error: (e as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

export function formatDaemon(d: DaemonReport): string[] {
  if (!d.answering) return [`berthd            not answering at ${d.socket}: ${d.error}`];
  const lines = [`berthd            answering at ${d.socket}: pid ${d.pid}, version ${d.version}, datapath ${d.datapath?.choice}`];
  if (!d.config) return [...lines, 'berthd config     not reported by this berthd'];
  lines.push(`berthd config     file ${d.config.file} (${d.config.fileRead ? 'read' : 'not present'})`);
  for (const [k, v] of Object.entries(d.config.values)) lines.push(`  ${k.padEnd(16)}${v.value === null ? '-' : String(v.value)} (${v.source})`);
  for (const h of d.routed ?? []) if (h.block) lines.push(`routed route      ${h.network}: ${h.block} via ${h.via}${h.onLink ? ` on-link on ${h.dev}` : h.gateway ? ` through gateway ${h.gateway}` : ''}${h.neigh ? `, neighbour ${h.neigh}` : ''}`);
  return lines;
}
