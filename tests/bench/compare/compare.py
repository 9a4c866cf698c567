"""Side-by-side comparison of toolgate with other systems an operator could
pick, on one sfsim org and one query, in one run. Started by run.sh (which
installs the peers from PyPI and npm); not run by CI.

Systems, each called with the same client (the official Python MCP SDK,
`mcp` 2.x, in its legacy initialize mode) except the direct REST call:

  rest      GET /services/data/v66.0/query on sfsim (httpx2, keep-alive): the floor
  toolgate  release toolgated, set up through its control API like an admin
            would, the user connected to sfsim through sfsim's login page
  upstream  a minimal MCP server (upstream_server.py, Python SDK, streamable
            HTTP) whose one tool runs the query on sfsim's REST API
  cforge    IBM ContextForge (mcp-contextforge-gateway) fronting `upstream`,
            JWT auth on, SQLite store
  sf-npm    @tsmztech/mcp-server-salesforce over stdio, in its Salesforce_CLI
            connection mode, with a stand-in `sf` on its PATH
            (see the sf-npm step in `run`)

toolgate is measured first and again last (same daemon, new session), and
the ratios use the mean of its two rows. Per system: W warm-up calls, then N sequential calls (latency of each, p50
and p99), then a concurrent phase (C callers sharing one MCP session, N calls
in all; calls/s). CPU per call is the change in utime+stime (from
/proc/<pid>/stat, clock ticks) of the system's processes (the process and
its descendants) over the sequential phase, divided by N; sfsim's CPU per call
is given separately for every system, and so is the client's (this
process's) CPU per call, a large part of the latency of the MCP rows. RSS
is the system's processes' VmRSS after the sequential phase. For the HTTP
systems the client also counts the HTTP requests it sends per call. Every
answer is checked: the five Account names the direct REST call returns, in
order.

The printed table is what BENCHMARKS.md "Issue 17: against other systems"
records."""

import argparse
import contextlib
import json
import os
import pathlib
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import anyio
import grpc
import httpx2
import requests
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from mcp import Client, types
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

HERE = pathlib.Path(__file__).resolve().parent
SOQL = "SELECT Id, Name FROM Account ORDER BY Name LIMIT 5"
API_VERSION = "66.0"
SF_USER = "ana.souza@acme-demo.example"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- processes ---------------------------------------------------------------


def descendants(root: int) -> list[int]:
    """`root` and every live process below it (from /proc/*/stat ppid)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = pathlib.Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of `pids` (processes gone since are skipped), seconds."""
    ticks = 0
    for pid in pids:
        try:
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / CLK_TCK


def rss_mib(pids: list[int]) -> float:
    """Resident set size of `pids`, MiB (from /proc/<pid>/status VmRSS)."""
    kib = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kib += int(line.split()[1])
    return kib / 1024


class Proc:
    """A child process whose stdout lines are read until a ready line; its
    stderr goes to a log file shown if it fails."""

    def __init__(self, name, argv, env, logdir, cwd=None):
        self.name = name
        self.log = open(logdir / f"{name}.log", "w+")
        self.popen = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env, cwd=cwd,
            start_new_session=True,
        )

    def wait_line(self, predicate, timeout=120):
        """The first stdout line matching `predicate` (lines before it are
        returned too, as a list ending with it)."""
        deadline = time.monotonic() + timeout
        lines = []
        while time.monotonic() < deadline:
            line = self.popen.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if predicate(line):
                # The rest of its stdout goes to its log, so the pipe never
                # fills and blocks it.
                threading.Thread(target=self._drain, daemon=True).start()
                return lines
        self.fail(f"no ready line in {lines}")

    def _drain(self):
        for line in self.popen.stdout:
            with contextlib.suppress(ValueError):  # the log was closed at stop
                self.log.write(line)

    def fail(self, why):
        self.log.flush()
        self.log.seek(0)
        tail = self.log.read()[-4000:]
        raise RuntimeError(f"{self.name}: {why}\n--- {self.name} stderr ---\n{tail}")

    def stop(self):
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, 15)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, 9)
                self.popen.wait()
        self.log.close()


