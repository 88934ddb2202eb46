"""Fidelity of the fake upstreams: the official SDKs, pointed straight at them, must work.

These run without rosettad. If the SDKs parse the fakes' answers (whole, streamed,
tool calls, reasoning, errors), the fakes speak the real formats.
"""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest

from fakes import BREAK_AFTER, SLOW_CHUNKS, SLOW_INTERVAL, signature_for
from harness import (ANTHROPIC_UPSTREAM_KEY, OPENAI_UPSTREAM_KEY, STREAM_FAILURES, anthropic_chat,
                     assert_anthropic_error, assert_openai_error, openai_chat)

WEATHER_SCHEMA = {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
OPENAI_TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                                  "parameters": WEATHER_SCHEMA}}]
ANTHROPIC_TOOLS = [{"name": "get_weather", "description": "Weather in a city", "input_schema": WEATHER_SCHEMA}]
USER = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def direct_openai(fake_openai):
    client = openai.OpenAI(base_url=f"{fake_openai.url}/v1", api_key=OPENAI_UPSTREAM_KEY, max_retries=0)
    with client:
        yield client


@pytest.fixture
def direct_anthropic(fake_anthropic):
    client = anthropic.Anthropic(base_url=fake_anthropic.url, api_key=ANTHROPIC_UPSTREAM_KEY, max_retries=0)
    with client:
        yield client


# --------------------------------------------------------------------------
# OpenAI Chat Completions
# --------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_openai_fake_text(direct_openai, fake_openai, stream):
    params = {"model": "fake-gpt", "messages": USER}
    if stream:
        params["stream_options"] = {"include_usage": True}
    reply = openai_chat(direct_openai, stream=stream, **params)

    exchange = fake_openai.only_chat()
    assert (reply.text, reply.finish) == ("echo: hello there", "stop")
    assert reply.usage == exchange.usage == {"input": 2, "output": 3}
    assert exchange.body == {**params, **({"stream": True} if stream else {})}  # the SDK adds nothing


def test_openai_fake_stream_without_usage_sends_none(direct_openai):
    reply = openai_chat(direct_openai, stream=True, model="fake-gpt", messages=USER)
    assert reply.usage is None and reply.text_deltas == 3


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_openai_fake_tool_call_and_result(direct_openai, stream):
    ask = [{"role": "user", "content": "What's the weather in Paris?"}]
    reply = openai_chat(direct_openai, stream=stream, model="fake-gpt", messages=ask, tools=OPENAI_TOOLS)
    assert reply.finish == "tool_calls" and reply.text == ""
    assert reply.calls() == [("get_weather", {"location": "Paris"})]
    call = reply.tool_calls[0]

    follow_up = ask + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": json.dumps(call.args)}}]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    answer = openai_chat(direct_openai, stream=stream, model="fake-gpt", messages=follow_up, tools=OPENAI_TOOLS)
    assert (answer.text, answer.finish) == ("tool result: sunny", "stop")


def test_openai_fake_stream_helper_accumulates_tool_calls(direct_openai):
    with direct_openai.chat.completions.stream(model="fake-gpt", tools=OPENAI_TOOLS, messages=[
            {"role": "user", "content": "Use all tools"}]) as stream:
        completion = stream.get_final_completion()
    call = completion.choices[0].message.tool_calls[0]
    assert json.loads(call.function.arguments) == {"location": "Paris"}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_openai_fake_reasoning_content(direct_openai, stream):
    reply = openai_chat(direct_openai, stream=stream, model="fake-gpt", messages=USER, reasoning_effort="high")
    assert reply.reasoning == "thinking about: hello there"
    assert reply.text == "echo: hello there"


def test_openai_fake_length_and_stop(direct_openai):
    prompt = [{"role": "user", "content": "one two STOP three"}]
    cut = openai_chat(direct_openai, model="fake-gpt", messages=prompt, max_completion_tokens=2)
    assert (cut.text, cut.finish) == ("echo: one ", "length")
    stopped = openai_chat(direct_openai, model="fake-gpt", messages=prompt, stop=["STOP"])
    assert (stopped.text, stopped.finish) == ("echo: one two ", "stop")


@pytest.mark.parametrize("mutation, param", [
    (lambda body: body.pop("messages"), "messages"),
    (lambda body: body.update(messages="hi"), "messages"),
    (lambda body: body.update(top_k=3), None),
    (lambda body: body.update(stream_options={"include_usage": True}), "stream_options"),
    (lambda body: body.update(messages=[{"role": "tool", "tool_call_id": "call_1", "content": "x"}]),
     "messages[0].role"),
    (lambda body: body.update(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}]),
     "messages[0].content[0].image_url.url"),
], ids=["missing-messages", "messages-not-array", "unknown-field", "stream-options-without-stream",
        "orphan-tool-message", "bad-data-url"])
