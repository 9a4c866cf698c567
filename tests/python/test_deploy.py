"""Checks of deploy/ that need neither Docker nor a cluster: the systemd
unit (its hardening, `systemd-analyze verify` and `security` where systemd
is installed), the Kubernetes manifests (kinds, and ports, probes, volume,
Secret and ConfigMap wired consistently, for the single-node StatefulSet and
for the replicas' Deployment on PostgreSQL with its PodDisruptionBudget),
the Dockerfile (text checks), the
secrets' example values against the real daemon, and that every TOOLGATE_*
variable the files set is one the daemon reads.

deploy/toolgate.example.toml is checked by gateway/tests/deploy_files.rs
with the daemon's own config loader."""

import json
import importlib.util
import os
import pathlib
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

import pytest
import yaml

# This directory's conftest, by path: pytest runs tests/python and
# tests/mcp-clients together, and both have a module named `conftest`.
_spec = importlib.util.spec_from_file_location(
    "toolgate_python_conftest", pathlib.Path(__file__).with_name("conftest.py")
)
_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conftest)
REPO, toolgated_binary = _conftest.REPO, _conftest.toolgated_binary

DEPLOY = REPO / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
# Secrets come from the environment only, so `toolgated --help` does not
# list them as flags' variables.
SECRET_VARIABLES = {"TOOLGATE_MASTER_KEY", "TOOLGATE_ADMIN_TOKEN"}
# The PostgreSQL URL (`--database-url`): from the Secret too, as it holds a
# password, in the replicas' manifest only.
DATABASE_URL_VARIABLE = "TOOLGATE_DATABASE_URL"
# The daemon's default shutdown grace period (config.rs), in seconds.
DEFAULT_SHUTDOWN_TIMEOUT_SECS = 10
# healthcheck::TIMEOUT in the daemon, in seconds.
HEALTH_CHECK_TIMEOUT_SECS = 3


def daemon_variables() -> set[str]:
    """The TOOLGATE_* variables toolgated reads: its flags' (from --help)
    and the two secrets."""
    out = subprocess.run([toolgated_binary(), "--help"], capture_output=True, text=True, check=True).stdout
    # `[env: NAME=value]`, or `[env: NAME]` for a flag whose value is hidden (the database URL).
    names = set(re.findall(r"\[env: (TOOLGATE_[A-Z_]+)[=\]]", out))
    assert "TOOLGATE_HTTP_ADDR" in names, out
    return names | SECRET_VARIABLES


def port_of(addr: str) -> int:
    """The port of a socket address such as 0.0.0.0:8080 or [::]:8080."""
    return int(addr.rsplit(":", 1)[1])


def seconds(duration: str) -> float:
    """A Docker or systemd duration such as 5s, 2min, 30 (seconds)."""
    match = re.fullmatch(r"(\d+)\s*(ms|s|sec|m|min)?", duration.strip())
    assert match, duration
    value, unit = int(match[1]), match[2] or "s"
    return value * {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60}[unit]


