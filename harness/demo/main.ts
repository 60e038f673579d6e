/**
 * The demo's entry point: `npm run demo` runs it, and so does `berth demo`,
 * which starts it as a child process (production code never imports the
 * harness). `--format table` (default) says what happens as it happens;
 * `--format json` prints the DemoResult alone.
 */
import { printJson } from '../../src/cli/table.cjs';
import { runDemo } from './index.js';

async function main(argv: string[]): Promise<void> {
  const i = argv.indexOf('--format');
  const format = i >= 0 ? argv[i + 1] : 'table';
  if (format !== 'table' && format !== 'json') throw new Error(`option '--format <format>' argument '${format ?? ''}' is invalid. Allowed choices are table, json.`);
  const json = format === 'json';
  const r = await runDemo(json ? () => {} : (l) => process.stdout.write(l + '\n'));
  if (json) printJson(r);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`berth demo: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
