"""sfsim driven by a Salesforce client we did not write: simple-salesforce
logs in with a token from sfsim's OAuth flow (web-server flow with PKCE),
runs a query across several pages, and creates, updates and deletes a record.

simple-salesforce always builds https:// URLs; sfsim serves plain HTTP on
loopback, so the requests session maps https://<sfsim> to http://<sfsim>.
Everything else is the library's own code, including its default API
version (59.0), which sfsim serves as a real org does."""

import base64
import hashlib
import json
import os
import pathlib
import subprocess
import urllib.parse

import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceResourceNotFound

REPO = pathlib.Path(__file__).resolve().parents[2]


def sfsim_binary() -> str:
    target = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
    path = os.environ.get("SFSIM_BIN", str(pathlib.Path(target) / "debug" / "sfsim"))
    if not os.path.exists(path):
        raise RuntimeError(f"{path} not found: run `cargo build -p sfsim` first or set SFSIM_BIN")
    return path


@pytest.fixture
def sfsim():
    process = subprocess.Popen(
        [
            sfsim_binary(),
            "--login-addr", "127.0.0.1:0",
            "--instance-addr", "127.0.0.1:0",
            "--auto-consent",
            "--batch-size", "250",
            "--seed-accounts", "200",
            "--callback-url", "http://127.0.0.1:9/auth/callback",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    info = {}
    try:
        for line in process.stdout:
            key, _, value = line.strip().partition(":")
            info[key.strip()] = value.strip()
            if line.strip().startswith("test controls:"):
                break
        if "instance URL" not in info:
            raise RuntimeError(f"sfsim did not start: {info} {process.stderr.read()}")
        yield info
    finally:
        process.terminate()
        process.wait(timeout=30)


class LoopbackHttp(HTTPAdapter):
    """Sends https://<sfsim> requests to sfsim's plain-HTTP listener."""

    def send(self, request, **kwargs):
        request.url = "http://" + request.url[len("https://"):]
        return super().send(request, **kwargs)


def oauth_login(info, username):
    verifier = base64.urlsafe_b64encode(os.urandom(40)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    authorize = info["login host"] + "/services/oauth2/authorize?" + urllib.parse.urlencode({
        "response_type": "code",
        "client_id": info["consumer key"],
        "redirect_uri": info["callback URL"],
        "scope": "api refresh_token offline_access",
        "state": "xyz",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "login_hint": username,
    })
    redirect = requests.get(authorize, allow_redirects=False, timeout=30)
    assert redirect.status_code == 302, redirect.text
    query = urllib.parse.parse_qs(urllib.parse.urlparse(redirect.headers["Location"]).query)
    assert query["state"] == ["xyz"]
    token = requests.post(info["login host"] + "/services/oauth2/token", data={
        "grant_type": "authorization_code",
        "code": query["code"][0],
        "client_id": info["consumer key"],
        "client_secret": info["consumer secret"],
        "redirect_uri": info["callback URL"],
        "code_verifier": verifier,
    }, timeout=30)
    assert token.status_code == 200, token.text
    return token.json()


def test_simple_salesforce_queries_pages_and_writes(sfsim):
    token = oauth_login(sfsim, "ana.souza@acme-demo.example")
    instance = urllib.parse.urlparse(token["instance_url"])
    session = requests.Session()
    session.mount(f"https://{instance.netloc}", LoopbackHttp())
    sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=session)
    assert sf.sf_version == "59.0", "the library's own default, no pin"

    first = sf.query("SELECT Id, Name, Email FROM Contact ORDER BY Name")
    assert first["done"] is False
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/")
    assert first["records"][0]["attributes"]["url"].startswith("/services/data/v59.0/sobjects/Contact/")
    assert len(first["records"]) <= 250
    everything = sf.query_all("SELECT Id, Name, Email FROM Contact ORDER BY Name")
    assert everything["totalSize"] == 200 * 3 + 2
    assert len(everything["records"]) == everything["totalSize"]
    assert len({r["Id"] for r in everything["records"]}) == everything["totalSize"]
    state = requests.get(sfsim["login host"] + "/_sfsim/state", timeout=30).json()
    assert state["counters"]["query_more"] >= 2

    created = sf.Contact.create({"FirstName": "Zoë", "LastName": "O'Hara \\ Ström"})
    assert created["success"] is True
    contact_id = created["id"]
    assert sf.Contact.update(contact_id, {"Title": "Directrice"}) == 204
    record = sf.Contact.get(contact_id)
    assert record["Name"] == "Zoë O'Hara \\ Ström"
    assert record["Title"] == "Directrice"
    found = sf.query(
        "SELECT Id FROM Contact WHERE LastName = 'O\\'Hara \\\\ Ström'"
    )
    assert [r["Id"] for r in found["records"]] == [contact_id]
    assert sf.Contact.delete(contact_id) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.get(contact_id)


def test_simple_salesforce_reports_salesforce_errors(sfsim):
    token = oauth_login(sfsim, "ben.okafor@acme-demo.example")
    instance = urllib.parse.urlparse(token["instance_url"])
    session = requests.Session()
    session.mount(f"https://{instance.netloc}", LoopbackHttp())
    sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=session)
    from simple_salesforce.exceptions import SalesforceMalformedRequest
    with pytest.raises(SalesforceMalformedRequest) as read_only:
        sf.Account.create({"Name": "Not allowed"})
    assert read_only.value.content[0]["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    with pytest.raises(SalesforceMalformedRequest) as bad_field:
        sf.query("SELECT Id, Nme FROM Account")
    assert bad_field.value.content[0]["errorCode"] == "INVALID_FIELD"
