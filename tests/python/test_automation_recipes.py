"""The Python recipes in docs/automation.md, run exactly as written there
against a real toolgated: listing services by reflection, and following the
audit log with StreamEvents (replay, then live)."""

import json
import os
import pathlib
import queue
import re
import subprocess
import sys
import threading

import grpc
from google.protobuf import json_format

from test_grpc_automation import reflected_method

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "automation.md"


def recipe(name: str) -> str:
    """The ```python block of docs/automation.md whose first line is
    `# <name>: ...`."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    found = [b for b in blocks if b.startswith(f"# {name}:")]
    assert len(found) == 1, f"docs/automation.md has {len(found)} recipes named {name}"
    return found[0]


def run_recipe(tmp_path, daemon, name, extra_env=None):
    script = tmp_path / name
    script.write_text(recipe(name))
    env = {
        **os.environ,
        "TOOLGATE_GRPC": daemon.grpc,
        "TOOLGATE_ADMIN_TOKEN": daemon.admin_token,
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def create_user(daemon, email):
    auth = [("authorization", f"Bearer {daemon.admin_token}"), ("x-toolgate-actor", "recipes")]
    with grpc.insecure_channel(daemon.grpc) as channel:
        CreateUser, create = reflected_method(channel, "toolgate.v1.UserService/CreateUser")
        reply = create(CreateUser(email=email), metadata=auth)
        return json_format.MessageToDict(reply, preserving_proto_field_name=True)["user"]["id"]


def names(event, user_id, email):
    """Whether an audit event's target names this user (by id or email)."""
    return event["target"] in (f"user/{user_id}", f"user/{email}")


def test_list_services_recipe(tmp_path, daemon):
    process = run_recipe(tmp_path, daemon, "list_services.py")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    lines = out.splitlines()
    for service in [
        "toolgate.v1.AuditService",
        "toolgate.v1.ServerService",
        "toolgate.v1.UserService",
        "grpc.health.v1.Health",
    ]:
        assert service in lines, out
    assert "  StreamEvents(StreamEventsRequest) returns (stream StreamEventsResponse)" in lines
    assert "  ListEvents(ListEventsRequest) returns (ListEventsResponse)" in lines
    assert "  CreateUser(CreateUserRequest) returns (CreateUserResponse)" in lines


def test_stream_events_recipe_replays_then_follows(tmp_path, daemon):
    before = create_user(daemon, "before@example.com")
    process = run_recipe(tmp_path, daemon, "stream_events.py", {"ACTION_PREFIX": "user."})
    lines = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    ).start()
    try:
        # The event from before the stream started is replayed first.
        first = json.loads(lines.get(timeout=60))
        assert first["action"] == "user.create"
        assert names(first, before, "before@example.com"), first
        assert first["actor"] == "admin:recipes"
        # A new change arrives live.
        after = create_user(daemon, "after@example.com")
        second = json.loads(lines.get(timeout=60))
        assert second["action"] == "user.create"
        assert int(second["sequence"]) > int(first["sequence"])
        assert names(second, after, "after@example.com"), second
    finally:
        process.terminate()
        process.wait(timeout=30)
