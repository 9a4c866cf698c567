"""The README's first command, run as a newcomer would: `cargo run -p
toolgate-demo` (with free ports), then the Python MCP SDK with the printed
token lists the granted tools, connects the simulated Salesforce account
through the connect link and sfsim's login page, and lists accounts.
Ctrl-C stops the demo cleanly; running it again on the same data directory
works, and only the newest printed token is live."""

import importlib.util
import os
import pathlib
import re
import signal
import subprocess
import tempfile

import anyio
import httpx2
import pytest

# This directory's conftest, by path: pytest runs tests/python and
# tests/mcp-clients together, and both have a module named `conftest`.
_spec = importlib.util.spec_from_file_location(
    "toolgate_python_conftest", pathlib.Path(__file__).with_name("conftest.py")
)
_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conftest)
REPO, Demo = _conftest.REPO, _conftest.Demo
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client

READ_TOOLS = {
    "salesforce_list_objects", "salesforce_describe_object", "salesforce_query",
    "salesforce_search", "salesforce_get_record", "salesforce_list_recent",
    "salesforce_get_related_records", "salesforce_get_user_info", "salesforce_get_limits",
}
ACCOUNTS = "SELECT Id, Name FROM Account ORDER BY Name LIMIT 5"


def readme_demo_command() -> list[str]:
    """The first command in the README's Quickstart."""
    readme = (REPO / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1]
    block = re.search(r"```sh\n(.+?)\n```", quickstart, re.S).group(1).strip()
    assert block.startswith("cargo run"), block
    return block.split()


def start(data_dir: pathlib.Path, stderr):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLGATE_")}
    command = readme_demo_command() + [
        "--",
        "--data-dir", str(data_dir),
        "--http-addr", "127.0.0.1:0",
        "--grpc-addr", "127.0.0.1:0",
        "--metrics-addr", "127.0.0.1:0",
        "--sim-login-addr", "127.0.0.1:0",
        "--sim-instance-addr", "127.0.0.1:0",
    ]
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
    )
    printed = []
    for line in process.stdout:
        printed.append(line.rstrip("\n"))
        if line.strip() == "Ctrl-C stops the demo.":
            break
    else:
        process.kill()
        stderr.seek(0)
        raise RuntimeError(f"the demo did not start: {printed} {stderr.read()}")
    info = {}
    for line in printed:
        key, _, value = line.strip().partition(":")
        info.setdefault(key.strip(), value.strip())
    return process, printed, info


def stop(process):
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0, "Ctrl-C stops the demo cleanly"


def client(token):
    return httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30, read=60)
    )


def text(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


def test_the_readme_demo_end_to_end_twice():
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = pathlib.Path(tmp) / "data"
        with open(pathlib.Path(tmp) / "stderr.log", "w+") as stderr:
            process, printed, info = start(data_dir, stderr)
            try:
                demo = Demo(info)
                token = demo.token
                # What the demo prints, ready to paste.
                assert info["Claude Code"] == (
                    f'claude mcp add --transport http toolgate {demo.mcp_url} '
                    f'--header "Authorization: Bearer {token}"'
                )
                assert info["MCP Inspector"].startswith(
                    f"npx @modelcontextprotocol/inspector --cli {demo.mcp_url} --transport http"
                )
                assert info["Admin console"].startswith("cargo run -p toolgate-console -- --grpc-addr http://127.0.0.1:")
                assert info["Metrics"].startswith("http://127.0.0.1:") and info["Metrics"].endswith("/metrics (Prometheus)"), info["Metrics"]
                assert f"--data-dir {data_dir}" in info["Admin console"]
                assert "9 read tools approved" in info["Governance"], info["Governance"]
                assert "4 write and delete tools wait for review" in info["Governance"]
                users = [l.strip().split()[0] for l in printed if "@acme-demo.example" in l]
                assert "ana.souza@acme-demo.example" in users, printed

                async def scenario():
                    async with client(token) as http, Client(
                        streamable_http_client(demo.mcp_url, http_client=http), cache=None
                    ) as mcp:
                        listed = await mcp.list_tools()
                        assert {t.name for t in listed.tools} == READ_TOOLS
                        first = await mcp.call_tool("salesforce_query", {"soql": ACCOUNTS})
                        assert first.is_error is True
                        link = Demo.connect_link(text(first))
                        await anyio.to_thread.run_sync(demo.connect, link)
                        accounts = await mcp.call_tool("salesforce_query", {"soql": ACCOUNTS})
                        assert accounts.is_error is False, text(accounts)
                        records = accounts.structured_content["records"]
                        assert len(records) == 5
                        assert all(r["Name"] for r in records), records
                        assert all(r["type"] == "Account" and r["Id"].startswith("001") for r in records)
                        # A write tool is not granted (it waits for review).
                        refused = await mcp.call_tool(
                            "salesforce_delete_record", {"object_name": "Account", "record_id": records[0]["Id"]}
                        )
                        assert refused.is_error is True

                anyio.run(scenario)
            finally:
                if process.poll() is None:
                    stop(process)

            # Again, on the same data directory: it starts, the new token
            # works, the first run's Salesforce connection is gone (the
            # user is asked to connect again), and its token is revoked.
            process, _, info = start(data_dir, stderr)
            try:
                again = Demo(info)
                assert again.token != token

                async def second():
                    async with client(again.token) as http, Client(
                        streamable_http_client(again.mcp_url, http_client=http), cache=None
                    ) as mcp:
                        assert {t.name for t in (await mcp.list_tools()).tools} == READ_TOOLS
                        # sfsim's org is new (and, on port 0, elsewhere): the
                        # first run's connection was dropped, so the first
                        # call asks to connect again instead of failing to
                        # reach the old instance.
                        first = await mcp.call_tool("salesforce_query", {"soql": ACCOUNTS})
                        assert first.is_error is True
                        assert Demo.connect_link(text(first)), text(first)
                    async with client(token) as http:
                        old = await http.post(
                            again.mcp_url,
                            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                            headers={"Accept": "application/json, text/event-stream"},
                        )
                        assert old.status_code == 401, old.text

                anyio.run(second)
            finally:
                stop(process)
