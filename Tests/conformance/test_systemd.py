"""System mode under systemd: socket activation, sd_notify, the fd store and zero-downtime restarts, reload, watchdog.

Needs root (real users and sockets in their homes, like test_system_mode.py). systemd itself is not
needed: `systemd-socket-activate` passes sockets, and a datagram socket of the test plays NOTIFY_SOCKET
(receiving the fds pushed with FDSTORE=1 by SCM_RIGHTS), from which a restarted daemon gets them
back through LISTEN_FDS as systemd would.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest

from fakes import SLOW_TEXT
from harness import (OPENAI_KEY_VARIABLE, OPENAI_UPSTREAM_KEY, alias, eventually, gateway_config, rosettad_binary,
                     to_yaml)
from system_support import (ALLOWED_GROUP, PAM_SERVICE, SystemDaemon, as_user, ensure_group, ensure_user, make_root,
                            need_root, raw_http, remove_user_binaries, tenant_of, tenant_socket, token_of)

__all__ = ["remove_user_binaries"]  # fixtures used by name

# Users of their own (not test_system_mode's), so the two modules never share a home socket.
ALICE, BOB, DAVE = "rosetta-it-erin", "rosetta-it-frank", "rosetta-it-grace"


@pytest.fixture(scope="module")
def users() -> dict[str, pwd.struct_passwd]:
    need_root()
    ensure_group(ALLOWED_GROUP)
    return {name: ensure_user(name, [ALLOWED_GROUP]) for name in (ALICE, BOB, DAVE)}

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Notification:
    """One datagram received on NOTIFY_SOCKET: its assignments and the descriptors that came with it."""
    fields: dict[str, str]
    fds: list[int] = field(default_factory=list)


class NotifyListener:
    """An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET; collects messages and fds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.socket.settimeout(0.1)
        self.messages: list[Notification] = []
        self.changed = threading.Condition()
        self.stopped = False
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self) -> None:
        while not self.stopped:
            try:
                data, fds, _, _ = socket.recv_fds(self.socket, 65536, 64)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self.changed:
                self.messages.append(Notification(fields, list(fds)))
                self.changed.notify_all()

    def wait_for(self, predicate: Callable[[Notification], bool], *, after: int = 0, timeout: float = 20,
                 what: str = "") -> Notification:
        """The first message from index `after` on satisfying `predicate`, waiting for it up to `timeout` s."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for message in self.messages[after:]:
                    if predicate(message):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no notification {what}; got {[m.fields for m in self.messages]}")
                self.changed.wait(remaining)

    def count(self) -> int:
        with self.changed:
            return len(self.messages)

    def stored(self) -> dict[str, int]:
        """The fd store as systemd would keep it: the latest descriptor pushed per FDNAME, minus removed names."""
        store: dict[str, int] = {}
        with self.changed:
            for message in self.messages:
                name = message.fields.get("FDNAME")
                if message.fields.get("FDSTORE") == "1" and name and message.fds:
                    store[name] = message.fds[-1]
                elif message.fields.get("FDSTOREREMOVE") == "1" and name:
                    store.pop(name, None)
        return store

    def close(self) -> None:
        self.stopped = True
        self.thread.join(timeout=2)
        self.socket.close()
        for message in self.messages:
            for fd in message.fds:
                try:
                    os.close(fd)
                except OSError:
                    pass


# Runs the daemon the way systemd hands over stored descriptors: moved to 3, 4, … with LISTEN_FDS,
# LISTEN_FDNAMES and LISTEN_PID set to the pid that then execs the daemon (this one).
LISTEN_WRAPPER = """
import fcntl, os, sys
fds = [int(fd) for fd in sys.argv[1].split(",") if fd]
moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, 200) for fd in fds]
for fd in fds:
    os.close(fd)
for index, fd in enumerate(moved):
    os.dup2(fd, 3 + index)
    os.close(fd)
