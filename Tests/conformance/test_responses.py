"""The OpenAI Responses API through the gateway, with the official `openai` SDK.

`client.responses.create` (whole and streamed) and the `client.responses.stream` helper against
OpenAI-Chat-, Anthropic- and Responses-format upstreams; function tools, Codex-style custom tools and a
tool round trip; the 400 for requests that need server-side state; and Chat Completions clients
reaching a Responses upstream. A dedicated daemon routes `resp-*` models to the fake Responses upstream.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import openai
import pytest

from fake_responses import CUSTOM_INPUT, FakeResponses, encrypted_for
from fakes import FakeUpstream
from harness import FULL_CAPABILITIES, Daemon, alias, assert_openai_error, gateway_config, openai_chat

RESPONSES_UPSTREAM_KEY = "upstream-responses-key"
UPSTREAM_FORMATS = ("openai", "anthropic", "responses")
WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Current weather for a city",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                               "required": ["location"]}}
APPLY_PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch",
                    "format": {"type": "grammar", "syntax": "lark", "definition": "start: /(.|\\n)+/"}}
EVENT_ORDER_OPENERS = ("response.created", "response.in_progress")


def model_for(upstream: str, variant: str = "test") -> str:
    return f"resp-{variant}" if upstream == "responses" else alias(upstream, variant)


@pytest.fixture(scope="module")
def fake_responses() -> Iterator[FakeResponses]:
    with FakeResponses(api_key=RESPONSES_UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def responses_gateway(fakes: dict[str, FakeUpstream], fake_responses: FakeResponses) -> Iterator[Daemon]:
    config = gateway_config(fakes["openai"], fakes["anthropic"])
    config["providers"]["fake-responses"] = {"type": "openai_responses", "base_url": f"{fake_responses.url}/v1",
                                             "api_key": RESPONSES_UPSTREAM_KEY}
    for variant in ("test", "stream-error", "truncate"):
        upstream_model = "fake-resp" if variant == "test" else f"fake-resp-{variant}"
        config["models"][f"resp-{variant}"] = {"provider": "fake-responses", "upstream_model": upstream_model,
                                              "capabilities": FULL_CAPABILITIES}
    daemon = Daemon(config)
    try:
        yield daemon.start()
    finally:
        daemon.cleanup()


@pytest.fixture(autouse=True)
def fresh_responses_records(fake_responses: FakeResponses) -> None:
    fake_responses.clear()


@pytest.fixture
def client(responses_gateway: Daemon) -> openai.OpenAI:
    return responses_gateway.openai()


def upstream_fake(fakes: dict[str, FakeUpstream], fake_responses: FakeResponses, upstream: str) -> FakeUpstream:
    return fake_responses if upstream == "responses" else fakes[upstream]


def collect(events: list) -> dict[str, Any]:
    """Check a Responses event stream's invariants and return its final response and the text deltas."""
    types = [event.type for event in events]
    assert types[:2] == list(EVENT_ORDER_OPENERS), types
    assert types[-1] in ("response.completed", "response.incomplete"), types
    numbers = [event.sequence_number for event in events]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers), numbers
    added = {e.output_index: e.item for e in events if e.type == "response.output_item.added"}
    done = {e.output_index: e.item for e in events if e.type == "response.output_item.done"}
    assert sorted(added) == sorted(done) == list(range(len(added))), (added, done)
    for index, item in done.items():
        assert added[index].id == item.id and added[index].type == item.type
    final = events[-1].response
    assert [item.id for item in final.output] == [done[i].id for i in sorted(done)]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    return {"response": final, "text": text, "types": types}


# --------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------


@pytest.mark.parametrize("upstream", UPSTREAM_FORMATS)
def test_create_whole(client, fakes, fake_responses, upstream):
    model = model_for(upstream)
    response = client.responses.create(model=model, instructions="Be brief.", input="hello there",
                                       store=False)
    assert response.object == "response"
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.model == model
    assert response.output_text == "echo: hello there"
    usage = response.usage
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens == 4 and usage.output_tokens == 3
    exchange = upstream_fake(fakes, fake_responses, upstream).settled_chat()
    assert exchange.status == 200
    if upstream == "responses":
        assert exchange.body["model"] == "fake-resp"
        assert exchange.body["instructions"] == "Be brief."
        assert exchange.headers["authorization"] == f"Bearer {RESPONSES_UPSTREAM_KEY}"


@pytest.mark.parametrize("upstream", UPSTREAM_FORMATS)
def test_create_streamed(client, upstream):
    with client.responses.create(model=model_for(upstream), input=[
            {"role": "user", "content": [{"type": "input_text", "text": "tell me a story"}]}],
            stream=True, store=False) as stream:
        result = collect(list(stream))
    assert result["text"] == "echo: tell me a story"
    assert result["response"].status == "completed"
    assert result["response"].output_text == "echo: tell me a story"
    assert result["response"].usage.output_tokens == 5
    assert "response.content_part.added" in result["types"] and "response.output_text.done" in result["types"]


