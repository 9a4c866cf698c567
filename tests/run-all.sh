#!/usr/bin/env bash
# Runs every test: the Rust workspace (unit, integration, end-to-end), then
# the automation tests with clients we did not write (Python grpcio).
# Python packages go into .venv at the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --workspace --bins
cargo test --workspace

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export TOOLGATED_BIN="${TOOLGATED_BIN:-$TARGET_DIR/debug/toolgated}"
export SFSIM_BIN="${SFSIM_BIN:-$TARGET_DIR/debug/sfsim}"
.venv/bin/python -m pytest -q tests/python
