/**
 * `berth version` (also `berth --version`, `-v`): this berth's version, the
 * node it runs on, the libbpf and datapath ABI compiled into its addon, and
 * the version of the berthd answering on the socket. libbpf's and the ABI's
 * come from the file the native build writes beside the addon, so the addon
 * is not loaded for them. A berthd that does not answer is reported, not an
 * error: the command is how one finds that out.
 * CommonJS, with all it loads (see berth.cts).
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ABI_VERSION } from '../bpf/abi-version.cjs';
import { packageVersion, projectRoot } from '../package.cjs';
import { printJson } from './table.cjs';

export interface VersionReport {
  berth: string;
  node: string;
  /** null when the addon is not built (libbpfError says so) */
  libbpf: { version: string; mode: 'in-tree' | 'system' } | null;
  libbpfError?: string;
  /** BERTH_ABI_VERSION of the addon's header (this CLI's src/bpf/abi-version.cts when the addon is not built) */
  datapathAbi: number;
  berthd: { running: true; socket: string; version: string; pid: number; datapath: string } | { running: false; socket: string; reason: string };
}

/** How long berthd may take to answer before it counts as not answering. */
const BERTHD_TIMEOUT_MS = 2000;

async function berthdVersion(socket: string): Promise<VersionReport['berthd']> {
  const { ApiClient } = require('../api/client.cjs') as typeof import('../api/client.cjs');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${BERTHD_TIMEOUT_MS} ms`)), BERTHD_TIMEOUT_MS);
  });
  try {
    const info = await Promise.race([new ApiClient(socket).call<{ version: string; pid: number; datapath?: { choice?: string } }>('GET', '/v1/info'), timeout]);
    return { running: true, socket, version: info.version, pid: info.pid, datapath: info.datapath?.choice ?? 'unknown' };
  } catch (e) {
    const err = e as Error & { kind?: string };
    // The client's message for a missing socket or a refused connection names the socket and the errno.
    const reason = err.kind === 'unavailable' ? (/\((E[A-Z]+)\)/.exec(err.message)?.[1] ?? err.message) : err.message;
    return { running: false, socket, reason };
  } finally {
    clearTimeout(timer);
  }
}

type NativeVersions = Pick<VersionReport, 'libbpf' | 'libbpfError' | 'datapathAbi'>;

/**
 * What the native build wrote of the addon beside it (scripts/addon-versions.cjs),
 * when it is as new as the addon and its libbpf is linked in (a system libbpf
 * can change under the addon: then the addon is asked).
 */
function builtVersions(): NativeVersions | undefined {
  const dir = join(projectRoot, 'build', 'Release');
  try {
    const file = join(dir, 'berth.versions.json');
    if (statSync(file).mtimeMs < statSync(join(dir, 'berth.node')).mtimeMs) return undefined;
    const v = JSON.parse(readFileSync(file, 'utf8')) as { libbpf?: { version?: unknown; mode?: unknown }; datapathAbi?: unknown };
    if (typeof v.libbpf?.version !== 'string' || v.libbpf.mode !== 'in-tree' || typeof v.datapathAbi !== 'number') return undefined;
    return { libbpf: { version: v.libbpf.version, mode: 'in-tree' }, datapathAbi: v.datapathAbi };
  } catch {
    return undefined;
  }
}

function nativeVersions(): NativeVersions {
  const built = builtVersions();
  if (built) return built;
  try {
    const a = (require('../native/load.cjs') as typeof import('../native/load.cjs')).addon();
    const { version, mode } = a.libbpf();
    return { libbpf: { version, mode }, datapathAbi: a.abiVersion() };
  } catch (e) {
    return { libbpf: null, libbpfError: (e as Error).message, datapathAbi: ABI_VERSION };
  }
}

export async function versionReport(socket: string): Promise<VersionReport> {
  const native = nativeVersions();
  const berthd = await berthdVersion(socket);
  return { berth: packageVersion, node: process.version, ...native, berthd };
}

export function formatVersion(r: VersionReport): string {
  const lines: [string, string][] = [
    ['berth', r.berth],
    ['node', r.node],
    ['libbpf', r.libbpf ? `v${r.libbpf.version.replace(/^v/, '')} (${r.libbpf.mode})` : `unknown: ${r.libbpfError}`],
    ['datapath ABI', `${r.datapathAbi}${r.datapathAbi !== ABI_VERSION ? ` (this CLI's src/bpf/abi-version.cts says ${ABI_VERSION}: rebuild)` : ''}`],
    ['berthd', r.berthd.running ? `${r.berthd.version} (pid ${r.berthd.pid}, ${r.berthd.datapath} datapath, socket ${r.berthd.socket})` : `not running (socket ${r.berthd.socket}: ${r.berthd.reason})`],
  ];
  return lines.map(([k, v]) => `${(k + ':').padEnd(14)}${v}\n`).join('');
}

export async function printVersion(socket: string, format: string): Promise<void> {
  const r = await versionReport(socket);
  if (format === 'json') printJson(r);
  else process.stdout.write(formatVersion(r));
}