# --- Dockerfile ---------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (INSTRUCTION, arguments), continuation
    lines joined and comments dropped."""
    lines = [l for l in (DEPLOY / "Dockerfile").read_text().splitlines() if not l.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    stages: list[list[tuple[str, str]]] = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        instruction, _, args = line.strip().partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stages.append([])
        elif not stages:
            assert instruction == "ARG", f"{instruction} before the first FROM"
            continue
        stages[-1].append((instruction, args.strip()))
    return stages


def instructions(stage, name: str) -> list[str]:
    return [args for instruction, args in stage if instruction == name]


def image_env(stage) -> dict[str, str]:
    env = {}
    for args in instructions(stage, "ENV"):
        for word in shlex.split(args):
            key, _, value = word.partition("=")
            env[key] = value
    return env


def image_user(stage) -> str:
    users = instructions(stage, "USER")
    assert users, "the runtime stage sets no USER: it would run as root"
    return users[-1].split(":")[0]


def exposed_ports(stage) -> set[int]:
    return {int(p.split("/")[0]) for args in instructions(stage, "EXPOSE") for p in args.split()}


def test_dockerfile_is_multi_stage_non_root_with_both_ports_a_volume_and_a_health_check():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: a build stage and a runtime stage"
    build, runtime = stages[0], stages[-1]

    builds = " ".join(instructions(build, "RUN"))
    assert "cargo build --release" in builds and "--locked" in builds, builds
    assert "-p toolgate-gateway" in builds and "-p toolgate-console" in builds, builds
    assert re.search(r"\btoolgated\b", builds) and re.search(r"\btoolgate\b", builds), builds
    assert any("--from=build" in c for c in instructions(runtime, "COPY")), "runtime copies from the build stage"
    assert not instructions(runtime, "RUN"), "the runtime stage has no shell to RUN with"

    user = image_user(runtime)
    assert user.isdigit() and int(user) != 0, f"USER {user}: numeric and not root"

    env = image_env(runtime)
    assert set(env) <= daemon_variables(), set(env) - daemon_variables()
    assert exposed_ports(runtime) == {
        port_of(env["TOOLGATE_HTTP_ADDR"]), port_of(env["TOOLGATE_GRPC_ADDR"]), port_of(env["TOOLGATE_METRICS_ADDR"])
    }
    assert env["TOOLGATE_HTTP_ADDR"].startswith("0.0.0.0:"), "reachable from outside the container"

    volumes = instructions(runtime, "VOLUME")
    declared = {v for args in volumes for v in (json.loads(args) if args.startswith("[") else args.split())}
    assert env["TOOLGATE_DATA_DIR"] in declared, (env, volumes)

    (healthcheck,) = instructions(runtime, "HEALTHCHECK")
    options, _, command = healthcheck.partition("CMD")
    argv = json.loads(command)  # exec form: there is no shell in the image
    assert Path(argv[0]).name == "toolgated" and "--health-check" in argv, argv
    assert not re.search(r"\b(curl|wget)\b", healthcheck)
    timeout = re.search(r"--timeout=(\S+)", options)
    assert timeout and seconds(timeout[1]) > HEALTH_CHECK_TIMEOUT_SECS, options

    (entrypoint,) = instructions(runtime, "ENTRYPOINT")
    assert Path(json.loads(entrypoint)[0]).name == "toolgated"


def test_dockerignore_keeps_build_output_and_local_state_out_of_the_context():
    patterns = {
        l.strip().rstrip("/")
        for l in (REPO / ".dockerignore").read_text().splitlines()
        if l.strip() and not l.startswith("#")
    }
    for needed in ["target", ".venv", "**/node_modules", "toolgate-data", "toolgate-demo-data", "**/master.key"]:
        assert needed in patterns, f".dockerignore lacks {needed}"


# --- systemd ------------------------------------------------------------------

UNIT = DEPLOY / "toolgated.service"

HARDENING = {
    "DynamicUser": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "StateDirectory": "toolgate",
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
    "EnvironmentFile": "-/etc/toolgate/toolgate.env",
}


def unit_sections(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values in order]}} (keys repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_systemd_unit_is_sandboxed_and_reads_secrets_from_an_environment_file():
    service = unit_sections(UNIT)["Service"]
    for key, expected in HARDENING.items():
        assert key in service, f"[Service] lacks {key}="
        assert service[key][-1] == expected, f"{key}={service[key][-1]!r}, expected {expected!r}"
    assert "@system-service" in service["SystemCallFilter"], service["SystemCallFilter"]

    (exec_start,) = service["ExecStart"]
    argv = shlex.split(exec_start)
    assert Path(argv[0]).name == "toolgated"
    data_dir = argv[argv.index("--data-dir") + 1]
    assert data_dir == f"/var/lib/{service['StateDirectory'][-1]}", "the data directory is the state directory"
    assert "--health-check" not in argv
    assert seconds(service["TimeoutStopSec"][-1]) > DEFAULT_SHUTDOWN_TIMEOUT_SECS
    assert unit_sections(UNIT)["Install"]["WantedBy"] == ["multi-user.target"]


def unit_with_existing_binary(tmp: Path) -> Path:
    """A copy of the unit whose ExecStart names a binary that exists here
    (verify checks it), under the same file name."""
    binary = os.environ.get("TOOLGATED_BIN", str(REPO / "target" / "debug" / "toolgated"))
    if not os.path.exists(binary):
        binary = sys.executable
    text = re.sub(r"^ExecStart=\S+", f"ExecStart={binary}", UNIT.read_text(), flags=re.M)
    copy = tmp / UNIT.name
    copy.write_text(text)
    return copy


def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        notice = "NOTICE: systemd-analyze is not installed; the systemd unit was not verified"
        print(notice)
        pytest.skip(notice)
    return tool


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    tool = systemd_analyze()
    unit = unit_with_existing_binary(tmp_path)
    result = subprocess.run(
        [tool, "verify", "--man=no", "--generators=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify exits 0 on unknown keys and bad values and only warns: any line
    # about our unit is a failure. (Lines about the host's units are not ours.)
    output = result.stdout + result.stderr
    ours = [l for l in output.splitlines() if unit.name in l]
    assert result.returncode == 0 and not ours, output


def test_systemd_unit_exposure_is_low(tmp_path):
    tool = systemd_analyze()
    unit = unit_with_existing_binary(tmp_path)
    result = subprocess.run(
        [tool, "security", "--offline=yes", "--threshold=20", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        notice = "NOTICE: this systemd-analyze has no `security --offline`; exposure not checked"
        print(notice)
        pytest.skip(notice)
    # Exit status 0: the overall exposure is at most 2.0 ("OK").
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr


# --- secrets --------------------------------------------------------------------


def env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def run_daemon(master_key: str, admin_token: str) -> subprocess.CompletedProcess:
    """toolgated on port 0 in a temp data directory with these secrets; stops
    it once it is ready (a started daemon is terminated)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLGATE_")}
    env.update(TOOLGATE_MASTER_KEY=master_key, TOOLGATE_ADMIN_TOKEN=admin_token)
    with tempfile.TemporaryDirectory() as tmp:
        process = subprocess.Popen(
            [toolgated_binary(), "--data-dir", f"{tmp}/data", "--http-addr", "127.0.0.1:0",
             "--grpc-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--log-level", "warn"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        first = process.stdout.readline()
        if first.startswith("toolgated ready:"):
            process.terminate()
        stdout, stderr = process.communicate(timeout=30)
        return subprocess.CompletedProcess(process.args, process.returncode, first + stdout, stderr)


def test_env_file_example_names_the_secrets_and_its_placeholders_are_refused():
    example = DEPLOY / "toolgate.env.example"
    values = env_file(example)
    assert set(values) == SECRET_VARIABLES
    text = example.read_text()
    assert "openssl rand -hex 32" in text and "64 hex digits" in text

    good_key, good_token = secrets.token_hex(32), "tga_" + secrets.token_hex(32)
    # What the comments say to generate is accepted ...
    started = run_daemon(good_key, good_token)
    assert started.stdout.startswith("toolgated ready:"), started.stderr
    # ... and each placeholder stops the daemon, naming the variable.
    refused = run_daemon(values["TOOLGATE_MASTER_KEY"], good_token)
    assert refused.returncode != 0 and "TOOLGATE_MASTER_KEY" in refused.stderr, refused
    refused = run_daemon(good_key, values["TOOLGATE_ADMIN_TOKEN"])
    assert refused.returncode != 0 and "TOOLGATE_ADMIN_TOKEN" in refused.stderr, refused


# --- Kubernetes -------------------------------------------------------------------


def manifests(name: str) -> list[dict]:
    docs = [d for d in yaml.safe_load_all((KUBERNETES / name).read_text()) if d is not None]
    for doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(doc), doc
    return docs


def one(docs: list[dict], kind: str) -> dict:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def test_kubernetes_manifests_are_yaml_of_the_expected_kinds():
    kinds = sorted(d["kind"] for d in manifests("toolgate.yaml"))
    assert kinds == ["ConfigMap", "Service", "Service", "Service", "StatefulSet"], kinds
    kinds = sorted(d["kind"] for d in manifests("toolgate-replicas.yaml"))
    assert kinds == ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "Service"], kinds
    assert [d["kind"] for d in manifests("secret.example.yaml")] == ["Secret"]
    assert [d["kind"] for d in manifests("ingress.example.yaml")] == ["Ingress"]


def check_pod_wiring(docs: list[dict], workload: dict, secret_variables: set[str]) -> dict:
    """What the StatefulSet and the Deployment share: the environment comes
    from the ConfigMap and the Secret (by keys it has) and names only
    variables the daemon reads; the listeners' addresses, the container
    ports, the probes, the Services and the image agree; the pod is locked
    down and has time to drain. Returns the daemon's environment (name ->
    value or valueFrom)."""
    config_map = one(docs, "ConfigMap")
    secret = one(manifests("secret.example.yaml"), "Secret")
    services = [d for d in docs if d["kind"] == "Service"]
    spec = workload["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    (container,) = pod["containers"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()

    # The environment the daemon sees.
    env = {e["name"]: e for e in container["env"]}
    (source,) = container["envFrom"]
    assert source["configMapRef"]["name"] == config_map["metadata"]["name"]
    known = daemon_variables()
    assert set(env) | set(config_map["data"]) <= known, (set(env) | set(config_map["data"])) - known
    value = lambda name: env[name]["value"] if name in env else config_map["data"][name]
    public_url = urllib.parse.urlsplit(value("TOOLGATE_PUBLIC_URL"))
    assert public_url.scheme == "https" and public_url.hostname, public_url

    # Secrets come from the Secret, by keys it has, and from nowhere else.
    secret_keys = set(secret["stringData"])
    from_secret = {name for name, e in env.items() if "secretKeyRef" in e.get("valueFrom", {})}
    assert from_secret == secret_variables, from_secret
    for name in secret_variables:
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret_keys, ref
        assert not ref.get("optional", False)

    # Ports: the listeners' addresses, the container ports, the probes, the
    # Services and the image all agree.
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {
        "http": port_of(value("TOOLGATE_HTTP_ADDR")),
        "grpc": port_of(value("TOOLGATE_GRPC_ADDR")),
        "metrics": port_of(value("TOOLGATE_METRICS_ADDR")),
    }
    runtime = dockerfile_stages()[-1]
    assert set(ports.values()) == exposed_ports(runtime)
    for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", "/healthz")]:
        get = container[probe]["httpGet"]
        assert get["path"] == path and get["port"] == "http", (probe, get)
    targets = set()
    for service in services:
        assert service["spec"]["selector"].items() <= labels.items(), service["metadata"]["name"]
        for port in service["spec"]["ports"]:
            target = port["targetPort"]
            assert target in ports or target in ports.values(), (service["metadata"]["name"], target)
            targets.add(target)
    assert {"http", "grpc"} <= targets, "a Service for each listener"

    # Locked down, with resources.
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
    assert str(security["runAsUser"]) == image_user(runtime), "the image's USER"
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
    locked = container["securityContext"]
    assert locked["readOnlyRootFilesystem"] is True
    assert locked["allowPrivilegeEscalation"] is False
    assert "ALL" in locked["capabilities"]["drop"]
    for kind in ["requests", "limits"]:
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind
    shutdown = int(config_map["data"].get("TOOLGATE_SHUTDOWN_TIMEOUT_SECS", DEFAULT_SHUTDOWN_TIMEOUT_SECS))
    assert pod["terminationGracePeriodSeconds"] > shutdown

    # The daemon's data directory is a mounted volume (the root filesystem
    # is read-only).
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert value("TOOLGATE_DATA_DIR") in mounts.values(), f"TOOLGATE_DATA_DIR is not a mounted volume: {mounts}"
    # A container's env wins over its envFrom.
    resolved = dict(config_map["data"])
    resolved.update({name: e.get("value", e.get("valueFrom")) for name, e in env.items()})
    return resolved


def test_kubernetes_statefulset_is_one_pod_with_its_own_volume_wired_consistently():
    docs = manifests("toolgate.yaml")
    statefulset = one(docs, "StatefulSet")
    spec = statefulset["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    env = check_pod_wiring(docs, statefulset, SECRET_VARIABLES)

    # One replica, with its own volume, on the embedded store.
    assert spec["replicas"] == 1, "one toolgated per data directory (embedded database)"
    assert DATABASE_URL_VARIABLE not in env, "the StatefulSet runs the embedded store"
    claims = {t["metadata"]["name"]: t for t in spec["volumeClaimTemplates"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert set(mounts) <= set(claims), (mounts, claims)
    assert mounts[next(iter(claims))] == env["TOOLGATE_DATA_DIR"], "the data directory is the claimed volume"
    services = [d for d in docs if d["kind"] == "Service"]
    governing = next(s for s in services if s["metadata"]["name"] == spec["serviceName"])
    assert governing["spec"]["clusterIP"] == "None", "the StatefulSet's serviceName is a headless Service"


def test_kubernetes_replicas_are_interchangeable_pods_on_one_database_with_a_disruption_budget():
    docs = manifests("toolgate-replicas.yaml")
    deployment = one(docs, "Deployment")
    budget = one(docs, "PodDisruptionBudget")["spec"]
    secret = one(manifests("secret.example.yaml"), "Secret")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    replicas = spec["replicas"]
    env = check_pod_wiring(docs, deployment, SECRET_VARIABLES | {DATABASE_URL_VARIABLE})

    # Several replicas, all on the database the Secret names, none with
    # state of its own (no claims; scratch space only).
    assert replicas == 3, replicas
    assert "volumeClaimTemplates" not in spec
    for volume in pod.get("volumes", []):
        assert set(volume) == {"name", "emptyDir"}, f"per-pod state in {volume}"
    database_url = urllib.parse.urlsplit(secret["stringData"]["database-url"])
    assert database_url.scheme in {"postgres", "postgresql"} and database_url.path.strip("/"), database_url
    max_connections = int(env.get("TOOLGATE_DATABASE_MAX_CONNECTIONS", 10))
    assert max_connections >= 1

    # No session affinity anywhere: any replica serves any request.
    for service in (d for d in docs if d["kind"] == "Service"):
        assert service["spec"].get("sessionAffinity", "None") == "None", service["metadata"]["name"]

    # The budget covers exactly these pods and leaves at least two serving
    # while still letting a drain proceed; a rolling update never goes
    # below what the budget keeps.
    assert budget["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    assert len({"minAvailable", "maxUnavailable"} & set(budget)) == 1, budget
    kept = budget["minAvailable"] if "minAvailable" in budget else replicas - budget["maxUnavailable"]
    assert isinstance(kept, int), "a count, not a percentage"
    assert 2 <= kept < replicas, (kept, replicas)
    rolling = spec["strategy"]["rollingUpdate"]
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert replicas - rolling["maxUnavailable"] >= kept, rolling
    assert rolling["maxSurge"] >= 1, "a new pod must be able to start while all old ones serve"

    # Spread over nodes, counting these pods.
    spread = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
    assert "kubernetes.io/hostname" in spread, spread
    for constraint in spread.values():
        assert constraint["labelSelector"]["matchLabels"].items() <= labels.items(), constraint


def test_kubernetes_both_layouts_share_the_service_and_config_names_the_ingress_and_docs_use():
    single, replicas = manifests("toolgate.yaml"), manifests("toolgate-replicas.yaml")
    names = lambda docs: {(d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] in {"Service", "ConfigMap"}}
    # The Ingress and the console instructions work with either layout.
    assert names(replicas) <= names(single), names(replicas) - names(single)
    assert set(one(single, "ConfigMap")["data"]) <= set(one(replicas, "ConfigMap")["data"])


@pytest.mark.parametrize("manifest", ["toolgate.yaml", "toolgate-replicas.yaml"])
def test_kubernetes_ingress_serves_the_public_url_host_from_the_http_service(manifest):
    docs = manifests(manifest)
    config_map = one(docs, "ConfigMap")
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    ingress = one(manifests("ingress.example.yaml"), "Ingress")
    host = urllib.parse.urlsplit(config_map["data"]["TOOLGATE_PUBLIC_URL"]).hostname

    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == host, "the Host /mcp accepts is the public URL's"
    assert any(host in t["hosts"] for t in ingress["spec"]["tls"]), "TLS for the public host"
    paths = {p["path"] for p in rule["http"]["paths"]}
    assert {"/mcp", "/connect", "/auth/callback"} <= paths, paths
    for path in rule["http"]["paths"]:
        backend = path["backend"]["service"]
        service = services[backend["name"]]
        assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
        assert all(p["targetPort"] != "grpc" for p in service["spec"]["ports"]), "never the control API"


def test_kubernetes_secret_template_placeholders_are_refused_by_the_daemon():
    secret = one(manifests("secret.example.yaml"), "Secret")
    values = secret["stringData"]
    text = (KUBERNETES / "secret.example.yaml").read_text()
    assert "openssl rand -hex 32" in text and "kubectl create secret generic" in text
    good_key, good_token = secrets.token_hex(32), "tga_" + secrets.token_hex(32)
    refused = run_daemon(values["master-key"], good_token)
    assert refused.returncode != 0 and "TOOLGATE_MASTER_KEY" in refused.stderr, refused
    refused = run_daemon(good_key, values["admin-token"])
    assert refused.returncode != 0 and "TOOLGATE_ADMIN_TOKEN" in refused.stderr, refused
