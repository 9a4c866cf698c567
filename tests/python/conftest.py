"""Fixtures: a real toolgated on port 0 with a temp data directory, and a
real toolgate-demo (toolgated + a seeded sfsim org) for MCP client tests."""

import contextlib
import os
import pathlib
import subprocess
import tempfile
import urllib.parse

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
                "--metrics-addr", "127.0.0.1:0",
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


# --- toolgate-demo: the gateway with a seeded simulated Salesforce org ------

SALESFORCE_USER = "ana.souza@acme-demo.example"


def demo_binary() -> str:
    target = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
    path = os.environ.get("TOOLGATE_DEMO_BIN", str(pathlib.Path(target) / "debug" / "toolgate-demo"))
    if not os.path.exists(path):
        raise RuntimeError(f"{path} not found: run `cargo build -p toolgate-demo` first or set TOOLGATE_DEMO_BIN")
    return path


class Demo:
    """What toolgate-demo printed: the MCP endpoint and a user's token, and
    sfsim's login host, plus the browser side of connecting Salesforce."""

    def __init__(self, info):
        self.mcp_url = info["MCP endpoint"]
        self.token = info["MCP token"]
        # "<gRPC address> (admin token in <file>)"
        self.control_api = info.get("control API", "")
        self.base_url = self.mcp_url.removesuffix("/mcp")
        org = info["Salesforce org"]  # "sfsim login host URL / instance URL"
        words = org.split()
        self.login_host = words[words.index("host") + 1]
        self.instance_url = words[words.index("instance") + 1]

    @staticmethod
    def connect_link(message: str) -> str:
        """The /connect/ link in a connect prompt."""
        links = [w.rstrip(",.") for w in message.split() if "/connect/" in w]
        assert len(links) == 1, message
        return links[0]

    def connect(self, link: str, username: str = SALESFORCE_USER):
        """Follows a connect link through sfsim's login page as `username`,
        like a browser: gateway -> sfsim authorize page -> allow -> the
        gateway's /auth/callback. Returns the callback's response."""
        import requests

        assert link.startswith(self.base_url + "/connect/"), link
        http = requests.Session()
        # The link's page names the toolgate user; its button (a POST)
        # spends the link and goes to the login host.
        page = http.get(link, allow_redirects=False, timeout=30)
        assert page.status_code == 200, (page.status_code, page.text)
        assert "Continue to Salesforce" in page.text, page.text
        to_login = http.post(link, allow_redirects=False, timeout=30)
        assert to_login.status_code in (302, 303), (to_login.status_code, to_login.text)
        authorize = to_login.headers["Location"]
        assert authorize.startswith(self.login_host + "/services/oauth2/authorize?"), authorize
        params = urllib.parse.parse_qsl(urllib.parse.urlparse(authorize).query)
        assert dict(params)["code_challenge_method"] == "S256"
        page = http.get(authorize, allow_redirects=False, timeout=30)
        assert page.status_code == 200, page.text
        assert username in page.text, "sfsim's login page lists the org's users"
        back = http.post(
            self.login_host + "/services/oauth2/authorize",
            data=params + [("username", username), ("action", "allow")],
            allow_redirects=False,
            timeout=30,
        )
        assert back.status_code in (302, 303), (back.status_code, back.text)
        callback = back.headers["Location"]
        assert callback.startswith(self.base_url + "/auth/callback?code="), callback
        done = http.get(callback, allow_redirects=False, timeout=30)
        assert done.status_code == 200, (done.status_code, done.text)
        assert "Salesforce account connected" in done.text, done.text
        return done


@contextlib.contextmanager
def run_demo(*extra_args):
    """Runs a fresh toolgate-demo on loopback ports (its own data directory,
    a freshly seeded sfsim org, no Salesforce connection yet) with
    `extra_args` added to its flags, and yields what it printed."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLGATE_")}
        with open(pathlib.Path(tmp) / "stderr.log", "w+") as stderr:
            process = subprocess.Popen(
                [
                    demo_binary(),
                    "--data-dir", str(pathlib.Path(tmp) / "data"),
                    "--http-addr", "127.0.0.1:0",
                    "--grpc-addr", "127.0.0.1:0",
                    "--metrics-addr", "127.0.0.1:0",
                    "--sim-login-addr", "127.0.0.1:0",
                    "--sim-instance-addr", "127.0.0.1:0",
                    *extra_args,
                ],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=env,
            )
            try:
                info = {}
                for line in process.stdout:
                    key, _, value = line.strip().partition(":")
                    info[key.strip()] = value.strip()
                    if key.strip() == "Salesforce org":
                        break
                if "MCP token" not in info or "Salesforce org" not in info:
                    process.kill()
                    stderr.seek(0)
                    raise RuntimeError(f"toolgate-demo did not start: {info} {stderr.read()}")
                yield Demo(info)
            finally:
                process.terminate()
                process.wait(timeout=30)


@pytest.fixture
def demo_with():
    """`run_demo` itself, for tests that pass the demo extra flags
    (`with demo_with("--flag", "value") as demo:`)."""
    return run_demo


@pytest.fixture
def demo():
    """A fresh toolgate-demo on loopback ports (its own data directory, a
    freshly seeded sfsim org, no Salesforce connection yet)."""
    with run_demo() as running:
        yield running
