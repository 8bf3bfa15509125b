#!/usr/bin/env bash
# Installs every test server bak's suite runs against, at pinned versions, skipping what is already there
# (or only PostgreSQL, with the argument `postgres`):
# PostgreSQL 15 from Debian's packages, MinIO, fake-gcs-server, bigquery-emulator, handy-spanner built from their pinned
# modules, and local-kms built from scripts/servers/local-kms (a launcher that binds it to 127.0.0.1).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

install_postgres() {
  if [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] && command -v pg_dump >/dev/null; then
    log "PostgreSQL $PG_MAJOR present ($PG_BIN)"
    return
  fi
  [ "$(id -u)" = 0 ] || die "PostgreSQL $PG_MAJOR is missing: run 'sudo apt-get install postgresql-$PG_MAJOR postgresql-client-$PG_MAJOR'"
  log "installing PostgreSQL $PG_MAJOR from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "postgresql-$PG_MAJOR" "postgresql-client-$PG_MAJOR" >/dev/null
  # The package starts a cluster on 5432; the tests run their own on $PG_PORT, so stop the packaged one.
  (service postgresql stop || pg_ctlcluster "$PG_MAJOR" main stop) >/dev/null 2>&1 || true
}

# go_tool NAME MODULE VERSION PACKAGE BIN CGO
# Builds inside a throw-away module that requires MODULE@VERSION, instead of `go install pkg@version`:
# the proxy serves these pinned versions but refuses their version lists, which `go install` asks for.
go_tool() {
  local name=$1 module=$2 version=$3 package=$4 bin=$5 cgo=$6
  if [ -x "$bin" ]; then
    log "$name $version present"
    return
  fi
  command -v go >/dev/null || die "Go is needed to build $name: install Go 1.24 or later"
  log "building $name $version (first time only; kept in $(dirname "$bin"))"
  local started=$SECONDS work
  work=$(mktemp -d)
  printf 'module bak.local/test-servers\n\ngo 1.24\n\nrequire %s %s\n' "$module" "$version" >"$work/go.mod"
  mkdir -p "$(dirname "$bin")"
  (cd "$work" && CGO_ENABLED="$cgo" GOFLAGS="-mod=mod -buildvcs=false" go build -trimpath -o "$bin.partial" "$package") \
    || { rm -rf "$work"; die "building $name failed"; }
  mv "$bin.partial" "$bin"
  rm -rf "$work"
  log "$name built in $((SECONDS - started)) s"
}

# go_launcher NAME MODULE VERSION DIR BIN CGO
# Like go_tool, but builds the main package in DIR, a module of this repository whose go.mod requires MODULE@VERSION
# and whose go.sum is complete, so the build runs with -mod=readonly and never rewrites them.
go_launcher() {
  local name=$1 module=$2 version=$3 dir=$4 bin=$5 cgo=$6
  if [ -x "$bin" ]; then
    log "$name $version present"
    return
  fi
  command -v go >/dev/null || die "Go is needed to build $name: install Go 1.24 or later"
  grep -qE "^(require)?[[:space:]]*$module $version( |\$)" "$dir/go.mod" || die "$dir/go.mod does not require $module $version (lib.sh pins that)"
  log "building $name $version (first time only; kept in $(dirname "$bin"))"
  local started=$SECONDS
  mkdir -p "$(dirname "$bin")"
  (cd "$dir" && CGO_ENABLED="$cgo" GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -o "$bin.partial" .) \
    || { rm -f "$bin.partial"; die "building $name failed"; }
  mv "$bin.partial" "$bin"
  log "$name built in $((SECONDS - started)) s"
}

# python_package NAME VERSION DIR: pip-installs a pinned package into DIR (put on PYTHONPATH by the tests that use it).
python_package() {
  local name=$1 version=$2 dir=$3
  if [ -f "$dir/.installed" ]; then
    log "$name $version present"
    return
  fi
  command -v python3 >/dev/null || die "Python 3 is needed for $name: install python3 and pip"
  log "installing $name $version from PyPI into $dir"
  rm -rf "$dir"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$dir" "$name==$version" || die "installing $name failed"
  touch "$dir/.installed"
}

# deb_tool COMMAND PACKAGE WHY: a Debian package the tests need a command from, installed when the command is missing.
deb_tool() {
  local command=$1 package=$2 why=$3
  command -v "$command" >/dev/null && { log "$command present"; return; }
  [ "$(id -u)" = 0 ] || die "$command is missing ($why): run 'sudo apt-get install $package'"
  log "installing $package from Debian packages ($why)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null; }
}

install_postgres
# `install.sh postgres` stops here: the quickstart needs only PostgreSQL.
[ "${1:-}" = postgres ] && exit 0
go_tool fake-gcs-server "$FAKE_GCS_MODULE" "$FAKE_GCS_VERSION" "$FAKE_GCS_PACKAGE" "$FAKE_GCS_BIN" 0
go_tool minio "$MINIO_MODULE" "$MINIO_VERSION" "$MINIO_PACKAGE" "$MINIO_BIN" 0
go_tool handy-spanner "$HANDY_SPANNER_MODULE" "$HANDY_SPANNER_VERSION" "$HANDY_SPANNER_PACKAGE" "$HANDY_SPANNER_BIN" 1
go_tool bigquery-emulator "$BIGQUERY_EMULATOR_MODULE" "$BIGQUERY_EMULATOR_VERSION" "$BIGQUERY_EMULATOR_PACKAGE" "$BIGQUERY_EMULATOR_BIN" 0
go_launcher local-kms "$LOCAL_KMS_MODULE" "$LOCAL_KMS_VERSION" "$LOCAL_KMS_SRC" "$LOCAL_KMS_BIN" 0
python_package fastavro "$FASTAVRO_VERSION" "$FASTAVRO_DIR"
deb_tool openssl openssl "the self-signed certificate of the https MinIO the TLS tests start"
deb_tool systemd-analyze systemd "checks the examples' systemd units"
deb_tool script bsdutils "gives the progress tests a pseudo-terminal"
log "all test servers installed"
