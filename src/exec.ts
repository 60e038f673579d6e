/** Running helper programs (ip, iptables, ping) with errors that name the command. */
import { execFile } from 'node:child_process';

export interface RunResult {
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`'${command}' failed (exit ${exitCode ?? 'signal'}): ${stderr.trim() || stdout.trim()}`);
  }
}

export function run(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) {
          const code = typeof err.code === 'number' ? err.code : null;
          if (err.code === 'ENOENT') {
            reject(new Error(`'${cmd}' is not installed (run 'npm run setup')`));
            return;
          }
          reject(new CommandError([cmd, ...args].join(' '), code, stdout, stderr));
          return;
        }
        resolve({ stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Like run(), but resolves with the exit code instead of rejecting on failure. */
export async function tryRun(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult & { code: number }> {
  try {
    return { ...(await run(cmd, args, opts)), code: 0 };
  } catch (e) {
    if (e instanceof CommandError) return { stdout: e.stdout, stderr: e.stderr, code: e.exitCode ?? -1 };
    throw e;
  }
}
