"""Start-up, shutdown and draining."""

from __future__ import annotations

import re
import signal

import pytest

from fakes import SLOW_TEXT
from harness import alias, eventually, gateway_config, refuses_new_connections, stream_text

UNSET_VARIABLE = "ROSETTA_IT_NEVER_SET"


@pytest.mark.parametrize("client_format, upstream", [("openai", "anthropic"), ("anthropic", "openai")])
def test_sigterm_lets_the_stream_in_flight_finish(start_daemon, fakes, client_format, upstream):
    daemon = start_daemon()
    pieces = stream_text(daemon, client_format, alias(upstream, "slow"))
    received = [next(pieces)]

    daemon.terminate()
    eventually(lambda: refuses_new_connections(daemon), timeout=2, what="both fronts to refuse new connections")
    received += list(pieces)

    assert "".join(received) == SLOW_TEXT
    assert daemon.wait(timeout=10) == 0
    assert fakes[upstream].settled_chat().outcome == "complete"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_idle_daemon_exits_0_on_signal(start_daemon, signum):
    daemon = start_daemon()
    daemon.process.send_signal(signum)
    assert daemon.wait(timeout=10) == 0


def test_prints_where_it_listens(start_daemon):
    daemon = start_daemon()
    daemon.stop()  # output may be buffered until exit
    assert str(daemon.socket) in daemon.logs()
    assert str(daemon.port) in daemon.logs()


def test_missing_environment_variable_is_a_startup_error(start_daemon, fakes, monkeypatch):
    monkeypatch.delenv(UNSET_VARIABLE, raising=False)
    providers = gateway_config(fakes["openai"], fakes["anthropic"])["providers"]
    providers["needs-secret"] = {"type": "openai_chat", "base_url": f"{fakes['openai'].url}/v1",
                                 "api_key": f"${{{UNSET_VARIABLE}}}"}
    daemon = start_daemon(ready=False, providers=providers)

    assert daemon.wait(timeout=15) != 0
    line = next(n for n, text in enumerate(daemon.config_path.read_text().splitlines(), 1)
                if UNSET_VARIABLE in text)
    assert UNSET_VARIABLE in daemon.logs()
    assert re.search(rf"(?<!\d){line}(?!\d)", daemon.logs()), f"line {line} not named"
