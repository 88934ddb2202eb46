"""Chat Completions and Messages through rosettad, both ways, whole and streamed.

`client_format` is the SDK the client uses, `upstream` the format of the fake the
model routes to: equal means pass-through, different means translation.
"""

from __future__ import annotations

import pytest

from fakes import LONG_CHUNKS, LONG_TEXT
from harness import (CLIENT_FORMATS, FINISH, TRANSPORTS, UNIX_CLIENT_KEY, UPSTREAMS, alias, ask,
                     assert_upstream_credentials, chat, upstream_model)

each_client = pytest.mark.parametrize("client_format", CLIENT_FORMATS)
each_upstream = pytest.mark.parametrize("upstream", UPSTREAMS)
whole_and_streamed = pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])


@each_client
@each_upstream
@whole_and_streamed
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_text_round_trip(gateway, fakes, client_format, upstream, stream, transport):
    reply = ask(gateway, client_format, model=alias(upstream), prompt="hello there", stream=stream,
                include_usage=True, transport=transport)

    exchange = fakes[upstream].settled_chat()
    view = fakes[upstream].view(exchange)
    assert reply.text == "echo: hello there"
    assert reply.finish == FINISH[client_format]["stop"]
    assert reply.reasoning == "" and not view.reasoning
    assert reply.usage == exchange.usage
    assert view.model == upstream_model(upstream)
    assert view.turns == [("user", "hello there")]
    assert_upstream_credentials(exchange, upstream, gateway.token, UNIX_CLIENT_KEY)


@each_client
@each_upstream
def test_every_upstream_event_reaches_the_client(gateway, fakes, client_format, upstream):
    reply = ask(gateway, client_format, model=alias(upstream, "long"), stream=True)
    assert reply.text == LONG_TEXT
    assert reply.text_deltas == LONG_CHUNKS
    assert reply.finish == FINISH[client_format]["stop"]


@each_client
@each_upstream
@whole_and_streamed
def test_max_tokens_limits_the_reply(gateway, fakes, client_format, upstream, stream):
    reply = ask(gateway, client_format, model=alias(upstream), prompt="one two three four", max_tokens=2,
                stream=stream)
    assert reply.text == "echo: one "
    assert reply.finish == FINISH[client_format]["length"]
    assert fakes[upstream].last_view().max_tokens == 2


@each_upstream
def test_openai_max_completion_tokens_reaches_upstream(gateway, fakes, upstream):
    reply = chat(gateway, "openai", model=alias(upstream), max_completion_tokens=2,
                 messages=[{"role": "user", "content": "one two three four"}])
    assert (reply.text, reply.finish) == ("echo: one ", "length")
    assert fakes[upstream].last_view().max_tokens == 2


def test_anthropic_upstream_gets_a_default_max_tokens(gateway, fakes):
    ask(gateway, "openai", model=alias("anthropic"))  # no max_tokens: the fake would answer 400 without one
    max_tokens = fakes["anthropic"].last_view().max_tokens
    assert isinstance(max_tokens, int) and max_tokens > 0


@each_client
@each_upstream
@whole_and_streamed
def test_stop_sequences(gateway, fakes, client_format, upstream, stream):
    reply = ask(gateway, client_format, model=alias(upstream), prompt="one two STOP three", stop=["STOP"],
                stream=stream)

    assert reply.text == "echo: one two "
    assert fakes[upstream].last_view().stop == ["STOP"]
    if client_format == "openai":
        assert reply.finish == "stop"
    elif upstream == "anthropic":
        assert (reply.finish, reply.stop_sequence) == ("stop_sequence", "STOP")
    else:  # an OpenAI upstream does not say which sequence matched
        assert reply.finish in ("end_turn", "stop_sequence")


@each_client
@each_upstream
def test_sampling_parameters_reach_upstream(gateway, fakes, client_format, upstream):
    ask(gateway, client_format, model=alias(upstream), temperature=0.5, top_p=0.9)
    view = fakes[upstream].last_view()
    assert (view.temperature, view.top_p) == (0.5, 0.9)


@each_client
@each_upstream
def test_system_prompt(gateway, fakes, client_format, upstream):
    ask(gateway, client_format, model=alias(upstream), system="You are terse.")
    view = fakes[upstream].last_view()
    assert view.system == "You are terse."
    assert view.turns == [("user", "hello there")]


@each_upstream
def test_openai_developer_message_is_a_system_prompt(gateway, fakes, upstream):
    chat(gateway, "openai", model=alias(upstream), messages=[
        {"role": "developer", "content": "Be formal."}, {"role": "user", "content": "hello there"}])
    assert fakes[upstream].last_view().system == "Be formal."


@each_client
@each_upstream
def test_multi_turn_history(gateway, fakes, client_format, upstream):
    history = [("user", "hi"), ("assistant", "echo: hi"), ("user", "and again")]
    reply = chat(gateway, client_format, model=alias(upstream),
                 messages=[{"role": role, "content": text} for role, text in history])
    assert reply.text == "echo: and again"
    assert fakes[upstream].last_view().turns == history


@each_upstream
@pytest.mark.parametrize("include_usage", [False, True], ids=["no-usage", "include-usage"])
def test_openai_stream_usage_only_when_asked(gateway, fakes, upstream, include_usage):
    # the collector asserts the usage chunk is present (last, empty choices) exactly when asked for
    reply = ask(gateway, "openai", model=alias(upstream), stream=True, include_usage=include_usage)
    assert reply.usage == (fakes[upstream].settled_chat().usage if include_usage else None)


@each_client
@whole_and_streamed
def test_same_format_passes_the_body_through(gateway, fakes, client_format, stream):
    """Only the model is renamed; fields the gateway has no use for survive too."""
    if client_format == "openai":
        params = {"model": alias("openai"), "messages": [{"role": "user", "content": "hello there"}],
                  "temperature": 0.25, "seed": 7, "user": "someone", "presence_penalty": 0.5,
                  "stop": ["never"], "logit_bias": {"50256": -100}}
    else:
        params = {"model": alias("anthropic"), "max_tokens": 99, "messages": [{"role": "user", "content": "hi"}],
                  "top_k": 5, "metadata": {"user_id": "someone"}, "stop_sequences": ["never"]}
    chat(gateway, client_format, stream=stream, **params)

    exchange = fakes[client_format].settled_chat()
    expected = {**params, "model": upstream_model(client_format)}
    if stream:
        expected["stream"] = True
    assert exchange.body == expected


@each_client
def test_same_format_passes_the_response_through(gateway, fakes, client_format):
    reply = ask(gateway, client_format, model=alias(client_format))
    response = fakes[client_format].settled_chat().response
    assert reply.id == response["id"]
    if client_format == "openai":
        assert reply.raw.system_fingerprint == response["system_fingerprint"]
