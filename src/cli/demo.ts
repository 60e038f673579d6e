/**
 * `berth demo`: hands over to the harness's demo (harness/demo/main.ts) as a
 * child process. The demo builds namespaces and runs berthd the way tests do,
 * so it lives in the harness, which production code never imports; it is
 * there in a source checkout (`npm run demo`).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { projectPath } from '../paths.js';

const DEMO = projectPath('dist', 'harness', 'demo', 'main.js');

/** Runs the demo with its output on this process's; resolves with its exit code. */
export async function runDemo(format: string, logLevel: string): Promise<number> {
  if (!existsSync(DEMO)) throw new Error(`the demo is not here (${DEMO}): it comes with a source checkout, run 'npm run demo' there`);
  const child = spawn(process.execPath, [DEMO, '--format', format], { stdio: 'inherit', env: { ...process.env, BERTH_LOG_LEVEL: logLevel } });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
