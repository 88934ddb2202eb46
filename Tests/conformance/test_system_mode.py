"""System mode (`rosettad serve` as root): PAM-gated enable, per-user sockets and ports, status scope.

Needs root (real users, a PAM service, sockets in their homes). Without root the tests skip, except
when $CI is set: then they fail, so CI can never silently skip them.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from harness import alias, gateway_config, to_yaml
from system_support import (ADMIN_GROUP, ALICE, BOB, CAROL, DAVE, PAM_SERVICE, SystemDaemon, as_user, make_root,
                            raw_http, remove_user_binaries, tenant_of, tenant_socket, token_of, user_binary, users)

__all__ = ["remove_user_binaries", "users"]  # fixtures used by name


@pytest.fixture(scope="module")
def system(users, fakes) -> Iterator[SystemDaemon]:
    root = make_root()
    config = to_yaml(gateway_config(fakes["openai"], fakes["anthropic"])) + f"\nadmin_group: {ADMIN_GROUP}\n"
    daemon = SystemDaemon(root, config, PAM_SERVICE).start()
    try:
        for name in (ALICE, BOB):
            result = daemon.rosetta(name, "enable")
            assert result.returncode == 0, f"{name}: {result.stderr}\n{daemon.logs()}"
        yield daemon
    finally:
        for name in (ALICE, BOB, DAVE):
            daemon.rosetta(name, "disable")
        if daemon.process and daemon.process.poll() is None:
            daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("name", [ALICE, BOB])
def test_enable_creates_a_private_socket_owned_by_the_user(system, users, name):
    user = users[name]
    path = tenant_socket(user)
    info = path.lstat()
    assert stat.S_ISSOCK(info.st_mode)
    assert (info.st_uid, info.st_gid) == (user.pw_uid, user.pw_gid)
    assert stat.S_IMODE(info.st_mode) == 0o600
    directory = path.parent.lstat()
    assert directory.st_uid == user.pw_uid and stat.S_IMODE(directory.st_mode) == 0o700
    assert tenant_of(system, user)["state"] == "serving"


def test_the_token_is_root_only_and_served_over_the_socket(system, users):
    user = users[ALICE]
    token_file = system.state / "tenants" / str(user.pw_uid) / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and token_file.stat().st_uid == 0
    assert stat.S_IMODE(system.state.stat().st_mode) == 0o700
    result = subprocess.run(["runuser", "-u", ALICE, "--", str(user_binary("rosetta")), "token", "--socket",
                             str(tenant_socket(user))], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == token_of(system, user)


def test_alice_cannot_use_bobs_socket(system, users):
    result = subprocess.run(["runuser", "-u", ALICE, "--", str(user_binary("rosetta")), "token", "--socket",
                             str(tenant_socket(users[BOB]))], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert token_of(system, users[BOB]) not in result.stdout


def test_alice_is_refused_by_peer_credentials_when_bobs_socket_is_opened_up(system, users):
    bob_socket = tenant_socket(users[BOB])
    directories = [bob_socket.parent, bob_socket.parent.parent, bob_socket.parent.parent.parent]
    modes = [stat.S_IMODE(d.stat().st_mode) for d in directories]
    try:
        for directory in directories:
            directory.chmod(0o755)
        bob_socket.chmod(0o777)
        answer = as_user(users[ALICE], lambda: raw_http(str(bob_socket), "GET", "/rosetta/v1/token"))
        assert "ok" in answer, answer  # the file permissions let alice connect ...
        assert answer["ok"] == [0, ""], answer  # ... and SO_PEERCRED closes the connection without an answer
    finally:
        for directory, mode in zip(directories, modes):
            directory.chmod(mode)
        bob_socket.chmod(0o600)
    own = as_user(users[BOB], lambda: raw_http(str(bob_socket), "GET", "/rosetta/v1/token"))
    assert own["ok"][0] == 200


def test_bobs_token_on_alices_port_is_401(system, users):
    port = tenant_of(system, users[ALICE])["port"]
    body = {"model": alias("openai"), "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        wrong = client.post("/v1/chat/completions", json=body,
                            headers={"Authorization": f"Bearer {token_of(system, users[BOB])}"})
        missing = client.post("/v1/chat/completions", json=body)
        right = client.post("/v1/chat/completions", json=body,
                            headers={"Authorization": f"Bearer {token_of(system, users[ALICE])}"})
    assert wrong.status_code == 401 and missing.status_code == 401
    assert right.status_code == 200, right.text


def test_ports_are_distinct_and_recorded(system, users):
    alice, bob = tenant_of(system, users[ALICE]), tenant_of(system, users[BOB])
    assert alice["port"] != bob["port"]
    recorded = (system.state / "tenants" / str(users[ALICE].pw_uid) / "port").read_text().strip()
    assert int(recorded) == alice["port"]


def test_an_sdk_request_through_the_socket_reaches_the_upstream(system, users, fakes):
    import openai

    # Built before the fork: the SDK imports modules lazily, and the user cannot read root's site-packages.
    http = httpx.Client(transport=httpx.HTTPTransport(uds=str(tenant_socket(users[ALICE]))), timeout=30)
    client = openai.OpenAI(base_url="http://localhost/v1", api_key="unused", http_client=http, max_retries=0)
    completions = client.chat.completions

    def ask() -> str:
        reply = completions.create(model=alias("openai"), messages=[{"role": "user", "content": "hi"}])
        return reply.choices[0].message.content or ""

    answer = as_user(users[ALICE], ask)
    assert "ok" in answer, answer
    assert fakes["openai"].chat_exchanges(), "the fake upstream saw no request"
    assert tenant_of(system, users[ALICE])["requests"] >= 1


def test_a_user_outside_the_pam_group_is_refused_with_the_reason(system):
    result = system.rosetta(CAROL, "enable")
    assert result.returncode != 0
    assert "PAM" in result.stderr and PAM_SERVICE in result.stderr and CAROL in result.stderr
    assert "Authentication failure" in result.stderr or "Permission denied" in result.stderr
    assert not tenant_socket(pwd.getpwnam(CAROL)).exists()


def test_status_as_root_shows_every_tenant(system, users):
    result = system.rosettad_status(None, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {t["user"] for t in report["tenants"]} >= {ALICE, BOB}
    assert report["daemon"]["config"] == str(system.config) and report["daemon"]["scope"] == "all"
    table = system.rosettad_status(None)
    assert ALICE in table.stdout and BOB in table.stdout and "PORT" in table.stdout


def test_status_as_a_user_shows_only_their_own(system, users):
    result = system.rosettad_status(ALICE, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [t["user"] for t in report["tenants"]] == [ALICE]
    assert report["daemon"]["scope"] == "own"


def test_status_as_an_admin_group_member_shows_every_tenant(system, users):
    report = json.loads(system.rosettad_status(DAVE, "--json").stdout)
    assert {t["user"] for t in report["tenants"]} >= {ALICE, BOB}


def test_a_missing_pam_service_file_refuses_everyone(users, fakes):
    root = make_root()
    config = to_yaml(gateway_config(fakes["openai"], fakes["anthropic"]))
    daemon = SystemDaemon(root, config, "rosettad-it-missing").start()
    try:
        for name in (ALICE, BOB, CAROL):
            result = daemon.rosetta(name, "enable")
            assert result.returncode != 0
            assert "does not exist" in result.stderr, result.stderr
        assert daemon.status_as_root()["tenants"] == []
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_tenants_come_back_after_a_restart_and_disable_removes_the_socket(users, fakes):
    root = make_root()
    config = to_yaml(gateway_config(fakes["openai"], fakes["anthropic"]))
    daemon = SystemDaemon(root, config, PAM_SERVICE).start()
    user = users[DAVE]
    try:
        assert daemon.rosetta(DAVE, "enable").returncode == 0
        token = token_of(daemon, user)
        port = tenant_of(daemon, user)["port"]
        assert daemon.stop() == 0
        registry = daemon.state / "tenants.json"
        assert stat.S_IMODE(registry.stat().st_mode) == 0o600
        daemon.start()
        again = tenant_of(daemon, user)
        assert again["state"] == "serving" and again["port"] == port
        assert as_user(user, lambda: raw_http(str(tenant_socket(user)), "GET", "/rosetta/v1/token"))["ok"][0] == 200
        assert token_of(daemon, user) == token
        result = daemon.rosetta(DAVE, "disable")
        assert result.returncode == 0, result.stderr
        assert not tenant_socket(user).exists()
        assert daemon.status_as_root()["tenants"] == []
    finally:
        daemon.rosetta(DAVE, "disable")
        if daemon.process and daemon.process.poll() is None:
            daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_one_tenants_broken_socket_directory_does_not_stop_the_others(system, users):
    bob = users[BOB]
    run_dir = Path(bob.pw_dir) / ".local" / "run"
    # Bob's socket directory becomes a file: his tenant cannot start, alice's keeps serving.
    assert system.rosetta(BOB, "disable").returncode == 0
    shutil.rmtree(run_dir)
    run_dir.write_text("not a directory")
    os.chown(run_dir, bob.pw_uid, bob.pw_gid)
    try:
        result = system.rosetta(BOB, "enable")
        assert result.returncode != 0 and "could not start" in result.stderr, result.stderr
        assert tenant_of(system, bob)["state"] == "failed"
        assert tenant_of(system, users[ALICE])["state"] == "serving"
        assert system.process.poll() is None
    finally:
        run_dir.unlink()
        assert system.rosetta(BOB, "enable").returncode == 0
        assert tenant_of(system, bob)["state"] == "serving"


def test_enable_never_takes_over_a_socket_someone_listens_on(system, users):
    dave = users[DAVE]
    path = tenant_socket(dave)
    for directory in (path.parent.parent, path.parent):
        directory.mkdir(mode=0o700, exist_ok=True)
        os.chown(directory, dave.pw_uid, dave.pw_gid)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
        os.chown(path, dave.pw_uid, dave.pw_gid)
        path.chmod(0o600)
        listener.listen(4)
        result = system.rosetta(DAVE, "enable")
        assert result.returncode != 0 and "another server listens" in result.stderr, result.stderr
        assert tenant_of(system, dave)["state"] == "failed"
    finally:
        listener.close()
    # Now only a stale socket file is left: enabling again replaces it.
    result = system.rosetta(DAVE, "enable")
    assert result.returncode == 0, result.stderr
    assert tenant_of(system, dave)["state"] == "serving"
    assert system.rosetta(DAVE, "disable").returncode == 0
    assert not path.exists()
