#!/usr/bin/env bash
# Stops the server pg-start.sh started in DIR and deletes DIR.
#
# Usage: pg-stop.sh DIR
set -uo pipefail
dir="$(realpath -m "$1")"
run=()
if [ "$(id -u)" = 0 ]; then
  run=(runuser -u "$(stat -c %U "$dir")" --)
fi
if [ -f "$dir/data/postmaster.pid" ]; then
  (cd "$dir" && "${run[@]}" pg_ctl -D "$dir/data" -m immediate -w stop >/dev/null 2>&1)
fi
rm -rf "$dir"
