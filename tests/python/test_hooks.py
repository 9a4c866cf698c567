"""Tool-call hooks driven by clients we did not write: the official MCP
Python SDK over streamable HTTP against toolgate-demo (toolgated with a
seeded sfsim org), and the admin side over gRPC by reflection (no generated
toolgate code). Covers PII redaction of results (the structured content, the
text and the audit log), a query over a denied object refused, and a webhook
(a Python http.server on 127.0.0.1:0 that checks the HMAC signature) that
denies a call."""

import hashlib
import hmac
import http.server
import json
import threading

import anyio
import grpc
from google.protobuf import json_format
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from test_grpc_automation import reflected_method
from test_mcp_sdk import http_client, text

SECRET = "python-webhook-secret-0123456789"
CONTACT_EMAIL = "rita.souza@edge.example"  # seeded contact Rita Souza


def admin_call(demo):
    """A function calling `toolgate.v1.<Service>/<Method>` on the demo's
    control API with its admin token, JSON in and out."""
    address, _, rest = demo.control_api.partition(" ")
    token_file = rest.removeprefix("(admin token in ").removesuffix(")")
    with open(token_file) as f:
        auth = [("authorization", f"Bearer {f.read().strip()}")]
    channel = grpc.insecure_channel(address)

    def call(method, body):
        Request, rpc = reflected_method(channel, method)
        reply = rpc(json_format.ParseDict(body, Request()), metadata=auth)
        return json_format.MessageToDict(reply)

    return channel, call


class Webhook:
    """A webhook receiver on 127.0.0.1:0 answering `decision`, recording
    each payload with whether its signature verified."""

    def __init__(self, decision):
        self.seen = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ts = self.headers["X-Toolgate-Timestamp"]
                mac = hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256)
                valid = hmac.compare_digest(
                    "sha256=" + mac.hexdigest(), self.headers["X-Toolgate-Signature"])
                outer.seen.append((valid, json.loads(body)))
                answer = json.dumps(decision).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_pii_redaction_query_scope_and_a_webhook_with_the_python_sdk(demo):
    channel, admin = admin_call(demo)
    with channel, Webhook({"decision": "deny", "reason": "records are read through reports"}) as hook:
        admin("toolgate.v1.HookService/CreateHook", {"hook": {
            "name": "redact emails", "phase": "HOOK_PHASE_AFTER", "enabled": True,
            "piiRedaction": {"fields": ["Email"], "patterns": ["PII_PATTERN_PHONE"]}}})
        admin("toolgate.v1.HookService/CreateHook", {"hook": {
            "name": "no leads", "phase": "HOOK_PHASE_BEFORE", "enabled": True,
            "queryScope": {"denyObjects": ["Lead"]}}})
        admin("toolgate.v1.HookService/CreateHook", {"hook": {
            "name": "review", "phase": "HOOK_PHASE_BEFORE", "enabled": True,
            "filter": {"tools": ["salesforce_get_record"]},
            "webhook": {"url": hook.url}}, "webhookSecret": SECRET})
        listed = admin("toolgate.v1.HookService/ListHooks", {})["hooks"]
        assert [h["name"] for h in listed] == ["no leads", "review", "redact emails"]
        assert SECRET not in json.dumps(listed)

        async def scenario():
            async with http_client(demo.token) as http, Client(
                streamable_http_client(demo.mcp_url, http_client=http), mode="legacy", cache=None,
            ) as client:
                first = await client.call_tool("salesforce_get_user_info", {})
                assert first.is_error is True
                await anyio.to_thread.run_sync(demo.connect, demo.connect_link(text(first)))

                # PII: the Email field is redacted in both forms of the result.
                found = await client.call_tool(
                    "salesforce_query",
                    {"soql": "SELECT Id, Name, Email FROM Contact WHERE LastName = 'Souza' LIMIT 5"})
                assert found.is_error is not True, text(found)
                records = found.structured_content["records"]
                rita = next(r for r in records if r["Name"] == "Rita Souza")
                assert rita["Email"] == "[REDACTED]"
                assert CONTACT_EMAIL not in text(found)
                assert "[REDACTED]" in text(found)

                # Query scope: a query over Lead is refused, naming the hook.
                leads = await client.call_tool(
                    "salesforce_query", {"soql": "SELECT Id, Name FROM Lead LIMIT 5"})
                assert leads.is_error is True
                assert text(leads).startswith(
                    'toolgate hook "no leads" refused this call: it touches Lead'), text(leads)

                # The webhook denies get_record with its reason.
                got = await client.call_tool(
                    "salesforce_get_record", {"object_name": "Account", "record_id": "0015g00000Q1aADAAZ"})
                assert got.is_error is True
                assert text(got) == 'toolgate hook "review" refused this call: records are read through reports'

        anyio.run(scenario)

        assert len(hook.seen) == 1
        valid, payload = hook.seen[0]
        assert valid, "the signature verifies with the shared secret"
        assert payload["phase"] == "before"
        assert payload["dry_run"] is False
        assert payload["tool"]["name"] == "salesforce_get_record"
        assert payload["arguments"]["record_id"] == "0015g00000Q1aADAAZ"

        events = admin("toolgate.v1.AuditService/ListEvents",
                       {"actionPrefix": "tool.call", "pageSize": 100})["events"]
        outcomes = [
            (h["name"], h["outcome"])
            for e in events
            for h in json.loads(e.get("detailsJson", "{}")).get("hooks", [])
        ]
        assert ("redact emails", "MUTATED") in outcomes
        assert ("no leads", "DENIED") in outcomes
        assert ("review", "DENIED") in outcomes
        assert all(CONTACT_EMAIL not in e.get("detailsJson", "") for e in events)
