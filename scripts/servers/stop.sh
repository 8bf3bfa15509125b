#!/usr/bin/env bash
# Stops every test server start.sh started; leaves nothing running. Data stays in $SERVERS_DIR until removed.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stop_pid() {
  local name=$1 pidfile="$SERVERS_DIR/$1.pid" pid i
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    # Each server runs in its own session (setsid), so this reaches any children it spawned too.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    log "stopped $name"
  fi
  rm -f "$pidfile"
}

for name in minio gcs bigquery spanner kms; do stop_pid "$name"; done

data="$SERVERS_DIR/pg/data"
if [ -f "$data/postmaster.pid" ]; then
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1
  else "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1; fi
  log "stopped postgres"
fi
