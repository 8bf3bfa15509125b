# Shared settings of the test servers: pinned versions, loopback ports, where things live.
# Sourced by install.sh, start.sh and stop.sh; the ports reach the tests through $SERVERS_DIR/env.json.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Built emulators and the pinned Node survive between runs here, so a second CI run on the same machine is fast.
TOOLS_DIR="${BAK_TOOLS_DIR:-$HOME/.cache/bak-tools}"
SERVERS_DIR="${BAK_SERVERS_DIR:-$REPO_ROOT/.servers}"

# Module, version, and the package inside it that is the server's main.
MINIO_MODULE="github.com/minio/minio"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
MINIO_PACKAGE="github.com/minio/minio"
FAKE_GCS_MODULE="github.com/fsouza/fake-gcs-server"
FAKE_GCS_VERSION="v1.56.1"
FAKE_GCS_PACKAGE="github.com/fsouza/fake-gcs-server"
BIGQUERY_EMULATOR_MODULE="github.com/goccy/bigquery-emulator"
BIGQUERY_EMULATOR_VERSION="v0.8.1"
BIGQUERY_EMULATOR_PACKAGE="github.com/goccy/bigquery-emulator/cmd/bigquery-emulator"
HANDY_SPANNER_MODULE="github.com/gcpug/handy-spanner"
HANDY_SPANNER_VERSION="v0.8.0"
HANDY_SPANNER_PACKAGE="github.com/gcpug/handy-spanner/cmd/handy-spanner"
# local-kms is built from local-kms/ here, a launcher that binds it to 127.0.0.1; its go.mod pins the same version.
LOCAL_KMS_MODULE="github.com/nsmithuk/local-kms"
LOCAL_KMS_VERSION="v0.0.0-20260228092603-2a5e92d09ab6"
LOCAL_KMS_SRC="$REPO_ROOT/scripts/servers/local-kms"
PG_MAJOR=15
# An Avro reader that is not bak's own (avsc): the Spanner export test reads bak's files with it. From PyPI.
FASTAVRO_VERSION="1.12.1"

PG_PORT="${BAK_TEST_PG_PORT:-54329}"
MINIO_PORT="${BAK_TEST_MINIO_PORT:-19000}"
FAKE_GCS_PORT="${BAK_TEST_GCS_PORT:-14443}"
BIGQUERY_PORT="${BAK_TEST_BIGQUERY_PORT:-19050}"
BIGQUERY_GRPC_PORT="${BAK_TEST_BIGQUERY_GRPC_PORT:-19060}"
SPANNER_PORT="${BAK_TEST_SPANNER_PORT:-19010}"
# Not 19060: that is bigquery-emulator's gRPC port.
KMS_PORT="${BAK_TEST_KMS_PORT:-19070}"

# Test-only credentials for servers that live on loopback for the length of a test run.
MINIO_USER="bak-test-admin"
MINIO_PASSWORD="bak-test-secret"
PG_USER="postgres"
PG_PASSWORD="bak-test-pg"
# No hyphen: the emulator names its Avro records after "project.dataset", and its Avro library refuses a hyphen in a name.
BIGQUERY_PROJECT="baktest"
SPANNER_PROJECT="bak-test"
SPANNER_INSTANCE="bak-test"
SPANNER_DATABASE="bak-smoke"
KMS_REGION="us-east-1"
KMS_ACCOUNT_ID="111122223333"

PG_BIN="/usr/lib/postgresql/$PG_MAJOR/bin"

# go install puts each tool in a folder named after its version, so a version bump rebuilds and an old build is never used.
tool_dir() { echo "$TOOLS_DIR/go/$1-$2"; }
MINIO_BIN="$(tool_dir minio "$MINIO_VERSION")/minio"
FAKE_GCS_BIN="$(tool_dir fake-gcs-server "$FAKE_GCS_VERSION")/fake-gcs-server"
BIGQUERY_EMULATOR_BIN="$(tool_dir bigquery-emulator "$BIGQUERY_EMULATOR_VERSION")/bigquery-emulator"
HANDY_SPANNER_BIN="$(tool_dir handy-spanner "$HANDY_SPANNER_VERSION")/handy-spanner"
# The launcher's own sources are in its folder name too, so editing them rebuilds (and an upstream build is never used).
LOCAL_KMS_BIN="$(tool_dir local-kms-loopback "$LOCAL_KMS_VERSION-$(cd "$LOCAL_KMS_SRC" && cat go.mod go.sum main.go | sha256sum | cut -c1-12)")/local-kms"
FASTAVRO_DIR="$TOOLS_DIR/python/fastavro-$FASTAVRO_VERSION"

log() { printf '[servers] %s\n' "$*" >&2; }
die() { printf '[servers] error: %s\n' "$*" >&2; exit 1; }

# wait_port PORT NAME PIDFILE: up to 60 s for a TCP listener on 127.0.0.1:PORT, failing early if the process died.
wait_port() {
  local port=$1 name=$2 pidfile=$3 i
  for i in $(seq 1 240); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      tail -n 30 "$SERVERS_DIR/$name.log" >&2 || true
      die "$name exited during start-up (log: $SERVERS_DIR/$name.log)"
    fi
    sleep 0.25
  done
  tail -n 30 "$SERVERS_DIR/$name.log" >&2 || true
  die "$name did not listen on 127.0.0.1:$port within 60 s (log: $SERVERS_DIR/$name.log)"
}
