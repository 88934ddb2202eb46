"""Tenancy: per-tenant caps on upstream requests (user mode), and, as root, system-mode tenants with their own
Argo tunnels run as the tenant, the admin's identity map, and the socket helper's user credentials.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import threading
from pathlib import Path
from typing import Any, Iterator

import anthropic
import httpx
import openai
import pytest

from argo_fixtures import argo_config, argo_env, argo_tools_missing  # noqa: F401 (argo_env is a fixture)
from harness import alias, eventually, rosettad_binary, to_yaml
from system_support import (ALICE, ALLOWED_GROUP, BOB, PAM_SERVICE, SystemDaemon, as_user, ensure_group,
                            ensure_user, make_root, need_root, raw_http, tenant_socket)

CAPS = {"max_concurrent_upstream": 2, "max_queued": 1}


def slots(daemon) -> dict:
    with daemon.http("unix") as client:
        return client.get("/rosetta/v1/status").json()["upstream_slots"]


def in_background(call) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except Exception as error:  # noqa: BLE001 - reported by the test
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


# -- caps (user mode) -------------------------------------------------------------------------------------


def test_the_request_beyond_cap_and_queue_gets_429_in_each_sdks_error_type(start_daemon):
    daemon = start_daemon(limits=CAPS)
    openai_client = daemon.openai().with_options(max_retries=0)
    anthropic_client = daemon.anthropic().with_options(max_retries=0)
    running = [
        in_background(lambda: openai_client.chat.completions.create(
            model=alias("openai", "slow"), messages=[{"role": "user", "content": "hi"}]).choices[0].message.content),
        in_background(lambda: "".join(chunk.choices[0].delta.content or "" for chunk in openai_client.chat.completions.create(
            model=alias("openai", "slow"), messages=[{"role": "user", "content": "hi"}], stream=True) if chunk.choices)),
    ]
    eventually(lambda: slots(daemon)["in_flight"] == 2, what="two upstream requests in flight")
    running.append(in_background(lambda: anthropic_client.messages.create(
        model=alias("anthropic", "slow"), max_tokens=100, messages=[{"role": "user", "content": "hi"}]).content[0].text))
    eventually(lambda: slots(daemon)["queued"] == 1, what="the third request to wait")

    with pytest.raises(openai.RateLimitError) as refused:
        openai_client.chat.completions.create(model=alias("openai"), messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 429
    assert int(refused.value.response.headers["retry-after"]) >= 1
    assert refused.value.body["code"] == "tenant_concurrency_limit"
    with pytest.raises(anthropic.RateLimitError) as refused_anthropic:
        anthropic_client.messages.create(model=alias("anthropic"), max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert refused_anthropic.value.body["error"]["type"] == "rate_limit_error"
    with daemon.http() as client:  # a Google client gets Google's envelope
        google = client.post(f"/v1beta/models/{alias('openai')}:generateContent",
                             json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    assert google.status_code == 429 and google.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert "retry-after" in google.headers

    for thread, outcome in running:
        thread.join(timeout=30)
        assert "error" not in outcome, outcome
        assert outcome["value"], outcome
    final = slots(daemon)
    assert final["in_flight"] == 0 and final["queued"] == 0 and final["refused"] == 3
    # Freed: the next request goes straight through.
    reply = openai_client.chat.completions.create(model=alias("openai"), messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content


def test_a_waiting_request_whose_client_leaves_leaves_the_queue(start_daemon, fakes):
    daemon = start_daemon(limits={"max_concurrent_upstream": 1, "max_queued": 1})
    client = daemon.openai().with_options(max_retries=0)
    holder = in_background(lambda: client.chat.completions.create(
        model=alias("openai", "slow"), messages=[{"role": "user", "content": "hi"}]))
    eventually(lambda: slots(daemon)["in_flight"] == 1, what="the slot to be taken")
    with daemon.http(timeout=0.5) as impatient, pytest.raises(httpx.TimeoutException):
        impatient.post("/v1/chat/completions", json={"model": alias("openai"), "messages": [{"role": "user", "content": "x"}]})
    eventually(lambda: slots(daemon)["queued"] == 0, what="the departed client to leave the queue")
    # Its place is free again: this one waits (instead of a 429) and completes after the holder.
    waiter = in_background(lambda: client.chat.completions.create(
        model=alias("openai"), messages=[{"role": "user", "content": "hi"}]).choices[0].message.content)
    eventually(lambda: slots(daemon)["queued"] == 1, what="the new request to wait")
    for thread, outcome in (holder, waiter):
        thread.join(timeout=30)
        assert "error" not in outcome, outcome
    assert slots(daemon)["refused"] == 0
    # The departed client's request never reached the upstream.
    assert not [e for e in fakes["openai"].chat_exchanges() if "x" == (e.body or {}).get("messages", [{}])[0].get("content")]


# -- system mode (root) -----------------------------------------------------------------------------------

KEY_DIRECTORY = ".ssh/rosetta-it-argo"


@pytest.fixture(scope="module")
def tenants() -> dict[str, pwd.struct_passwd]:
    need_root()
    ensure_group(ALLOWED_GROUP)
    return {ALICE: ensure_user(ALICE, [ALLOWED_GROUP]), BOB: ensure_user(BOB, [ALLOWED_GROUP])}


def give_ssh_files(user: pwd.struct_passwd, sshd) -> None:
    """The test key and known-hosts file in the user's own ~/.ssh (ssh, running as the user, reads them there)."""
    directory = Path(user.pw_dir) / KEY_DIRECTORY
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("client_key", "known_hosts"):
        shutil.copy(sshd.directory / name, directory / name)
    for path in (directory.parent, directory, directory / "client_key", directory / "known_hosts"):
        os.chown(path, user.pw_uid, user.pw_gid)
        path.chmod(0o700 if path.is_dir() else 0o600)


