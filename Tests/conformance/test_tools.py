"""Tool definitions, tool_choice, tool calls and tool results through rosettad."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness import CLIENT_FORMATS, FINISH, UPSTREAMS, Reply, alias, chat

WEATHER = ("get_weather", "Current weather in a city",
           {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]})
TIME = ("get_time", "Local time in a time zone",
        {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]})
ASK_WEATHER = "What's the weather in Paris?"
RESULT = "sunny, 21 C"

each_client = pytest.mark.parametrize("client_format", CLIENT_FORMATS)
each_upstream = pytest.mark.parametrize("upstream", UPSTREAMS)
whole_and_streamed = pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])


def native_tools(client_format: str, tools: tuple = (WEATHER, TIME)) -> list[dict]:
    if client_format == "openai":
        return [{"type": "function", "function": {"name": n, "description": d, "parameters": s}} for n, d, s in tools]
    return [{"name": n, "description": d, "input_schema": s} for n, d, s in tools]


def native_tool_choice(client_format: str, choice: str | tuple[str, str]) -> Any:
    """auto | required | none | ("tool", name), spelt the client's way."""
    if client_format == "openai":
        return {"type": "function", "function": {"name": choice[1]}} if isinstance(choice, tuple) else choice
    if isinstance(choice, tuple):
        return {"type": "tool", "name": choice[1]}
    return {"type": {"required": "any"}.get(choice, choice)}


def ask_with_tools(gateway, client_format: str, upstream: str, prompt: str = ASK_WEATHER, *,
                   stream: bool = False, **extra: Any) -> Reply:
    return chat(gateway, client_format, stream=stream, model=alias(upstream), tools=native_tools(client_format),
                messages=[{"role": "user", "content": prompt}], **extra)


def history_with_results(client_format: str, prompt: str, reply: Reply, result: str) -> list[dict]:
    """The conversation after the client ran every tool the reply asked for."""
    ask = {"role": "user", "content": prompt}
    if client_format == "openai":
        assistant = {"role": "assistant", "content": reply.text or None, "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.args)}}
            for c in reply.tool_calls]}
        return [ask, assistant, *({"role": "tool", "tool_call_id": c.id, "content": result}
                                  for c in reply.tool_calls)]
    blocks = ([{"type": "text", "text": reply.text}] if reply.text else []) + [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": c.args} for c in reply.tool_calls]
    results = [{"type": "tool_result", "tool_use_id": c.id, "content": result} for c in reply.tool_calls]
    return [ask, {"role": "assistant", "content": blocks}, {"role": "user", "content": results}]


@each_client
@each_upstream
@whole_and_streamed
def test_tool_call(gateway, fakes, client_format, upstream, stream):
    reply = ask_with_tools(gateway, client_format, upstream, stream=stream)

    assert reply.finish == FINISH[client_format]["tool"]
    assert reply.calls() == [("get_weather", {"location": "Paris"})]
    assert reply.tool_calls[0].id
    # an Anthropic upstream says something before calling (as Claude does); that text survives
    assert reply.text == ("I'll call get_weather." if upstream == "anthropic" else "")
    view = fakes[upstream].last_view()
    assert view.tools == [WEATHER, TIME]


@each_client
@each_upstream
@whole_and_streamed
def test_tool_result_turn(gateway, fakes, client_format, upstream, stream):
    call = ask_with_tools(gateway, client_format, upstream)
    fakes[upstream].clear()

    reply = chat(gateway, client_format, stream=stream, model=alias(upstream), tools=native_tools(client_format),
                 messages=history_with_results(client_format, ASK_WEATHER, call, RESULT))

    assert (reply.text, reply.finish) == (f"tool result: {RESULT}", FINISH[client_format]["stop"])
    view = fakes[upstream].last_view()
    call_id = call.tool_calls[0].id
    assert view.tool_calls == [(call_id, "get_weather", {"location": "Paris"})]
    assert view.tool_results == [(call_id, RESULT)]


@each_client
@each_upstream
@pytest.mark.parametrize("choice, expected_calls", [
    ("auto", [("get_weather", {"location": "Paris"})]),
    ("required", [("get_weather", {"location": "Paris"})]),
    (("tool", "get_time"), [("get_time", {"timezone": "Paris"})]),
    ("none", []),
], ids=["auto", "required", "named", "none"])
def test_tool_choice(gateway, fakes, client_format, upstream, choice, expected_calls):
    reply = ask_with_tools(gateway, client_format, upstream,
                           tool_choice=native_tool_choice(client_format, choice))

    assert reply.calls() == expected_calls
    assert reply.finish == FINISH[client_format]["tool" if expected_calls else "stop"]
    view = fakes[upstream].last_view()
    if choice == "none":  # either said so, or no tools offered at all
        assert view.tool_choice == "none" or view.tools == []
    else:
        assert view.tool_choice == choice


@each_client
@each_upstream
@whole_and_streamed
def test_parallel_tool_calls(gateway, client_format, upstream, stream):
    reply = ask_with_tools(gateway, client_format, upstream, "Use all tools for Paris", stream=stream)
    assert reply.calls() == [("get_weather", {"location": "Paris"}), ("get_time", {"timezone": "Paris"})]
    assert len({call.id for call in reply.tool_calls}) == 2


@each_client
@each_upstream
def test_parallel_tool_calls_disabled(gateway, fakes, client_format, upstream):
    extra = ({"parallel_tool_calls": False} if client_format == "openai"
             else {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}})
    reply = ask_with_tools(gateway, client_format, upstream, "Use all tools for Paris", **extra)
    assert reply.calls() == [("get_weather", {"location": "Paris"})]
    assert fakes[upstream].last_view().parallel_tool_calls is False


@each_client
@each_upstream
def test_results_of_parallel_calls(gateway, fakes, client_format, upstream):
    calls = ask_with_tools(gateway, client_format, upstream, "Use all tools for Paris")
    fakes[upstream].clear()
    reply = chat(gateway, client_format, model=alias(upstream), tools=native_tools(client_format),
                 messages=history_with_results(client_format, "Use all tools for Paris", calls, RESULT))
    assert reply.text == f"tool result: {RESULT}; {RESULT}"
    assert [i for i, _ in fakes[upstream].last_view().tool_results] == [c.id for c in calls.tool_calls]
