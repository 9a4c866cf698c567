"""Approval of a single call, driven by an MCP client we did not write (the
official Python SDK) against toolgate-demo, with the rule and the decisions
made over gRPC by reflection (no generated toolgate code).

A call of a tool the rule names is held: the client is told it awaits
approval with the held call's id (on 2026-07-28, an input_required result
whose form elicitation reaches the SDK's elicitation callback, and the SDK's
retry runs the call once it is approved). The approved call runs exactly
once (sfsim's query counter proves it); a retry with changed arguments and a
second retry do not run."""

import anyio
import grpc
import requests
from google.protobuf import json_format
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client

from test_grpc_automation import reflected_method
from test_mcp_sdk import GENEPOINT, GENEPOINT_ID, http_client, text

OTHER = "SELECT Id, Name FROM Account WHERE Name = 'Burlington Textiles Corp of America'"


def admin(demo, method, request):
    """Calls `toolgate.v1.<method>` on the demo's control API with `request`
    (a dict in proto JSON form); returns the response as a dict."""
    address, _, rest = demo.control_api.partition(" ")
    token_file = rest.removeprefix("(admin token in ").removesuffix(")")
    with open(token_file) as f:
        auth = [("authorization", f"Bearer {f.read().strip()}")]
    with grpc.insecure_channel(address) as channel:
        Request, call = reflected_method(channel, f"toolgate.v1.{method}")
        reply = call(json_format.ParseDict(request, Request()), metadata=auth)
        return json_format.MessageToDict(reply)


def hold_queries(demo):
    """Every call of salesforce_query needs a person's approval."""
    admin(demo, "SettingsService/UpdateSettings", {"governance": {
        "showRequestableTools": True,
        "accessRequestTtlSecs": "604800",
        "heldCallTtlSecs": "3600",
        "callApproval": {"tools": ["salesforce_query"]},
        "auditVerbosity": "AUDIT_VERBOSITY_STANDARD",
    }})


def queries(demo) -> int:
    """Query requests sfsim has served."""
    state = requests.get(demo.login_host + "/_sfsim/state", timeout=30).json()
    return state["counters"].get("query", 0)


def pending(demo):
    return admin(demo, "HeldCallService/ListHeldCalls", {"state": "HELD_CALL_STATE_PENDING"}).get("heldCalls", [])


def held_id(result: types.CallToolResult) -> str:
    return result.meta["toolgate/held_call"]["id"]


