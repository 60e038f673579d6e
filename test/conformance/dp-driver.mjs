#!/usr/bin/env node
/**
 * Drives the built iptables datapath directly, in whatever network namespace
 * it is started in (the test enters a namespace of its own with nsenter):
 *   dp-driver.mjs STEP...   with STEP one of apply-empty, apply:JSON-FILE (a resolved intent), teardown,
 *                           drifted, status, run:SHELL-COMMAND (another tool's change, meanwhile)
 * Prints one JSON line per step.
 */
import { readFile } from 'node:fs/promises';
import { execSync } from 'node:child_process';
import { pino } from 'pino';
import { IptablesDatapath } from '../../dist/src/datapath/iptables/index.js';
import { resolveDatapath } from '../../dist/src/datapath/desired.js';

const dp = await IptablesDatapath.create({ log: pino({ level: 'silent' }) });
for (const step of process.argv.slice(2)) {
  if (step === 'apply-empty') await dp.apply(resolveDatapath({ networks: [], endpoints: [], publishes: [], links: [] }));
  else if (step.startsWith('apply:')) await dp.apply(JSON.parse(await readFile(step.slice(6), 'utf8')));
  else if (step === 'teardown') await dp.teardown();
  else if (step === 'drifted') process.stdout.write(JSON.stringify({ drifted: await dp.drifted() }) + '\n');
  else if (step.startsWith('run:')) execSync(step.slice(4), { stdio: 'inherit' });
  else if (step === 'status') process.stdout.write(JSON.stringify(await dp.status()) + '\n');
  else throw new Error(`unknown step '${step}'`);
}