@pytest.fixture(scope="module")
def argo_system(tenants, argo_env) -> Iterator[SystemDaemon]:
    if argo_tools_missing():
        pytest.skip("needs openssl, ssh and /usr/sbin/sshd")
    argo, sshd = argo_env
    for user in tenants.values():
        give_ssh_files(user, sshd)
    # The shared file's `user:` is ignored in system mode; alice is mapped, bob uses his login name.
    config = argo_config(argo, sshd, user="shared-user", key_directory=f"%d/{KEY_DIRECTORY}")
    config["identities"] = {ALICE: "alice"}
    config["limits"] = CAPS
    root = make_root()
    daemon = SystemDaemon(root, to_yaml(config) + "\n", PAM_SERVICE).start()
    try:
        yield daemon
    finally:
        for name in tenants:
            daemon.rosetta(name, "disable")
        if daemon.process and daemon.process.poll() is None:
            daemon.stop()
        shutil.rmtree(root, ignore_errors=True)
        for user in tenants.values():
            shutil.rmtree(Path(user.pw_dir) / KEY_DIRECTORY, ignore_errors=True)


def ssh_uids(socket_path: str) -> list[int]:
    """The real uids of ssh processes forwarding this socket."""
    uids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            status = (entry / "status").read_text()
        except OSError:
            continue
        if argv and argv[0].endswith(b"ssh") and any(socket_path.encode() in a for a in argv):
            uids.append(int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1]))
    return uids


def tunnel_status_as(user: pwd.struct_passwd) -> dict:
    answer = as_user(user, lambda: raw_http(str(tenant_socket(user)), "GET", "/rosetta/v1/tunnel"))
    assert "ok" in answer and answer["ok"][0] == 200, answer
    return json.loads(answer["ok"][1])["tunnels"][0]


def chat_as(user: pwd.struct_passwd, client_user: str) -> tuple[int, str]:
    body = json.dumps({"model": "gpt-4o", "user": client_user, "messages": [{"role": "user", "content": "hi"}]}).encode()
    answer = as_user(user, lambda: raw_http(str(tenant_socket(user)), "POST", "/v1/chat/completions", body))
    assert "ok" in answer, answer
    return answer["ok"][0], answer["ok"][1]


