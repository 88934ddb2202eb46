"""Argo through the tenant's SSH tunnel: a real sshd on loopback, a fake Argo over HTTPS with a test CA.

Each daemon here is this module's own (not the shared `gateway`). Run with:
  ROSETTAD_BIN=... ROSETTA_BIN=... python -m pytest -q Tests/conformance -k argo
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Iterator

import anthropic
import httpx
import openai
import pytest

from argo_fixtures import (ARGO_USER, argo_config, argo_env, argo_tools_missing,  # noqa: F401 (fixtures)
                           start_argo_daemon)
from fake_argo import ARGO_HOST, NOTICE_USER, FakeArgo, LoopbackSSHD, make_test_pki
from harness import STREAM_FAILURES, Daemon, eventually

if argo_tools_missing():
    pytest.skip("the Argo tunnel tests need openssl, ssh and /usr/sbin/sshd", allow_module_level=True)


@pytest.fixture(scope="module")
def argo_daemon(argo_env: tuple[FakeArgo, LoopbackSSHD]) -> Iterator[Daemon]:
    argo, sshd = argo_env
    daemon = Daemon(argo_config(argo, sshd)).start()
    yield daemon
    daemon.cleanup()


def tunnel_status(daemon: Daemon) -> dict:
    with daemon.http("unix") as client:
        response = client.get("/rosetta/v1/tunnel")
        assert response.status_code == 200, response.text
        return response.json()["tunnels"][0]


def ssh_processes(socket_path: str) -> list[int]:
    """PIDs of ssh processes forwarding this socket."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"ssh") and any(socket_path.encode() in a for a in argv):
            pids.append(int(entry.name))
    return pids


# --------------------------------------------------------------------------


def test_argo_first_request_starts_the_tunnel_and_carries_the_tenants_identity(argo_daemon, argo_env):
    argo, _ = argo_env
    argo.clear()
    status = tunnel_status(argo_daemon)
    assert status["state"] == "idle", status
    assert not ssh_processes(status["socket"])

    client = argo_daemon.openai()
    reply = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}],
        user="mallory", extra_headers={"x-api-key": "mallory-key"})
    assert reply.choices[0].message.content == "hello from argo gpt4o"

    status = tunnel_status(argo_daemon)
    assert status["state"] == "up", status
    assert status["mode"] == "standalone"
    socket_path = Path(status["socket"])
    assert socket_path.is_socket()
    assert oct(socket_path.parent.stat().st_mode & 0o777) == "0o700"
    assert ssh_processes(str(socket_path)) == [status["ssh_pid"]]

    (exchange,) = argo.posts()
    assert exchange.path == "/argoapi/v1/chat/completions"
    assert exchange.headers["host"] == ARGO_HOST
    assert exchange.headers["x-api-key"] == ARGO_USER
    assert exchange.headers["authorization"] == f"Bearer {ARGO_USER}"
    assert exchange.body["user"] == ARGO_USER
    assert "mallory" not in json.dumps(exchange.body) and "mallory" not in json.dumps(exchange.headers)
    # Argo quirk: no developer role.
    assert [m["role"] for m in exchange.body["messages"]] == ["system", "user"]


def test_argo_claude_goes_to_messages_streamed_and_assembled(argo_daemon, argo_env):
    argo, _ = argo_env
    argo.clear()
    message = argo_daemon.anthropic().messages.create(
        model="claude-opus-4-8", max_tokens=100, extra_body={"temperature": 0.5}, messages=[{"role": "user", "content": "hi"}],
        metadata={"user_id": "mallory"})
    assert message.content[0].text == "hello from argo claudeopus48"
    (exchange,) = argo.posts()
    assert exchange.path == "/argoapi/v1/messages"
    assert exchange.body["stream"] is True  # the 10-minute rule: always streamed upstream
    assert "temperature" not in exchange.body  # Opus 4.8 rejects temperature
    assert exchange.body["user"] == ARGO_USER
    assert exchange.headers["x-api-key"] == ARGO_USER


