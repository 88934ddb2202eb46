"""Google GenAI clients (the official google-genai SDK) through rosettad, to every upstream format,
and the OpenAI SDK to a Google-format upstream.

A dedicated daemon routes gemini-test to the fake Google upstream (fake_google.py), gpt-test and
claude-test to the shared OpenAI and Anthropic fakes.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Iterator

import httpx
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from fake_google import FakeGoogle, call_signature
from fakes import FakeUpstream
from harness import Daemon, gateway_config, PNG_B64

GOOGLE_UPSTREAM_KEY = "upstream-google-key"
MODELS = {"google": "gemini-test", "openai": "gpt-test", "anthropic": "claude-test"}
UPSTREAM_FORMATS = tuple(MODELS)


@pytest.fixture(scope="module")
def fake_google() -> Iterator[FakeGoogle]:
    with FakeGoogle(api_key=GOOGLE_UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def google_gateway(fakes: dict[str, FakeUpstream], fake_google: FakeGoogle) -> Iterator[Daemon]:
    config = gateway_config(fakes["openai"], fakes["anthropic"])
    config["providers"]["fake-google"] = {"type": "google", "base_url": f"{fake_google.url}/v1beta",
                                         "api_key": GOOGLE_UPSTREAM_KEY}
    config["models"]["gemini-test"] = {"provider": "fake-google", "upstream_model": "fake-gemini"}
    config["models"]["gemini-stream-error"] = {"provider": "fake-google", "upstream_model": "fake-gemini-stream-error"}
    daemon = Daemon(config)
    try:
        yield daemon.start()
    finally:
        daemon.cleanup()


@pytest.fixture(autouse=True)
def clear_google(fake_google: FakeGoogle) -> None:
    fake_google.clear()


def client_for(daemon: Daemon, key: str | None = None) -> genai.Client:
    return genai.Client(api_key=key or daemon.token,
                        http_options=types.HttpOptions(base_url=daemon.tcp_url, timeout=30_000))


WEATHER_TOOL = types.Tool(function_declarations=[types.FunctionDeclaration(
    name="get_weather", description="Current weather for a city",
    parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}, required=["city"]))])


@pytest.mark.parametrize("upstream", UPSTREAM_FORMATS)
def test_google_generate_content(google_gateway: Daemon, upstream: str) -> None:
    client = client_for(google_gateway)
    response = client.models.generate_content(
        model=MODELS[upstream], contents="hello there",
        config=types.GenerateContentConfig(system_instruction="Be kind.", max_output_tokens=50, temperature=0.3))
    assert response.text == "echo: hello there"
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage.prompt_token_count and usage.prompt_token_count > 0
    assert usage.candidates_token_count == 3
    assert usage.total_token_count == usage.prompt_token_count + 3


@pytest.mark.parametrize("upstream", UPSTREAM_FORMATS)
def test_google_generate_content_stream(google_gateway: Daemon, upstream: str) -> None:
    client = client_for(google_gateway)
    chunks = list(client.models.generate_content_stream(model=MODELS[upstream], contents="stream this reply please"))
    # Every piece arrives, including the one the Google fake sends in the chunk that carries finishReason.
    assert "".join(chunk.text or "" for chunk in chunks) == "echo: stream this reply please"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == 5
    assert len(chunks) >= 3


@pytest.mark.parametrize("upstream", UPSTREAM_FORMATS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_google_function_calling(google_gateway: Daemon, upstream: str, stream: bool) -> None:
    client = client_for(google_gateway)
    config = types.GenerateContentConfig(
        tools=[WEATHER_TOOL], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
    question = types.Content(role="user", parts=[types.Part(text="What is the weather in Paris?")])
    if stream:
        chunks = list(client.models.generate_content_stream(model=MODELS[upstream], contents=[question], config=config))
        calls = [call for chunk in chunks for call in (chunk.function_calls or [])]
        model_parts = [part for chunk in chunks for part in chunk.candidates[0].content.parts or []
                       if part.function_call]
    else:
        response = client.models.generate_content(model=MODELS[upstream], contents=[question], config=config)
        calls = response.function_calls or []
        model_parts = [part for part in response.candidates[0].content.parts if part.function_call]
    assert [(call.name, call.args) for call in calls] == [("get_weather", {"city": "Paris"})]

    # Second turn: the function's answer, sent back the way Gemini CLI does (call id echoed when present).
    answer = types.Part(function_response=types.FunctionResponse(
        id=calls[0].id, name="get_weather", response={"output": "sunny, 21 C"}))
    history = [question, types.Content(role="model", parts=model_parts), types.Content(role="user", parts=[answer])]
    follow_up = client.models.generate_content(model=MODELS[upstream], contents=history, config=config)
    assert follow_up.text == "tool result: sunny, 21 C"


def test_google_thought_signature_round_trip(google_gateway: Daemon, fake_google: FakeGoogle) -> None:
    """Gemini 3 style: the signed function call must come back signed in the next turn (the fake enforces it)."""
    client = client_for(google_gateway)
    config = types.GenerateContentConfig(
        tools=[WEATHER_TOOL], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=1024))
    question = types.Content(role="user", parts=[types.Part(text="weather in Paris?")])
    response = client.models.generate_content(model="gemini-test", contents=[question], config=config)
    call_part = next(part for part in response.candidates[0].content.parts if part.function_call)
    assert call_part.thought_signature is not None
    assert any(part.thought for part in response.candidates[0].content.parts)
    answer = types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
        name="get_weather", response={"output": "rain"}))])
    follow_up = client.models.generate_content(
        model="gemini-test", contents=[question, response.candidates[0].content, answer], config=config)
    assert follow_up.text.endswith("tool result: rain")
    replayed = fake_google.chat_exchanges()[-1].body["contents"][1]["parts"]
    signed = [part for part in replayed if "functionCall" in part]
    # The SDK re-encodes signatures in URL-safe base64 (Google accepts both); the bytes are the fake's.
    assert base64.urlsafe_b64decode(signed[0]["thoughtSignature"]) == base64.b64decode(
        call_signature("get_weather", {"city": "Paris"}))


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_google_client_keeps_anthropic_thinking_signatures(google_gateway: Daemon, fakes: dict[str, FakeUpstream],
                                                           stream: bool) -> None:
    """Anthropic thinking rides through a Google client as signed thought parts and is accepted back."""
    client = client_for(google_gateway)
    config = types.GenerateContentConfig(
        tools=[WEATHER_TOOL], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=2048))
    question = types.Content(role="user", parts=[types.Part(text="weather in Paris?")])
    if stream:
        chunks = list(client.models.generate_content_stream(model="claude-test", contents=[question], config=config))
        parts = [part for chunk in chunks for part in chunk.candidates[0].content.parts or []]
    else:
        parts = client.models.generate_content(model="claude-test", contents=[question], config=config) \
            .candidates[0].content.parts
    thoughts = [part for part in parts if part.thought]
    assert "".join(part.text or "" for part in thoughts) == "thinking about: weather in Paris?"
    assert any(part.thought_signature for part in thoughts)
    calls = [part.function_call for part in parts if part.function_call]
    assert [call.name for call in calls] == ["get_weather"]
    answer = types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
        id=calls[0].id, name="get_weather", response={"output": "fog"}))])
    follow_up = client.models.generate_content(
        model="claude-test", contents=[question, types.Content(role="model", parts=parts), answer], config=config)
    assert follow_up.text == "tool result: fog"
    replayed = fakes["anthropic"].chat_exchanges()[-1].body["messages"][1]["content"]
    assert replayed[0]["type"] == "thinking" and replayed[0]["signature"]


def test_google_image_to_openai_upstream(google_gateway: Daemon, fakes: dict[str, FakeUpstream]) -> None:
    import base64
    client = client_for(google_gateway)
    response = client.models.generate_content(model="gpt-test", contents=[
        types.Part(text="describe"), types.Part.from_bytes(data=base64.b64decode(PNG_B64), mime_type="image/png")])
    assert response.text == "echo: describe"
    images = fakes["openai"].last_view().images
    assert images == [("base64", "image/png", PNG_B64)]


def test_google_errors_in_google_envelope(google_gateway: Daemon) -> None:
    client = client_for(google_gateway)
    with pytest.raises(genai_errors.ClientError) as unknown:
        client.models.generate_content(model="no-such-model", contents="hi")
    assert unknown.value.code == 404
    assert unknown.value.status == "NOT_FOUND"
    stranger = client_for(google_gateway, key="wrong-token")
    with pytest.raises(genai_errors.ClientError) as unauthenticated:
        stranger.models.generate_content(model="gemini-test", contents="hi")
    assert unauthenticated.value.code == 401
    assert unauthenticated.value.status == "UNAUTHENTICATED"
    with pytest.raises(genai_errors.ClientError) as candidates:
        client.models.generate_content(
            model="gpt-test", contents="hi", config=types.GenerateContentConfig(candidate_count=2))
    assert candidates.value.code == 400
    assert "candidateCount" in candidates.value.message


def test_google_mid_stream_error_raises(google_gateway: Daemon) -> None:
    client = client_for(google_gateway)
    with pytest.raises(genai_errors.APIError) as failure:
        for _ in client.models.generate_content_stream(model="gemini-stream-error", contents="tell me a long story please"):
            pass
    assert failure.value.code == 500


def test_google_stream_without_alt_sse_is_a_json_array(google_gateway: Daemon) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "array please now"}]}]}
    with httpx.Client(base_url=google_gateway.tcp_url, timeout=30) as http:
        response = http.post("/v1beta/models/claude-test:streamGenerateContent", json=body,
                             params={"key": google_gateway.token})
    assert response.status_code == 200
    chunks = json.loads(response.text)
    assert isinstance(chunks, list) and len(chunks) >= 2
    text = "".join(part.get("text", "") for chunk in chunks for part in chunk["candidates"][0]["content"]["parts"])
    assert text == "echo: array please now"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_google_model_list(google_gateway: Daemon) -> None:
    client = client_for(google_gateway)
    names = {model.name for model in client.models.list()}
    assert {"models/gemini-test", "models/gpt-test", "models/claude-test"} <= names
    model = client.models.get(model="gemini-test")
    assert model.name == "models/gemini-test"
    assert "generateContent" in model.supported_actions


def test_google_upstream_request_shape(google_gateway: Daemon, fake_google: FakeGoogle) -> None:
    client = client_for(google_gateway)
    client.models.generate_content(model="gemini-test", contents="check the shape")
    exchange = fake_google.settled_chat()
    assert exchange.path == "/v1beta/models/fake-gemini:generateContent"
    assert exchange.headers["x-goog-api-key"] == GOOGLE_UPSTREAM_KEY
    assert google_gateway.token not in json.dumps(exchange.headers)
    assert "model" not in exchange.body


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_openai_sdk_to_google_upstream(google_gateway: Daemon, fake_google: FakeGoogle, stream: bool) -> None:
    client = google_gateway.openai()
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    messages: list[dict[str, Any]] = [{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "What is the weather in Paris?"}]
    if stream:
        chunks = list(client.chat.completions.create(model="gemini-test", messages=messages, tools=tools, stream=True,
                                                     stream_options={"include_usage": True}))
        calls = [call for chunk in chunks if chunk.choices for call in (chunk.choices[0].delta.tool_calls or [])]
        finish = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
        assert finish == ["tool_calls"]
        assert chunks[-1].usage.total_tokens > 0
        call_id, name = calls[0].id, calls[0].function.name
        arguments = "".join(call.function.arguments or "" for call in calls)
    else:
        completion = client.chat.completions.create(model="gemini-test", messages=messages, tools=tools)
        assert completion.choices[0].finish_reason == "tool_calls"
        call = completion.choices[0].message.tool_calls[0]
        call_id, name, arguments = call.id, call.function.name, call.function.arguments
    assert (name, json.loads(arguments)) == ("get_weather", {"city": "Paris"})
    messages += [{"role": "assistant", "content": None, "tool_calls": [
                     {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]},
                 {"role": "tool", "tool_call_id": call_id, "content": "cloudy"}]
    follow_up = client.chat.completions.create(model="gemini-test", messages=messages, tools=tools)
    assert follow_up.choices[0].message.content == "tool result: cloudy"
    sent = fake_google.chat_exchanges()[-1].body
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent["contents"][2]["parts"][0]["functionResponse"] == {"name": "get_weather", "response": {"output": "cloudy"}}


def test_google_count_tokens_is_estimated_locally(google_gateway: Daemon, fake_google: FakeGoogle) -> None:
    """Gemini CLI calls :countTokens; the gateway answers it itself, more text counting more tokens."""
    client = client_for(google_gateway)
    short = client.models.count_tokens(model="gemini-test", contents="hello")
    long = client.models.count_tokens(model="gemini-test", contents="hello " * 200)
    assert short.total_tokens is not None and short.total_tokens > 0
    assert long.total_tokens > short.total_tokens * 10
    assert fake_google.exchanges() == [], "count_tokens must not reach the upstream"
    with pytest.raises(genai_errors.ClientError) as refused:
        client.models.count_tokens(model="no-such-model", contents="hi")
    assert refused.value.code == 404