def test_openai_fake_rejects_bad_requests(fake_openai, mutation, param):
    body = {"model": "fake-gpt", "messages": USER}
    mutation(body)
    response = httpx.post(f"{fake_openai.url}/v1/chat/completions", json=body,
                          headers={"authorization": f"Bearer {OPENAI_UPSTREAM_KEY}"})
    error = assert_openai_error(response, 400, "invalid_request_error")
    assert error["param"] == param


def test_openai_fake_status_errors(direct_openai):
    with pytest.raises(openai.AuthenticationError):
        direct_openai.with_options(api_key="wrong").chat.completions.create(model="fake-gpt", messages=USER)
    with pytest.raises(openai.NotFoundError):
        direct_openai.chat.completions.create(model="gpt-unknown", messages=USER)
    with pytest.raises(openai.RateLimitError) as error:
        direct_openai.chat.completions.create(model="fake-gpt-status-429", messages=USER)
    assert error.value.response.json()["error"]["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize("model", ["fake-gpt-break", "fake-gpt-stream-error"])
def test_openai_fake_broken_streams_raise_in_the_sdk(direct_openai, fake_openai, model):
    received = []
    with pytest.raises(STREAM_FAILURES):
        for chunk in direct_openai.chat.completions.create(model=model, messages=[
                {"role": "user", "content": "tell me a long story please"}], stream=True):
            received += [c.delta.content for c in chunk.choices if c.delta.content]
    assert len(received) == BREAK_AFTER
    assert fake_openai.settled_chat().outcome == "broken"


def test_openai_fake_truncated_stream_lacks_finish_and_done(fake_openai):
    body = {"model": "fake-gpt-truncate", "stream": True,
            "messages": [{"role": "user", "content": "tell me a long story please"}]}
    response = httpx.post(f"{fake_openai.url}/v1/chat/completions", json=body,
                          headers={"authorization": f"Bearer {OPENAI_UPSTREAM_KEY}"})
    assert response.status_code == 200
    assert "[DONE]" not in response.text and '"finish_reason": "stop"' not in response.text
    assert response.text.count("data: ") == 1 + BREAK_AFTER


def test_openai_fake_models(direct_openai):
    assert [m.id for m in direct_openai.models.list()] == ["fake-gpt", "fake-gpt-mini"]


# --------------------------------------------------------------------------
# Anthropic Messages
# --------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_anthropic_fake_text(direct_anthropic, fake_anthropic, stream):
    params = {"model": "fake-claude", "max_tokens": 64, "messages": USER, "system": "be brief"}
    reply = anthropic_chat(direct_anthropic, stream=stream, **params)

    exchange = fake_anthropic.only_chat()
    assert (reply.text, reply.finish) == ("echo: hello there", "end_turn")
    assert reply.usage == exchange.usage == {"input": 4, "output": 3}
    assert exchange.body == {**params, **({"stream": True} if stream else {})}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_anthropic_fake_tool_use_and_result(direct_anthropic, stream):
    ask = [{"role": "user", "content": "What's the weather in Paris?"}]
    reply = anthropic_chat(direct_anthropic, stream=stream, model="fake-claude", max_tokens=64, messages=ask,
                           tools=ANTHROPIC_TOOLS)
    assert reply.finish == "tool_use" and reply.text == "I'll call get_weather."
    assert reply.calls() == [("get_weather", {"location": "Paris"})]  # the SDK parsed the partial JSON
    call = reply.tool_calls[0]

    follow_up = ask + [
        {"role": "assistant", "content": [{"type": "text", "text": reply.text},
                                          {"type": "tool_use", "id": call.id, "name": call.name, "input": call.args}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]}]
    answer = anthropic_chat(direct_anthropic, stream=stream, model="fake-claude", max_tokens=64,
                            messages=follow_up, tools=ANTHROPIC_TOOLS)
    assert (answer.text, answer.finish) == ("tool result: sunny", "end_turn")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_anthropic_fake_thinking_with_signature(direct_anthropic, stream):
    reply = anthropic_chat(direct_anthropic, stream=stream, model="fake-claude", max_tokens=2048, messages=USER,
                           thinking={"type": "enabled", "budget_tokens": 1024})
    assert reply.reasoning == "thinking about: hello there"
    message = direct_anthropic.messages.create(model="fake-claude", max_tokens=2048, messages=USER,
                                               thinking={"type": "enabled", "budget_tokens": 1024})
    assert message.content[0].signature == signature_for(reply.reasoning)


def test_anthropic_fake_length_and_stop_sequence(direct_anthropic):
    prompt = [{"role": "user", "content": "one two STOP three"}]
    cut = anthropic_chat(direct_anthropic, model="fake-claude", max_tokens=2, messages=prompt)
    assert (cut.text, cut.finish) == ("echo: one ", "max_tokens")
    stopped = anthropic_chat(direct_anthropic, model="fake-claude", max_tokens=64, messages=prompt,
                             stop_sequences=["STOP"])
    assert (stopped.text, stopped.finish, stopped.stop_sequence) == ("echo: one two ", "stop_sequence", "STOP")


@pytest.mark.parametrize("mutation, fragment", [
    (lambda body: body.pop("max_tokens"), "max_tokens: Field required"),
    (lambda body: body.update(messages=[{"role": "system", "content": "x"}, *USER]), 'Unexpected role "system"'),
    (lambda body: body.update(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]),
     "text content blocks must be non-empty"),
    (lambda body: body.update(messages=[{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}]}]), "unexpected `tool_use_id`"),
    (lambda body: body.update(messages=[*USER, {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "made up", "signature": "forged"}, {"type": "text", "text": "hi"}]},
        *USER]), "Invalid `signature`"),
    (lambda body: body.update(n=2), "n: Extra inputs are not permitted"),
    (lambda body: body.update(thinking={"type": "enabled", "budget_tokens": 4096}),
     "`max_tokens` must be greater than `thinking.budget_tokens`"),
], ids=["missing-max-tokens", "system-role", "empty-text", "orphan-tool-result", "forged-signature",
        "unknown-field", "budget-over-max-tokens"])