def test_argo_openai_sdk_streams_claude_and_anthropic_sdk_streams_gpt(argo_daemon, argo_env):
    text = "".join(chunk.choices[0].delta.content or "" for chunk in argo_daemon.openai().chat.completions.create(
        model="anthropic/claude-opus-4-8", messages=[{"role": "user", "content": "hi"}], stream=True)
        if chunk.choices)
    assert text == "hello from argo claudeopus48"
    with argo_daemon.anthropic().messages.stream(
            model="GPT-4o", max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as stream:
        assert "".join(stream.text_stream) == "hello from argo gpt4o"


def test_argo_gpt5_and_gemini_quirks(argo_daemon, argo_env):
    argo, _ = argo_env
    argo.clear()
    argo_daemon.openai().chat.completions.create(
        model="gpt-5", temperature=0.3, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    argo_daemon.openai().chat.completions.create(
        model="gemini-2.5-pro", temperature=0.3,
        messages=[{"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                  {"role": "user", "content": "hi"}])
    gpt5, gemini = argo.posts()
    assert "temperature" not in gpt5.body and gpt5.body["max_completion_tokens"] == 64 and "max_tokens" not in gpt5.body
    assert "temperature" not in gemini.body
    assert gemini.body["messages"][0] == {"role": "system", "content": "a\n\nb"}


def test_argo_ssh_killed_mid_stream_gives_an_error_event_then_recovers(argo_daemon, argo_env):
    client = argo_daemon.openai()
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "warm up"}])
    pid = tunnel_status(argo_daemon)["ssh_pid"]
    received = []
    with pytest.raises(STREAM_FAILURES):
        stream = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "slow please"}], stream=True)
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
            if len(received) == 3:
                os.kill(pid, signal.SIGKILL)
    assert 3 <= len(received) < 40
    eventually(lambda: tunnel_status(argo_daemon)["state"] in ("backoff", "idle"), what="the tunnel to notice")
    status = tunnel_status(argo_daemon)
    assert status["last_failure"]["class"] == "network"
    # The next request recovers (it waits out the short backoff).
    reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "again"}])
    assert reply.choices[0].message.content == "hello from argo gpt4o"
    assert tunnel_status(argo_daemon)["ssh_pid"] != pid


def test_argo_cli_tunnel_status_stop_and_lazy_restart(argo_daemon):
    argo_daemon.openai().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    shown = argo_daemon.cli("tunnel", "status")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["tunnels"][0]["state"] == "up"
    stopped = argo_daemon.cli("tunnel", "stop")
    assert stopped.returncode == 0, stopped.stderr
    status = json.loads(stopped.stdout)["tunnels"][0]
    assert status["state"] == "idle"
    eventually(lambda: not ssh_processes(status["socket"]), what="ssh to exit after stop")
    reply = argo_daemon.openai().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "hello from argo gpt4o"
    assert tunnel_status(argo_daemon)["state"] == "up"


def test_argo_wrong_key_backs_off_then_cools_down_with_the_command_to_run(start_argo_daemon):
    daemon = start_argo_daemon(key="wrong_key")
    with daemon.http() as client:
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        first = client.post("/v1/chat/completions", json=body)
        assert first.status_code == 503, first.text
        error = first.json()["error"]
        assert error["code"] == "argo_tunnel_backoff"
        assert "Permission denied" in error["message"]
        time.sleep(1.1)  # the first backoff is at most 1 s
        second = client.post("/v1/chat/completions", json=body)
        assert second.status_code == 503, second.text
        error = second.json()["error"]
        assert error["code"] == "argo_tunnel_cooling_down"
        assert "cooling down" in error["message"]
        assert "rosetta tunnel login" in error["message"] and "rosetta tunnel reset" in error["message"]
        assert int(second.headers["retry-after"]) > 800
        # Further requests are refused at once, without another ssh attempt.
        attempts = tunnel_status(daemon)["attempts"]
        third = client.post("/v1/messages", json={"model": "claude-opus-4-8", "max_tokens": 10,
                                                  "messages": [{"role": "user", "content": "hi"}]})
        assert third.status_code == 503 and third.json()["type"] == "error"
        assert "cooling down" in third.json()["error"]["message"]
        assert tunnel_status(daemon)["attempts"] == attempts
    reset = daemon.cli("tunnel", "reset")
    assert reset.returncode == 0, reset.stderr
    assert json.loads(reset.stdout)["tunnels"][0]["state"] == "idle"


