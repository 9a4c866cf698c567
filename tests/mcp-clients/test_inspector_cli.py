"""The MCP Inspector CLI (@modelcontextprotocol/inspector 2.x, `--cli`,
under Node 22) against toolgate-demo: list the tools with the bearer header,
be refused without it, get the connect prompt on the first call, and, once
the Salesforce account is connected, get the record. Assertions are on the
Inspector's own JSON output (`--format json`)."""

import json
import pathlib
import subprocess

INSPECTOR = pathlib.Path(__file__).resolve().parent / "node_modules" / ".bin" / "mcp-inspector"

GENEPOINT = "SELECT Id, Name FROM Account WHERE Name = 'GenePoint'"
GENEPOINT_ID = "0015g00000Q1aADAAZ"


def inspector(node_env, demo, *args, token="demo"):
    token = demo.token if token == "demo" else token
    command = [str(INSPECTOR), "--cli", demo.mcp_url, "--transport", "http",
               "--format", "json", "--stored-auth-only"]
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    run = subprocess.run(command + list(args), env=node_env, capture_output=True, text=True, timeout=120)

    def envelope(stream):  # the one JSON object the CLI prints on stdout (result) or stderr (error)
        lines = [line for line in stream.splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else {}

    out = envelope(run.stdout) | envelope(run.stderr)
    assert out, f"no JSON from the inspector (exit {run.returncode}): {run.stdout} {run.stderr}"
    return run.returncode, out, run


def text(result):
    return "\n".join(c["text"] for c in result["content"] if c["type"] == "text")


def test_inspector_cli_lists_tools_and_calls_salesforce(node_env, demo):
    code, out, run = inspector(node_env, demo, "--method", "tools/list")
    assert code == 0, run.stderr
    tools = {t["name"]: t for t in out["result"]["tools"]}
    assert len(tools) == 9, "the demo grants the read tools only"
    assert "salesforce_delete_record" not in tools
    assert all(name.startswith("salesforce_") for name in tools)
    assert "salesforce_query" in tools
    assert tools["salesforce_query"]["annotations"]["readOnlyHint"] is True

    # No token: refused (401), and the CLI says so without trying a browser login.
    code, out, run = inspector(node_env, demo, "--method", "tools/list", token=None)
    assert code != 0
    assert "result" not in out
    assert out["error"]["code"] == "auth_required", run.stderr
    assert "missing access token" in out["error"]["message"]

    # The first call: a tool error with the connect link (the CLI exits 5 on isError).
    call = ["--method", "tools/call", "--tool-name", "salesforce_query", "--tool-arg", f"soql={GENEPOINT}"]
    code, out, run = inspector(node_env, demo, *call)
    assert code == 5, (code, run.stdout, run.stderr)
    assert out["error"]["code"] == "tool_is_error"
    assert out["result"]["isError"] is True
    prompt = text(out["result"])
    assert prompt.startswith("Connect your Salesforce account to use salesforce_query"), prompt
    demo.connect(demo.connect_link(prompt))

    # Connected: the same call returns the record.
    code, out, run = inspector(node_env, demo, *call)
    assert code == 0, (run.stdout, run.stderr)
    result = out["result"]
    assert result.get("isError") in (None, False)
    assert result["structuredContent"]["records"][0]["Id"] == GENEPOINT_ID
    assert result["structuredContent"]["records"][0]["Name"] == "GenePoint"

    # A Salesforce error keeps its code.
    code, out, run = inspector(node_env, demo, "--method", "tools/call", "--tool-name", "salesforce_query",
                               "--tool-args-json", '{"soql": "SELECT Id, Nme FROM Account"}')
    assert code == 5
    assert "INVALID_FIELD" in text(out["result"])