def free_port() -> int:
    """A free loopback port for a program that cannot listen on port 0 and
    say which port it got (ContextForge's CLI)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def password() -> str:
    """A throwaway password that passes ContextForge's strength checks."""
    return "Cf-" + secrets.token_urlsafe(18) + "-Z9"


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOOLGATE_", "SALESFORCE_", "SFSIM_"))}
    env.update(extra)
    return env


# --- sfsim --------------------------------------------------------------------


def start_sfsim(binary, tmp, callback_url) -> tuple[Proc, str, str, dict]:
    """sfsim on loopback port 0 with the demo users, 60 seeded Accounts (as
    toolgate-bench) and no daily API limit in reach; returns the process,
    login URL, instance URL and connected app."""
    app = {
        "consumer_key": "3MVG9sfsim.compare.consumer.key",
        "consumer_secret": "sfsim-compare-consumer-secret",
        "callback_url": callback_url,
    }
    config = tmp / "sfsim.toml"
    config.write_text(
        'login_addr = "127.0.0.1:0"\n'
        'instance_addr = "127.0.0.1:0"\n'
        "daily_api_limit = 1000000000000\n"
        "seed_accounts = 60\n"
        "[connected_app]\n"
        + "".join(f'{k} = "{v}"\n' for k, v in app.items())
    )
    proc = Proc("sfsim", [binary, "--config", str(config)], clean_env(), tmp)
    lines = proc.wait_line(lambda l: "records seeded" in l)
    info = {l.split(":", 1)[0].strip(): l.split(":", 1)[1].strip() for l in lines if ":" in l}
    return proc, info["login host"], info["instance URL"], app


def location(response) -> str:
    if "location" not in response.headers:
        raise RuntimeError(f"expected a redirect, got {response.status_code}: {response.text[:300]}")
    return response.headers["location"]


def direct_token(login_url, app) -> tuple[str, str]:
    """A Salesforce access token and instance URL for SF_USER through
    sfsim's web-server flow and token endpoint (what the direct call, the
    upstream server and the npm server call with)."""
    http = requests.Session()
    back = http.post(
        f"{login_url}/services/oauth2/authorize",
        data={"response_type": "code", "client_id": app["consumer_key"],
              "redirect_uri": app["callback_url"], "username": SF_USER, "action": "allow"},
        allow_redirects=False, timeout=30,
    )
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(location(back)).query))
    token = http.post(
        f"{login_url}/services/oauth2/token",
        data={"grant_type": "authorization_code", "code": query["code"],
              "client_id": app["consumer_key"], "client_secret": app["consumer_secret"],
              "redirect_uri": app["callback_url"]},
        timeout=30,
    )
    token.raise_for_status()
    body = token.json()
    return body["access_token"], body["instance_url"]


# --- toolgate -----------------------------------------------------------------


