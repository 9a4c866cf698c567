"""Starts a real toolgated on port 0 with a temp data directory."""

import os
import pathlib
import subprocess
import tempfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def toolgated_binary() -> str:
    path = os.environ.get("TOOLGATED_BIN", str(REPO / "target" / "debug" / "toolgated"))
    if not os.path.exists(path):
        raise RuntimeError(f"{path} not found: run `cargo build -p toolgate-gateway` first or set TOOLGATED_BIN")
    return path


class Daemon:
    def __init__(self, process, grpc, http, data_dir):
        self.process = process
        self.grpc = grpc
        self.http = http
        self.data_dir = data_dir

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()


@pytest.fixture
def daemon():
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = pathlib.Path(tmp) / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLGATE_")}
        process = subprocess.Popen(
            [
                toolgated_binary(),
                "--data-dir", str(data_dir),
                "--grpc-addr", "127.0.0.1:0",
                "--http-addr", "127.0.0.1:0",
                "--log-level", "warn",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            line = process.stdout.readline()
            if not line.startswith("toolgated ready:"):
                process.kill()
                raise RuntimeError(f"toolgated did not start: {line}{process.stderr.read()}")
            fields = dict(word.split("=", 1) for word in line.split()[2:])
            yield Daemon(process, fields["grpc"], fields["http"], data_dir)
        finally:
            process.terminate()
            process.wait(timeout=30)
