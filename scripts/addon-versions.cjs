// Run by the native build after linking the addon (CMakeLists.txt): writes
// what `berth version` reports of it (libbpf's version and build mode, the
// datapath ABI) beside it, so the CLI need not load the addon to say so.
'use strict';
const { writeFileSync } = require('node:fs');

const [addonFile, outFile] = process.argv.slice(2);
if (!addonFile || !outFile) throw new Error('usage: node addon-versions.cjs ADDON.node OUT.json');
const a = require(addonFile);
const { version, mode } = a.libbpf();
writeFileSync(outFile, JSON.stringify({ libbpf: { version, mode }, datapathAbi: a.abiVersion() }) + '\n');
