"""Shared Argo fixtures: a fake Argo over HTTPS and a loopback sshd (module-scoped), and the config that reaches them.

Used by test_argo.py (user mode) and test_tenancy.py (system-mode tenants with their own tunnels).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from fake_argo import ARGO_HOST, FakeArgo, LoopbackSSHD
from harness import Daemon

ARGO_USER = "alice"


def argo_tools_missing() -> bool:
    """Whether openssl, ssh or sshd is missing (the Argo tunnel tests then skip)."""
    return shutil.which("openssl") is None or not Path("/usr/sbin/sshd").exists() or shutil.which("ssh") is None


@pytest.fixture(scope="module")
def argo_env() -> Iterator[tuple[FakeArgo, LoopbackSSHD]]:
    root = Path(tempfile.mkdtemp(prefix="argo-it-"))
    argo = FakeArgo(root / "pki")
    sshd = LoopbackSSHD(root / "sshd")
    yield argo, sshd
    sshd.close()
    argo.close()
    shutil.rmtree(root, ignore_errors=True)


DEFAULT_MODELS = {
    "gpt-4o": {"provider": "argo", "upstream_model": "gpt4o"},
    "gpt-5": {"provider": "argo", "upstream_model": "gpt5"},
    "claude-opus-4-8": {"provider": "argo", "upstream_model": "claudeopus48"},
    "gemini-2.5-pro": {"provider": "argo", "upstream_model": "gemini25pro"},
}


@pytest.fixture
def start_argo_daemon(argo_env) -> Iterator:
    """Starts user-mode daemons configured by `argo_config(**options)`; cleans them up after the test."""
    started: list[Daemon] = []

    def start(**options) -> Daemon:
        argo, sshd = argo_env
        daemon = Daemon(argo_config(argo, sshd, **options)).start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.cleanup()


def argo_config(argo: FakeArgo, sshd: LoopbackSSHD, *, user: str = ARGO_USER, key: str = "client_key",
                known_hosts: str = "known_hosts", idle_timeout: str = "10m", key_directory: str | None = None,
                models: dict | None = None, tunnel: dict | None = None, provider: dict | None = None) -> dict:
    """A config with one `argo` provider through the tunnel and, by default, four configured Argo models.

    `key` is a file name in the key directory or a path; `key_directory` replaces sshd's directory as where the
    key and known-hosts files are (e.g. `%d/.ssh`, which ssh expands to the home of the user it runs as);
    `tunnel` and `provider` add keys to those sections; `models` replaces the configured models (empty: none).
    """
    d = key_directory or str(sshd.directory)
    config = {
        "providers": {"argo": {
            "type": "argo",
            "base_url": f"https://{ARGO_HOST}/argoapi",
            "user": user,
            "ca_file": str(argo.ca),
            "tunnel": {
                "destination": f"{sshd.user}@127.0.0.1",
                "port": sshd.port,
                "identity_file": key if "/" in key else f"{d}/{key}",
                "known_hosts": known_hosts if "/" in known_hosts else f"{d}/{known_hosts}",
                "forward_to": f"127.0.0.1:{argo.port}",
                "idle_timeout": idle_timeout,
            },
        }},
        "models": DEFAULT_MODELS if models is None else models,
    }
    config["providers"]["argo"]["tunnel"].update(tunnel or {})
    config["providers"]["argo"].update(provider or {})
    if not config["models"]:
        del config["models"]
    return config
