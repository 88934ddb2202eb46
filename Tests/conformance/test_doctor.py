"""`rosetta doctor` and `rosetta status` against real daemons, healthy and deliberately broken (issue 7, items 3–4).

Each broken set-up is one a user really hits: no daemon, a stale socket after a crash, a socket someone opened up,
a token file changed behind the daemon's back, an old token still exported in the shell, an Argo tunnel cooling
down after a wrong key, an ALCF provider never logged in. Each asserts the exit status, the message and the fix.
The system daemon's control socket is pointed at a path that does not exist, so the host's state does not matter.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from argo_fixtures import argo_config, argo_env, argo_tools_missing  # noqa: F401 (argo_env is a fixture)
from harness import Daemon, gateway_config, rosetta_binary, to_yaml
from system_support import BOB, PAM_SERVICE, SystemDaemon, make_root, remove_user_binaries, users  # noqa: F401
from test_alcf import alcf, alcf_config, globus  # noqa: F401 (fixtures)


def run_rosetta(daemon: Daemon | None, *args: str, socket: Path | None = None, home: Path | None = None,
                env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """`rosetta ARGS` with the daemon's HOME and socket; status and doctor also see no system daemon."""
    environment = daemon.process_env() if daemon else {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    if home is not None:
        environment["HOME"] = str(home)
    environment.update(env or {})
    socket_path = socket or daemon.socket
    nowhere = Path(tempfile.gettempdir()) / "rosetta-doctor-no-control.sock"
    probes = ["--control-socket", str(nowhere)] if args[0] in ("status", "doctor") else []
    return subprocess.run([str(rosetta_binary()), *args, "--socket", str(socket_path), *probes],
                          capture_output=True, text=True, timeout=timeout, env=environment)


def doctor(daemon: Daemon | None, *args: str, **options) -> subprocess.CompletedProcess:
    return run_rosetta(daemon, "doctor", *args, **options)


def line(output: str, subject: str) -> str:
    """The doctor line for a subject, with its fix line if any."""
    lines = output.splitlines()
    for index, text in enumerate(lines):
        if text[5:].startswith(subject + " ") or text[5:] == subject:
            following = lines[index + 1] if index + 1 < len(lines) and lines[index + 1].lstrip().startswith("fix:") else ""
            return text + "\n" + following
    raise AssertionError(f"no line for {subject!r} in:\n{output}")


@pytest.fixture
def empty_home() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="rosetta-dr-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------
# Healthy
# --------------------------------------------------------------------------


def test_a_healthy_gateway_passes_every_check_and_exits_0(start_daemon):
    daemon = start_daemon()
    result = doctor(daemon)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.startswith("ok   daemon") and "(user mode)" in out  # plain ASCII: not a terminal
    assert "ok   socket" in out and "mode 0600, in a 0700 directory" in out
    assert f"ok   token " in out and f"http://127.0.0.1:{daemon.port} accepts your token" in out
    assert "holds the current token" in line(out, "token file")
    assert "fake-openai" in out and "not probed" in line(out, "fake-openai")
    assert out.rstrip().endswith("All checks passed.")
    assert daemon.token not in out and "FAIL" not in out and "WARN" not in out

    as_json = doctor(daemon, "--json")
    report = json.loads(as_json.stdout)
    assert as_json.returncode == 0 and report["exit_status"] == 0
    assert [r["subject"] for r in report["results"]][:4] == ["daemon", "socket", "token", "token file"]
    assert {r["outcome"] for r in report["results"]} == {"ok"}
    # Asking for tunnels where none are configured is an answer, not an error the daemon logs as a failure.
    assert "request failed" not in daemon.logs()


# --------------------------------------------------------------------------
# The daemon
# --------------------------------------------------------------------------


def test_no_daemon_fails_with_how_to_start_it_and_skips_what_needs_it(empty_home):
    socket = empty_home / ".local" / "run" / "rosetta.sock"
    result = doctor(None, socket=socket, home=empty_home)
    assert result.returncode == 1, result.stdout
    daemon_line = line(result.stdout, "daemon")
    assert daemon_line.startswith("FAIL daemon") and f"no rosettad serves you: {socket} does not exist" in daemon_line
    assert "fix: rosettad serve --user" in daemon_line
    for subject in ("socket", "token", "providers"):
        assert line(result.stdout, subject).startswith("skip")
    # With the user unit installed, the fix is systemctl.
    unit = empty_home / ".config" / "systemd" / "user" / "rosettad.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\n")
    assert "fix: systemctl --user start rosettad" in doctor(None, socket=socket, home=empty_home).stdout

    status = run_rosetta(None, "status", socket=socket, home=empty_home)
    assert status.returncode == 1 and "does not exist" in status.stderr and "fix: systemctl --user start rosettad" in status.stderr