def test_a_system_tenant_reaches_argo_through_its_own_tunnel_run_as_the_tenant(argo_system, tenants, argo_env):
    argo, _ = argo_env
    alice = tenants[ALICE]
    result = argo_system.rosetta(ALICE, "enable")
    assert result.returncode == 0, result.stderr + argo_system.logs()
    argo.clear()
    status, body = chat_as(alice, "mallory")
    assert status == 200, body + argo_system.logs()
    assert json.loads(body)["choices"][0]["message"]["content"] == "hello from argo gpt4o"

    (exchange,) = argo.posts()
    assert exchange.body["user"] == "alice" and exchange.headers["x-api-key"] == "alice"  # the mapped name ...
    assert "mallory" not in json.dumps(exchange.body) and "shared-user" not in json.dumps(exchange.headers)  # ... only

    tunnel = tunnel_status_as(alice)
    assert tunnel["state"] == "up", tunnel
    socket_path = Path(tunnel["socket"])
    runtime = argo_system.control.parent / "tenants" / str(alice.pw_uid)
    assert socket_path.parent.parent == runtime
    for directory in (runtime, socket_path.parent):
        info = directory.lstat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (alice.pw_uid, 0o700)
    assert ssh_uids(str(socket_path)) == [alice.pw_uid]

    # The admin's view names the tunnel's state per tenant, in the JSON and in the table.
    (row,) = [t for t in argo_system.status_as_root()["tenants"] if t["uid"] == alice.pw_uid]
    assert row["tunnels"] == {"argo": {"state": "up"}}, row
    table = subprocess.run([str(rosettad_binary()), "status", "--control-socket", str(argo_system.control)],
                           capture_output=True, text=True, timeout=30)
    assert table.returncode == 0 and "TUNNELS" in table.stdout, table.stdout + table.stderr
    assert "argo=up" in next(line for line in table.stdout.splitlines() if line.startswith(ALICE)), table.stdout


def test_an_unmapped_tenant_acts_as_its_login_name_and_disable_stops_its_ssh(argo_system, tenants, argo_env):
    argo, _ = argo_env
    bob = tenants[BOB]
    assert argo_system.rosetta(BOB, "enable").returncode == 0
    argo.clear()
    status, body = chat_as(bob, "alice")
    # The fake Argo knows only alice and bob: bob's login name is not registered there, so it refuses.
    assert status >= 500, body
    (exchange,) = argo.posts()
    assert exchange.body["user"] == BOB and exchange.headers["x-api-key"] == BOB
    socket_path = tunnel_status_as(bob)["socket"]
    assert ssh_uids(socket_path) == [bob.pw_uid]
    assert argo_system.rosetta(BOB, "disable").returncode == 0
    eventually(lambda: not ssh_uids(socket_path), timeout=10, what="bob's ssh to stop with his tenant")


def test_the_socket_helper_creates_with_the_users_rights_not_roots(argo_system, tenants):
    bob = tenants[BOB]
    local = Path(bob.pw_dir) / ".local"
    local.mkdir(exist_ok=True)
    os.chown(local, bob.pw_uid, bob.pw_gid)
    shutil.rmtree(local / "run", ignore_errors=True)
    local.chmod(0o500)  # bob may not create ~/.local/run; root could, but root never does the work
    try:
        result = argo_system.rosetta(BOB, "enable")
        assert result.returncode != 0
        assert "Permission denied" in result.stderr and str(local / "run") in result.stderr, result.stderr
        assert not (local / "run").exists()
    finally:
        local.chmod(0o700)
        argo_system.rosetta(BOB, "disable")
    result = argo_system.rosetta(BOB, "enable")
    assert result.returncode == 0, result.stderr
    info = (local / "run").lstat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (bob.pw_uid, bob.pw_gid, 0o700)
    assert argo_system.rosetta(BOB, "disable").returncode == 0
    assert not tenant_socket(bob).exists()
