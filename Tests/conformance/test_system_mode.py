"""System mode (`rosettad serve` as root): PAM-gated enable, per-user sockets and ports, status scope.

Needs root (real users, a PAM service, sockets in their homes). Without root the tests skip, except
when $CI is set: then they fail, so CI can never silently skip them.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from harness import (OPENAI_KEY_VARIABLE, OPENAI_UPSTREAM_KEY, alias, eventually, gateway_config, rosetta_binary,
                     rosettad_binary, to_yaml)

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

    def start(self) -> "SystemDaemon":
        env = {**os.environ, OPENAI_KEY_VARIABLE: OPENAI_UPSTREAM_KEY}
        self.process = subprocess.Popen(
            [str(rosettad_binary()), "serve", "--config", str(self.config), "--state-dir", str(self.state),
             "--control-socket", str(self.control), "--pam-service", self.pam_service, "--pam-dir", str(self.pam_dir)],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT, env=env)
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


def tenant_socket(user: pwd.struct_passwd) -> Path:
    return Path(user.pw_dir) / ".local" / "run" / "rosetta.sock"


def tenant_of(system: SystemDaemon, user: pwd.struct_passwd) -> dict:
    report = system.status_as_root()
    assert report
    return next(t for t in report["tenants"] if t["uid"] == user.pw_uid)


def token_of(system: SystemDaemon, user: pwd.struct_passwd) -> str:
    return (system.state / "tenants" / str(user.pw_uid) / "token").read_text().strip()


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
