#!/usr/bin/env bash
# Starts the test servers on 127.0.0.1 (all of them, or those named: postgres minio gcs bigquery spanner kms)
# and writes their addresses to $SERVERS_DIR/env.json for the tests. A server already running is left alone.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mkdir -p "$SERVERS_DIR"

running() { [ -f "$SERVERS_DIR/$1.pid" ] && kill -0 "$(cat "$SERVERS_DIR/$1.pid")" 2>/dev/null; }

need_bin() { [ -x "$1" ] || die "$2 is not installed ($1): run 'bash scripts/servers/install.sh'"; }

# spawn NAME CMD...: starts CMD in its own session, logging to NAME.log, pid in NAME.pid.
spawn() {
  local name=$1; shift
  setsid "$@" >"$SERVERS_DIR/$name.log" 2>&1 < /dev/null &
  echo $! >"$SERVERS_DIR/$name.pid"
}

as_pg_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  [ -x "$PG_BIN/pg_ctl" ] || die "PostgreSQL $PG_MAJOR server is not installed: run 'bash scripts/servers/install.sh'"
  local data="$SERVERS_DIR/pg/data"
  if [ -f "$data/postmaster.pid" ] && as_pg_owner "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "postgres already running on $PG_PORT"; return
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$SERVERS_DIR/pg"; mkdir -p "$data"
    printf '%s\n' "$PG_PASSWORD" >"$SERVERS_DIR/pg/pwfile"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$SERVERS_DIR/pg"
    as_pg_owner "$PG_BIN/initdb" -D "$data" -U "$PG_USER" --pwfile="$SERVERS_DIR/pg/pwfile" \
      --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$SERVERS_DIR/postgres-initdb.log" 2>&1 \
      || { cat "$SERVERS_DIR/postgres-initdb.log" >&2; die "initdb failed"; }
    rm -f "$SERVERS_DIR/pg/pwfile"
  fi
  log "starting postgres on 127.0.0.1:$PG_PORT"
  as_pg_owner "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $data -c fsync=off -c max_connections=100" start >/dev/null \
    || { tail -n 30 "$data/server.log" >&2; die "postgres failed to start"; }
}

start_minio() {
  need_bin "$MINIO_BIN" minio
  running minio && { log "minio already running on $MINIO_PORT"; return; }
  mkdir -p "$SERVERS_DIR/minio-data"
  log "starting minio on 127.0.0.1:$MINIO_PORT"
  MINIO_ROOT_USER="$MINIO_USER" MINIO_ROOT_PASSWORD="$MINIO_PASSWORD" MINIO_BROWSER=off MINIO_UPDATE=off \
    spawn minio "$MINIO_BIN" server --quiet --address "127.0.0.1:$MINIO_PORT" \
    --console-address "127.0.0.1:$((MINIO_PORT + 1))" "$SERVERS_DIR/minio-data"
  wait_port "$MINIO_PORT" minio "$SERVERS_DIR/minio.pid"
}

start_gcs() {
  need_bin "$FAKE_GCS_BIN" fake-gcs-server
  running gcs && { log "fake-gcs-server already running on $FAKE_GCS_PORT"; return; }
  mkdir -p "$SERVERS_DIR/gcs-data"
  log "starting fake-gcs-server on 127.0.0.1:$FAKE_GCS_PORT"
  spawn gcs "$FAKE_GCS_BIN" -scheme http -host 127.0.0.1 -port "$FAKE_GCS_PORT" \
    -public-host "127.0.0.1:$FAKE_GCS_PORT" -external-url "http://127.0.0.1:$FAKE_GCS_PORT" \
    -backend filesystem -filesystem-root "$SERVERS_DIR/gcs-data" -log-level warn
  wait_port "$FAKE_GCS_PORT" gcs "$SERVERS_DIR/gcs.pid"
}

