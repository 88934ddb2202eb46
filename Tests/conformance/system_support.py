"""Shared pieces of the system-mode live tests: real users and groups, a PAM test service, a system daemon.

Used by test_system_mode.py and test_systemd.py. Needs root; `need_root()` skips without it unless
$CI is set (then it fails).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from harness import OPENAI_KEY_VARIABLE, OPENAI_UPSTREAM_KEY, eventually, rosetta_binary, rosettad_binary

ALLOWED_GROUP = "rosetta-it-allowed"
ADMIN_GROUP = "rosetta-it-admins"
ALICE, BOB, CAROL, DAVE = "rosetta-it-alice", "rosetta-it-bob", "rosetta-it-carol", "rosetta-it-dave"
PAM_SERVICE = "rosettad-it"


_USER_BINARIES: dict[str, Path] = {}


def user_binary(name: str) -> Path:
    """A copy of a built binary that other users can execute (the checkout may be under root's 0700 home)."""
    if name not in _USER_BINARIES:
        directory = Path(tempfile.mkdtemp(prefix="rosettad-it-bin-"))
        directory.chmod(0o755)
        source = rosetta_binary() if name == "rosetta" else rosettad_binary()
        target = directory / name
        shutil.copy2(source, target)
        target.chmod(0o755)
        _USER_BINARIES[name] = target
    return _USER_BINARIES[name]


def need_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("this test needs root and $CI is set: run the suite as root in CI")
        pytest.skip("needs root")


def ensure_group(name: str) -> None:
    try:
        grp.getgrnam(name)
    except KeyError:
        subprocess.run(["groupadd", name], check=True, capture_output=True)


def ensure_user(name: str, groups: list[str]) -> pwd.struct_passwd:
    """A real account with a home directory, member of exactly `groups` (idempotent)."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/sh", name], check=True,
                       capture_output=True)
    subprocess.run(["usermod", "-G", ",".join(groups), name], check=True, capture_output=True)
    return pwd.getpwnam(name)


class SystemDaemon:
    """One `rosettad serve` (system mode) with its own config, state dir, control socket and PAM dir."""

    def __init__(self, root: Path, config_text: str, pam_service: str) -> None:
        self.root = root
        self.config = root / "rosettad.yaml"
        self.config.write_text(config_text)
        self.state = root / "state"
        self.control = root / "run" / "control.sock"
        self.pam_dir = root / "pam.d"
        self.pam_service = pam_service
        self.log = root / "rosettad.log"
        self.process: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        return [str(rosettad_binary()), "serve", "--config", str(self.config), "--state-dir", str(self.state),
                "--control-socket", str(self.control), "--pam-service", self.pam_service, "--pam-dir", str(self.pam_dir)]

    def start(self, *, env: dict[str, str] | None = None, prefix: list[str] | None = None,
              pass_fds: tuple[int, ...] = (), wait: bool = True) -> "SystemDaemon":
        """Launches the daemon (after `prefix`, e.g. a wrapper) and, with `wait`, waits until the control socket answers."""
        process_env = {**os.environ, OPENAI_KEY_VARIABLE: OPENAI_UPSTREAM_KEY, **(env or {})}
        self.process = subprocess.Popen([*(prefix or []), *self.argv()], stdout=self.log.open("ab"),
                                        stderr=subprocess.STDOUT, env=process_env, pass_fds=pass_fds)
        if wait:
            eventually(lambda: self.control.exists() and self.status_as_root(), timeout=20, what="control socket answers")
        return self

    def stop(self) -> int:
        assert self.process
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def status_as_root(self) -> dict | None:
        try:
            with httpx.Client(transport=httpx.HTTPTransport(uds=str(self.control)), base_url="http://localhost") as c:
                return c.get("/rosetta/v1/tenants").json()
        except httpx.HTTPError:
            return None

    def rosetta(self, user: str, *args: str) -> subprocess.CompletedProcess:
        """`rosetta ARGS --control-socket …` as a user (runuser, a login-like environment)."""
        return subprocess.run(["runuser", "-u", user, "--", str(user_binary("rosetta")), *args, "--control-socket",
                               str(self.control)], capture_output=True, text=True, timeout=60)

    def rosettad_status(self, user: str | None, *args: str) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", user, "--"] if user else []
        return subprocess.run([*prefix, str(user_binary("rosettad")), "status", "--control-socket", str(self.control), *args],
                              capture_output=True, text=True, timeout=30)


def as_user(user: pwd.struct_passwd, action) -> Any:
    """Runs `action()` in a forked child with the user's uid, gid and groups; returns its JSON-able result."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        try:  # the child must never return into pytest, whatever happens
            os.setgroups(os.getgrouplist(user.pw_name, user.pw_gid))
            os.setresgid(user.pw_gid, user.pw_gid, user.pw_gid)
            os.setresuid(user.pw_uid, user.pw_uid, user.pw_uid)
            payload = json.dumps({"ok": action()})
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            payload = json.dumps({"error": f"{type(error).__name__}: {error}"})
        finally:
            try:
                os.write(write_end, payload.encode())  # type: ignore[possibly-undefined]
            finally:
                os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks) or b'{"error": "child died"}')


def raw_http(socket_path: str, method: str, path: str, body: bytes = b"") -> tuple[int, str]:
    """A minimal HTTP/1.1 exchange on a Unix socket (no library state, safe after fork)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(10)
        connection.connect(socket_path)
        data = b""
        try:  # a refused peer's connection is closed by the server right after accept
            connection.sendall(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
            while chunk := connection.recv(65536):
                data += chunk
        except (BrokenPipeError, ConnectionResetError):
            return 0, ""
    if not data:
        return 0, ""
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), rest.decode(errors="replace")


@pytest.fixture(scope="module", autouse=True)
def remove_user_binaries() -> Iterator[None]:
    yield
    for path in _USER_BINARIES.values():
        shutil.rmtree(path.parent, ignore_errors=True)
    _USER_BINARIES.clear()


@pytest.fixture(scope="module")
def users() -> dict[str, pwd.struct_passwd]:
    need_root()
    for group in (ALLOWED_GROUP, ADMIN_GROUP):
        ensure_group(group)
    return {
        ALICE: ensure_user(ALICE, [ALLOWED_GROUP]),
        BOB: ensure_user(BOB, [ALLOWED_GROUP]),
        CAROL: ensure_user(CAROL, []),
        DAVE: ensure_user(DAVE, [ALLOWED_GROUP, ADMIN_GROUP]),
    }


def make_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="rosettad-sys-"))
    root.chmod(0o755)  # users must reach the control socket
    (root / "pam.d").mkdir()
    (root / "pam.d" / PAM_SERVICE).write_text(f"account required pam_succeed_if.so user ingroup {ALLOWED_GROUP}\n")
    return root


def tenant_socket(user: pwd.struct_passwd) -> Path:
    return Path(user.pw_dir) / ".local" / "run" / "rosetta.sock"


def tenant_of(system: SystemDaemon, user: pwd.struct_passwd) -> dict:
    report = system.status_as_root()
    assert report
    return next(t for t in report["tenants"] if t["uid"] == user.pw_uid)


def token_of(system: SystemDaemon, user: pwd.struct_passwd) -> str:
    return (system.state / "tenants" / str(user.pw_uid) / "token").read_text().strip()
