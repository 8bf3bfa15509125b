#!/usr/bin/env bash
# `npm test`: starts the test servers, type-checks, runs every suite against them, stops the servers.
# Needs the servers installed (bash scripts/servers/install.sh, or scripts/test-all.sh which does it all).
# BAK_KEEP_SERVERS=1 leaves the servers running afterwards, for quicker reruns while developing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/ensure-node.sh

if [ "${BAK_KEEP_SERVERS:-}" != 1 ]; then trap 'bash scripts/servers/stop.sh' EXIT; fi
bash scripts/servers/start.sh

echo "[test] type-checking"
npx --no-install tsc --noEmit -p .

mkdir -p .bak-test
rm -f .bak-test/vitest.json
status=0
npx --no-install vitest run --reporter=default --reporter=json --outputFile.json=.bak-test/vitest.json "$@" || status=$?
# Vitest's own summary is not a line CI reads, and a skipped test must not pass as done: summarise and judge here.
node scripts/test-summary.mjs .bak-test/vitest.json || status=1
exit "$status"
