#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1, for the examples, the tests
# and the validation harness.
#
#   scripts/postgres.sh start ENV_FILE   start a server; write its settings to ENV_FILE
#   scripts/postgres.sh stop ENV_FILE    stop that server and delete its files
#   scripts/postgres.sh run CMD [ARG..]  start, run CMD with DATABASE_URL set, stop
#
# ENV_FILE holds shell `export` lines: DATABASE_URL
# (postgres://postgres@127.0.0.1:PORT/postgres, trust authentication),
# REFLEXIO_PG_DIR (the server's temporary folder), REFLEXIO_PG_BIN and
# REFLEXIO_PG_USER. `start` also prints the DATABASE_URL line.
#
# Every server gets a folder of its own (mktemp) and a free port (random
# ports are tried until one binds), so several can run at once on one
# machine. When the server binaries are missing, the Debian `postgresql`
# package is installed (as root; otherwise the script says what to
# install). PostgreSQL refuses to run as root, so under root the server
# runs as the unprivileged user `reflexio-pg` (created if needed, else
# `nobody`).
set -euo pipefail

die() {
  echo "postgres.sh: $*" >&2
  exit 1
}

find_bin() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [[ -x "$dir/pg_ctl" && -x "$dir/initdb" ]]; then
      echo "$dir"
      return 0
    fi
  done
  if command -v pg_ctl >/dev/null && command -v initdb >/dev/null; then
    dirname "$(command -v pg_ctl)"
    return 0
  fi
  return 1
}

ensure_bin() {
  local bin
  if bin=$(find_bin); then
    echo "$bin"
    return 0
  fi
  if [[ $(id -u) -ne 0 ]]; then
    die "the PostgreSQL server binaries (initdb, pg_ctl) are missing; install them (Debian: sudo apt-get install postgresql) and run again"
  fi
  echo "postgres.sh: installing the Debian postgresql package" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || die "apt-get update failed"
  apt-get install -y -qq postgresql >&2 || die "apt-get install postgresql failed"
  bin=$(find_bin) || die "postgresql was installed but no initdb/pg_ctl was found under /usr/lib/postgresql/*/bin"
  echo "$bin"
}

# The user the server runs as: the caller, or an unprivileged one under root.
server_user() {
  if [[ $(id -u) -ne 0 ]]; then
    id -un
    return 0
  fi
  if id reflexio-pg >/dev/null 2>&1; then
    echo reflexio-pg
  elif useradd --system --no-create-home --shell /usr/sbin/nologin reflexio-pg >/dev/null 2>&1 \
    || id reflexio-pg >/dev/null 2>&1; then
    # (a concurrent run may have created it between the two checks)
    echo reflexio-pg
  else
    echo nobody
  fi
}

as_user() {
  local user=$1
  shift
  if [[ $(id -un) == "$user" ]]; then
    "$@"
  else
    runuser -u "$user" -- "$@"
  fi
}

start() {
  local env_file=$1
  [[ -n "$env_file" ]] || die "usage: postgres.sh start ENV_FILE"
  local bin user dir port started=""
  bin=$(ensure_bin)
  user=$(server_user)
  dir=$(mktemp -d "${TMPDIR:-/tmp}/reflexio-pg.XXXXXXXX")
  chmod 700 "$dir"
  if [[ $(id -u) -eq 0 ]]; then
    chown "$user" "$dir"
  fi
  if ! as_user "$user" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
    --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    rm -rf "$dir"
    die "initdb failed (log above)"
  fi
  for _ in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    if as_user "$user" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100" \
      start >/dev/null 2>&1; then
      started=yes
      break
    fi
    if ! grep -q -i "could not bind\|already in use\|could not create any TCP/IP sockets" \
      "$dir/server.log" 2>/dev/null; then
      break
    fi
    : >"$dir/server.log"
  done
  if [[ -z "$started" ]]; then
    cat "$dir/server.log" >&2 || true
    rm -rf "$dir"
    die "the server did not start (log above)"
  fi
  local url="postgres://postgres@127.0.0.1:$port/postgres"
  local tmp="$env_file.tmp.$$"
  {
    echo "export DATABASE_URL='$url'"
    echo "export REFLEXIO_PG_DIR='$dir'"
    echo "export REFLEXIO_PG_BIN='$bin'"
    echo "export REFLEXIO_PG_USER='$user'"
  } >"$tmp"
  mv "$tmp" "$env_file"
  echo "DATABASE_URL=$url"
}

stop() {
  local env_file=$1
  [[ -f "$env_file" ]] || die "no such env file: $env_file (written by postgres.sh start)"
  local REFLEXIO_PG_DIR="" REFLEXIO_PG_BIN="" REFLEXIO_PG_USER=""
  # shellcheck disable=SC1090
  source "$env_file"
  [[ -n "$REFLEXIO_PG_DIR" && -d "$REFLEXIO_PG_DIR" ]] || die "$env_file names no server folder"
  as_user "$REFLEXIO_PG_USER" "$REFLEXIO_PG_BIN/pg_ctl" -D "$REFLEXIO_PG_DIR/data" -m fast -w \
    stop >/dev/null 2>&1 || echo "postgres.sh: the server in $REFLEXIO_PG_DIR was not running" >&2
  rm -rf "$REFLEXIO_PG_DIR"
}

run() {
  [[ $# -gt 0 ]] || die "usage: postgres.sh run CMD [ARG..]"
  local status=0
  PG_RUN_ENV=$(mktemp "${TMPDIR:-/tmp}/reflexio-pg-env.XXXXXXXX")
  # Stop the server however the command ends.
  trap 'stop "$PG_RUN_ENV" || true; rm -f "$PG_RUN_ENV"' EXIT
  start "$PG_RUN_ENV" >/dev/null
  (
    # shellcheck disable=SC1090
    source "$PG_RUN_ENV"
    "$@"
  ) || status=$?
  return "$status"
}

case "${1:-}" in
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  run)
    shift
    run "$@"
    ;;
  *) die "usage: postgres.sh start ENV_FILE | stop ENV_FILE | run CMD [ARG..]" ;;
esac
