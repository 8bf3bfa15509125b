#!/usr/bin/env bash
# The whole test suite on a fresh machine, servers included: what CI runs.
# Installs Node (if the machine's is older than 22.19), the npm packages, PostgreSQL and the Go-built
# emulators (cached after the first run), then runs `npm test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$SECONDS
. scripts/ensure-node.sh
echo "[setup] node $(node --version), npm $(npm --version 2>/dev/null)"
npm ci --no-audit --no-fund --loglevel=error
bash scripts/servers/install.sh
echo "[setup] ready in $((SECONDS - started)) s"
npm test
echo "[test-all] finished in $((SECONDS - started)) s"
