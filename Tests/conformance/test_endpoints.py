"""Health, model lists, routing by model name, and the paths real clients use."""

from __future__ import annotations

import anthropic
import openai
import pytest

from harness import (CLIENT_FORMATS, TRANSPORTS, alias, assert_error_in_format, chat, configured_aliases,
                     minimal_body)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_health(gateway, transport):
    with gateway.http(transport) as client:
        assert client.get("/health").status_code == 200


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_models_openai_shape(gateway, transport):
    assert set(configured_aliases()) <= {m.id for m in gateway.openai(transport).models.list()}

    with gateway.http(transport) as client:
        body = client.get("/v1/models").json()
    assert body["object"] == "list"
    for model in body["data"]:
        assert model["object"] == "model"
        assert isinstance(model["id"], str) and isinstance(model["created"], int)
        assert isinstance(model["owned_by"], str)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_models_anthropic_shape(gateway, transport):
    assert set(configured_aliases()) <= {m.id for m in gateway.anthropic(transport).models.list()}

    with gateway.http(transport, headers={"anthropic-version": "2023-06-01"}) as client:
        body = client.get("/v1/models").json()
    models = body["data"]
    for model in models:
        assert model["type"] == "model"
        assert isinstance(model["id"], str) and isinstance(model["display_name"], str)
        assert isinstance(model["created_at"], str)  # RFC 3339; the SDK parsed it above
    assert body["has_more"] is False
    assert (body["first_id"], body["last_id"]) == (models[0]["id"], models[-1]["id"])


@pytest.mark.parametrize("client_format", CLIENT_FORMATS)
@pytest.mark.parametrize("typo, closest", [("gpt-tst", "gpt-test"), ("claude-tesst", "claude-test")])
def test_unknown_model_is_404_naming_the_closest(gateway, fakes, client_format, typo, closest):
    not_found = openai.NotFoundError if client_format == "openai" else anthropic.NotFoundError
    with pytest.raises(not_found) as error:
        chat(gateway, client_format, **minimal_body(client_format, typo))

    message = assert_error_in_format(client_format, error.value.response, 404, "not_found_error")["message"]
    assert closest in message
    assert not fakes["openai"].chat_exchanges() and not fakes["anthropic"].chat_exchanges()


def test_claude_code_beta_path_is_accepted(gateway):
    """Claude Code posts to /v1/messages?beta=true."""
    with gateway.http() as client:
        response = client.post("/v1/messages?beta=true", json=minimal_body("anthropic", alias("anthropic")),
                               headers={"anthropic-version": "2023-06-01"})
    assert response.status_code == 200, response.text
    assert response.json()["content"][0]["text"] == "echo: hello there"
