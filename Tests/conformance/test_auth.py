"""Who may talk to the gateway: the token on TCP, the owner on the Unix socket."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

import httpx
import pytest

from harness import (CHAT_PATH, CLIENT_FORMATS, RunAs, alias, assert_anthropic_error, assert_error_in_format,
                     assert_openai_error, assert_upstream_credentials, minimal_body)

each_client = pytest.mark.parametrize("client_format", CLIENT_FORMATS)


def post_chat(gateway, client_format: str, *, transport: str = "tcp", token: str | None = "default",
              headers: dict[str, str] | None = None) -> httpx.Response:
    """POST the smallest valid request of the client format to its path (pass-through model)."""
    with gateway.http(transport, token=token, headers=headers or {}) as client:
        return client.post(CHAT_PATH[client_format], json=minimal_body(client_format, alias(client_format)))


@each_client
def test_tcp_without_token_is_401_in_the_client_format(gateway, fakes, client_format):
    response = post_chat(gateway, client_format, token=None)
    assert_error_in_format(client_format, response, 401, "authentication_error")
    assert not fakes[client_format].chat_exchanges()


@each_client
@pytest.mark.parametrize("header", ["authorization", "x-api-key"])
def test_tcp_with_wrong_token_is_401(gateway, fakes, client_format, header):
    value = "Bearer not-the-token" if header == "authorization" else "not-the-token"
    response = post_chat(gateway, client_format, token=None, headers={header: value})
    assert_error_in_format(client_format, response, 401, "authentication_error")
    assert not fakes[client_format].chat_exchanges()


@each_client
@pytest.mark.parametrize("header", ["authorization", "x-api-key"])
def test_token_is_accepted_in_either_header(gateway, fakes, client_format, header):
    value = f"Bearer {gateway.token}" if header == "authorization" else gateway.token
    response = post_chat(gateway, client_format, token=None, headers={header: value})
    assert response.status_code == 200, response.text
    assert_upstream_credentials(fakes[client_format].settled_chat(), client_format, gateway.token)


def test_model_list_without_token_is_401_in_the_client_format(gateway):
    with gateway.http(token=None) as client:
        assert_openai_error(client.get("/v1/models"), 401)
        assert_anthropic_error(client.get("/v1/models", headers={"anthropic-version": "2023-06-01"}), 401,
                               "authentication_error")


@each_client
def test_unix_socket_needs_no_token(gateway, client_format):
    assert post_chat(gateway, client_format, transport="unix").status_code == 200


def test_socket_and_token_file_are_private(gateway):
    sock, token = gateway.socket.stat(), (gateway.state_dir / "token").stat()
    assert stat.S_ISSOCK(sock.st_mode)
    assert stat.S_IMODE(sock.st_mode) == 0o600
    assert stat.S_IMODE(gateway.socket.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(token.st_mode) == 0o600
    assert sock.st_uid == token.st_uid == os.geteuid()


def test_rosetta_token_prints_the_token(gateway):
    result = gateway.cli("token")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == gateway.token


def test_token_rotation(start_daemon):
    daemon = start_daemon()
    old = daemon.token

    result = daemon.cli("token", "--rotate")
    assert result.returncode == 0, result.stderr
    new = result.stdout.strip()
    assert new and new != old

    with daemon.http(token=old) as client:
        assert_openai_error(client.get("/v1/models"), 401)
    with daemon.http(token=new) as client:
        assert client.get("/v1/models").status_code == 200
    assert daemon.cli("token").stdout.strip() == new == daemon.token


OWNER_PROBE = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"GET /health HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n")
print(s.recv(64).split(b" ")[1].decode())
"""


def test_another_user_is_refused_on_the_socket(start_daemon, fakes, other_user):
    """The daemon runs as another account; root (a different uid) must be turned away by SO_PEERCRED."""
    run_as = RunAs(other_user)
    daemon = start_daemon(run_as=run_as)

    try:  # root ignores the socket's file mode, so only the daemon's peer check can stop this
        with daemon.http("unix", timeout=10) as client:
            status = client.post(CHAT_PATH["openai"], json=minimal_body("openai", alias("openai"))).status_code
    except httpx.TransportError:
        status = "closed"
    assert status in ("closed", 403)
    assert not fakes["openai"].chat_exchanges()

    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    owner = subprocess.run(run_as.prefix() + [python, "-c", OWNER_PROBE, str(daemon.socket)], capture_output=True,
                           text=True, timeout=30)
    assert owner.stdout.strip() == "200", owner.stderr
