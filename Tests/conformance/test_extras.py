"""Issue 3 extras: embeddings, count_tokens, vendor-prefixed aliases, capabilities, the transform hook."""
from __future__ import annotations

import anthropic
import openai
import pytest

from harness import CLIENT_FORMATS, alias, chat

QUESTION = "What is the capital of France?"


def test_embeddings_pass_through_to_openai_chat_providers(gateway, fakes):
    result = gateway.openai().embeddings.create(model=alias("openai"), input=["hello world", "abc"])
    assert [item.embedding for item in result.data] == [[11.0, 0.5, -1.0], [3.0, 0.5, -1.0]]
    assert result.model == alias("openai")
    sent = fakes["openai"].exchanges("/v1/embeddings")
    assert len(sent) == 1 and sent[0].body["model"] == "fake-gpt"


def test_embeddings_for_a_provider_that_cannot_embed_are_a_clear_400(gateway, fakes):
    with pytest.raises(openai.BadRequestError) as refused:
        gateway.openai().embeddings.create(model=alias("anthropic"), input="hello")
    assert "cannot compute embeddings" in str(refused.value)
    assert fakes["anthropic"].exchanges() == []


def test_count_tokens_is_computed_locally(gateway, fakes):
    client = gateway.anthropic()
    short = client.messages.count_tokens(model=alias("anthropic"), messages=[{"role": "user", "content": "hi"}])
    long = client.messages.count_tokens(
        model=alias("anthropic"), system="You are terse.",
        messages=[{"role": "user", "content": QUESTION * 20}],
        tools=[{"name": "lookup", "description": "Look a city up", "input_schema": {"type": "object"}}])
    assert 0 < short.input_tokens < long.input_tokens
    assert fakes["anthropic"].exchanges() == [] and fakes["openai"].exchanges() == []


@pytest.mark.parametrize("client_format", CLIENT_FORMATS)
@pytest.mark.parametrize("name", ["openai/gpt-test", "GPT-TEST", "OpenAI/Gpt-Test"])
def test_vendor_prefixed_and_case_insensitive_names(gateway, fakes, client_format, name):
    reply = chat(gateway, client_format, model=name, messages=[{"role": "user", "content": QUESTION}])
    assert reply.text == f"echo: {QUESTION}"
    assert fakes["openai"].only_chat().body["model"] == "fake-gpt"


def test_another_vendors_prefix_is_not_found(gateway):
    with pytest.raises(openai.NotFoundError):
        chat(gateway, "openai", model="anthropic/gpt-test", messages=[{"role": "user", "content": QUESTION}])


def test_model_list_has_bare_and_vendor_prefixed_ids(gateway):
    ids = {model.id for model in gateway.openai().models.list()}
    assert {alias("openai"), "openai/" + alias("openai"), alias("anthropic"), "anthropic/" + alias("anthropic")} <= ids


@pytest.mark.parametrize("client_format", CLIENT_FORMATS)
def test_tools_for_a_model_without_the_tools_capability_are_refused(gateway, fakes, client_format):
    if client_format == "openai":
        tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
        errors = openai.BadRequestError
    else:
        tools = [{"name": "f", "input_schema": {"type": "object"}}]
        errors = anthropic.BadRequestError
    with pytest.raises(errors) as refused:
        chat(gateway, client_format, model=alias("openai", "textonly"), tools=tools,
             messages=[{"role": "user", "content": QUESTION}])
    assert "does not support tools" in str(refused.value)
    assert fakes["openai"].chat_exchanges() == []


@pytest.mark.parametrize("client_format", CLIENT_FORMATS)
def test_admin_transform_rules_apply(start_daemon, fakes, client_format):
    daemon = start_daemon(transforms=[{
        "match": {"provider": "fake-openai", "model": "fake-gpt*"},
        "apply": [{"force_stream": True}, {"default": {"field": "seed", "value": 7}},
                  {"rewrite_role": {"from": "developer", "to": "system"}}],
    }])
    messages = [{"role": "user", "content": QUESTION}]
    reply = chat(daemon, client_format, model=alias("openai"), messages=messages)
    assert reply.text == f"echo: {QUESTION}"
    sent = fakes["openai"].only_chat().body
    assert sent["stream"] is True and sent["seed"] == 7
