#!/usr/bin/env bash
# The main job on a fresh machine: installs what bak needs, then uses the embedded default repository
# (a local folder, no cloud account) — creating it the first time — and lists its snapshots.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/ensure-node.sh
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
bin/bak snapshots --quiet >/dev/null 2>&1 || bin/bak init
bin/bak snapshots
