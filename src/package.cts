/**
 * berth's own package: where it is (the project root: a checkout, or the
 * installed package, which has no bpf/ sources) and its version, both from
 * the one package.json read here. CommonJS, as the CLI's start-up path is.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

interface Found {
  root: string;
  version: string;
}

/** @dir's package.json when it is berth's. */
function berthPackage(dir: string): Found | undefined {
  try {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
    return pkg.name === 'berth' && typeof pkg.version === 'string' ? { root: dir, version: pkg.version } : undefined;
  } catch {
    return undefined;
  }
}

function find(): Found {
  // Works from src/ (vitest), from dist/src/ (compiled) and from an npm install of the package.
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const found = berthPackage(dir);
    if (found) return found;
    dir = dirname(dir);
  }
  throw new Error(`cannot find berth's project root (its package.json) above ${__dirname}`);
}

const found = find();

export const projectRoot = found.root;
/** package.json's version: what `berth version` and berthd's API info report. */
export const packageVersion = found.version;
