"""Access requests and just-in-time grants, driven by an MCP client we did
not write (the official Python SDK, `mcp` 2.x, protocol 2026-07-28) and by
gRPC through server reflection, against toolgate-demo (toolgated with a
seeded simulated Salesforce org, sfsim), loopback only.

The demo user's "Sales read-only" grant is revoked and the profile made
requestable (approval by an admin, at most an hour): tools/list then offers
its tools marked as requestable; calling one opens an access request
instead of running it (sfsim's API counter does not move); an admin
approves it for a few seconds; the client's `subscriptions/listen` stream
hears tools/list_changed; the call runs; the grant ends by itself, the
stream hears that too, and the next call opens a new request without
reaching sfsim."""

import time

import anyio
import grpc
import requests
from google.protobuf import json_format
from mcp import Client
from mcp.client.subscriptions import ToolsListChanged
from mcp.client.streamable_http import streamable_http_client

from test_grpc_automation import reflected_method
from test_mcp_sdk import GENEPOINT, GENEPOINT_ID, http_client, text

PROFILE = "Sales read-only"
# How long the admin grants the request for, seconds.
GRANT_SECS = 6


class Admin:
    """The demo's control API, every method found by reflection."""

    def __init__(self, demo):
        address, _, rest = demo.control_api.partition(" ")
        token_file = rest.removeprefix("(admin token in ").removesuffix(")")
        with open(token_file) as f:
            self.auth = [("authorization", f"Bearer {f.read().strip()}"), ("x-toolgate-actor", "python-ci")]
        self.channel = grpc.insecure_channel(address)

    def call(self, method: str, body: dict) -> dict:
        Request, rpc = reflected_method(self.channel, method)
        reply = rpc(json_format.ParseDict(body, Request()), metadata=self.auth)
        return json_format.MessageToDict(reply)

    def close(self):
        self.channel.close()


def sfsim_calls(demo) -> int:
    """REST calls sfsim has served (its API usage counter)."""
    state = requests.get(f"{demo.login_host}/_sfsim/state", timeout=30).json()
    return state["api_usage"]


def request_of(result) -> dict:
    """The access request in a call result's `_meta`."""
    assert result.meta, result
    return result.meta["toolgate/access_request"]


def test_request_approve_run_expire_with_the_python_sdk(demo):
    admin = Admin(demo)
    try:
        profiles = admin.call("toolgate.v1.AccessProfileService/ListAccessProfiles", {})["profiles"]
        profile = next(p for p in profiles if p["name"] == PROFILE)
        user_id = profile["grants"][0]["userId"]
        admin.call("toolgate.v1.AccessProfileService/RevokeUser", {"profileId": profile["id"], "userId": user_id})
        updated = admin.call(
            "toolgate.v1.AccessProfileService/UpdateAccessProfile",
            {"id": profile["id"], "obtain": "PROFILE_OBTAIN_REQUEST_WITH_APPROVAL", "maxRequestDurationSecs": "3600"},
        )["profile"]
        assert updated["obtain"] == "PROFILE_OBTAIN_REQUEST_WITH_APPROVAL"

        async def scenario():
            async with http_client(demo.token) as http, Client(
                streamable_http_client(demo.mcp_url, http_client=http), cache=None,
            ) as client:
                assert client.protocol_version == "2026-07-28"
                listed = (await client.list_tools()).tools
                query = next(t for t in listed if t.name == "salesforce_query")
                assert query.description.startswith("[Requestable] You do not have access to this tool yet."), query.description
                assert query.meta["toolgate/requestable"] == {
                    "profile_id": profile["id"], "profile": PROFILE, "approval": "admin", "max_duration_secs": 3600,
                }
                ask_tool = next(t for t in listed if t.name == "toolgate_request_access")
                assert PROFILE in ask_tool.description

                async with client.listen(tools_list_changed=True) as sub:
                    assert sub.honored.tools_list_changed is True

                    # The call opens a request; sfsim is not called.
                    before = await anyio.to_thread.run_sync(sfsim_calls, demo)
                    held = await client.call_tool("salesforce_query", {"soql": GENEPOINT})
                    assert held.is_error is True
                    opened = request_of(held)
                    assert opened["state"] == "PENDING" and opened["created"] is True
                    assert f"Access request {opened['id']} for access profile \"{PROFILE}\" opened" in text(held), text(held)
                    assert await anyio.to_thread.run_sync(sfsim_calls, demo) == before

                    pending = await anyio.to_thread.run_sync(
                        admin.call, "toolgate.v1.AccessRequestService/ListAccessRequests",
                        {"state": "ACCESS_REQUEST_STATE_PENDING"})
                    assert pending["pendingCount"] == 1
                    assert pending["requests"][0]["id"] == opened["id"]
                    assert pending["requests"][0]["tool"] == "salesforce_query"

                    # Approved for a few seconds: the stream hears it.
                    approved = await anyio.to_thread.run_sync(
                        admin.call, "toolgate.v1.AccessRequestService/ApproveAccessRequest",
                        {"id": opened["id"], "durationSecs": str(GRANT_SECS)})
                    assert approved["request"]["state"] == "ACCESS_REQUEST_STATE_APPROVED"
                    assert approved["request"]["grantedDurationSecs"] == str(GRANT_SECS)
                    with anyio.fail_after(20):
                        event = await sub.__anext__()
                    assert isinstance(event, ToolsListChanged), event
                    granted_at = time.monotonic()
                    relisted = (await client.list_tools()).tools
                    query = next(t for t in relisted if t.name == "salesforce_query")
                    assert not (query.meta or {}).get("toolgate/requestable"), query.meta

                    # The call runs (connecting Salesforce first).
                    first = await client.call_tool("salesforce_query", {"soql": GENEPOINT})
                    assert first.is_error is True
                    await anyio.to_thread.run_sync(demo.connect, demo.connect_link(text(first)))
                    found = await client.call_tool("salesforce_query", {"soql": GENEPOINT})
                    assert found.is_error is False, text(found)
                    assert found.structured_content["records"][0]["Id"] == GENEPOINT_ID
                    ran = await anyio.to_thread.run_sync(sfsim_calls, demo)
                    assert ran > before
                    assert time.monotonic() - granted_at < GRANT_SECS, "the machine was too slow for the grant"

                    # The grant ends by itself: the stream hears it, and the
                    # next call opens a new request without reaching sfsim.
                    with anyio.fail_after(GRANT_SECS + 20):
                        event = await sub.__anext__()
                    assert isinstance(event, ToolsListChanged), event
                    after = await client.call_tool("salesforce_query", {"soql": GENEPOINT})
                    assert after.is_error is True
                    again = request_of(after)
                    assert again["created"] is True and again["id"] != opened["id"]
                    assert await anyio.to_thread.run_sync(sfsim_calls, demo) == ran

        anyio.run(scenario)

        audit = admin.call("toolgate.v1.AuditService/ListEvents", {"actionPrefix": "access_request."})["events"]
        actions = sorted(e["action"] for e in audit)
        assert actions == ["access_request.approve", "access_request.create", "access_request.create"], actions
        approve = next(e for e in audit if e["action"] == "access_request.approve")
        assert approve["actor"] == "admin:python-ci", approve
    finally:
        admin.close()
