#!/usr/bin/env bash
# The whole suite: vitest, then the leak check (namespaces, links, bpffs pins,
# processes, root-namespace attachments) that fails the run when anything of
# a test's is left behind. Ends with one "N passed, M failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
node dist/harness/leak-check.js snapshot build/leak-baseline.json || exit 1
npx --no-install vitest run --reporter=default --reporter=json --outputFile.json=build/vitest.json "$@"
rc=$?
node dist/harness/leak-check.js check build/leak-baseline.json || rc=1
node dist/harness/leak-check.js summary build/vitest.json || rc=1
exit $rc
