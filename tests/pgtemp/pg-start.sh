#!/usr/bin/env bash
# Starts a private PostgreSQL server for tests in DIR (created if needed) on
# a free loopback port and prints its URL (postgres://postgres@127.0.0.1:PORT/postgres).
# Trust authentication, TCP on 127.0.0.1 only, no Unix socket, fsync off:
# for tests only. PostgreSQL refuses to run as root, so as root the server
# runs as TOOLGATE_PG_USER (default: nobody), which gets DIR.
# Stop it with pg-stop.sh DIR.
#
# Usage: pg-start.sh DIR
set -euo pipefail
dir="$(realpath -m "$1")"
mkdir -p "$dir"
run=()
if [ "$(id -u)" = 0 ]; then
  user="${TOOLGATE_PG_USER:-nobody}"
  chown "$user" "$dir"
  chmod 700 "$dir"
  run=(runuser -u "$user" --)
fi
cd "$dir"
if ! "${run[@]}" initdb -D "$dir/data" -U postgres --auth=trust --no-sync \
  --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1; then
  cat "$dir/initdb.log" >&2
  exit 1
fi
# A port that is free now may be taken before the server binds it: try
# another on failure.
for _ in $(seq 1 20); do
  port=$((20000 + RANDOM % 40000))
  if "${run[@]}" pg_ctl -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400 -c shared_buffers=32MB" \
    start >/dev/null 2>&1; then
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    exit 0
  fi
done
echo "pg-start.sh: PostgreSQL did not start; its log:" >&2
cat "$dir/postgres.log" >&2
exit 1
