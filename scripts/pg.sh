#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests: initdb into DIR, on a free port of
# 127.0.0.1 only, run by an unprivileged user (as root: the system user rollout-pg, made
# here if missing), with a password that only DIR/password and PGPASSWORD carry.
#   scripts/pg.sh start DIR   prints and writes DIR/url (postgresql://rollout@127.0.0.1:PORT/postgres)
#   scripts/pg.sh stop DIR    stops it and removes DIR
#   scripts/pg.sh pause DIR N stops it (connections cut), waits N seconds, starts it again on
#                             the same port (an outage, for the tests)
set -euo pipefail
cmd=${1:?start or stop}
dir=${2:?a directory}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "pg.sh: no PostgreSQL server installed (scripts/setup.sh installs it)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u rollout-pg -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
  if [ "$(id -u)" -eq 0 ] && ! id rollout-pg >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin rollout-pg
  fi
  # A server left behind there (a run that was killed) is stopped first.
  if [ -d "$dir/data" ]; then as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  data="$dir/data"
  # A port nobody listens on now.
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  echo "$password" >"$dir/password"
  chmod 600 "$dir/password"
  if [ "$(id -u)" -eq 0 ]; then
    chown -R rollout-pg "$dir"
    runuser -u rollout-pg -- test -r "$dir/password" || {
      echo "pg.sh: the user rollout-pg cannot reach $dir (a folder above it is private): give a folder others may pass through" >&2
      exit 1
    }
  fi
  as_owner "$bin/initdb" -D "$data" -U rollout --pwfile="$dir/password" --auth-local=trust \
    --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  echo "postgresql://rollout@127.0.0.1:$port/postgres" | tee "$dir/url"
  ;;
pause)
  seconds=${3:?seconds}
  port=$(sed -E 's|.*:([0-9]+)/.*|\1|' "$dir/url")
  dir=$(cd "$dir" && pwd)
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  sleep "$seconds"
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" start >/dev/null
  ;;
stop)
  if [ -d "$dir/data" ]; then as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
  ;;
*)
  echo "pg.sh: start, stop or pause" >&2; exit 2
  ;;
esac