class Control:
    """toolgate's control API through gRPC server reflection (no generated
    code): `call("toolgate.v1.UserService/CreateUser", {...})`."""

    def __init__(self, address, admin_token):
        self.channel = grpc.insecure_channel(address)
        self.pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(self.channel))
        self.metadata = [("authorization", f"Bearer {admin_token}"), ("x-toolgate-actor", "compare")]

    def call(self, full_method, body):
        service, method = full_method.split("/")
        desc = self.pool.FindServiceByName(service).FindMethodByName(method)
        request_class = message_factory.GetMessageClass(desc.input_type)
        response_class = message_factory.GetMessageClass(desc.output_type)
        stub = self.channel.unary_unary(
            f"/{service}/{method}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        reply = stub(json_format.ParseDict(body, request_class()), metadata=self.metadata, timeout=30)
        return json_format.MessageToDict(reply, preserving_proto_field_name=True)


def setup_toolgate(control, login_url, app) -> str:
    """As toolgate-bench does: per-user limits out of the load's reach, the
    sfsim org registered (My Domain, tools auto-approved) with its connected
    app, one user granted the server's approved tools; returns its MCP token."""
    control.call("toolgate.v1.SettingsService/UpdateSettings", {"limits": {
        "per_user": {"rate": {"calls_per_minute": 1_000_000, "burst": 100_000}, "max_concurrent": 0},
        "org_api_usage_max_percent": 0,
    }})
    server = control.call("toolgate.v1.ServerService/RegisterServer", {
        "catalog_kind": "salesforce", "name": "compare sfsim", "tool_prefix": "salesforce",
        "login_host": {"kind": "LOGIN_HOST_KIND_MY_DOMAIN", "url": login_url},
        "api_version": API_VERSION, "tool_enablement": "TOOL_ENABLEMENT_AUTO_APPROVE",
    })["server"]
    control.call("toolgate.v1.ServerService/ConfigureAuthentication", {
        "server_id": server["id"], "client_id": app["consumer_key"], "client_secret": app["consumer_secret"],
    })
    toolsets = control.call("toolgate.v1.ToolsetService/ListToolsets", {"server_id": server["id"]})["toolsets"]
    toolset = next(t for t in toolsets if t.get("kind") == "TOOLSET_KIND_ALL_APPROVED")
    user = control.call("toolgate.v1.UserService/CreateUser", {
        "email": "compare@bench.example", "display_name": "compare"})["user"]
    profile = control.call("toolgate.v1.AccessProfileService/CreateAccessProfile", {
        "name": "compare", "toolset_ids": [toolset["id"]]})["profile"]
    control.call("toolgate.v1.AccessProfileService/GrantUser", {"profile_id": profile["id"], "user_id": user["id"]})
    return control.call("toolgate.v1.UserService/IssueToken", {"user_id": user["id"], "name": "compare"})["secret"]


def connect_link(text: str) -> str:
    links = [w.rstrip(",.") for w in text.split() if "/connect/" in w]
    if len(links) != 1:
        raise RuntimeError(f"expected one connect link in: {text}")
    return links[0]


def follow_connect(link, login_url, username=SF_USER):
    """Follows a toolgate connect link through sfsim's login page as a
    browser would (allow), ending at toolgate's /auth/callback."""
    http = requests.Session()
    authorize = location(http.post(link, allow_redirects=False, timeout=30))
    params = urllib.parse.parse_qsl(urllib.parse.urlparse(authorize).query)
    back = http.post(f"{login_url}/services/oauth2/authorize",
                     data=params + [("username", username), ("action", "allow")],
                     allow_redirects=False, timeout=30)
    done = http.get(location(back), allow_redirects=False, timeout=30)
    if done.status_code != 200:
        raise RuntimeError(f"connect callback answered {done.status_code}: {done.text[:300]}")


# --- ContextForge -------------------------------------------------------------


def start_contextforge(bin_dir, tmp, upstream_url) -> tuple[Proc, str, str, str]:
    """ContextForge on a free loopback port with a SQLite database in `tmp`,
    JWT auth on (a token made with its own create_jwt_token), the upstream
    registered as a streamable-HTTP gateway; returns the process, its MCP
    URL, the bearer token and the federated tool's name."""
    port = free_port()
    # Its strength check wants 32+ characters of high entropy.
    secret = secrets.token_urlsafe(48)
    env = clean_env(
        HOST="127.0.0.1", PORT=str(port),
        DATABASE_URL=f"sqlite:///{tmp}/contextforge.db",
        JWT_SECRET_KEY=secret, AUTH_ENCRYPTION_SECRET=secrets.token_urlsafe(48),
        BASIC_AUTH_PASSWORD=password(),
        PLATFORM_ADMIN_EMAIL="admin@example.com", PLATFORM_ADMIN_PASSWORD=password(),
        DEFAULT_USER_PASSWORD=password(),
        MCPGATEWAY_UI_ENABLED="false", MCPGATEWAY_ADMIN_API_ENABLED="true",
        LOG_LEVEL="ERROR", ENVIRONMENT="development",
        SSRF_ALLOW_LOCALHOST="true",  # its SSRF protection stays on; the upstream is on loopback
        OBSERVABILITY_ENABLED="false",
        # Rate limits out of the load's reach, as for toolgate (defaults: 100
        # tool calls a minute); no Redis here, so its in-process limiter.
        TOOL_RATE_LIMIT="1000000", RATE_LIMIT_MEDIUM_RPM="1000000", RATE_LIMIT_MEDIUM_BURST="100000",
        RATE_LIMITING_REDIS_ENABLED="false",
    )
    proc = Proc("contextforge", [str(bin_dir / "mcpgateway"), "--host", "127.0.0.1", "--port", str(port)],
                env, tmp, cwd=tmp)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        if proc.popen.poll() is not None:
            proc.fail("exited")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{base}/health", timeout=2).status_code == 200:
                break
        if time.monotonic() > deadline:
            proc.fail("no /health in 180 s")
        time.sleep(0.5)
    token = subprocess.run(
        [str(bin_dir / "python"), "-m", "mcpgateway.utils.create_jwt_token",
         "--username", "admin@example.com", "--exp", "120", "--secret", secret, "--admin"],
        env=env, capture_output=True, text=True, check=True, cwd=tmp,
    ).stdout.strip().splitlines()[-1]
    auth = {"Authorization": f"Bearer {token}"}
    gateway = requests.post(f"{base}/gateways", headers=auth, timeout=60, json={
        "name": "sfsim-upstream", "url": upstream_url, "transport": "STREAMABLEHTTP"})
    if gateway.status_code not in (200, 201):
        proc.fail(f"POST /gateways: {gateway.status_code} {gateway.text[:500]}")
    tools = requests.get(f"{base}/tools", headers=auth, timeout=30).json()
    if isinstance(tools, dict):
        tools = tools.get("items") or tools.get("tools") or []
    names = [t["name"] for t in tools if "salesforce" in t["name"].replace("-", "_")]
    if len(names) != 1:
        proc.fail(f"expected the upstream's one tool, got {[t.get('name') for t in tools]}")
    return proc, f"{base}/mcp", token, names[0]


# --- measurement ----------------------------------------------------------------


def answer_text(result) -> str:
    if isinstance(result, types.CallToolResult):
        if result.is_error:
            raise RuntimeError(f"tool error: {result.content}")
        parts = [c.text for c in result.content if isinstance(c, types.TextContent)]
        if result.structured_content is not None:
            parts.append(json.dumps(result.structured_content, ensure_ascii=False))
        return "\n".join(parts)
    return result


def check(answer: str, expected: list[str], system: str):
    """The five Account names, in order, somewhere in the answer."""
    at = 0
    for name in expected:
        found = answer.find(name, at)
        if found < 0:
            raise RuntimeError(f"{system}: {name!r} missing or out of order in the answer: {answer[:600]}")
        at = found + len(name)


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fail_on_tool_error(system, result):
    """Raises if `result` is an MCP tool error."""
    if isinstance(result, types.CallToolResult) and result.is_error:
        raise RuntimeError(f"{system}: tool error during the run: {result.content}")


async def measure(system, call, roots, sfsim_pid, expected, n, warmup, concurrency, requests_seen=None):
    """One system's row: `call()` makes one call; `roots` names the
    system's processes (their descendants count too); `requests_seen` is
    the HTTP request counter of `mcp_http`, if any."""
    check(answer_text(await call()), expected, system)
    for _ in range(warmup):
        fail_on_tool_error(system, await call())
    trees = {name: descendants(pid) for name, pid in (roots or {}).items()}
    procs = [pid for tree in trees.values() for pid in tree]
    before = {name: cpu_seconds(tree) for name, tree in trees.items()}
    cpu0, sim0 = cpu_seconds(procs), cpu_seconds([sfsim_pid])
    me0 = cpu_seconds([os.getpid()])
    sent0 = requests_seen[0] if requests_seen else None
    latencies = []
    for _ in range(n):
        start = time.perf_counter()
        result = await call()
        latencies.append(time.perf_counter() - start)
        fail_on_tool_error(system, result)
    cpu1, sim1 = cpu_seconds(procs), cpu_seconds([sfsim_pid])
    me1 = cpu_seconds([os.getpid()])
    sent = (requests_seen[0] - sent0) / n if requests_seen else None
    parts = {name: (cpu_seconds(tree) - before[name]) / n * 1e6 for name, tree in trees.items()}
    rss = rss_mib(procs) if procs else None
    concurrent = None
    if concurrency > 1:
        per = max(1, n // concurrency)

        async def worker():
            for _ in range(per):
                fail_on_tool_error(system, await call())

        start = time.perf_counter()
        async with anyio.create_task_group() as group:
            for _ in range(concurrency):
                group.start_soon(worker)
        concurrent = per * concurrency / (time.perf_counter() - start)
    check(answer_text(await call()), expected, system)
    return {
        "system": system,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": pct(latencies, 0.99) * 1000,
        "cpu_us": (cpu1 - cpu0) / n * 1e6 if procs else None,
        "sfsim_cpu_us": (sim1 - sim0) / n * 1e6,
        "client_cpu_us": (me1 - me0) / n * 1e6,
        "rss_mib": rss,
        "concurrent_per_s": concurrent,
        "http_requests_per_call": sent,
        "parts": parts if len(parts) > 1 else {},
    }


@contextlib.asynccontextmanager
async def mcp_http(url, token):
    """An MCP client session (legacy initialize handshake) over streamable
    HTTP, and a one-item list counting the HTTP requests it sends."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    sent = [0]

    async def count(_request):
        sent[0] += 1

    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60),
                                  event_hooks={"request": [count]}) as http, Client(
        streamable_http_client(url, http_client=http), mode="legacy", cache=None,
    ) as client:
        yield client, sent


def progress(row) -> str:
    return (f"{row['system']}: p50 {fmt(row['p50_ms'])} ms, p99 {fmt(row['p99_ms'])} ms, "
            f"CPU {fmt(row['cpu_us'], 0)} µs/call")


def fmt(v, digits=2):
    return "—" if v is None else f"{v:,.{digits}f}"


def ratio(v, base):
    return "—" if v is None or not base else f"{v / base:.1f}x"


def toolgate_base(rows):
    """The ratios' base: the mean of toolgate's rows (measured first and
    again last, so drift in the machine's load shows), or None."""
    ours = [r for r in rows if r["system"].startswith("toolgate")]
    if not ours:
        return None
    return {key: statistics.mean(r[key] for r in ours) for key in ("p50_ms", "p99_ms", "cpu_us")}


def table(rows, args):
    tg = toolgate_base(rows)
    out = [
        f"N={args.calls} sequential calls after {args.warmup} warm-up, then {args.concurrency} callers "
        f"sharing one session ({args.calls} calls); CPU from /proc/<pid>/stat at {CLK_TCK} ticks/s; "
        "ratios against the mean of toolgate's rows",
        "",
        "| system | p50 ms | p99 ms | CPU µs/call | sfsim CPU µs/call | client CPU µs/call | RSS MiB | calls/s, "
        f"{args.concurrency} at once | HTTP requests/call | p50 vs toolgate | p99 vs toolgate | CPU vs toolgate |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['system']} | {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | {fmt(r['cpu_us'], 0)} | "
            f"{fmt(r['sfsim_cpu_us'], 0)} | {fmt(r['client_cpu_us'], 0)} | {fmt(r['rss_mib'], 0)} | {fmt(r['concurrent_per_s'], 0)} | "
            f"{fmt(r['http_requests_per_call'], 1)} | "
            f"{ratio(r['p50_ms'], tg and tg['p50_ms'])} | {ratio(r['p99_ms'], tg and tg['p99_ms'])} | "
            f"{ratio(r['cpu_us'], tg and tg['cpu_us'])} |"
        )
    for r in rows:
        if r["parts"]:
            split = ", ".join(f"{name} {us:,.0f}" for name, us in r["parts"].items())
            out.append(f"\n{r['system']}: CPU µs/call by process: {split}")
    return "\n".join(out)


async def run(args, tmp: pathlib.Path):
    procs: list[Proc] = []
    rows = []
    try:
        # toolgated first (port 0), so sfsim's callback URL names its port.
        toolgated = Proc("toolgated", [
            args.toolgated, "--data-dir", str(tmp / "toolgate-data"),
            "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
            "--log-level", "warn",
        ], clean_env(), tmp)
        procs.append(toolgated)
        ready = toolgated.wait_line(lambda l: l.startswith("toolgated ready:"))[-1]
        fields = dict(w.split("=", 1) for w in ready.split()[2:])
        public_url = fields["public_url"]
        admin_token = (tmp / "toolgate-data" / "admin.token").read_text().strip()

        sfsim, login_url, instance_url, app = start_sfsim(args.sfsim, tmp, f"{public_url}/auth/callback")
        procs.append(sfsim)
        sfsim_pid = sfsim.popen.pid
        access_token, instance = direct_token(login_url, app)
        assert instance == instance_url, (instance, instance_url)

        # The floor: the query straight to sfsim's REST API.
        rest = httpx2.AsyncClient(base_url=instance_url, headers={"Authorization": f"Bearer {access_token}"})
        query_path = f"/services/data/v{API_VERSION}/query"

        async def rest_call():
            response = await rest.get(query_path, params={"q": SOQL})
            response.raise_for_status()
            return response.text

        body = json.loads(await rest_call())
        expected = [r["Name"] for r in body["records"]]
        if len(expected) != 5:
            raise RuntimeError(f"sfsim answered {len(expected)} records, expected 5")
        systems = args.systems

        if "rest" in systems:
            rows.append(await measure("rest (direct sfsim)", rest_call, None, sfsim_pid, expected,
                                      args.calls, args.warmup, args.concurrency))
            print(progress(rows[-1]), flush=True)

        async def measure_toolgate(label):
            async with mcp_http(f"{public_url}/mcp", mcp_token) as (client, sent):
                rows.append(await measure(
                    label, lambda: client.call_tool("salesforce_query", {"soql": SOQL}),
                    {"toolgated": toolgated.popen.pid}, sfsim_pid, expected, args.calls, args.warmup,
                    args.concurrency, sent))
            print(progress(rows[-1]), flush=True)

        if "toolgate" in systems:
            mcp_token = setup_toolgate(Control(fields["grpc"], admin_token), login_url, app)
            # The first call asks the user to connect Salesforce; connect.
            async with mcp_http(f"{public_url}/mcp", mcp_token) as (client, _):
                prompt = await client.call_tool("salesforce_query", {"soql": SOQL})
                link = connect_link("\n".join(c.text for c in prompt.content if isinstance(c, types.TextContent)))
                await anyio.to_thread.run_sync(follow_connect, link, login_url)
            await measure_toolgate("toolgate")

        upstream = None
        if {"upstream", "cforge"} & set(systems):
            upstream = Proc("upstream", [sys.executable, str(HERE / "upstream_server.py")], clean_env(
                SFSIM_INSTANCE_URL=instance_url, SFSIM_ACCESS_TOKEN=access_token, SFSIM_API_VERSION=API_VERSION,
            ), tmp)
            procs.append(upstream)
            upstream_url = upstream.wait_line(lambda l: l.startswith("upstream ready:"))[-1].split()[-1]

        if "upstream" in systems:
            async with mcp_http(upstream_url, None) as (client, sent):
                rows.append(await measure(
                    "upstream MCP server (Python SDK)",
                    lambda: client.call_tool("salesforce_query", {"soql": SOQL}),
                    {"upstream": upstream.popen.pid}, sfsim_pid, expected, args.calls, args.warmup,
                    args.concurrency, sent))
            print(progress(rows[-1]), flush=True)

        if "cforge" in systems:
            cf, cf_url, cf_token, cf_tool = start_contextforge(pathlib.Path(args.contextforge_bin), tmp, upstream_url)
            procs.append(cf)
            async with mcp_http(cf_url, cf_token) as (client, sent):
                cf_row = await measure(
                    "ContextForge + upstream", lambda: client.call_tool(cf_tool, {"soql": SOQL}),
                    {"ContextForge": cf.popen.pid, "upstream": upstream.popen.pid},
                    sfsim_pid, expected, args.calls, args.warmup, args.concurrency, sent)
            rows.append(cf_row)
            print(progress(rows[-1]), flush=True)
            cf.stop()

        if "sf-npm" in systems:
            # The server authenticates on every tool call; in Salesforce_CLI
            # mode it runs `sf org display --json`. This stand-in for the sf
            # CLI prints what that command prints for an org logged in with
            # the token above (the real CLI cannot log in to an http://
            # loopback org); nothing in the server is patched.
            shim = tmp / "sf-shim"
            shim.mkdir()
            (shim / "org.json").write_text(json.dumps({"status": 0, "result": {
                "accessToken": access_token, "instanceUrl": instance_url, "username": SF_USER, "alias": "sfsim"}}))
            (shim / "sf").write_text(f'#!/bin/sh\nexec cat "{shim}/org.json"\n')
            (shim / "sf").chmod(0o700)
            env = clean_env(SALESFORCE_CONNECTION_TYPE="Salesforce_CLI")
            env["PATH"] = f"{shim}:{env['PATH']}"
            server = StdioServerParameters(command=args.node, args=[args.sf_npm_entry], env=env, cwd=str(tmp))
            # Its stderr (which echoes the sf CLI's answer, token included)
            # goes to a file in the temp directory, not the terminal.
            with open(tmp / "sf-npm.stderr.log", "w") as errlog:
                async with Client(stdio_client(server, errlog=errlog), mode="legacy", cache=None) as client:
                    node_pid = next(p for p in descendants(os.getpid())[1:]
                                    if args.sf_npm_entry in pathlib.Path(f"/proc/{p}/cmdline").read_text())
                    call_args = {"objectName": "Account", "fields": ["Id", "Name"], "orderBy": "Name", "limit": 5}
                    rows.append(await measure(
                        "@tsmztech/mcp-server-salesforce (stdio)",
                        lambda: client.call_tool("salesforce_query_records", call_args),
                        {"node": node_pid}, sfsim_pid, expected, args.calls, args.warmup, args.concurrency))
            print(progress(rows[-1]), flush=True)
        if "toolgate" in systems and len(rows) > 2:
            # Again last, on the same daemon (a new session): the load on a
            # shared machine drifts over a run, and this shows by how much.
            await measure_toolgate("toolgate (again, last)")
        await rest.aclose()
    finally:
        for proc in reversed(procs):
            proc.stop()
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--toolgated", required=True)
    parser.add_argument("--sfsim", required=True)
    parser.add_argument("--contextforge-bin", help="bin/ of the venv holding mcp-contextforge-gateway")
    parser.add_argument("--node", default=shutil.which("node"))
    parser.add_argument("--sf-npm-entry", help="dist/index.js of @tsmztech/mcp-server-salesforce")
    parser.add_argument("--calls", type=int, default=500, help="sequential calls per system (default 500)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4, help="callers in the concurrent phase (1: none)")
    parser.add_argument("--systems", default="rest,toolgate,upstream,cforge,sf-npm",
                        type=lambda s: [x for x in s.split(",") if x])
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (logs)")
    args = parser.parse_args()
    if args.calls < 1 or args.warmup < 0 or args.concurrency < 1:
        parser.error("--calls must be at least 1, --warmup at least 0, --concurrency at least 1")
    known = {"rest", "toolgate", "upstream", "cforge", "sf-npm"}
    if set(args.systems) - known:
        parser.error(f"unknown systems {sorted(set(args.systems) - known)}; known: {sorted(known)}")
    if "cforge" in args.systems and not args.contextforge_bin:
        parser.error("--contextforge-bin is needed for cforge")
    if "sf-npm" in args.systems and not args.sf_npm_entry:
        parser.error("--sf-npm-entry is needed for sf-npm")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="toolgate-compare-"))
    try:
        rows = anyio.run(run, args, tmp)
    except BaseException:
        print(f"logs kept in {tmp}", file=sys.stderr)
        raise
    print()
    print(table(rows, args))
    if args.keep:
        print(f"logs in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