def test_held_call_in_default_mode_is_input_required_and_runs_once_approved(demo):
    """2026-07-28: the held call's input_required form elicitation reaches
    the callback; the admin approves while the user waits, the user
    accepts, and the SDK's retry runs the call, once."""
    hold_queries(demo)
    asked = []
    plan = {"approve": True}

    async def on_elicitation(context, params):
        if params.mode == "url":  # the connect prompt
            await anyio.to_thread.run_sync(demo.connect, params.url)
            return types.ElicitResult(action="accept")
        asked.append(params.message)
        if not plan["approve"]:
            return types.ElicitResult(action="decline")
        waiting = await anyio.to_thread.run_sync(pending, demo)
        assert len(waiting) == 1, waiting
        call = await anyio.to_thread.run_sync(
            admin, demo, "HeldCallService/GetHeldCall", {"id": waiting[0]["id"]})
        held = call["heldCall"]
        # The admin sees the user, the tool and the arguments as they will be sent.
        assert held["tool"] == "salesforce_query"
        assert held["userEmail"]
        assert held["argumentsJson"] == '{"soql":"%s"}' % GENEPOINT
        assert held["id"] in params.message
        await anyio.to_thread.run_sync(
            admin, demo, "HeldCallService/ApproveHeldCall", {"id": held["id"]})
        return types.ElicitResult(action="accept")

    async def scenario():
        async with http_client(demo.token) as http, Client(
            streamable_http_client(demo.mcp_url, http_client=http),
            elicitation_callback=on_elicitation,  # declares form and URL elicitation
            cache=None,
        ) as client:
            assert client.protocol_version == "2026-07-28"
            connected = await client.call_tool("salesforce_get_limits", {})
            assert connected.is_error is False, text(connected)
            before = await anyio.to_thread.run_sync(queries, demo)

            found = await client.call_tool("salesforce_query", {"soql": GENEPOINT})
            assert found.is_error is False, text(found)
            assert found.structured_content["records"][0]["Id"] == GENEPOINT_ID
            assert len(asked) == 1, asked  # asked once: approved, accepted, and the retry ran
            assert await anyio.to_thread.run_sync(queries, demo) == before + 1

            # The same call again does not run on the used approval: the user
            # is told why and stops waiting.
            plan["approve"] = False
            again = await client.call_tool("salesforce_query", {"soql": GENEPOINT})
            assert again.is_error is True
            assert "was already used" in asked[-1], asked[-1]
            second = held_id(again)
            assert second in text(again)

            # Approved anew, a retry with changed arguments does not run on it.
            await anyio.to_thread.run_sync(admin, demo, "HeldCallService/ApproveHeldCall", {"id": second})
            changed = await client.call_tool("salesforce_query", {"soql": OTHER})
            assert changed.is_error is True
            assert f"the approval of held call {second} was for other arguments" in asked[-1], asked[-1]
            assert await anyio.to_thread.run_sync(queries, demo) == before + 1

            # The approved arguments run, without asking.
            count = len(asked)
            ran = await client.call_tool("salesforce_query", {"soql": GENEPOINT})
            assert ran.is_error is False, text(ran)
            assert len(asked) == count
            assert await anyio.to_thread.run_sync(queries, demo) == before + 2

    anyio.run(scenario)


def test_held_call_on_2025_11_25_is_a_tool_error_and_runs_once_approved(demo):
    """2025-11-25 (a session): the held call is a tool error naming the held
    call in its text and `_meta`; once approved, the retry with the same
    arguments runs once, a changed-argument retry is refused."""
    hold_queries(demo)

    async def scenario():
        async with http_client(demo.token) as http, Client(
            streamable_http_client(demo.mcp_url, http_client=http), mode="legacy", cache=None,
        ) as client:
            assert client.protocol_version == "2025-11-25"
            first = await client.call_tool("salesforce_get_limits", {})
            await anyio.to_thread.run_sync(demo.connect, demo.connect_link(text(first)))
            before = await anyio.to_thread.run_sync(queries, demo)

            held = await client.call_tool("salesforce_query", {"soql": GENEPOINT})
            assert held.is_error is True
            assert "needs an administrator's approval" in text(held), text(held)
            call_id = held_id(held)
            assert call_id in text(held)
            assert held.meta["toolgate/held_call"]["state"] == "PENDING"
            assert await anyio.to_thread.run_sync(queries, demo) == before

            approved = await anyio.to_thread.run_sync(
                admin, demo, "HeldCallService/ApproveHeldCall", {"id": call_id})
            assert approved["heldCall"]["state"] == "HELD_CALL_STATE_APPROVED"

            changed = await client.call_tool("salesforce_query", {"soql": OTHER})
            assert changed.is_error is True
            assert f"the approval of held call {call_id} was for other arguments" in text(changed)
            assert await anyio.to_thread.run_sync(queries, demo) == before

            ran = await client.call_tool("salesforce_query", {"soql": GENEPOINT})
            assert ran.is_error is False, text(ran)
            assert ran.structured_content["records"][0]["Id"] == GENEPOINT_ID
            assert await anyio.to_thread.run_sync(queries, demo) == before + 1

            again = await client.call_tool("salesforce_query", {"soql": GENEPOINT})
            assert again.is_error is True
            assert f"the approval of held call {call_id} was already used" in text(again)
            assert await anyio.to_thread.run_sync(queries, demo) == before + 1

            used = await anyio.to_thread.run_sync(admin, demo, "HeldCallService/GetHeldCall", {"id": call_id})
            assert used["heldCall"]["state"] == "HELD_CALL_STATE_USED"

    anyio.run(scenario)
