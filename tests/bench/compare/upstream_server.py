"""The minimal upstream MCP server the comparison puts behind ContextForge
(and measures on its own): one tool, `salesforce_query`, that runs a SOQL
query against sfsim's REST API with a fixed access token and answers the
records, the way a hand-written Salesforce MCP server would.

Built on the official Python MCP SDK (`mcp` 2.x, `MCPServer`), streamable
HTTP on 127.0.0.1, port 0 (the bound port is printed on the first stdout
line: `upstream ready: http://127.0.0.1:<port>/mcp`).

Environment: SFSIM_INSTANCE_URL (sfsim's instance URL), SFSIM_ACCESS_TOKEN
(a Salesforce access token for it), SFSIM_API_VERSION (default 66.0, the
version toolgate is registered with); UPSTREAM_ACCESS_LOG=1 logs each HTTP
request to stderr (off in measured runs). The token is never printed."""

import os
import socket
import sys

import httpx2
import uvicorn
from mcp.server.mcpserver import MCPServer

INSTANCE_URL = os.environ["SFSIM_INSTANCE_URL"].rstrip("/")
ACCESS_TOKEN = os.environ["SFSIM_ACCESS_TOKEN"]
API_VERSION = os.environ.get("SFSIM_API_VERSION", "66.0")

server = MCPServer("sfsim-upstream", log_level="WARNING")
# One client for the process: keep-alive connections to sfsim, as a
# long-running server would hold them.
_http: httpx2.AsyncClient | None = None


def http() -> httpx2.AsyncClient:
    global _http
    if _http is None:
        _http = httpx2.AsyncClient(
            base_url=INSTANCE_URL,
            headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
            timeout=30,
        )
    return _http


@server.tool()
async def salesforce_query(soql: str) -> dict:
    """Runs a SOQL query; answers total_size, done and the records (without
    Salesforce's `attributes`)."""
    response = await http().get(f"/services/data/v{API_VERSION}/query", params={"q": soql})
    if response.status_code != 200:
        # Salesforce's error body names the code and message; no token in it.
        raise ValueError(f"Salesforce answered {response.status_code}: {response.text}")
    body = response.json()
    records = [{k: v for k, v in r.items() if k != "attributes"} for r in body["records"]]
    return {"total_size": body["totalSize"], "done": body["done"], "records": records}


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    # Listening before the ready line: connections wait in the backlog until
    # uvicorn has started, instead of being refused.
    sock.listen(128)
    port = sock.getsockname()[1]
    app = server.streamable_http_app()
    access_log = os.environ.get("UPSTREAM_ACCESS_LOG") == "1"
    config = uvicorn.Config(app, log_level="info" if access_log else "warning", access_log=access_log)
    print(f"upstream ready: http://127.0.0.1:{port}/mcp", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
