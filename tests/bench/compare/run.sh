#!/usr/bin/env bash
# Compares toolgate with other systems on one sfsim org and one query, in one
# run (see compare.py for what is measured; BENCHMARKS.md "Issue 17: against
# other systems" for the recorded figures). Not run by CI.
#
#   tests/bench/compare/run.sh                      # all systems, 500 calls each
#   tests/bench/compare/run.sh --calls 200 --systems rest,toolgate,cforge
#
# Installs the peers from the registries, pinned, into a cache directory
# ($TOOLGATE_COMPARE_CACHE, default ~/.cache/toolgate-compare; never the
# repository's .venv): the driver's client packages (Python MCP SDK, grpcio),
# mcp-contextforge-gateway (needs Python 3.12 or 3.13: $CONTEXTFORGE_PYTHON,
# else python3.13 / python3.12 / python3 from PATH), and the npm package
# @tsmztech/mcp-server-salesforce. Builds release sfsim and toolgated unless
# $TOOLGATED / $SFSIM name binaries. Arguments go to compare.py.
set -euo pipefail
# Binaries named relative to where the script was started from.
if [ -n "${TOOLGATED:-}" ]; then TOOLGATED="$(realpath "$TOOLGATED")"; fi
if [ -n "${SFSIM:-}" ]; then SFSIM="$(realpath "$SFSIM")"; fi
cd "$(dirname "$0")/../../.."

CACHE="${TOOLGATE_COMPARE_CACHE:-$HOME/.cache/toolgate-compare}"
CONTEXTFORGE_VERSION=1.1.0
SF_NPM_VERSION=0.0.6
mkdir -p "$CACHE"

if [ ! -x "$CACHE/driver/bin/python" ]; then
  python3 -m venv "$CACHE/driver"
fi
"$CACHE/driver/bin/pip" install --quiet --disable-pip-version-check \
  mcp==2.3.0 grpcio==1.85.3 grpcio-reflection==1.85.1 protobuf==7.36.2 requests==2.34.2

if [ ! -x "$CACHE/contextforge/bin/mcpgateway" ]; then
  # The first that runs and is 3.12 or 3.13 (a pyenv shim of a version
  # that is not selected fails here and is skipped).
  PY=""
  for candidate in ${CONTEXTFORGE_PYTHON:-} python3.13 python3.12 python3; do
    if "$candidate" -c 'import sys; sys.exit(not (3, 12) <= sys.version_info[:2] < (3, 14))' 2>/dev/null; then
      PY="$candidate"
      break
    fi
  done
  if [ -z "$PY" ]; then
    echo "mcp-contextforge-gateway $CONTEXTFORGE_VERSION needs Python 3.12 or 3.13: set CONTEXTFORGE_PYTHON to one" >&2
    exit 1
  fi
  "$PY" -m venv "$CACHE/contextforge"
  "$CACHE/contextforge/bin/pip" install --quiet --disable-pip-version-check \
    "mcp-contextforge-gateway==$CONTEXTFORGE_VERSION"
fi

SF_NPM_ENTRY="$CACHE/npm/node_modules/@tsmztech/mcp-server-salesforce/dist/index.js"
if [ ! -e "$SF_NPM_ENTRY" ]; then
  mkdir -p "$CACHE/npm"
  (cd "$CACHE/npm" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error \
    "@tsmztech/mcp-server-salesforce@$SF_NPM_VERSION")
fi

TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
if [ -z "${TOOLGATED:-}" ] || [ -z "${SFSIM:-}" ]; then
  cargo build --release -p toolgate-gateway -p sfsim
fi
TOOLGATED="${TOOLGATED:-$TARGET_DIR/release/toolgated}"
SFSIM="${SFSIM:-$TARGET_DIR/release/sfsim}"

pip_version() { "$1/bin/pip" show "$2" 2>/dev/null | sed -n 's/^Version: //p'; }
npm_version() { node -p "require('$CACHE/npm/node_modules/$1/package.json').version"; }
echo "toolgated: $TOOLGATED ($("$TOOLGATED" --version 2>/dev/null || echo '?'))"
echo "peers: mcp-contextforge-gateway $(pip_version "$CACHE/contextforge" mcp-contextforge-gateway)" \
  "($("$CACHE/contextforge/bin/python" --version)), @tsmztech/mcp-server-salesforce" \
  "$(npm_version @tsmztech/mcp-server-salesforce) (node $(node --version)), client and upstream:" \
  "mcp $(pip_version "$CACHE/driver" mcp) ($("$CACHE/driver/bin/python" --version))"
echo "machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), load $(cut -d' ' -f1-3 /proc/loadavg)"

exec "$CACHE/driver/bin/python" tests/bench/compare/compare.py \
  --toolgated "$TOOLGATED" --sfsim "$SFSIM" \
  --contextforge-bin "$CACHE/contextforge/bin" --sf-npm-entry "$SF_NPM_ENTRY" "$@"
