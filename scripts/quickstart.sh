#!/usr/bin/env bash
# The main job on a fresh machine: installs what bak needs, then backs up a PostgreSQL server into the
# embedded default repository (a local folder, no cloud account), lists the snapshots and verifies them.
#   BAK_SOURCE=postgres://user@host:5432 PGPASSWORD=… bash scripts/quickstart.sh   backs up your server;
# without BAK_SOURCE it starts the project's own PostgreSQL 15 on 127.0.0.1 with a small demo database.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/ensure-node.sh
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error

source_uri="${BAK_SOURCE:-}"
if [ -z "$source_uri" ]; then
  . scripts/servers/lib.sh
  bash scripts/servers/install.sh postgres
  bash scripts/servers/start.sh postgres
  export PGPASSWORD="$PG_PASSWORD"
  "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 <<'SQL'
SELECT 'CREATE DATABASE bak_demo' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'bak_demo')\gexec
\c bak_demo
CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY, customer text NOT NULL, total numeric(12,2), placed timestamptz DEFAULT now());
INSERT INTO orders SELECT g, 'customer ' || (g % 97), g * 1.25, now() - g * interval '1 minute' FROM generate_series(1, 20000) g ON CONFLICT DO NOTHING;
SQL
  source_uri="postgres://$PG_USER@127.0.0.1:$PG_PORT/bak_demo"
fi

bin/bak snapshots --quiet >/dev/null 2>&1 || bin/bak init
bin/bak backup "$source_uri"
bin/bak snapshots
bin/bak verify --all --level data