def test_a_stale_socket_after_a_crash_is_named(start_daemon):
    daemon = start_daemon()
    daemon.process.send_signal(signal.SIGKILL)
    daemon.process.wait()
    assert daemon.socket.exists()
    result = doctor(daemon)
    assert result.returncode == 1
    daemon_line = line(result.stdout, "daemon")
    assert "exists but nothing listens on it (rosettad stopped or crashed)" in daemon_line
    assert "fix: rosettad serve --user" in daemon_line
    assert line(result.stdout, "socket").startswith("ok   socket")  # the file itself is still fine


def test_a_socket_others_can_open_fails_and_the_fix_works(start_daemon):
    daemon = start_daemon()
    daemon.socket.chmod(0o666)
    result = doctor(daemon)
    assert result.returncode == 1, result.stdout
    socket_line = line(result.stdout, "socket")
    assert socket_line.startswith("FAIL socket") and "has mode 0666; it must be 0600 so only you can connect" in socket_line
    fix = socket_line.split("fix: ", 1)[1].strip()
    assert fix == f"chmod 600 '{daemon.socket}'"
    assert "mode 0666" in run_rosetta(daemon, "status").stdout
    subprocess.run(fix, shell=True, check=True)
    assert doctor(daemon).returncode == 0


def test_an_open_socket_directory_fails(start_daemon):
    daemon = start_daemon()
    daemon.socket.parent.chmod(0o755)
    result = doctor(daemon)
    assert result.returncode == 1
    assert f"fix: chmod 700 '{daemon.socket.parent}'" in line(result.stdout, "socket")


def test_system_mode_not_enabled_names_rosetta_enable_then_passes(users, fakes):  # noqa: F811 (fixtures)
    root = make_root()
    system = SystemDaemon(root, to_yaml(gateway_config(fakes["openai"], fakes["anthropic"])) + "\n", PAM_SERVICE).start()
    try:
        system.rosetta(BOB, "disable")
        before = system.rosetta(BOB, "doctor")
        assert before.returncode == 1, before.stdout + before.stderr
        daemon_line = line(before.stdout, "daemon")
        assert "the host's rosettad runs but is not enabled for you" in daemon_line and "fix: rosetta enable" in daemon_line

        assert system.rosetta(BOB, "enable").returncode == 0
        after = system.rosetta(BOB, "doctor")
        assert after.returncode == 0, after.stdout + after.stderr
        assert "(system mode)" in line(after.stdout, "daemon")
        assert "kept by the host's rosettad" in line(after.stdout, "token file")
        status = system.rosetta(BOB, "status")
        assert status.returncode == 0 and "(system mode)" in status.stdout.splitlines()[0]
        assert re.search(r"requests     \d+ served, \d+ errors, \d+ in flight; upstream slots: ", status.stdout) and "kept by the host's rosettad (root only)" in status.stdout
        report = json.loads(system.rosetta(BOB, "status", "--json").stdout)
        assert report["mode"] == "system" and report["system_tenant"]["state"] == "serving"
        assert report["token_file"] == {"state": "kept_by_system_daemon"}
    finally:
        system.rosetta(BOB, "disable")
        system.stop()
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------
# The token
# --------------------------------------------------------------------------


def test_a_token_file_changed_behind_the_daemons_back_is_fixed_by_rotating(start_daemon):
    daemon = start_daemon()
    token_file = daemon.state_dir / "token"
    token_file.write_text("rst-" + "x" * 43 + "\n")  # e.g. copied from another machine
    result = doctor(daemon)
    assert result.returncode == 1, result.stdout
    token_line = line(result.stdout, "token file")
    assert "holds another token than rosettad checks" in token_line and "clients that read the file get 401" in token_line
    assert "fix: rosetta token --rotate" in token_line
    assert "holds ANOTHER token" in run_rosetta(daemon, "status").stdout
    rotated = run_rosetta(daemon, "token", "--rotate")
    assert rotated.returncode == 0
    healed = doctor(daemon)
    assert healed.returncode == 0, healed.stdout


def test_an_old_token_still_exported_warns_and_exits_2(start_daemon):
    daemon = start_daemon()
    old = daemon.token
    assert run_rosetta(daemon, "token", "--rotate").returncode == 0
    result = doctor(daemon, env={"OPENAI_API_KEY": old, "ANTHROPIC_API_KEY": daemon.token})
    assert result.returncode == 2, result.stdout
    warning = line(result.stdout, "environment")
    assert warning.startswith("WARN environment") and "$OPENAI_API_KEY holds an older gateway token; requests with it get 401" in warning
    assert 'fix: export OPENAI_API_KEY="$(rosetta token)"' in warning
    assert old not in result.stdout and daemon.token not in result.stdout
    assert "1 warning" in result.stdout


