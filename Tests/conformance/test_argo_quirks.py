"""Argo model discovery and aliases, Argo's quirks, /v1/responses, and the tunnel's lock, live.

The same setup as test_argo.py: a real sshd on loopback and the fake Argo (fake_argo.py) behind it over HTTPS,
which refuses every body the gateway failed to shape the way Argo does.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import anthropic
import httpx
import openai
import pytest

from fake_argo import ARGO_HOST, FakeArgo, LoopbackSSHD
from harness import STREAM_FAILURES, Daemon, eventually
from argo_fixtures import (ARGO_USER, argo_config, argo_env, argo_tools_missing,  # noqa: F401 (fixtures)
                           start_argo_daemon)
from test_argo import tunnel_status

if argo_tools_missing():
    pytest.skip("the Argo tunnel tests need openssl, ssh and /usr/sbin/sshd", allow_module_level=True)


@pytest.fixture
def fake(argo_env) -> Iterator[FakeArgo]:
    argo, _ = argo_env
    argo.clear()
    argo.extra_models = []
    argo.models_failure = None
    yield argo
    argo.extra_models = []
    argo.models_failure = None


@pytest.fixture(scope="module")
def quirk_daemon(argo_env) -> Iterator[Daemon]:
    argo, sshd = argo_env
    models = {
        "lab-sonnet": {"provider": "argo", "upstream_model": "claudesonnet45"},
        "claude-opus-4-8": {"provider": "argo", "upstream_model": "claudeopus48"},
        "gemini-2.5-pro": {"provider": "argo", "upstream_model": "gemini25pro"},
        "gpt-4o": {"provider": "argo", "upstream_model": "gpt4o"},
    }
    daemon = Daemon(argo_config(argo, sshd, models=models)).start()
    yield daemon
    daemon.cleanup()


def models_cli(daemon: Daemon, *args: str) -> dict:
    shown = daemon.cli("models", "--json", *args, timeout=60)
    assert shown.returncode == 0, shown.stderr
    (provider,) = json.loads(shown.stdout)["providers"]
    return provider


# -- model discovery ------------------------------------------------------------------------------------


def test_argo_models_are_discovered_lazily_under_clean_aliases_and_config_wins(start_argo_daemon, fake):
    daemon = start_argo_daemon(models={"gpt-4o": {"provider": "argo", "upstream_model": "gpt5"}})
    # Nothing is fetched (and no tunnel started) until a model list or an unknown model is needed.
    assert tunnel_status(daemon)["state"] == "idle"
    assert fake.model_listings() == []

    listed = [m.id for m in daemon.openai().models.list()]
    (listing,) = fake.model_listings()
    assert listing.headers["host"] == ARGO_HOST and listing.headers["x-api-key"] == ARGO_USER
    assert tunnel_status(daemon)["state"] == "up"
    assert listed.count("gpt-4o") == 1  # the configured gpt-4o; the discovered one is not listed again
    for name in ["claude-opus-4-8", "anthropic/claude-opus-4-8", "claude-sonnet-4-5", "gemini-2.5-pro",
                 "google/gemini-2.5-pro", "gpt-5", "openai/gpt-5", "gpt-3.5-turbo"]:
        assert name in listed, (name, listed)
    anthropic_listed = [m.id for m in daemon.anthropic().models.list()]
    assert "claude-opus-4-8" in anthropic_listed

    # Every alias reaches the model; the upstream request carries the internal id.
    client = daemon.openai()
    for name, internal in [("argo:Claude-Opus-4-8", "claudeopus48"), ("Gemini 2.5 Pro", "gemini25pro"),
                           ("OPENAI/GPT-5", "gpt5"), ("gpt35", "gpt35"), ("GPT-3.5-Turbo", "gpt35"), ("gpt-4o", "gpt5")]:
        fake.clear()
        reply = client.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}])
        assert reply.model == name
        assert reply.choices[0].message.content == f"hello from argo {internal}"
        (post,) = fake.posts()
        assert post.body["model"] == internal, name
        assert post.path.endswith("/v1/messages" if internal.startswith("claude") else "/v1/chat/completions")
    message = daemon.anthropic().messages.create(
        model="anthropic/claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "hello from argo claudesonnet45"
    assert len(fake.model_listings()) == 0  # all of that from the cached list
    with daemon.http() as http:
        missing = http.post("/v1/chat/completions", json={"model": "claude-opus-4.8", "messages": [{"role": "user", "content": "x"}]})
    assert missing.status_code == 404, missing.text


def test_argo_unknown_model_name_triggers_discovery(start_argo_daemon, fake):
    daemon = start_argo_daemon(models={})
    message = daemon.anthropic().messages.create(
        model="claude-opus-4-8", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "hello from argo claudeopus48"
    assert len(fake.model_listings()) == 1
    assert fake.posts()[0].body["model"] == "claudeopus48"


def test_argo_rosetta_models_refresh_and_failed_discovery_keeps_the_last_list(start_argo_daemon, fake):
    daemon = start_argo_daemon(models={"my-gpt": {"provider": "argo", "upstream_model": "gpt4o"},
                                       "Gemini-2.5-Pro": {"provider": "argo", "upstream_model": "gemini25pro"}})
    provider = models_cli(daemon)
    assert provider["name"] == "argo"
    assert provider["discovery"]["state"] == "ready"
    ids = {(m["id"], m["source"]): m for m in provider["models"]}
    assert ids["my-gpt", "config"]["upstream_model"] == "gpt4o"
    assert ids["gemini-2.5-pro", "discovered"]["overridden_by_config"] is True
    assert "overridden_by_config" not in ids["gpt-4o", "discovered"]
    ids = {m["id"]: m for m in provider["models"]}
    assert ids["claude-opus-4-8"]["source"] == "discovered" and ids["claude-opus-4-8"]["upstream_model"] == "claudeopus48"
    assert "argo:claude-opus-4-8" in ids["claude-opus-4-8"]["names"]
    assert len(fake.model_listings()) == 1

    fake.extra_models = [{"id": "Claude Haiku 4.5", "internal_id": "claudehaiku45", "owned_by": "anthropic"}]
    assert "claude-haiku-4-5" not in {m["id"] for m in models_cli(daemon)["models"]}  # cached
    refreshed = models_cli(daemon, "--refresh")
    assert "claude-haiku-4-5" in {m["id"] for m in refreshed["models"]}
    assert len(fake.model_listings()) == 2

    fake.models_failure = 503
    failed = models_cli(daemon, "--refresh")
    assert "claude-haiku-4-5" in {m["id"] for m in failed["models"]}  # the last good list stays
    assert "503" in failed["discovery"]["last_error"]
    text = daemon.cli("models")
    assert text.returncode == 0 and "last discovery failed" in text.stdout and "claude-haiku-4-5" in text.stdout
    with daemon.http("unix") as http:
        status = http.get("/rosetta/v1/status").json()
    assert "503" in status["discovery"]["argo"]["last_error"]
    reply = daemon.openai().chat.completions.create(model="claude-haiku-4-5", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "hello from argo claudehaiku45"


# -- quirks ---------------------------------------------------------------------------------------------


def test_argo_gemini_parallel_tool_calls_are_sent_as_sequential_pairs(quirk_daemon, fake):
    def call(ident: str, city: str) -> dict:
        return {"id": ident, "type": "function", "function": {"name": "weather", "arguments": json.dumps({"city": city})}}

    reply = quirk_daemon.openai().chat.completions.create(
        model="gemini-2.5-pro",
        tools=[{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}}],
        messages=[
            {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"role": "assistant", "content": None, "tool_calls": [call("c1", "Paris"), call("c2", "Rome")]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "c2", "content": "rainy"},
        ])
    assert reply.choices[0].message.content == "hello from argo gemini25pro"
    (post,) = fake.posts()
    sent = post.body["messages"]
    assert [(m["role"], [c["id"] for c in m.get("tool_calls") or []], m.get("tool_call_id")) for m in sent] == [
        ("system", [], None), ("user", [], None), ("assistant", ["c1"], None), ("tool", [], "c1"),
        ("assistant", ["c2"], None), ("tool", [], "c2")]
    assert sent[0]["content"] == "be brief"
    assert all(m["content"] is not None for m in sent)


def test_argo_claude_thinking_mode_per_family(quirk_daemon, fake):
    client = quirk_daemon.anthropic()
    # Opus 4.8 takes only adaptive thinking: enabled+budget is converted.
    message = client.messages.create(
        model="claude-opus-4-8", max_tokens=20000, thinking={"type": "enabled", "budget_tokens": 16384},
        messages=[{"role": "user", "content": "hi"}])
    assert message.content[-1].text == "hello from argo claudeopus48"
    # Sonnet 4.5 takes only enabled+budget: adaptive is converted.
    message = client.messages.create(
        model="lab-sonnet", max_tokens=20000, thinking={"type": "adaptive"},
        extra_body={"output_config": {"effort": "low"}}, messages=[{"role": "user", "content": "hi"}])
    assert message.content[-1].text == "hello from argo claudesonnet45"
    # An OpenAI client's reasoning effort lands in each family's form.
    quirk_daemon.openai().chat.completions.create(
        model="claude-opus-4-8", reasoning_effort="xhigh", max_completion_tokens=40000, messages=[{"role": "user", "content": "hi"}])
    opus, sonnet, opus_from_openai = fake.posts()
    assert opus.body["thinking"] == {"type": "adaptive"} and opus.body["output_config"] == {"effort": "high"}
    assert sonnet.body["thinking"] == {"type": "enabled", "budget_tokens": 2048} and "output_config" not in sonnet.body
    assert opus_from_openai.body["thinking"] == {"type": "adaptive"} and opus_from_openai.body["output_config"]["effort"] == "max"


def test_argo_claude_empty_thinking_blocks_and_strict_tools_are_dropped(quirk_daemon, fake):
    message = quirk_daemon.anthropic().messages.create(
        model="lab-sonnet", max_tokens=100,
        tools=[{"name": "weather", "input_schema": {"type": "object", "properties": {}}, "strict": True}],
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "", "signature": "sig"},
                                              {"type": "text", "text": "hello"}]},
            {"role": "user", "content": "again"},
        ])
    assert message.content[0].text == "hello from argo claudesonnet45"
    (post,) = fake.posts()
    assert "strict" not in post.body["tools"][0]
    assert post.body["messages"][1]["content"] == [{"type": "text", "text": "hello"}]


@pytest.mark.parametrize("model", ["claude-opus-4-8", "gpt-4o"])
def test_argo_vertex_token_failure_is_a_502_saying_so(quirk_daemon, model):
    with pytest.raises(openai.APIStatusError) as raised:
        quirk_daemon.openai().chat.completions.create(model=model, messages=[{"role": "user", "content": "vertex-token-failure"}])
    assert raised.value.status_code == 502
    assert raised.value.code == "argo_vertex_token_failure"
    assert "Argo" in str(raised.value) and "Vertex" in str(raised.value)
    with pytest.raises(anthropic.APIStatusError) as raised_anthropic:
        quirk_daemon.anthropic().messages.create(model=model, max_tokens=10, messages=[{"role": "user", "content": "vertex-token-failure"}])
    assert raised_anthropic.value.status_code == 502
    assert raised_anthropic.value.body["type"] == "error"


def test_argo_quota_error_event_in_a_200_stream(quirk_daemon):
    # A whole-answer client (Claude is always streamed upstream) gets a 429 in its format.
    with pytest.raises(anthropic.RateLimitError) as raised:
        quirk_daemon.anthropic().messages.create(model="claude-opus-4-8", max_tokens=10, messages=[{"role": "user", "content": "quota"}])
    assert "Quota exceeded" in str(raised.value)
    with pytest.raises(openai.RateLimitError):
        quirk_daemon.openai().chat.completions.create(model="claude-opus-4-8", messages=[{"role": "user", "content": "quota"}])
    # A streaming client gets the error event.
    with pytest.raises(STREAM_FAILURES) as streamed:
        with quirk_daemon.anthropic().messages.stream(model="claude-opus-4-8", max_tokens=10,
                                                      messages=[{"role": "user", "content": "quota"}]) as stream:
            list(stream.text_stream)
    assert "Quota exceeded" in str(streamed.value)


# -- /v1/responses --------------------------------------------------------------------------------------


def test_argo_responses_client_reaches_argo_responses_for_gpt(quirk_daemon, fake):
    client = quirk_daemon.openai()
    response = client.responses.create(model="gpt-4o", input="hi", user="mallory")
    assert response.output_text == "hello from argo responses gpt4o"
    (post,) = fake.posts()
    assert post.path == "/argoapi/v1/responses"
    assert post.headers["authorization"] == f"Bearer {ARGO_USER}"
    assert "mallory" not in json.dumps(post.body) and "mallory" not in json.dumps(post.headers)
    fake.clear()
    with client.responses.stream(model="gpt-4o", input="hi") as stream:
        text = "".join(event.delta for event in stream if event.type == "response.output_text.delta")
    assert text == "hello from argo responses gpt4o"
    # Claude and Gemini through a Responses client are translated to Argo's messages / chat endpoints.
    fake.clear()
    assert client.responses.create(model="claude-opus-4-8", input="hi").output_text == "hello from argo claudeopus48"
    assert client.responses.create(model="gemini-2.5-pro", input="hi").output_text == "hello from argo gemini25pro"
    assert [p.path for p in fake.posts()] == ["/argoapi/v1/messages", "/argoapi/v1/chat/completions"]


def test_fake_argo_responses_is_faithful(argo_env):
    argo, _ = argo_env
    with httpx.Client(base_url=f"https://127.0.0.1:{argo.port}/argoapi", verify=False) as http:
        only_key = http.post("/v1/responses", headers={"x-api-key": ARGO_USER}, json={"model": "gpt4o", "input": "hi"})
        assert only_key.status_code == 401
        claude = http.post("/v1/responses", headers={"authorization": f"Bearer {ARGO_USER}"},
                           json={"model": "claudeopus48", "input": "hi"})
        assert claude.status_code == 400 and claude.json()["error"]["message"] == "Use a supported GPT model name."
        ok = http.post("/v1/responses", headers={"authorization": f"Bearer {ARGO_USER}"}, json={"model": "GPT-4o", "input": "hi"})
        assert ok.status_code == 200 and ok.json()["output"][0]["content"][0]["type"] == "output_text"


# -- the tunnel's lock ----------------------------------------------------------------------------------


def test_argo_wrong_key_cools_down_then_locks_and_reset_recovers(start_argo_daemon, argo_env, tmp_path):
    _, sshd = argo_env
    key = tmp_path / "key"
    shutil.copy(sshd.directory / "wrong_key", key)
    os.chmod(key, 0o600)
    daemon = start_argo_daemon(key=str(key), tunnel={"cooldown": "1s", "cooldowns_before_lock": 1})
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    seen: list[str] = []

    with daemon.http() as client:
        def locked() -> httpx.Response | None:
            response = client.post("/v1/chat/completions", json=body)
            assert response.status_code == 503, response.text
            seen.append(response.json()["error"]["code"])
            return response if seen[-1] == "argo_tunnel_locked" else None

        response = eventually(locked, timeout=30, interval=0.2, what="the tunnel to lock")
        assert "argo_tunnel_cooling_down" in seen and seen.index("argo_tunnel_cooling_down") < len(seen) - 1
        message = response.json()["error"]["message"]
        assert "locked" in message and "rosetta tunnel reset" in message and "Permission denied" in message
        assert "retry-after" not in response.headers
        attempts = tunnel_status(daemon)["attempts"]
        again = client.post("/v1/messages", json={"model": "claude-opus-4-8", "max_tokens": 10,
                                                  "messages": [{"role": "user", "content": "hi"}]})
        assert again.status_code == 503 and again.json()["type"] == "error"
        assert "locked" in again.json()["error"]["message"]
        assert tunnel_status(daemon)["attempts"] == attempts  # refused without another ssh attempt

    shown = daemon.cli("tunnel", "status")
    assert json.loads(shown.stdout)["tunnels"][0]["state"] == "locked"
    shutil.copy(sshd.directory / "client_key", key)  # the user fixes the key …
    reset = daemon.cli("tunnel", "reset")  # … and resets
    assert reset.returncode == 0, reset.stderr
    assert json.loads(reset.stdout)["tunnels"][0]["state"] == "idle"
    reply = daemon.openai().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "hello from argo gpt4o"
    assert tunnel_status(daemon)["state"] == "up"