def test_argo_unknown_host_key_is_a_host_key_failure(start_argo_daemon):
    daemon = start_argo_daemon(known_hosts="empty_known_hosts")
    with daemon.http() as client:
        response = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 503
    assert "host_key" in response.json()["error"]["message"]
    assert tunnel_status(daemon)["last_failure"]["class"] == "host_key"


def test_argo_tunnel_to_a_host_without_argos_certificate_is_never_up(start_argo_daemon, tmp_path):
    # The forward reaches the fake Argo, but the daemon trusts another CA: the socket accepts, the TLS handshake
    # naming Argo's host fails, so the tunnel is not "up" and the request's error says why.
    other_ca = make_test_pki(tmp_path / "other-pki")[0]
    daemon = start_argo_daemon(provider={"ca_file": str(other_ca)})
    with daemon.http() as client:
        response = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 503, response.text
    status = tunnel_status(daemon)
    assert status["state"] != "up", status
    assert status["last_failure"]["class"] == "forward_refused", status
    assert "TLS handshake with" in status["last_failure"]["detail"], status


def test_argo_unregistered_user_notice_becomes_403(start_argo_daemon):
    daemon = start_argo_daemon(user=NOTICE_USER)
    with daemon.http() as client:
        response = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "argo_user_not_registered"
        assert NOTICE_USER in response.json()["error"]["message"]
        response = client.post("/v1/messages", headers={"anthropic-version": "2023-06-01"}, json={
            "model": "claude-opus-4-8", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 403, response.text
        assert response.json()["error"]["type"] == "permission_error"


def test_argo_idle_tunnel_is_stopped_and_restarted_lazily(start_argo_daemon):
    daemon = start_argo_daemon(idle_timeout="2s")
    reply = daemon.openai().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "hello from argo gpt4o"
    socket_path = tunnel_status(daemon)["socket"]
    eventually(lambda: tunnel_status(daemon)["state"] == "idle", timeout=6, what="the idle stop")
    eventually(lambda: not ssh_processes(socket_path), what="ssh to exit")
    reply = daemon.openai().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "hello from argo gpt4o"


def test_argo_daemon_shutdown_stops_ssh(start_argo_daemon):
    daemon = start_argo_daemon()
    daemon.openai().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    socket_path = tunnel_status(daemon)["socket"]
    assert ssh_processes(socket_path)
    assert daemon.stop() == 0
    eventually(lambda: not ssh_processes(socket_path), what="ssh to exit with the daemon")


def test_argo_login_opens_a_control_master_that_the_tunnel_reuses(start_argo_daemon, argo_env):
    import subprocess
    from harness import rosetta_binary

    argo, sshd = argo_env
    daemon = start_argo_daemon()
    control_path = Path(tunnel_status(daemon)["control_path"])
    control_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    control_path.write_text("stale")  # a stale control socket is removed before the master starts
    output = daemon.root / "login.out"
    with open(output, "wb") as sink:
        login = subprocess.run([str(rosetta_binary()), "tunnel", "login", "--socket", str(daemon.socket)],
                               stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, timeout=30, env=daemon.process_env())
    assert login.returncode == 0, output.read_text()
    assert control_path.is_socket()
    try:
        reply = daemon.openai().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "hello from argo gpt4o"
        status = tunnel_status(daemon)
        assert status["state"] == "up" and status["mode"] == "control_master", status
        # Stopping cancels the forward but leaves the user's master running.
        daemon.cli("tunnel", "stop")
        eventually(lambda: not Path(status["socket"]).exists(), what="the forward to be cancelled")
        check = subprocess.run(["ssh", "-S", str(control_path), "-O", "check", "x"], capture_output=True)
        assert check.returncode == 0, check.stderr
    finally:
        subprocess.run(["ssh", "-S", str(control_path), "-O", "exit", "x"], capture_output=True)
