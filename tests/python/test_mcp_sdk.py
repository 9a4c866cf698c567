"""The MCP gateway driven by an MCP client we did not write: the official
Python SDK (`mcp` 2.x) over streamable HTTP, against toolgate-demo (toolgated
with a seeded simulated Salesforce org, sfsim), loopback only.

The core flow a user goes through: no token is refused (HTTP 401); with a
token, initialize and list the granted tools; the first Salesforce call
answers with a connect link (and a URL elicitation); the link is followed
through sfsim's login page like a browser would; the call then returns
records, pages with next_cursor, and Salesforce errors keep their code.

The same in the SDK's default mode (protocol 2026-07-28, stateless): the
connect prompt is an input_required result whose URL elicitation reaches the
elicitation callback, and the SDK's retry returns records; a
`client.listen(tools_list_changed=True)` stream hears an admin change."""

import anyio
import grpc
import httpx2
import pytest
import requests
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ToolsListChanged

from test_grpc_automation import reflected_method

GENEPOINT = "SELECT Id, Name FROM Account WHERE Name = 'GenePoint'"
GENEPOINT_ID = "0015g00000Q1aADAAZ"
# The demo approves the read tools and grants them ("Sales read-only"); the
# write and delete tools wait for review, so the demo user does not see them.
TOOLS = {
    "salesforce_list_objects", "salesforce_describe_object", "salesforce_query",
    "salesforce_search", "salesforce_get_record", "salesforce_list_recent",
    "salesforce_get_related_records", "salesforce_get_user_info", "salesforce_get_limits",
}


def http_client(token=None, statuses=None):
    """The httpx2 client the SDK's transport uses: the bearer header (the
    SDK's documented way to add headers) and a hook recording each HTTP
    status the SDK sees."""

    async def record(response):
        if statuses is not None:
            statuses.append(response.status_code)

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(30, read=60),
        event_hooks={"response": [record]},
    )


def text(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


@pytest.mark.parametrize("token", [None, "tgp_not-a-real-token"])
def test_no_or_wrong_token_is_refused_with_401(demo, token):
    statuses = []

    async def scenario():
        async with http_client(token, statuses) as http:
            with pytest.raises(Exception):
                async with Client(streamable_http_client(demo.mcp_url, http_client=http), mode="legacy"):
                    pass
        # The same request by hand: a challenge and a body that says what to do.
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"} if token else {}) as raw:
            refused = await raw.post(
                demo.mcp_url,
                headers={"Accept": "application/json, text/event-stream"},
                json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "pytest", "version": "1"}}},
            )
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith('Bearer realm="toolgate"')
        assert "Authorization: Bearer" in refused.text

    anyio.run(scenario)
    assert statuses and set(statuses) == {401}, statuses


