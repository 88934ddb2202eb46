"""System mode observability (root): /metrics on the control socket with tenant gauges and per-tenant labels,
the scrape port, and each tenant's root-only request log read through the tenant's socket.
"""

from __future__ import annotations

import json
import shutil
import stat
from typing import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import alias, free_port, gateway_config, to_yaml
from system_support import (ALLOWED_GROUP, PAM_SERVICE, SystemDaemon, as_user, ensure_group, ensure_user, make_root,
                            need_root, raw_http, remove_user_binaries, tenant_socket)

__all__ = ["remove_user_binaries"]  # fixture used by name

HEIDI, IVAN = "rosetta-it-heidi", "rosetta-it-ivan"


def value(text: str, name: str, **labels: str) -> float:
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


@pytest.fixture(scope="module")
def accounts() -> dict:
    need_root()
    ensure_group(ALLOWED_GROUP)
    return {HEIDI: ensure_user(HEIDI, [ALLOWED_GROUP]), IVAN: ensure_user(IVAN, [ALLOWED_GROUP])}


@pytest.fixture(scope="module")
def system(accounts, fakes) -> Iterator[tuple[SystemDaemon, int]]:
    root = make_root()
    port = free_port()
    config = to_yaml(gateway_config(fakes["openai"], fakes["anthropic"], metrics={
        "per_tenant_labels": True, "listen": f"127.0.0.1:{port}"}))
    daemon = SystemDaemon(root, config + "\n", PAM_SERVICE).start()
    try:
        for name in (HEIDI, IVAN):
            result = daemon.rosetta(name, "enable")
            assert result.returncode == 0, f"{name}: {result.stderr}\n{daemon.logs()}"
        yield daemon, port
    finally:
        for name in (HEIDI, IVAN):
            daemon.rosetta(name, "disable")
        if daemon.process and daemon.process.poll() is None:
            daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_metrics_on_the_control_socket_and_the_scrape_port(system, accounts):
    daemon, port = system
    heidi = accounts[HEIDI]
    socket_path = str(tenant_socket(heidi))
    body = json.dumps({"model": alias("openai"), "messages": [{"role": "user", "content": "hi"}]}).encode()
    answer = as_user(heidi, lambda: raw_http(socket_path, "POST", "/v1/chat/completions", body))
    assert answer.get("ok", [0])[0] == 200, answer

    with httpx.Client(transport=httpx.HTTPTransport(uds=str(daemon.control)), base_url="http://localhost") as client:
        response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert value(text, "rosetta_tenants_enabled") == 2
    assert value(text, "rosetta_tenants_active") == 1
    assert value(text, "rosetta_requests_total", tenant=HEIDI, model=alias("openai"), status_class="2xx") == 1
    assert value(text, "rosetta_requests_total", tenant=IVAN) == 0

    scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert scraped.status_code == 200
    assert value(scraped.text, "rosetta_requests_total", tenant=HEIDI) == 1
    assert httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10).status_code == 404

    # A tenant's own socket does not serve the daemon-wide metrics.
    status, _ = as_user(heidi, lambda: raw_http(socket_path, "GET", "/metrics"))["ok"]
    assert status == 404


def test_the_request_log_is_root_only_and_read_through_the_socket(system, accounts):
    daemon, _ = system
    ivan = accounts[IVAN]
    socket_path = str(tenant_socket(ivan))
    body = json.dumps({"model": alias("anthropic"), "max_tokens": 32,
                       "messages": [{"role": "user", "content": "hello"}]}).encode()
    assert as_user(ivan, lambda: raw_http(socket_path, "POST", "/v1/messages", body))["ok"][0] == 200
    path = daemon.state / "tenants" / str(ivan.pw_uid) / "requests.log"
    info = path.lstat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o600)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["model"], r["upstream"], r["status"]) for r in records] == [(alias("anthropic"), "fake-anthropic", 200)]
    status, text = as_user(ivan, lambda: raw_http(socket_path, "GET", "/rosetta/v1/log?lines=5"))["ok"]
    assert status == 200
    assert [line["request_id"] for line in json.loads(text)["lines"]] == [records[0]["request_id"]]