def test_anthropic_fake_rejects_bad_requests(fake_anthropic, mutation, fragment):
    body = {"model": "fake-claude", "max_tokens": 2048, "messages": USER}
    mutation(body)
    response = httpx.post(f"{fake_anthropic.url}/v1/messages", json=body,
                          headers={"x-api-key": ANTHROPIC_UPSTREAM_KEY, "anthropic-version": "2023-06-01"})
    error = assert_anthropic_error(response, 400, "invalid_request_error")
    assert fragment in error["message"]


def test_anthropic_fake_requires_version_and_key(fake_anthropic):
    body = {"model": "fake-claude", "max_tokens": 64, "messages": USER}
    url = f"{fake_anthropic.url}/v1/messages"
    assert_anthropic_error(httpx.post(url, json=body, headers={"x-api-key": ANTHROPIC_UPSTREAM_KEY}), 400,
                           "invalid_request_error")
    assert_anthropic_error(httpx.post(url, json=body, headers={"anthropic-version": "2023-06-01"}), 401,
                           "authentication_error")
    accepted = httpx.post(url, json=body, headers={"x-api-key": ANTHROPIC_UPSTREAM_KEY,
                                                   "anthropic-version": "2023-06-01"})
    assert accepted.status_code == 200


def test_anthropic_fake_status_errors(direct_anthropic):
    with pytest.raises(anthropic.AuthenticationError):
        direct_anthropic.with_options(api_key="wrong").messages.create(model="fake-claude", max_tokens=8,
                                                                       messages=USER)
    with pytest.raises(anthropic.NotFoundError):
        direct_anthropic.messages.create(model="claude-unknown", max_tokens=8, messages=USER)
    with pytest.raises(anthropic.RateLimitError) as error:
        direct_anthropic.messages.create(model="fake-claude-status-429", max_tokens=8, messages=USER)
    assert error.value.response.json()["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("model", ["fake-claude-break", "fake-claude-stream-error"])
def test_anthropic_fake_broken_streams_raise_in_the_sdk(direct_anthropic, fake_anthropic, model):
    received = []
    with pytest.raises(STREAM_FAILURES):
        with direct_anthropic.messages.stream(model=model, max_tokens=64, messages=[
                {"role": "user", "content": "tell me a long story please"}]) as stream:
            received += list(stream.text_stream)
    assert fake_anthropic.settled_chat().outcome == "broken"


def test_anthropic_fake_truncated_stream_lacks_message_stop(fake_anthropic):
    body = {"model": "fake-claude-truncate", "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": "tell me a long story please"}]}
    response = httpx.post(f"{fake_anthropic.url}/v1/messages", json=body,
                          headers={"x-api-key": ANTHROPIC_UPSTREAM_KEY, "anthropic-version": "2023-06-01"})
    assert response.status_code == 200
    assert "event: content_block_delta" in response.text
    assert "message_delta" not in response.text and "message_stop" not in response.text


def test_anthropic_fake_models(direct_anthropic):
    assert [m.id for m in direct_anthropic.models.list()] == ["fake-claude", "fake-claude-mini"]


# --------------------------------------------------------------------------
# Both: the fakes notice a client that goes away mid-stream
# --------------------------------------------------------------------------


def test_openai_fake_records_client_abort(direct_openai, fake_openai):
    with direct_openai.chat.completions.create(model="fake-gpt-slow", messages=USER, stream=True) as stream:
        next(c for c in stream if c.choices and c.choices[0].delta.content)
    exchange = fake_openai.wait_for(lambda e: e.finished, timeout=SLOW_CHUNKS * SLOW_INTERVAL + 2)
    assert exchange.outcome == "aborted"


def test_anthropic_fake_records_client_abort(direct_anthropic, fake_anthropic):
    with direct_anthropic.messages.stream(model="fake-claude-slow", max_tokens=64, messages=USER) as stream:
        next(iter(stream.text_stream))
    exchange = fake_anthropic.wait_for(lambda e: e.finished, timeout=SLOW_CHUNKS * SLOW_INTERVAL + 2)
    assert exchange.outcome == "aborted"