def test_core_flow_with_the_python_sdk(demo):
    elicited = []
    elicitation_arrived = anyio.Event()

    async def on_elicitation(context, params):
        elicited.append(params)
        elicitation_arrived.set()
        return types.ElicitResult(action="decline")

    async def scenario():
        async with http_client(demo.token) as http, Client(
            streamable_http_client(demo.mcp_url, http_client=http),
            mode="legacy",  # the initialize handshake
            elicitation_callback=on_elicitation,  # declares form and URL elicitation
            cache=None,
        ) as client:
            # initialize
            assert client.protocol_version in ("2025-11-25", "2025-06-18")
            assert client.server_info.name == "toolgate"
            assert client.server_capabilities.tools.list_changed is True

            # tools/list: the demo user is granted the approved read tools.
            listed = await client.list_tools()
            assert listed.next_cursor is None
            names = {t.name for t in listed.tools}
            assert names == TOOLS
            query = next(t for t in listed.tools if t.name == "salesforce_query")
            assert query.annotations.read_only_hint is True
            assert query.output_schema["required"] == ["total_size", "done", "records"]
            assert "soql" in query.input_schema["properties"]

            # The first Salesforce call: a tool error with a connect link,
            # and the same link as a URL-mode elicitation.
            first = await client.call_tool("salesforce_query", {"soql": GENEPOINT})
            assert first.is_error is True
            prompt = text(first)
            assert prompt.startswith("Connect your Salesforce account to use salesforce_query"), prompt
            link = demo.connect_link(prompt)
            with anyio.fail_after(20):
                await elicitation_arrived.wait()
            assert elicited[0].mode == "url"
            assert "/connect/" in elicited[0].url

            # Bad arguments are refused by the schema, naming the field.
            bad = await client.call_tool("salesforce_get_record", {"object_name": "Account"})
            assert bad.is_error is True
            assert "record_id" in text(bad), text(bad)

            # The browser side, off the event loop: gateway -> sfsim login -> callback.
            await anyio.to_thread.run_sync(demo.connect, link)
            reused = await anyio.to_thread.run_sync(
                lambda: requests.get(link, allow_redirects=False, timeout=30))
            assert reused.status_code == 400, "a connect link works once"

            # The retried call returns the record, as structured content.
            found = await client.call_tool("salesforce_query", {"soql": GENEPOINT})
            assert found.is_error is False, text(found)
            records = found.structured_content["records"]
            assert len(records) == 1
            assert records[0]["Id"] == GENEPOINT_ID
            assert records[0]["Name"] == "GenePoint"
            assert records[0]["type"] == "Account"
            assert "attributes" not in records[0]
            assert GENEPOINT_ID in text(found)

            # Paging: next_cursor gives the next page, until there is none.
            page = await client.call_tool(
                "salesforce_query", {"soql": "SELECT Id, Name FROM Contact ORDER BY Name", "max_records": 100})
            assert page.is_error is False, text(page)
            total = page.structured_content["total_size"]
            assert total > 100
            first_page = [r["Id"] for r in page.structured_content["records"]]
            assert len(first_page) == 100
            cursor = page.structured_content["next_cursor"]
            assert cursor
            seen = list(first_page)
            for _ in range(total // 100 + 1):
                page = await client.call_tool("salesforce_query", {"cursor": cursor})
                assert page.is_error is False, text(page)
                seen += [r["Id"] for r in page.structured_content["records"]]
                cursor = page.structured_content.get("next_cursor")
                if not cursor:
                    break
            assert cursor is None
            assert len(seen) == total
            assert len(set(seen)) == total, "no record twice across pages"
            assert not set(first_page) & set(seen[100:]), "the second page is new records"

            # A Salesforce error keeps Salesforce's errorCode and message.
            wrong = await client.call_tool("salesforce_query", {"soql": "SELECT Id, Nme FROM Account"})
            assert wrong.is_error is True
            assert "INVALID_FIELD" in text(wrong), text(wrong)
            assert "Nme" in text(wrong), text(wrong)

    anyio.run(scenario)


def test_stateless_2026_07_28_with_the_python_sdk(demo):
    """The SDK's default mode probes server/discover and, as the gateway
    supports it, talks the stateless 2026-07-28 protocol."""

    async def scenario():
        async with http_client(demo.token) as http, Client(
            streamable_http_client(demo.mcp_url, http_client=http), cache=None,
        ) as client:
            assert client.protocol_version == "2026-07-28"
            listed = await client.list_tools()
            assert {t.name for t in listed.tools} == TOOLS
            first = await client.call_tool("salesforce_get_limits", {})
            assert first.is_error is True
            link = demo.connect_link(text(first))
            await anyio.to_thread.run_sync(demo.connect, link)
            found = await client.call_tool("salesforce_query", {"soql": GENEPOINT})
            assert found.is_error is False, text(found)
            assert found.structured_content["records"][0]["Id"] == GENEPOINT_ID

    anyio.run(scenario)


def set_traffic(demo, enabled: bool):
    """Flips the gateway's kill switch through the demo's control API (an
    admin change every user's tool list follows)."""
    address, _, rest = demo.control_api.partition(" ")
    token_file = rest.removeprefix("(admin token in ").removesuffix(")")
    with open(token_file) as f:
        auth = [("authorization", f"Bearer {f.read().strip()}")]
    with grpc.insecure_channel(address) as channel:
        Request, update = reflected_method(channel, "toolgate.v1.SettingsService/UpdateSettings")
        update(Request(mcp_traffic_enabled=enabled), metadata=auth)


def test_connect_prompt_in_default_mode_is_a_url_elicitation(demo):
    """2026-07-28: the first call's input_required carries the connect link
    as a URL elicitation; declined, the call ends with the text prompt;
    followed through sfsim and accepted, the SDK's retry returns records."""
    elicited = []
    follow = {"link": False}

    async def on_elicitation(context, params):
        elicited.append(params)
        if not follow["link"]:
            return types.ElicitResult(action="decline")
        await anyio.to_thread.run_sync(demo.connect, params.url)
        return types.ElicitResult(action="accept")

    async def scenario():
        async with http_client(demo.token) as http, Client(
            streamable_http_client(demo.mcp_url, http_client=http),
            elicitation_callback=on_elicitation,  # declares form and URL elicitation
        ) as client:
            assert client.protocol_version == "2026-07-28"
            declined = await client.call_tool("salesforce_query", {"soql": GENEPOINT})
            assert declined.is_error is True
            prompt = text(declined)
            assert prompt.startswith("Connect your Salesforce account to use salesforce_query"), prompt
            assert len(elicited) == 1
            assert elicited[0].mode == "url"
            assert elicited[0].message == "Connect your Salesforce account to use salesforce_query"
            assert demo.connect_link(prompt) == elicited[0].url

            follow["link"] = True
            found = await client.call_tool("salesforce_query", {"soql": GENEPOINT})
            assert found.is_error is False, text(found)
            assert found.structured_content["records"][0]["Id"] == GENEPOINT_ID
            assert len(elicited) == 2
            assert "/connect/" in elicited[1].url

            # Connected: the next call runs at once, nothing is elicited.
            again = await client.call_tool("salesforce_get_limits", {})
            assert again.is_error is False, text(again)
            assert len(elicited) == 2

    anyio.run(scenario)


def test_listen_in_default_mode_hears_tools_list_changed(demo):
    """2026-07-28: `client.listen(tools_list_changed=True)` is acknowledged
    for tools only, hears the kill switch flip, and the SDK's tools/list
    cache (ttlMs, cacheScope private) is evicted by the event."""

    async def scenario():
        async with http_client(demo.token) as http, Client(
            streamable_http_client(demo.mcp_url, http_client=http),
        ) as client:
            assert client.protocol_version == "2026-07-28"
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            async with client.listen(tools_list_changed=True, prompts_list_changed=True) as sub:
                assert sub.honored.tools_list_changed is True
                assert not sub.honored.prompts_list_changed
                await anyio.to_thread.run_sync(set_traffic, demo, False)
                with anyio.fail_after(20):
                    event = await sub.__anext__()
                assert isinstance(event, ToolsListChanged), event
                assert (await client.list_tools()).tools == []
                await anyio.to_thread.run_sync(set_traffic, demo, True)
                with anyio.fail_after(20):
                    event = await sub.__anext__()
                assert isinstance(event, ToolsListChanged), event
                assert {t.name for t in (await client.list_tools()).tools} == TOOLS

    anyio.run(scenario)