start_bigquery() {
  need_bin "$BIGQUERY_EMULATOR_BIN" bigquery-emulator
  running bigquery && { log "bigquery-emulator already running on $BIGQUERY_PORT"; return; }
  log "starting bigquery-emulator on 127.0.0.1:$BIGQUERY_PORT"
  # Load jobs from gs:// reach fake-gcs-server through STORAGE_EMULATOR_HOST (else they go to real GCS, unreachable here).
  STORAGE_EMULATOR_HOST="http://127.0.0.1:$FAKE_GCS_PORT" spawn bigquery "$BIGQUERY_EMULATOR_BIN" --project="$BIGQUERY_PROJECT" --host=127.0.0.1 \
    --port="$BIGQUERY_PORT" --grpc-port="$BIGQUERY_GRPC_PORT" --log-level=warn
  wait_port "$BIGQUERY_PORT" bigquery "$SERVERS_DIR/bigquery.pid"
}

start_spanner() {
  need_bin "$HANDY_SPANNER_BIN" handy-spanner
  running spanner && { log "handy-spanner already running on $SPANNER_PORT"; return; }
  log "starting handy-spanner on 127.0.0.1:$SPANNER_PORT"
  spawn spanner "$HANDY_SPANNER_BIN" -addr "127.0.0.1:$SPANNER_PORT"
  wait_port "$SPANNER_PORT" spanner "$SERVERS_DIR/spanner.pid"
}

start_kms() {
  need_bin "$LOCAL_KMS_BIN" local-kms
  running kms && { log "local-kms already running on $KMS_PORT"; return; }
  mkdir -p "$SERVERS_DIR/kms-data"
  log "starting local-kms on 127.0.0.1:$KMS_PORT"
  # The launcher in local-kms/ binds 127.0.0.1 (upstream's own main listens on every interface) and reads the same variables.
  # KMS_SEED_PATH names a file that is not there, so the default /init/seed.yaml is not looked at (the launcher does not seed).
  PORT="$KMS_PORT" KMS_REGION="$KMS_REGION" KMS_ACCOUNT_ID="$KMS_ACCOUNT_ID" KMS_DATA_PATH="$SERVERS_DIR/kms-data" \
    KMS_SEED_PATH="$SERVERS_DIR/kms-seed.yaml" spawn kms "$LOCAL_KMS_BIN"
  wait_port "$KMS_PORT" kms "$SERVERS_DIR/kms.pid"
}

write_env() {
  cat >"$SERVERS_DIR/env.json" <<JSON
{
  "postgres": { "host": "127.0.0.1", "port": $PG_PORT, "user": "$PG_USER", "password": "$PG_PASSWORD", "bin": "$PG_BIN" },
  "minio": { "endpoint": "http://127.0.0.1:$MINIO_PORT", "region": "us-east-1", "accessKeyId": "$MINIO_USER", "secretAccessKey": "$MINIO_PASSWORD", "bin": "$MINIO_BIN" },
  "gcs": { "apiEndpoint": "http://127.0.0.1:$FAKE_GCS_PORT", "projectId": "bak-test" },
  "bigquery": { "endpoint": "http://127.0.0.1:$BIGQUERY_PORT", "grpcPort": $BIGQUERY_GRPC_PORT, "projectId": "$BIGQUERY_PROJECT", "bin": "$BIGQUERY_EMULATOR_BIN" },
  "spanner": { "host": "127.0.0.1:$SPANNER_PORT", "projectId": "$SPANNER_PROJECT", "instanceId": "$SPANNER_INSTANCE", "databaseId": "$SPANNER_DATABASE", "bin": "$HANDY_SPANNER_BIN" },
  "kms": { "endpoint": "http://127.0.0.1:$KMS_PORT", "region": "$KMS_REGION", "accountId": "$KMS_ACCOUNT_ID" },
  "fastavro": { "pythonPath": "$FASTAVRO_DIR" }
}
JSON
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(postgres minio gcs bigquery spanner kms)
for name in "${names[@]}"; do
  case "$name" in
    postgres) start_postgres ;;
    minio) start_minio ;;
    gcs) start_gcs ;;
    bigquery) start_bigquery ;;
    spanner) start_spanner ;;
    kms) start_kms ;;
    *) die "unknown server '$name' (known: postgres minio gcs bigquery spanner kms)" ;;
  esac
done
write_env
log "servers up: ${names[*]} (addresses in $SERVERS_DIR/env.json)"
