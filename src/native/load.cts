/** Loads the compiled addon once (see addon.ts for what it offers); a clear error says how to build it when it is missing. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../package.cjs';
import type { Addon } from './addon.js';

let cached: Addon | undefined;

export function addon(): Addon {
  if (cached) return cached;
  const file = join(projectRoot, 'build', 'Release', 'berth.node');
  if (!existsSync(file)) {
    throw new Error(`berth's native addon is not built (${file} is missing): run 'npm run setup'`);
  }
  cached = require(file) as Addon;
  return cached;
}
