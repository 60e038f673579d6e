/**
 * Starts berthd as a child process inside a network namespace (entered with
 * nsenter, so berthd keeps the root mount namespace where sandbox namespaces
 * are pinned) and waits until it serves its API. For the demo and tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { projectPath } from '../paths.js';

export class BerthdProcess {
  logs = '';

  private constructor(readonly proc: ChildProcess) {
    proc.stdout!.on('data', (d: Buffer) => (this.logs += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (this.logs += d.toString()));
  }

  /** @wrapper: a command berthd runs under, e.g. setpriv dropping capabilities. */
  static async start(netnsPath: string, args: string[], opts: { timeoutMs?: number; wrapper?: string[] } = {}): Promise<BerthdProcess> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const proc = spawn('nsenter', [`--net=${netnsPath}`, '--', ...(opts.wrapper ?? []), process.execPath, projectPath('dist', 'src', 'daemon', 'berthd.js'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const b = new BerthdProcess(proc);
    const deadline = Date.now() + timeoutMs;
    while (!b.logs.includes('berthd ready')) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`berthd exited (${proc.exitCode ?? proc.signalCode}) during start:\n${b.logs}`);
      }
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`berthd did not become ready in ${timeoutMs} ms:\n${b.logs}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    return b;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.running) return;
    const done = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill(signal);
    await done;
  }
}