os.environ.update(LISTEN_FDS=str(len(fds)), LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES=sys.argv[2])
os.execv(sys.argv[3], sys.argv[3:])
"""


def listen_wrapper(fds: dict[str, int]) -> list[str]:
    return [sys.executable, "-c", LISTEN_WRAPPER, ",".join(str(fd) for fd in fds.values()), ":".join(fds)]


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifyListener]:
    tmp_path.chmod(0o755)
    listener = NotifyListener(tmp_path / "notify.sock")
    yield listener
    listener.close()


@pytest.fixture
def system_root(users) -> Iterator[Path]:
    root = make_root()
    yield root
    shutil.rmtree(root, ignore_errors=True)


def config_text(fakes, **extra) -> str:
    return to_yaml(gateway_config(fakes["openai"], fakes["anthropic"], **extra))


def chat_on_port(port: int, token: str, model: str, timeout: float = 30) -> httpx.Response:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=timeout) as client:
        return client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {token}"},
                           json={"model": model, "messages": [{"role": "user", "content": "hi"}]})


def disable_all(daemon: SystemDaemon, *names: str) -> None:
    if daemon.process and daemon.process.poll() is None:
        for name in names:
            daemon.rosetta(name, "disable")
        daemon.stop()


def test_systemd_socket_activate_hands_over_the_control_and_tenant_sockets(users, fakes, system_root, notify):
    if not shutil.which("systemd-socket-activate"):
        pytest.fail("systemd-socket-activate is missing (Debian: package systemd)")
    alice = users[ALICE]
    first = SystemDaemon(system_root, config_text(fakes), PAM_SERVICE).start()
    try:
        assert first.rosetta(ALICE, "enable").returncode == 0, first.logs()
        port = tenant_of(first, alice)["port"]
    finally:
        assert first.stop() == 0
    socket_path = tenant_socket(alice)
    socket_path.unlink()
    first.control.unlink()
    stray = system_root / "stray.sock"

    daemon = SystemDaemon(system_root, config_text(fakes), PAM_SERVICE)
    activate = ["systemd-socket-activate", "-l", str(daemon.control), "-l", str(socket_path), "-l", f"127.0.0.1:{port}",
                "-l", str(stray), f"--fdname=control:tenant-{alice.pw_uid}:tenant-tcp-{alice.pw_uid}:mystery",
                "-E", f"{OPENAI_KEY_VARIABLE}={OPENAI_UPSTREAM_KEY}", "-E", f"NOTIFY_SOCKET={notify.path}",
                "-E", "PATH"]
    daemon.start(prefix=activate, wait=False)
    try:
        eventually(lambda: socket_path.exists() and daemon.control.exists(), timeout=10, what="sockets made")
        # systemd-socket-activate makes sockets 0644 root; a real unit would set the owner (here: alice's).
        os.chown(socket_path, alice.pw_uid, alice.pw_gid)
        socket_path.chmod(0o600)
        # The daemon is started by the first connection, which waits in the backlog meanwhile.
        eventually(daemon.status_as_root, timeout=20, what="the activated daemon answers")
        notify.wait_for(lambda m: m.fields.get("READY") == "1", what="READY=1")
        report = daemon.status_as_root()
        assert [(t["user"], t["state"], t["port"]) for t in report["tenants"]] == [(ALICE, "serving", port)]
        # Adopted, not re-bound: the daemon would have made its own control socket 0666.
        assert stat.S_IMODE(daemon.control.stat().st_mode) == 0o644
        logs = daemon.logs()
        assert "adopted the tenant's Unix socket from systemd" in logs and "adopted the tenant's loopback port" in logs
        assert "closing a passed descriptor the daemon has no use for" in logs and "mystery" in logs
        assert as_user(alice, lambda: raw_http(str(socket_path), "GET", "/rosetta/v1/token"))["ok"][0] == 200
        answer = chat_on_port(port, token_of(daemon, alice), alias("openai"))
        assert answer.status_code == 200, answer.text
        # Pushed to the fd store under their names; the control socket came from systemd, so it is not.
        store = notify.stored()
        assert {f"tenant-{alice.pw_uid}", f"tenant-tcp-{alice.pw_uid}"} <= store.keys() and "control" not in store
    finally:
        disable_all(daemon, ALICE)


def test_notify_fd_store_and_a_restart_that_refuses_no_connection(users, fakes, system_root, notify):
    bob = users[BOB]
    env = {"NOTIFY_SOCKET": str(notify.path)}
    first = SystemDaemon(system_root, config_text(fakes), PAM_SERVICE).start(env=env)
    second: SystemDaemon | None = None
    try:
        ready = notify.wait_for(lambda m: m.fields.get("READY") == "1", what="READY=1")
        assert ready.fields["STATUS"] == "serving 0 tenants"
        assert first.rosetta(BOB, "enable").returncode == 0, first.logs()
        notify.wait_for(lambda m: m.fields.get("STATUS") == "serving 1 tenant", what="STATUS after enable")
        store = notify.stored()
        assert set(store) == {"control", f"tenant-{bob.pw_uid}", f"tenant-tcp-{bob.pw_uid}"}, store
        port, token = tenant_of(first, bob)["port"], token_of(first, bob)
        with socket.socket(fileno=os.dup(store[f"tenant-tcp-{bob.pw_uid}"])) as stored_port:
            assert stored_port.getsockname() == ("127.0.0.1", port)

        # Four clients loop on the port (a new connection per request) while the daemon restarts.
        outcomes: list[str] = []
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                try:
                    response = chat_on_port(port, token, alias("openai"), timeout=20)
                    outcomes.append("ok" if response.status_code == 200 else f"status {response.status_code}")
                except httpx.ConnectError as error:
                    refused = isinstance(error.__cause__, ConnectionRefusedError) or "refused" in str(error).lower()
                    outcomes.append("refused" if refused else f"connect error {error}")
                except httpx.HTTPError as error:
                    outcomes.append(f"error {type(error).__name__}: {error}")

        clients = [threading.Thread(target=hammer) for _ in range(4)]
        for client in clients:
            client.start()
        eventually(lambda: outcomes.count("ok") >= 5, timeout=20, what="requests before the restart")
        before = len(notify.messages)
        first.process.send_signal(signal.SIGTERM)
        notify.wait_for(lambda m: m.fields.get("STOPPING") == "1", after=before, what="STOPPING=1")
        assert first.process.wait(timeout=20) == 0
        stopped_at = len(outcomes)

        stored = notify.stored()
        second = SystemDaemon(system_root, config_text(fakes), PAM_SERVICE)
        second.start(env=env, prefix=listen_wrapper(stored), pass_fds=tuple(stored.values()))
        notify.wait_for(lambda m: m.fields.get("READY") == "1", after=before, what="READY=1 after the restart")
        eventually(lambda: outcomes[stopped_at:].count("ok") >= 5, timeout=20, what="requests after the restart")
        stop.set()
        for client in clients:
            client.join(timeout=30)

        # No connection is refused, reset or left unanswered: the listening sockets never closed, and a
        # connection the old daemon accepted as its drain began (even one still being prepared when its
        # listener closed) gets its first request answered before the old daemon exits.
        failures = [outcome for outcome in outcomes if outcome != "ok"]
        assert failures == [], failures
        again = tenant_of(second, bob)
        assert again["state"] == "serving" and again["port"] == port
        logs = second.logs()
        assert "adopted the tenant's Unix socket from systemd" in logs and "adopted the tenant's loopback port" in logs
        assert as_user(bob, lambda: raw_http(str(tenant_socket(bob)), "GET", "/rosetta/v1/token"))["ok"][0] == 200

        # Disabling drops the tenant's sockets from the store.
        mark = notify.count()
        assert second.rosetta(BOB, "disable").returncode == 0
        notify.wait_for(lambda m: m.fields == {"FDSTOREREMOVE": "1", "FDNAME": f"tenant-{bob.pw_uid}"}, after=mark,
                        what="FDSTOREREMOVE for the tenant")
        notify.wait_for(lambda m: m.fields == {"FDSTOREREMOVE": "1", "FDNAME": f"tenant-tcp-{bob.pw_uid}"}, after=mark,
                        what="FDSTOREREMOVE for the port")
    finally:
        for daemon in (first, second):
            if daemon:
                disable_all(daemon, BOB)


def test_sighup_refuses_a_broken_config_and_applies_a_good_one(users, fakes, system_root, notify):
    dave = users[DAVE]
    daemon = SystemDaemon(system_root, config_text(fakes), PAM_SERVICE).start(env={"NOTIFY_SOCKET": str(notify.path)})
    try:
        notify.wait_for(lambda m: m.fields.get("READY") == "1", what="READY=1")
        assert daemon.rosetta(DAVE, "enable").returncode == 0, daemon.logs()
        port, token = tenant_of(daemon, dave)["port"], token_of(daemon, dave)
        assert chat_on_port(port, token, alias("openai")).status_code == 200
        assert daemon.status_as_root()["daemon"]["last_reload"] is None

        # Broken: a model naming a provider that does not exist (line known), and an unknown admin group.
        good = daemon.config.read_text()
        daemon.config.write_text(good + "\n  broken-model:\n    provider: no-such-provider\n")
        mark = notify.count()
        daemon.process.send_signal(signal.SIGHUP)
        notify.wait_for(lambda m: m.fields.get("RELOADING") == "1" and "MONOTONIC_USEC" in m.fields, after=mark,
                        what="RELOADING=1")
        notify.wait_for(lambda m: m.fields.get("READY") == "1", after=mark, what="READY=1 after the reload")
        record = daemon.status_as_root()["daemon"]["last_reload"]
        assert record["result"] == "refused" and record["error"].startswith(f"{daemon.config}:"), record
        assert "configuration reload refused" in daemon.logs()
        assert chat_on_port(port, token, alias("openai")).status_code == 200  # the old config still serves

        daemon.config.write_text(good + "\nadmin_group: rosetta-it-no-such-group\n")
        mark = notify.count()
        daemon.process.send_signal(signal.SIGHUP)
        notify.wait_for(lambda m: m.fields.get("READY") == "1", after=mark, what="READY=1 after the second reload")
        record = daemon.status_as_root()["daemon"]["last_reload"]
        assert record["result"] == "refused" and "rosetta-it-no-such-group" in record["error"], record

        # Good: gpt-test is gone, a new alias appears; a slow stream started before finishes on the old config.
        config = gateway_config(fakes["openai"], fakes["anthropic"])
        config["models"]["gpt-renamed"] = config["models"].pop(alias("openai"))
        pieces = stream_on_port(port, token, alias("openai", "slow"))
        first_piece = next(pieces)
        daemon.config.write_text(to_yaml(config))
        mark = notify.count()
        daemon.process.send_signal(signal.SIGHUP)
        notify.wait_for(lambda m: m.fields.get("READY") == "1", after=mark, what="READY=1 after the good reload")
        assert daemon.status_as_root()["daemon"]["last_reload"]["result"] == "applied"
        assert chat_on_port(port, token, "gpt-renamed").status_code == 200
        assert chat_on_port(port, token, alias("openai")).status_code == 404
        assert first_piece + "".join(pieces) == SLOW_TEXT
        table = daemon.rosettad_status(None)
        assert "last reload" in table.stdout and "applied" in table.stdout, table.stdout
    finally:
        disable_all(daemon, DAVE)


def stream_on_port(port: int, token: str, model: str) -> Iterator[str]:
    import openai

    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=token, max_retries=0, timeout=30)
    with client.chat.completions.create(model=model, messages=[{"role": "user", "content": "a story"}],
                                        stream=True) as chunks:
        for chunk in chunks:
            for choice in chunk.choices:
                if choice.delta.content:
                    yield choice.delta.content


def test_watchdog_pings_arrive_at_half_the_interval(users, fakes, system_root, notify):
    env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000"}
    daemon = SystemDaemon(system_root, config_text(fakes), PAM_SERVICE).start(env=env)
    try:
        first = notify.wait_for(lambda m: m.fields.get("WATCHDOG") == "1", what="a first WATCHDOG=1")
        started = time.monotonic()
        mark = notify.messages.index(first) + 1
        for _ in range(3):
            ping = notify.wait_for(lambda m: m.fields.get("WATCHDOG") == "1", after=mark, timeout=2, what="WATCHDOG=1")
            mark = notify.messages.index(ping) + 1
        assert time.monotonic() - started < 1.6  # three pings at 0.2 s, with slack for a loaded machine
        assert "systemd watchdog enabled" in daemon.logs()
    finally:
        daemon.stop()


def test_without_a_watchdog_there_are_no_pings_and_sigterm_says_stopping(users, fakes, system_root, notify):
    daemon = SystemDaemon(system_root, config_text(fakes), PAM_SERVICE).start(env={"NOTIFY_SOCKET": str(notify.path)})
    notify.wait_for(lambda m: m.fields.get("READY") == "1", what="READY=1")
    assert daemon.stop() == 0
    notify.wait_for(lambda m: m.fields.get("STOPPING") == "1", what="STOPPING=1")
    assert not [m for m in notify.messages if "WATCHDOG" in m.fields]
    assert "systemd watchdog enabled" not in daemon.logs()


def test_sigterm_lets_every_tenant_stream_in_flight_finish(users, fakes, system_root):
    daemon = SystemDaemon(system_root, config_text(fakes), PAM_SERVICE).start()
    try:
        streams = []
        for name in (ALICE, BOB):
            assert daemon.rosetta(name, "enable").returncode == 0, daemon.logs()
            tenant = tenant_of(daemon, users[name])
            pieces = stream_on_port(tenant["port"], token_of(daemon, users[name]), alias("openai", "slow"))
            streams.append((next(pieces), pieces))
        daemon.process.send_signal(signal.SIGTERM)
        for first_piece, pieces in streams:
            assert first_piece + "".join(pieces) == SLOW_TEXT
        assert daemon.process.wait(timeout=20) == 0
    finally:
        for name in (ALICE, BOB):
            tenant_socket(users[name]).unlink(missing_ok=True)
        if daemon.process.poll() is None:
            daemon.stop()


@pytest.mark.parametrize("unit", ["rosettad.service", "rosettad.socket"])
def test_systemd_analyze_verifies_the_units(tmp_path, unit):
    """The shipped units load cleanly; ExecStart points at the built binary (verify needs it to exist)."""
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing (Debian: package systemd)")
    for name in ("rosettad.service", "rosettad.socket"):
        text = (REPO / "deploy" / name).read_text()
        (tmp_path / name).write_text(text.replace("/usr/local/bin/rosettad", str(rosettad_binary())))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / unit)],
                            capture_output=True, text=True, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if str(tmp_path) in line or "rosettad" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def test_install_script_stages_everything_and_keeps_an_existing_config(tmp_path):
    staged = tmp_path / "root"
    (staged / "etc" / "rosettad").mkdir(parents=True)
    (staged / "etc" / "rosettad" / "rosettad.yaml").write_text("# the admin's own\n")
    result = subprocess.run([str(REPO / "deploy" / "install.sh"), "--root", str(staged), "--prefix", "/opt/rosetta",
                             "--from", str(rosettad_binary().parent)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for path, mode in [("opt/rosetta/bin/rosettad", 0o755), ("opt/rosetta/bin/rosetta", 0o755),
                       ("etc/systemd/system/rosettad.service", 0o644), ("etc/systemd/system/rosettad.socket", 0o644),
                       ("etc/pam.d/rosettad", 0o644), ("usr/lib/tmpfiles.d/rosettad.conf", 0o644),
                       ("opt/rosetta/share/doc/rosettad/admin.md", 0o644)]:
        assert stat.S_IMODE((staged / path).stat().st_mode) == mode, path
    assert (staged / "etc" / "rosettad" / "rosettad.yaml").read_text() == "# the admin's own\n"
    assert "kept existing /etc/rosettad/rosettad.yaml" in result.stdout
    unit = (staged / "etc/systemd/system/rosettad.service").read_text()
    assert "ExecStart=/opt/rosetta/bin/rosettad serve" in unit and "/usr/local/bin" not in unit

    dry = subprocess.run([str(REPO / "deploy" / "install.sh"), "--root", str(tmp_path / "dry"), "--dry-run",
                          "--from", str(rosettad_binary().parent)], capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and "would run: install" in dry.stdout, dry.stderr
    assert not (tmp_path / "dry").exists()