# --------------------------------------------------------------------------
# Providers
# --------------------------------------------------------------------------


@pytest.fixture
def argo_daemon_with_wrong_key(argo_env) -> Iterator[Daemon]:
    if argo_tools_missing():
        pytest.skip("the Argo tunnel tests need openssl, ssh and /usr/sbin/sshd")
    argo, sshd = argo_env
    daemon = Daemon(argo_config(argo, sshd, key="wrong_key")).start()
    yield daemon
    daemon.cleanup()


def test_an_argo_tunnel_cooling_down_after_a_wrong_key_names_tunnel_login(argo_daemon_with_wrong_key):
    daemon = argo_daemon_with_wrong_key
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    with daemon.http() as client:
        assert client.post("/v1/chat/completions", json=body).status_code == 503
        time.sleep(1.1)  # the first backoff is at most 1 s
        assert client.post("/v1/chat/completions", json=body).json()["error"]["code"] == "argo_tunnel_cooling_down"
    result = doctor(daemon)
    assert result.returncode == 1, result.stdout
    tunnel = line(result.stdout, "argo tunnel")
    assert tunnel.startswith("FAIL argo tunnel") and "cooling down" in tunnel and "Permission denied" in tunnel
    assert "fix: rosetta tunnel login" in tunnel
    assert line(result.stdout, "daemon").startswith("ok")

    status = run_rosetta(daemon, "status")
    assert status.returncode == 0 and "tunnels" in status.stdout and "run: rosetta tunnel login" in status.stdout
    assert json.loads(run_rosetta(daemon, "status", "--json").stdout)["tunnels"][0]["state"] == "cooling_down"

    assert run_rosetta(daemon, "tunnel", "reset").returncode == 0
    assert "idle" in line(doctor(daemon).stdout, "argo tunnel")


def test_an_alcf_provider_never_logged_in_names_rosetta_login_alcf(globus, alcf):  # noqa: F811 (fixtures)
    daemon = Daemon(alcf_config(globus, alcf)).start()
    try:
        result = doctor(daemon)
        assert result.returncode == 1, result.stdout
        login = line(result.stdout, "alcf login")
        assert login.startswith("FAIL alcf login") and "not logged in to Globus" in login
        assert "fix: rosetta login alcf" in login
        status = run_rosetta(daemon, "status")
        assert status.returncode == 0 and "logins" in status.stdout and "run: rosetta login alcf" in status.stdout
        assert json.loads(run_rosetta(daemon, "status", "--json").stdout)["globus"]["alcf"]["state"] == "logged_out"
    finally:
        daemon.cleanup()


# --------------------------------------------------------------------------
# rosetta status
# --------------------------------------------------------------------------


def test_status_shows_mode_socket_port_token_file_counters_and_models(start_daemon):
    daemon = start_daemon()
    result = run_rosetta(daemon, "status")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("rosettad ") and "(user mode), serving since " in out.splitlines()[0]
    assert f"unix socket  {daemon.socket}  (yours, mode 0600, directory 0700)" in out
    assert f"loopback     http://127.0.0.1:{daemon.port}  (token: `rosetta token`)" in out
    assert f"token file   {daemon.state_dir / 'token'}  (mode 0600, holds the current token)" in out
    assert "upstream slots: 0 in flight, 0 queued, 0 refused" in out
    assert "models\n  fake-anthropic: " in out and "gpt-test" in out and "→ fake-gpt" in out
    assert daemon.token not in out

    report = json.loads(run_rosetta(daemon, "status", "--json").stdout)
    # Everything the daemon's status answer had is still there, at the same place.
    assert report["user"] and report["port"] == daemon.port and report["socket"] == str(daemon.socket)
    assert report["upstream_slots"]["max_in_flight"] >= 1 and "gpt-test" in report["models"]
    assert report["mode"] == "user"
    assert report["socket_file"] == {"path": str(daemon.socket), "owner_uid": os.getuid(), "mode": "0600",
                                     "directory_mode": "0700"}
    assert report["token_file"] == {"path": str(daemon.state_dir / "token"), "state": "current", "mode": "0600"}
    assert [p["name"] for p in report["providers"]] == ["fake-anthropic", "fake-openai"]
    assert report["tunnels"] == []
    assert daemon.token not in json.dumps(report)
