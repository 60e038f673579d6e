/**
 * berth-cni as a CNI runtime invokes it (libcni's way): the plugin found by
 * its type in a CNI_PATH directory, the verb and key in CNI_* environment
 * variables, the network configuration on stdin, the result or error JSON on
 * stdout. The plugin directory holds `berth`, a wrapper that runs this
 * checkout's compiled berth-cni with this node.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectPath } from '../src/paths.js';

export const BERTH_CNI = projectPath('dist', 'src', 'cni', 'main.js');

export interface CniCall {
  command: string;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  /** CNI_PATH; default: the plugin directory ('' leaves it unset) */
  path?: string;
  /** extra environment (e.g. BERTH_SOCKET) */
  env?: Record<string, string>;
}

export interface CniReply {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed, when it is JSON */
  json?: Record<string, unknown>;
}

export class CniPlugin {
  private constructor(readonly dir: string) {}

  /** A plugin directory whose `berth` (@type) runs berth-cni. */
  static async create(type = 'berth'): Promise<CniPlugin> {
    const dir = await mkdtemp(join(tmpdir(), 'berth-cni-bin-'));
    await writeFile(join(dir, type), `#!/bin/sh\nexec ${process.execPath} ${BERTH_CNI} "$@"\n`, { mode: 0o755 });
    return new CniPlugin(dir);
  }

  get bin(): string {
    return join(this.dir, 'berth');
  }

  /** Invokes the plugin with only the CNI variables (and @call.env) set, @stdin as its input. */
  invoke(call: CniCall, stdin: unknown): Promise<CniReply> {
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', CNI_COMMAND: call.command, ...(call.env ?? {}) };
    const set = (k: string, v: string | undefined) => {
      if (v !== undefined && v !== '') env[k] = v;
    };
    set('CNI_CONTAINERID', call.containerId);
    set('CNI_NETNS', call.netns);
    set('CNI_IFNAME', call.ifname);
    set('CNI_ARGS', call.args);
    set('CNI_PATH', call.path ?? this.dir);
    const input = typeof stdin === 'string' ? stdin : JSON.stringify(stdin);
    return new Promise((resolve, reject) => {
      const child = spawn(this.bin, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        let json: Record<string, unknown> | undefined;
        try {
          json = stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ code: code ?? -1, stdout, stderr, ...(json ? { json } : {}) });
      });
      child.stdin.end(input);
    });
  }

  async destroy(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
