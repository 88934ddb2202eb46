"""Observability: the Prometheus endpoint after a known sequence of requests, the request log (fields, rotation,
`rosetta log`, the debug switch and its redaction), and journald records sent to a socket of the test's own.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import struct
import tempfile
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import ANTHROPIC_UPSTREAM_KEY, OPENAI_UPSTREAM_KEY, alias, eventually


def samples(text: str) -> list:
    """Every sample of the exposition (parsed by prometheus_client), whatever family it is filed under."""
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(all_samples: list, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    return sum(s.value for s in all_samples
               if s.name == name and all(s.labels.get(key) == wanted for key, wanted in labels.items()))


def known_sequence(daemon) -> None:
    """Two OpenAI chats, one Anthropic message, one Anthropic stream, one 404 for an unknown model."""
    openai_client = daemon.openai()
    anthropic_client = daemon.anthropic()
    for _ in range(2):
        openai_client.chat.completions.create(model=alias("openai"), messages=[{"role": "user", "content": "hi"}])
    anthropic_client.messages.create(model=alias("anthropic"), max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    with anthropic_client.messages.stream(model=alias("anthropic"), max_tokens=64,
                                          messages=[{"role": "user", "content": "tell me a story"}]) as stream:
        for _ in stream.text_stream:
            pass
    with daemon.http() as client:
        response = client.post("/v1/chat/completions", json={"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]})
        assert response.status_code == 404


def test_metrics_count_a_known_sequence(start_daemon):
    daemon = start_daemon()
    known_sequence(daemon)
    with daemon.http("unix") as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(response.text)
    requests = "rosetta_requests_total"
    assert value(found, requests, dialect="openai_chat", provider="fake-openai", model=alias("openai"), status_class="2xx") == 2
    assert value(found, requests, dialect="anthropic", provider="fake-anthropic", model=alias("anthropic"), status_class="2xx") == 2
    assert value(found, requests, dialect="openai_chat", provider="none", model="other", status_class="4xx") == 1
    assert value(found, requests) == 5
    assert value(found, "rosetta_request_errors_total", **{"class": "not_found"}) == 1
    assert value(found, "rosetta_request_errors_total") == 1
    assert value(found, "rosetta_requests_in_flight") == 0
    assert value(found, "rosetta_request_duration_seconds_count", provider="fake-anthropic", model=alias("anthropic")) == 2
    assert value(found, "rosetta_request_duration_seconds_count") == 5
    assert value(found, "rosetta_time_to_first_byte_seconds_count", provider="fake-openai") == 2
    assert value(found, "rosetta_tokens_total", provider="fake-anthropic", direction="out") > 0
    # No tenant label unless the admin asks for it.
    assert all("tenant" not in s.labels for s in found)
    # Metrics are a Unix-socket route: the loopback port does not serve them.
    with daemon.http() as client:
        assert client.get("/metrics").status_code == 404


def test_per_tenant_labels_when_enabled(start_daemon):
    daemon = start_daemon(metrics={"per_tenant_labels": True})
    daemon.openai().chat.completions.create(model=alias("openai"), messages=[{"role": "user", "content": "hi"}])
    with daemon.http("unix") as client:
        found = samples(client.get("/metrics").text)
    user = os.environ.get("USER") or __import__("pwd").getpwuid(os.getuid()).pw_name
    assert value(found, "rosetta_requests_total", tenant=user, model=alias("openai")) == 1


def read_log(daemon) -> list[dict]:
    path = daemon.state_dir / "requests.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_request_log_records_each_model_call(start_daemon):
    daemon = start_daemon()
    known_sequence(daemon)
    path = daemon.state_dir / "requests.log"
    records = eventually(lambda: r if len(r := read_log(daemon)) == 5 else None, what="five records")
    assert stat.S_IMODE(path.lstat().st_mode) == 0o600
    for record in records:
        assert set(record) >= {"time", "request_id", "dialect", "model", "upstream", "status", "tokens_in", "tokens_out",
                               "duration_ms", "error_class"}
        assert record["time"].endswith("Z") and "T" in record["time"]
        assert "debug" not in record
    chat = records[0]
    assert (chat["dialect"], chat["model"], chat["upstream"], chat["status"]) == ("openai_chat", alias("openai"), "fake-openai", 200)
    assert chat["tokens_in"] > 0 and chat["tokens_out"] > 0
    stream = records[3]
    assert stream["stream"] is True and stream["dialect"] == "anthropic"
    assert stream["tokens_in"] > 0 and stream["tokens_out"] > 0
    missing = records[4]
    assert (missing["status"], missing["model"], missing["upstream"], missing["error_class"]) == (404, None, None, "not_found")
    text = path.read_text()
    for secret in (daemon.token, OPENAI_UPSTREAM_KEY, ANTHROPIC_UPSTREAM_KEY, "tell me a story"):
        assert secret not in text

    # `rosetta log` reads it through the socket: JSON lines and a table.
    result = daemon.cli("log", "-n", "2", "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["request_id"] for line in lines] == [r["request_id"] for r in records[-2:]]
    table = daemon.cli("log", "-n", "5")
    assert table.returncode == 0, table.stderr
    rows = table.stdout.splitlines()
    assert rows[0].split()[:4] == ["TIME", "REQUEST", "DIALECT", "MODEL"]
    assert len(rows) == 6
    assert "404" in rows[-1] and "not_found" in rows[-1]


def test_request_log_rotates_by_size(start_daemon):
    daemon = start_daemon(request_log={"max_bytes": 2048, "keep": 2})
    client = daemon.openai()
    for _ in range(20):
        client.chat.completions.create(model=alias("openai"), messages=[{"role": "user", "content": "hi"}])
    base = daemon.state_dir / "requests.log"
    rotated = [Path(f"{base}.{n}") for n in (1, 2, 3)]
    assert rotated[0].exists() and rotated[1].exists() and not rotated[2].exists()
    for path in (base, rotated[0], rotated[1]):
        assert path.stat().st_size <= 2048
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # `rosetta log` reaches back into requests.log.1 when the current file has fewer lines.
    available = rotated[0].read_text().splitlines() + base.read_text().splitlines()
    wanted = len(base.read_text().splitlines()) + 2
    assert wanted <= len(available)
    result = daemon.cli("log", "-n", str(wanted), "--json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["request_id"] for line in result.stdout.splitlines()] == \
        [json.loads(line)["request_id"] for line in available[-wanted:]]


def test_debug_switch_logs_bodies_with_secrets_redacted(start_daemon):
    daemon = start_daemon()
    switched = daemon.cli("log", "--debug", "on")
    assert switched.returncode == 0 and "on" in switched.stdout, switched.stderr
    leaked_key = "sk-ant-api03-" + "Z" * 40
    prompt = f"remember my key {leaked_key} and the gateway token {daemon.token} please"
    with daemon.http() as client:
        response = client.post("/v1/chat/completions?key=AIzaQueryKey1234567890", headers={"x-api-key": "sk-header-secret"},
                               json={"model": alias("openai"), "messages": [{"role": "user", "content": prompt}]})
        assert response.status_code == 200
    record = eventually(lambda: (r := read_log(daemon)) and r[-1], what="a record")
    assert record["request_id"] == response.headers["x-request-id"]
    debug = record["debug"]
    assert debug["request_headers"]["authorization"] == "[redacted]"
    assert debug["request_headers"]["x-api-key"] == "[redacted]"
    assert debug["query"] == "key=[redacted]"
    assert "remember my key" in debug["request_body"]["messages"][0]["content"]
    assert debug["response_body"]["choices"]
    text = (daemon.state_dir / "requests.log").read_text()
    for secret in (leaked_key, daemon.token, "AIzaQueryKey1234567890", "sk-header-secret"):
        assert secret not in text
    assert daemon.cli("log", "--debug", "off").returncode == 0
    # The switch is persisted in the tenant's state and off again now.
    assert json.loads((daemon.state_dir / "request-log.json").read_text()) == {"debug": False}
    daemon.openai().chat.completions.create(model=alias("openai"), messages=[{"role": "user", "content": "hi"}])
    assert "debug" not in eventually(lambda: (r := read_log(daemon)) and len(r) == 2 and r[-1], what="second record")


def decode_journal(datagram: bytes) -> dict[str, str]:
    """The journal native protocol: NAME=value\\n, or NAME\\n<le64 length><value>\\n."""
    fields: dict[str, str] = {}
    index = 0
    while index < len(datagram):
        newline = datagram.index(b"\n", index)
        equals = datagram.find(b"=", index, newline)
        if equals >= 0:
            fields[datagram[index:equals].decode()] = datagram[equals + 1:newline].decode()
            index = newline + 1
        else:
            name = datagram[index:newline].decode()
            (length,) = struct.unpack("<Q", datagram[newline + 1:newline + 9])
            start = newline + 9
            fields[name] = datagram[start:start + length].decode()
            assert datagram[start + length:start + length + 1] == b"\n"
            index = start + length + 1
    return fields


def test_journal_records_carry_the_request_fields(start_daemon):
    directory = Path(tempfile.mkdtemp(prefix="rosetta-journal-"))
    path = directory / "socket"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(10)
    try:
        daemon = start_daemon(env={"ROSETTAD_LOG": "journal", "ROSETTAD_JOURNAL_SOCKET": str(path)})
        daemon.openai().chat.completions.create(model=alias("openai"), messages=[{"role": "user", "content": "hi"}])
        records = []
        while True:
            record = decode_journal(receiver.recv(1 << 20))
            records.append(record)
            if record.get("MESSAGE") == "request finished":
                break
        finished = records[-1]
        assert finished["PRIORITY"] == "6"
        assert finished["SYSLOG_IDENTIFIER"] == "rosettad"
        assert finished["MODEL"] == alias("openai")
        assert finished["UPSTREAM"] == "fake-openai"
        assert finished["STATUS"] == "200"
        assert int(finished["DURATION_MS"]) >= 0
        assert len(finished["REQUEST_ID"]) >= 6
        assert finished["CODE_FILE"].endswith(".swift") and int(finished["CODE_LINE"]) > 0 and finished["CODE_FUNC"]
        everything = json.dumps(records)
        for secret in (daemon.token, OPENAI_UPSTREAM_KEY, ANTHROPIC_UPSTREAM_KEY):
            assert secret not in everything
        # Nothing went to the plain log while the journal took the records.
        assert "request finished" not in daemon.logs()
    finally:
        receiver.close()
        path.unlink(missing_ok=True)
        directory.rmdir()


def test_rosetta_log_follow_prints_new_requests(start_daemon):
    import select
    import subprocess

    from harness import rosetta_binary

    daemon = start_daemon()
    follower = subprocess.Popen([str(rosetta_binary()), "log", "--follow", "--json", "-n", "0", "--socket", str(daemon.socket)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=daemon.process_env())
    try:
        # A request made before the follower's first read is part of its (empty, -n 0) tail, so requests are made
        # until one is printed; each is printed within the follower's one-second poll.
        for _ in range(8):
            assert follower.poll() is None, follower.stderr.read()
            daemon.openai().chat.completions.create(model=alias("openai"), messages=[{"role": "user", "content": "hi"}])
            ready, _, _ = select.select([follower.stdout], [], [], 2)
            if ready:
                break
        assert ready, "no line from rosetta log --follow"
        line = json.loads(follower.stdout.readline())
        assert (line["model"], line["status"]) == (alias("openai"), 200)
    finally:
        follower.kill()
        follower.wait()
