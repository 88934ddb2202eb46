"""Fixtures: fake upstreams, rosettad daemons, and the root-only helper.

Binaries: $ROSETTAD_BIN / $ROSETTA_BIN, default <repo>/.build/debug/rosettad and
<repo>/.build/debug/rosetta. Run with `pytest Tests/conformance`.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from typing import Any, Callable, Iterator

import pytest

from fakes import FakeAnthropic, FakeOpenAI, FakeUpstream
from harness import ANTHROPIC_UPSTREAM_KEY, OPENAI_UPSTREAM_KEY, Daemon, RunAs, gateway_config

OTHER_USER = "rosetta-it-a"


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=OPENAI_UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture(scope="session")
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=ANTHROPIC_UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture(scope="session")
def fakes(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> dict[str, FakeUpstream]:
    """The fake upstreams by format: fakes["openai"], fakes["anthropic"]."""
    return {"openai": fake_openai, "anthropic": fake_anthropic}


@pytest.fixture(autouse=True)
def fresh_records(fakes: dict[str, FakeUpstream]) -> None:
    """Every test starts with empty request records."""
    for fake in fakes.values():
        fake.clear()


@pytest.fixture(scope="session")
def gateway(fakes: dict[str, FakeUpstream]) -> Iterator[Daemon]:
    """The shared daemon (default limits), routing to both fakes. Tests must not change its state."""
    daemon = Daemon(gateway_config(fakes["openai"], fakes["anthropic"]))
    try:
        yield daemon.start()
    finally:
        daemon.cleanup()


@pytest.fixture
def start_daemon(fakes: dict[str, FakeUpstream]) -> Iterator[Callable[..., Daemon]]:
    """Factory for a dedicated daemon, stopped at the end of the test.

    start_daemon(limits={...}) merges top-level config keys; env= adds environment
    variables; run_as= a RunAs; ready=False only launches (for start-up failures).
    """
    daemons: list[Daemon] = []

    def start(*, env: dict[str, str] | None = None, run_as: RunAs | None = None, ready: bool = True,
              **extra_config: Any) -> Daemon:
        daemon = Daemon(gateway_config(fakes["openai"], fakes["anthropic"], **extra_config), env=env or {},
                        run_as=run_as)
        daemons.append(daemon)
        if ready:
            daemon.start()
        else:
            daemon.launch()
        return daemon

    start.daemons = daemons  # type: ignore[attr-defined]
    yield start
    for daemon in daemons:
        daemon.cleanup()


@pytest.fixture
def require_root() -> None:
    """Skip a test that needs root, unless $CI is set: then not being root is a failure."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("this test needs root and $CI is set: run the suite as root in CI")
        pytest.skip("needs root")


@pytest.fixture
def other_user(require_root: None) -> pwd.struct_passwd:
    """A second real account on this machine (created once, kept)."""
    try:
        return pwd.getpwnam(OTHER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", OTHER_USER], check=True, capture_output=True)
        return pwd.getpwnam(OTHER_USER)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """On failure, show what the fakes received and the daemons' logs."""
    report = yield
    if report.when == "call" and report.failed:
        args = getattr(item, "funcargs", {})
        for name, fake in (args.get("fakes") or {}).items():
            report.sections.append((f"fake {name} upstream requests", fake.describe()))
        daemons = ([args["gateway"]] if "gateway" in args else []) + list(
            getattr(args.get("start_daemon"), "daemons", []))
        for daemon in daemons:
            tail = "\n".join(daemon.logs().splitlines()[-80:])
            report.sections.append((f"rosettad log ({daemon.root})", tail or "(empty)"))
    return report
