"""ALCF Inference Endpoints behind a per-tenant Globus grant (issue 5), against a fake Globus and a fake ALCF
gateway (fake_globus.py, fake_alcf.py). Every test starts its own daemon with an `alcf` provider."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
import time
from typing import Iterator

import anthropic
import httpx
import openai
import pytest

from fake_alcf import COLD_MODEL, STREAM_ERROR_MODEL, FakeALCF
from fake_globus import CLIENT_ID, RESOURCE_SERVER, SCOPE, FakeGlobus
from harness import STREAM_FAILURES, Daemon, anthropic_chat, openai_chat, rosetta_binary

QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def globus() -> Iterator[FakeGlobus]:
    with FakeGlobus() as fake:
        yield fake


@pytest.fixture(scope="module")
def alcf(globus: FakeGlobus) -> Iterator[FakeALCF]:
    with FakeALCF(globus) as fake:
        yield fake


@pytest.fixture(autouse=True)
def fresh_fakes(globus: FakeGlobus, alcf: FakeALCF) -> None:
    globus.clear()
    alcf.clear()
    globus.expires_in = 172800
    globus.refuse_refresh = False
    globus.fail_refresh_with = None
    globus.refresh_delay = 0.0
    globus.omit_refresh_token_on_refresh = False
    globus.invalid_grant_status = 401
    globus.refresh_count = 0
    globus.revoked.clear()
    alcf.policy_denies = False
    alcf.cold_requests = 0


def alcf_config(globus: FakeGlobus, alcf: FakeALCF) -> dict:
    return {
        "providers": {"alcf": {
            "type": "alcf",
            "base_url": f"{alcf.url}/resource_server",
            "globus": {"auth_url": globus.url, "client_id": CLIENT_ID, "resource_server": RESOURCE_SERVER,
                       "scope": SCOPE},
        }},
        "models": {
            "gpt-oss": {"provider": "alcf", "upstream_model": "sophia/openai/gpt-oss-120b",
                        "capabilities": ["text", "tools", "reasoning"]},
            "metis-oss": {"provider": "alcf", "upstream_model": "metis/gpt-oss-120b"},
            "cold": {"provider": "alcf", "upstream_model": f"sophia/{COLD_MODEL}"},
            "stream-error": {"provider": "alcf", "upstream_model": f"sophia/{STREAM_ERROR_MODEL}"},
        },
    }


@pytest.fixture
def daemon(globus: FakeGlobus, alcf: FakeALCF) -> Iterator[Daemon]:
    started = Daemon(alcf_config(globus, alcf))
    try:
        yield started.start()
    finally:
        started.cleanup()


def login(daemon: Daemon, globus: FakeGlobus, *, code: str | None = None) -> tuple[str, subprocess.CompletedProcess]:
    """`rosetta login alcf`: read the URL it prints, approve it at the fake Globus, paste the code on stdin."""
    process = subprocess.Popen([str(rosetta_binary()), "login", "alcf", "--socket", str(daemon.socket)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=daemon.process_env())
    url = process.stdout.readline().strip()
    pasted = code if code is not None else globus.approve(url)
    out, err = process.communicate(pasted + "\n", timeout=30)
    return url, subprocess.CompletedProcess(process.args, process.returncode, url + "\n" + out, err)


def logged_in(daemon: Daemon, globus: FakeGlobus) -> Daemon:
    _, result = login(daemon, globus)
    assert result.returncode == 0, result.stderr
    return daemon


def grant_status(daemon: Daemon) -> dict:
    with daemon.http("unix") as client:
        return client.get("/rosetta/v1/status").json()["globus"]["alcf"]


def ask(daemon: Daemon, model: str = "gpt-oss", **params) -> openai.types.chat.ChatCompletion:
    return daemon.openai().chat.completions.create(
        model=model, messages=[{"role": "user", "content": QUESTION}], **params)


# --------------------------------------------------------------------------
# Login, status, logout
# --------------------------------------------------------------------------


def test_login_end_to_end_through_the_cli(daemon, globus, alcf):
    assert grant_status(daemon)["state"] == "logged_out"
    url, result = login(daemon, globus)
    assert result.returncode == 0, result.stderr
    assert "access_type=offline" in url and "code_challenge_method=S256" in url
    assert "expires at" in result.stdout and "refreshes it automatically" in result.stdout

    # the grant file is private, and holds the gateway's token (picked from other_tokens)
    grant_file = daemon.state_dir / "globus-alcf.json"
    assert stat.S_IMODE(grant_file.stat().st_mode) == 0o600
    stored = json.loads(grant_file.read_text())
    assert stored["token"]["resource_server"] == RESOURCE_SERVER

    status = grant_status(daemon)
    assert status["state"] == "valid" and status["refreshable"] is True
    assert 172000 < status["expires_in_seconds"] <= 172800
    assert stored["token"]["access_token"] not in json.dumps(status)

    reply = ask(daemon)
    assert reply.choices[0].message.content == f"echo: {QUESTION}" and reply.model == "gpt-oss"
    chat = alcf.chat_exchanges()[0]
    assert chat.path == "/resource_server/sophia/vllm/v1/chat/completions"
    assert chat.body["model"] == "openai/gpt-oss-120b"
    assert chat.headers["authorization"] == f"Bearer {stored['token']['access_token']}"

    cli_status = daemon.cli("status", "--json")
    assert cli_status.returncode == 0 and '"expires_at"' in cli_status.stdout and "valid" in cli_status.stdout
    for secret in (stored["token"]["access_token"], stored["token"]["refresh_token"]):
        assert secret not in daemon.logs() and secret not in cli_status.stdout


def test_a_wrong_code_is_refused_and_changes_nothing(daemon, globus):
    _, result = login(daemon, globus, code="not-the-code")
    assert result.returncode == 1
    assert "Globus refused the code" in result.stderr and "rosetta login alcf" in result.stderr
    assert grant_status(daemon)["state"] == "logged_out"


def test_without_login_requests_get_a_clear_error_naming_rosetta_login(daemon, alcf):
    with pytest.raises(openai.PermissionDeniedError) as refused:
        ask(daemon)
    assert "rosetta login alcf" in str(refused.value)
    with pytest.raises(anthropic.PermissionDeniedError) as refused_anthropic:
        daemon.anthropic().messages.create(model="gpt-oss", max_tokens=50,
                                           messages=[{"role": "user", "content": QUESTION}])
    assert "rosetta login alcf" in str(refused_anthropic.value)
    assert alcf.chat_exchanges() == []


def test_logout_revokes_and_deletes(daemon, globus, alcf):
    logged_in(daemon, globus)
    stored = json.loads((daemon.state_dir / "globus-alcf.json").read_text())["token"]
    result = daemon.cli("logout", "alcf")
    assert result.returncode == 0 and "revoked and deleted" in result.stdout
    assert set(globus.revoked) == {stored["access_token"], stored["refresh_token"]}
    assert not (daemon.state_dir / "globus-alcf.json").exists()
    with pytest.raises(openai.PermissionDeniedError, match="rosetta login alcf"):
        ask(daemon)


def test_control_routes_are_on_the_unix_socket_only(daemon):
    with daemon.http("tcp") as client:
        answer = client.post("/rosetta/v1/login/alcf/start")
    assert answer.status_code == 403


def test_daemon_restart_keeps_the_grant(daemon, globus, alcf):
    logged_in(daemon, globus)
    daemon.stop()
    daemon.start()
    assert grant_status(daemon)["state"] == "valid"
    assert ask(daemon).choices[0].message.content == f"echo: {QUESTION}"
    assert globus.exchanges("/v2/oauth2/token")[-1].body["grant_type"] == "authorization_code"  # no new login


# --------------------------------------------------------------------------
# Refreshes
# --------------------------------------------------------------------------


def test_refresh_ahead_of_expiry_under_concurrent_load_is_one_refresh(daemon, globus, alcf):
    globus.expires_in = 3  # refreshed 1 s before expiry (a tenth of the lifetime, at least 1 s)
    globus.refresh_delay = 0.3
    logged_in(daemon, globus)
    deadline = time.monotonic() + 3.6  # the refreshed token (due at ~4 s) does not need a second refresh yet
    failures: list[str] = []
    successes = [0]
    lock = threading.Lock()

    def load() -> None:
        client = openai.OpenAI(base_url=f"{daemon.tcp_url}/v1", api_key=daemon.token, max_retries=0)
        while time.monotonic() < deadline:
            try:
                reply = client.chat.completions.create(model="gpt-oss", messages=[{"role": "user", "content": "hi"}])
                assert reply.choices[0].message.content == "echo: hi"
                with lock:
                    successes[0] += 1
            except Exception as error:  # noqa: BLE001 (every failure is reported)
                with lock:
                    failures.append(repr(error))

    threads = [threading.Thread(target=load) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert successes[0] > 20
    assert globus.refresh_count == 1
    assert all(e.status == 200 for e in alcf.chat_exchanges()), "a request was sent with an expired token"
    assert grant_status(daemon)["refreshes"] == 1


def test_a_refresh_without_a_new_refresh_token_keeps_the_old_one(daemon, globus):
    globus.expires_in = 2
    globus.omit_refresh_token_on_refresh = True
    logged_in(daemon, globus)
    before = json.loads((daemon.state_dir / "globus-alcf.json").read_text())["token"]["refresh_token"]
    time.sleep(1.2)
    ask(daemon)
    assert globus.refresh_count == 1
    after = json.loads((daemon.state_dir / "globus-alcf.json").read_text())["token"]
    assert after["refresh_token"] == before and after["access_token"] != before


def test_a_401_refreshes_once_and_retries(daemon, globus, alcf):
    logged_in(daemon, globus)
    globus.revoke_all_access_tokens()  # the gateway now says "Token is either not active or invalid"
    reply = ask(daemon)
    assert reply.choices[0].message.content == f"echo: {QUESTION}"
    assert [e.status for e in alcf.chat_exchanges()] == [401, 200]
    assert globus.refresh_count == 1


def test_a_refused_refresh_is_a_clear_error_in_each_format(daemon, globus, alcf):
    logged_in(daemon, globus)
    globus.revoke_all_access_tokens()
    globus.refuse_refresh = True
    globus.invalid_grant_status = 400
    with pytest.raises(openai.PermissionDeniedError) as refused:
        ask(daemon)
    assert "rosetta login alcf" in str(refused.value)
    with pytest.raises(anthropic.PermissionDeniedError) as refused_anthropic:
        daemon.anthropic().messages.create(model="gpt-oss", max_tokens=50,
                                           messages=[{"role": "user", "content": QUESTION}])
    assert "rosetta login alcf" in str(refused_anthropic.value)
    assert grant_status(daemon)["state"] == "needs_login"
    assert len(alcf.chat_exchanges()) == 1  # the second request did not reach ALCF
    # a restart keeps the verdict; a new login clears it
    daemon.stop()
    daemon.start()
    assert grant_status(daemon)["state"] == "needs_login"
    globus.refuse_refresh = False
    logged_in(daemon, globus)
    assert ask(daemon).choices[0].message.content == f"echo: {QUESTION}"


def test_the_30_day_policy_401_demands_a_login_without_refreshing(daemon, globus, alcf):
    logged_in(daemon, globus)
    alcf.policy_denies = True
    with pytest.raises(openai.PermissionDeniedError, match="rosetta login alcf"):
        ask(daemon)
    assert globus.refresh_count == 0
    assert grant_status(daemon)["state"] == "needs_login"


# --------------------------------------------------------------------------
# Strict gateway shaping
# --------------------------------------------------------------------------


def test_reasoning_effort_and_chat_template_kwargs_reach_a_200(daemon, globus, alcf):
    logged_in(daemon, globus)
    with daemon.http() as client:
        answer = client.post("/v1/chat/completions", json={
            "model": "gpt-oss", "messages": [{"role": "user", "content": QUESTION}],
            "reasoning_effort": "high", "chat_template_kwargs": {"enable_thinking": True}, "top_k": 20,
            "min_p": 0.05, "repetition_penalty": 1.1})
    assert answer.status_code == 200, answer.text
    sent = alcf.chat_exchanges()[0].body
    assert sent["reasoning_effort"] == "high"
    assert not {"chat_template_kwargs", "top_k", "min_p", "repetition_penalty"} & set(sent)


def test_reasoning_effort_outside_the_gateways_enum_is_clamped(daemon, globus, alcf):
    logged_in(daemon, globus)
    for effort, sent_as in (("xhigh", "high"), ("minimal", "low")):
        alcf.clear()
        ask(daemon, reasoning_effort=effort)
        assert alcf.chat_exchanges()[0].body["reasoning_effort"] == sent_as


def test_list_content_dotted_tool_names_and_non_function_tools_are_shaped(daemon, globus, alcf):
    logged_in(daemon, globus)
    reply = daemon.openai().chat.completions.create(
        model="gpt-oss",
        messages=[{"role": "developer", "content": [{"type": "text", "text": "Be terse."}]},
                  {"role": "system", "content": [{"type": "text", "text": "Use tools."}]},
                  {"role": "user", "content": "What is the weather in Paris?"}],
        tools=[{"type": "function", "function": {"name": "geo.weather", "description": "Weather",
                                                 "parameters": {"type": "object",
                                                                "properties": {"city": {"type": "string"}}}}},
               {"type": "custom", "custom": {"name": "grammar_tool"}}])
    sent = alcf.chat_exchanges()[0].body
    assert sent["messages"][0]["content"] == "Be terse." and sent["messages"][1]["content"] == "Use tools."
    assert [t["function"]["name"] for t in sent["tools"]] == ["geo_weather"]
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "geo.weather" and json.loads(call.function.arguments) == {"city": "Paris"}


def test_anthropic_client_with_tools_and_thinking_reaches_a_200(daemon, globus, alcf):
    logged_in(daemon, globus)
    reply = anthropic_chat(
        daemon.anthropic(), model="gpt-oss", max_tokens=200, system=[{"type": "text", "text": "Be terse."}],
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[{"name": "get.weather", "description": "Weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}])
    assert reply.calls() == [("get.weather", {"city": "Paris"})]
    sent = alcf.chat_exchanges()[0].body
    assert sent["reasoning_effort"] in ("low", "medium", "high")


# --------------------------------------------------------------------------
# Cold models, in-band stream errors
# --------------------------------------------------------------------------


def test_a_cold_model_is_a_clear_503_with_retry_after(daemon, globus, alcf):
    logged_in(daemon, globus)
    for upstream_status in (408, 503):
        with daemon.http() as client:
            answer = client.post("/v1/chat/completions", json={
                "model": "cold", "messages": [{"role": "user", "content": QUESTION}]})
        assert answer.status_code == 503
        assert int(answer.headers["retry-after"]) > 0
        assert "cold start" in answer.json()["error"]["message"]
        assert alcf.chat_exchanges()[-1].status == upstream_status


@pytest.mark.parametrize("client_format", ["openai", "anthropic"])
def test_an_in_band_stream_error_reaches_the_client_in_its_format(daemon, globus, client_format):
    logged_in(daemon, globus)
    with pytest.raises(STREAM_FAILURES) as failed:
        if client_format == "openai":
            openai_chat(daemon.openai(), stream=True, model="stream-error",
                        messages=[{"role": "user", "content": QUESTION}])
        else:
            anthropic_chat(daemon.anthropic(), stream=True, model="stream-error", max_tokens=50,
                           messages=[{"role": "user", "content": QUESTION}])
    assert "An error occurred during processing" in str(failed.value)


# --------------------------------------------------------------------------
# Discovery and the SDKs end to end
# --------------------------------------------------------------------------


def test_discovery_lists_models_with_their_status_and_routes_them(daemon, globus, alcf):
    logged_in(daemon, globus)
    listed = {m.id: getattr(m, "status", None) or (m.model_extra or {}).get("status")
              for m in daemon.openai().models.list()}
    assert {"gpt-oss", "metis-oss"} <= set(listed)
    assert listed["alcf-sophia/openai/gpt-oss-120b"] == "running"
    assert listed["alcf-sophia/meta-llama/Llama-3.3-70B-Instruct"] == "queued"
    assert listed["alcf-metis/gpt-oss-120b"] == "stopped"
    assert listed["openai/gpt-oss-20b"] == "running"
    alcf.clear()
    ask(daemon, model="alcf-metis/gpt-oss-120b")
    ask(daemon, model="openai/gpt-oss-20b")
    assert [(e.path, e.body["model"]) for e in alcf.chat_exchanges()] == [
        ("/resource_server/metis/api/v1/chat/completions", "gpt-oss-120b"),
        ("/resource_server/sophia/vllm/v1/chat/completions", "openai/gpt-oss-20b")]


@pytest.mark.parametrize("stream", [False, True])
def test_openai_and_anthropic_sdks_end_to_end(daemon, globus, alcf, stream):
    logged_in(daemon, globus)
    reply = openai_chat(daemon.openai(), stream=stream, model="gpt-oss",
                        messages=[{"role": "user", "content": QUESTION}])
    assert reply.text == f"echo: {QUESTION}" and reply.finish == "stop"
    reply = anthropic_chat(daemon.anthropic(), stream=stream, model="metis-oss", max_tokens=100,
                           messages=[{"role": "user", "content": QUESTION}])
    assert reply.text == f"echo: {QUESTION}" and reply.finish == "end_turn"
    assert [e.path.split("/")[2] for e in alcf.chat_exchanges()] == ["sophia", "metis"]
