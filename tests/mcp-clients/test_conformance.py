"""The official MCP conformance suite (@modelcontextprotocol/conformance,
server mode) against toolgate-demo, once per protocol
version toolgate serves: 2025-11-25 (sessions) and 2026-07-28 (stateless),
`--spec-version` selecting the scenarios that apply to each.

The suite's server mode takes only `--url` and cannot send headers
(modelcontextprotocol/conformance issue #453), and toolgate refuses every
MCP request without a token. So the suite talks to token-proxy.mjs, a
loopback proxy that adds `Authorization: Bearer <demo token>` and forwards
everything else verbatim (Host and Origin included, so the DNS-rebinding
scenario still reaches the gateway's own checks).

Every scenario must pass except those in conformance-expected-failures.txt
(scenarios that need the suite's fixture tools, resources or prompts),
listed under the version they fail on; an unexpected failure fails the
test, and so does a listed scenario that passes (stale entry)."""

import json
import pathlib
import re
import subprocess
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
CONFORMANCE = HERE / "node_modules" / ".bin" / "conformance"
EXPECTED = HERE / "conformance-expected-failures.txt"
# The protocol versions the suite runs at, with the scenarios toolgate must
# pass for real at each (not only "not in the baseline").
MUST_PASS = {
    "2025-11-25": {"server-initialize", "ping", "tools-list", "server-sse-multiple-streams", "dns-rebinding-protection"},
    "2026-07-28": {"tools-list", "http-header-validation", "dns-rebinding-protection", "server-sse-multiple-streams",
                   "input-required-result-unsupported-methods", "input-required-result-ignore-extra-params"},
}
# The suite's scenario set at each version: 0.2.0-alpha.12 keeps most
# 2026-07-28 scenarios (server-stateless, caching, header validation,
# input_required) in its draft set, which "all" includes.
SUITE = {"2025-11-25": "active", "2026-07-28": "all"}
# The fewest scenarios the suite runs at each version.
AT_LEAST = {"2025-11-25": 30, "2026-07-28": 35}


def expected_failures():
    """version -> {scenario: reason}, from the `[version]` sections of
    conformance-expected-failures.txt."""
    expected = {version: {} for version in MUST_PASS}
    section = None
    for number, line in enumerate(EXPECTED.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if header := re.fullmatch(r"\[(\d{4}-\d\d-\d\d)\]", line.strip()):
            section = expected[header.group(1)]
            continue
        scenario, sep, reason = line.partition(" # ")
        assert section is not None, f"{EXPECTED}:{number}: a scenario before any [version] section"
        assert sep and re.fullmatch(r"[a-z0-9-]+", scenario) and reason.strip(), f"{EXPECTED}:{number}: {line!r}"
        assert scenario not in section, f"{EXPECTED}:{number}: {scenario} listed twice"
        section[scenario] = reason.strip()
    return expected


def outcomes(results_dir):
    """scenario -> list of failed checks, from the suite's checks.json files.
    A scenario fails on a FAILURE or WARNING check, as the suite's own
    baseline logic counts it."""
    found = {}
    for checks in sorted(results_dir.glob("server-*/checks.json")):
        scenario = re.fullmatch(r"server-(.+)-\d{4}-\d\d-\d\dT[\d-]+Z", checks.parent.name).group(1)
        bad = [c for c in json.loads(checks.read_text()) if c["status"] in ("FAILURE", "WARNING")]
        found[scenario] = [f"{c['id']}: {c.get('errorMessage') or c.get('description')}" for c in bad]
    return found


def test_conformance_suite_against_the_gateway(node_env, demo):
    expected = expected_failures()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)

        # Straight at the gateway, the suite cannot even initialize: it sends no token.
        direct = subprocess.run(
            [str(CONFORMANCE), "server", "--url", demo.mcp_url, "--scenario", "server-initialize",
             "-o", str(tmp / "direct")],
            env=node_env, cwd=tmp, capture_output=True, text=True, timeout=300)
        assert direct.returncode != 0
        assert outcomes(tmp / "direct").get("server-initialize"), direct.stdout

        proxy = subprocess.Popen(
            ["node", str(HERE / "token-proxy.mjs")],
            env=dict(node_env, TARGET=demo.base_url, MCP_TOKEN=demo.token),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            ready = proxy.stdout.readline()
            assert ready.startswith("listening http://127.0.0.1:"), ready
            proxy_url = ready.split()[1]
            runs = {}
            for version, listed in expected.items():
                baseline = tmp / f"baseline-{version}.yml"
                baseline.write_text("server:\n" + "".join(f"  - {s}\n" for s in sorted(listed)))
                runs[version] = subprocess.run(
                    [str(CONFORMANCE), "server", "--url", f"{proxy_url}/mcp", "--suite", SUITE[version],
                     "--spec-version", version, "--expected-failures", str(baseline),
                     "-o", str(tmp / "results" / version)],
                    env=node_env, cwd=tmp, capture_output=True, text=True, timeout=600)
        finally:
            proxy.terminate()
            proxy.wait(timeout=30)

        for version, run in runs.items():
            listed = expected[version]
            found = outcomes(tmp / "results" / version)
            summary = run.stdout[run.stdout.find("=== SUMMARY ==="):]
            print(f"--- {version}\n{summary}")
            failed = {s for s, bad in found.items() if bad}
            unexpected = {s: found[s] for s in failed - set(listed)}
            stale = set(listed) - failed
            assert len(found) >= AT_LEAST[version], f"{version}: the suite ran only {sorted(found)}"
            assert not unexpected, f"{version}: unexpected conformance failures: {json.dumps(unexpected, indent=1)}"
            assert not stale, f"{version}: listed as expected failures but passed or did not run (remove them): {sorted(stale)}"
            assert MUST_PASS[version] <= set(found) - failed, f"{version}: {summary}"
            assert run.returncode == 0, f"{version}: the suite's own baseline check failed:\n{summary}\n{run.stderr}"
