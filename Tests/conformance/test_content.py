"""Images and reasoning through rosettad, and capability limits."""

from __future__ import annotations

import anthropic
import openai
import pytest

from fakes import signature_for
from harness import CLIENT_FORMATS, FINISH, IMAGE_URL, PNG_B64, UPSTREAMS, alias, chat

each_client = pytest.mark.parametrize("client_format", CLIENT_FORMATS)
each_upstream = pytest.mark.parametrize("upstream", UPSTREAMS)
whole_and_streamed = pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])

IMAGES = {  # what the client sends -> what any upstream must receive, in neutral terms
    "data": ("base64", "image/png", PNG_B64),
    "url": ("url", None, IMAGE_URL),
}
QUESTION = "why is the sky blue"


def image_message(client_format: str, kind: str) -> dict:
    """A user message with text and one image, spelt the client's way."""
    if client_format == "openai":
        url = f"data:image/png;base64,{PNG_B64}" if kind == "data" else IMAGE_URL
        return {"role": "user", "content": [{"type": "text", "text": "describe this"},
                                            {"type": "image_url", "image_url": {"url": url}}]}
    source = ({"type": "base64", "media_type": "image/png", "data": PNG_B64} if kind == "data"
              else {"type": "url", "url": IMAGE_URL})
    return {"role": "user", "content": [{"type": "image", "source": source},
                                        {"type": "text", "text": "describe this"}]}


def reasoning_request(client_format: str) -> dict:
    if client_format == "openai":
        return {"reasoning_effort": "high"}
    return {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048}


@each_client
@each_upstream
@pytest.mark.parametrize("kind", IMAGES)
def test_image_reaches_upstream_in_its_format(gateway, fakes, client_format, upstream, kind):
    reply = chat(gateway, client_format, model=alias(upstream), messages=[image_message(client_format, kind)])
    assert reply.text == "echo: describe this"
    assert fakes[upstream].last_view().images == [IMAGES[kind]]


@each_client
@each_upstream
def test_image_for_a_text_only_model_is_refused_with_a_clear_400(gateway, fakes, client_format, upstream):
    errors = openai.BadRequestError if client_format == "openai" else anthropic.BadRequestError
    with pytest.raises(errors) as refused:
        chat(gateway, client_format, model=alias(upstream, "textonly"),
             messages=[image_message(client_format, "data")])
    assert "does not accept images" in str(refused.value) and "vision" in str(refused.value)
    assert fakes[upstream].chat_exchanges() == []


@each_client
@each_upstream
@whole_and_streamed
def test_reasoning(gateway, fakes, client_format, upstream, stream):
    reply = chat(gateway, client_format, stream=stream, model=alias(upstream),
                 messages=[{"role": "user", "content": QUESTION}], **reasoning_request(client_format))

    assert fakes[upstream].last_view().reasoning
    assert reply.reasoning == f"thinking about: {QUESTION}"
    assert reply.text == f"echo: {QUESTION}"
    assert reply.finish == FINISH[client_format]["stop"]


@whole_and_streamed
def test_thinking_signature_survives_pass_through(gateway, stream):
    first = chat(gateway, "anthropic", stream=stream, model=alias("anthropic"),
                 messages=[{"role": "user", "content": QUESTION}], **reasoning_request("anthropic"))
    assert first.signature == signature_for(first.reasoning)

    # the fake rejects a thinking block whose signature it did not issue
    thinking = {"type": "thinking", "thinking": first.reasoning, "signature": first.signature}
    follow_up = chat(gateway, "anthropic", model=alias("anthropic"), **reasoning_request("anthropic"), messages=[
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": [thinking, {"type": "text", "text": first.text}]},
        {"role": "user", "content": "and then?"}])
    assert follow_up.text == "echo: and then?"