@pytest.mark.parametrize("upstream", UPSTREAM_FORMATS)
def test_stream_helper(client, upstream):
    with client.responses.stream(model=model_for(upstream), input="hello there", store=False) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "echo: hello there"
    assert final.output_text == "echo: hello there"


@pytest.mark.parametrize("upstream", UPSTREAM_FORMATS)
def test_max_output_tokens_incomplete(client, upstream):
    words = " ".join(f"w{i}" for i in range(30))
    response = client.responses.create(model=model_for(upstream), input=words, max_output_tokens=16, store=False)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert len(response.output_text.split()) == 16


# --------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------


def function_calls(response: Any) -> list[Any]:
    return [item for item in response.output if item.type == "function_call"]


@pytest.mark.parametrize("stream", (False, True), ids=("whole", "streamed"))
@pytest.mark.parametrize("upstream", UPSTREAM_FORMATS)
def test_function_tool_round_trip(client, fakes, fake_responses, upstream, stream):
    model = model_for(upstream)
    question = {"role": "user", "content": "what is the weather in Paris?"}
    if stream:
        with client.responses.stream(model=model, input=[question], tools=[WEATHER_TOOL], store=False) as events:
            arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
            first = events.get_final_response()
        assert json.loads(arguments) == {"location": "Paris"}
    else:
        first = client.responses.create(model=model, input=[question], tools=[WEATHER_TOOL], store=False)
    calls = function_calls(first)
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"location": "Paris"}
    assert call.call_id and call.status == "completed"

    # Second turn: the full input again (store=false), with the call and its output.
    history = [question, *[item.model_dump(exclude_none=True) for item in first.output],
               {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"}]
    second = client.responses.create(model=model, input=history, tools=[WEATHER_TOOL], store=False)
    assert second.output_text == "tool result: sunny, 21 C"
    assert not function_calls(second)
    fake = upstream_fake(fakes, fake_responses, upstream)
    assert fake.exchanges(fake.chat_path)[-1].status == 200


@pytest.mark.parametrize("stream", (False, True), ids=("whole", "streamed"))
@pytest.mark.parametrize("upstream", UPSTREAM_FORMATS)
def test_custom_tool_like_codex(client, upstream, stream):
    """Codex's freeform apply_patch tool: the call comes back as a custom_tool_call with raw input."""
    model = model_for(upstream)
    params = dict(model=model, instructions="You are Codex.", tools=[APPLY_PATCH_TOOL], tool_choice="required",
                  parallel_tool_calls=False, store=False, include=["reasoning.encrypted_content"],
                  input=[{"type": "message", "role": "developer", "content": [
                      {"type": "input_text", "text": "sandbox: workspace-write"}]},
                         {"type": "message", "role": "user", "content": [
                             {"type": "input_text", "text": "create hello.txt"}]}])
    if stream:
        with client.responses.create(stream=True, **params) as events:
            received = list(events)
        response = collect(received)["response"]
        streamed_input = "".join(e.delta for e in received if e.type == "response.custom_tool_call_input.delta")
        done = [e.input for e in received if e.type == "response.custom_tool_call_input.done"]
        assert done == [streamed_input]
    else:
        response = client.responses.create(**params)
    calls = [item for item in response.output if item.type == "custom_tool_call"]
    assert len(calls) == 1, response.output
    expected = CUSTOM_INPUT if upstream == "responses" else "Paris"  # the other fakes fill a string with Paris
    assert calls[0].name == "apply_patch" and calls[0].input == expected

    history = params["input"] + [calls[0].model_dump(exclude_none=True),
                                 {"type": "custom_tool_call_output", "call_id": calls[0].call_id, "output": "Done!"}]
    params.pop("tool_choice")
    second = client.responses.create(**{**params, "input": history})
    assert second.output_text == "tool result: Done!"


@pytest.mark.parametrize("upstream", UPSTREAM_FORMATS)
def test_reasoning_items_round_trip(client, fake_responses, upstream):
    model = model_for(upstream)
    params = dict(model=model, reasoning={"effort": "low", "summary": "auto"}, store=False,
                  include=["reasoning.encrypted_content"])
    first = client.responses.create(input="hello there", **params)
    reasoning = [item for item in first.output if item.type == "reasoning"]
    assert len(reasoning) == 1
    assert reasoning[0].summary[0].text == "thinking about: hello there"
    if upstream == "responses":
        assert reasoning[0].encrypted_content == encrypted_for("thinking about: hello there")
    history = [{"role": "user", "content": "hello there"},
               *[item.model_dump(exclude_none=True) for item in first.output],
               {"role": "user", "content": "and again"}]
    second = client.responses.create(input=history, **params)
    assert second.output_text == "echo: and again"
    if upstream == "responses":
        sent = fake_responses.exchanges(fake_responses.chat_path)[-1].body["input"]
        assert sent[1]["type"] == "reasoning" and sent[1]["encrypted_content"] == reasoning[0].encrypted_content


# --------------------------------------------------------------------------
# State and errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize("upstream", UPSTREAM_FORMATS)
def test_previous_response_id_is_refused(client, fakes, fake_responses, upstream):
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model=model_for(upstream), input="again", previous_response_id="resp_123")
    error = raised.value
    assert error.status_code == 400
    assert error.body["param"] == "previous_response_id"
    assert "keeps no response state" in error.body["message"] and "store: false" in error.body["message"]
    assert not upstream_fake(fakes, fake_responses, upstream).chat_exchanges()


def test_item_reference_is_refused_raw(responses_gateway):
    with responses_gateway.http() as http:
        answer = http.post("/v1/responses", json={"model": "resp-test", "input": [
            {"type": "item_reference", "id": "msg_1"}]})
    error = assert_openai_error(answer, 400, "invalid_request_error")
    assert error["param"] == "input[0]"


def test_unsupported_tool_type_names_the_field(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="gpt-test", input="hi", tools=[{"type": "web_search"}])
    assert raised.value.body["param"] == "tools[0].type"


def test_store_true_is_accepted(client):
    response = client.responses.create(model="gpt-test", input="hello there", store=True)
    assert response.output_text == "echo: hello there"


@pytest.mark.parametrize("upstream", UPSTREAM_FORMATS)
def test_mid_stream_error_raises(client, upstream):
    with pytest.raises(openai.APIError):
        with client.responses.create(model=model_for(upstream, "stream-error"),
                                     input="please tell me a long story about a cat", stream=True) as events:
            for _ in events:
                pass


def test_truncated_responses_upstream_is_reported(client):
    with pytest.raises(openai.APIError) as raised:
        with client.responses.create(model="resp-truncate", input="please tell me a long story about a cat",
                                     stream=True) as events:
            for _ in events:
                pass
    assert "ended before completing" in str(raised.value)


def test_error_status_from_responses_upstream(responses_gateway, fake_responses):
    with responses_gateway.http() as http:
        answer = http.post("/v1/responses", json={"model": "resp-test", "input": "hi", "max_output_tokens": 3})
    error = assert_openai_error(answer, 400)
    assert "max_output_tokens" in error["message"] and error["message"].startswith("upstream:")


# --------------------------------------------------------------------------
# Other clients reaching a Responses upstream
# --------------------------------------------------------------------------


@pytest.mark.parametrize("stream", (False, True), ids=("whole", "streamed"))
def test_chat_completions_client_to_responses_upstream(responses_gateway, fake_responses, stream):
    client = responses_gateway.openai()
    params: dict[str, Any] = dict(model="resp-test", messages=[{"role": "system", "content": "Be brief."},
                                                                 {"role": "user", "content": "hello there"}])
    if stream:
        params["stream_options"] = {"include_usage": True}
    reply = openai_chat(client, stream=stream, **params)
    assert reply.text == "echo: hello there"
    assert reply.finish == "stop"
    assert reply.usage == {"input": 4, "output": 3}
    sent = fake_responses.settled_chat().body
    assert sent["model"] == "fake-resp" and sent["instructions"] == "Be brief." and sent["store"] is False
    assert sent["input"] == [{"type": "message", "role": "user",
                              "content": [{"type": "input_text", "text": "hello there"}]}]


@pytest.mark.parametrize("stream", (False, True), ids=("whole", "streamed"))
def test_chat_completions_tools_to_responses_upstream(responses_gateway, fake_responses, stream):
    client = responses_gateway.openai()
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_TOOL["parameters"]}}
    messages: list[dict[str, Any]] = [{"role": "user", "content": "weather in Paris?"}]
    first = openai_chat(client, stream=stream, model="resp-test", messages=messages, tools=[tool])
    assert first.finish == "tool_calls"
    assert first.calls() == [("get_weather", {"location": "Paris"})]
    messages += [{"role": "assistant", "content": None, "tool_calls": [
        {"id": first.tool_calls[0].id, "type": "function",
         "function": {"name": "get_weather", "arguments": json.dumps(first.tool_calls[0].args)}}]},
                 {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "sunny"}]
    second = openai_chat(client, stream=stream, model="resp-test", messages=messages, tools=[tool])
    assert second.text == "tool result: sunny"


def test_anthropic_client_to_responses_upstream(responses_gateway):
    client = responses_gateway.anthropic()
    message = client.messages.create(model="resp-test", max_tokens=64,
                                     messages=[{"role": "user", "content": "hello there"}])
    assert message.content[0].text == "echo: hello there"
    assert message.stop_reason == "end_turn"
    with client.messages.stream(model="resp-test", max_tokens=64,
                                messages=[{"role": "user", "content": "hello there"}]) as events:
        assert "".join(events.text_stream) == "echo: hello there"


def test_responses_route_without_v1(responses_gateway):
    with responses_gateway.http() as http:
        answer = http.post("/responses", json={"model": "gpt-test", "input": "hello there"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["output"][0]["content"][0]["text"] == "echo: hello there"
    with responses_gateway.http() as http:
        wrong = http.get("/v1/responses")
    assert wrong.status_code == 405
