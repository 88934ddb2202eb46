"""Bad requests get a 4xx in the client's format, and the daemon carries on."""

from __future__ import annotations

import json

import httpx
import pytest

from harness import CHAT_PATH, CLIENT_FORMATS, UPSTREAMS, alias, assert_error_in_format, minimal_body

MALFORMED = b'{"model": "gpt-test", "messages": ['
CHANGES = {  # one thing wrong with a valid body
    "malformed-json": None,
    "missing-model": lambda body: body.pop("model"),
    "missing-messages": lambda body: body.pop("messages"),
    "model-not-a-string": lambda body: body.update(model=42),
    "messages-not-a-list": lambda body: body.update(messages="hello there"),
    "content-wrong-type": lambda body: body.update(messages=[{"role": "user", "content": 42}]),
    "unknown-role": lambda body: body.update(messages=[{"role": "wizard", "content": "hello there"}]),
    "max-tokens-not-an-integer": lambda body: body.update(max_tokens="ten"),
}
CASES = [(client_format, change) for client_format in CLIENT_FORMATS for change in CHANGES
         if change != "max-tokens-not-an-integer" or client_format == "anthropic"]


def post(gateway, client_format: str, body: dict | None, **kwargs) -> httpx.Response:
    """POST body (None: malformed JSON) to the client format's path over TCP."""
    content = MALFORMED if body is None else json.dumps(body).encode()
    with gateway.http(**kwargs) as client:
        return client.post(CHAT_PATH[client_format], content=content, headers={"content-type": "application/json"})


@pytest.mark.parametrize("client_format, change", CASES)
@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_bad_request_is_400_in_the_client_format(gateway, client_format, upstream, change):
    mutate = CHANGES[change]
    body = minimal_body(client_format, alias(upstream))
    if mutate:
        mutate(body)
    response = post(gateway, client_format, body if mutate else None)
    assert_error_in_format(client_format, response, 400, "invalid_request_error")
    assert post(gateway, client_format, minimal_body(client_format, alias(upstream))).status_code == 200


@pytest.mark.parametrize("client_format", CLIENT_FORMATS)
def test_body_over_the_limit_is_413(start_daemon, client_format):
    limit = 16 * 1024
    daemon = start_daemon(limits={"max_body_bytes": limit})
    body = minimal_body(client_format, alias(client_format), text="x" * (4 * limit))

    assert_error_in_format(client_format, post(daemon, client_format, body), 413)
    assert post(daemon, client_format, minimal_body(client_format, alias(client_format))).status_code == 200


def test_oversized_headers_are_refused(gateway):
    try:
        with gateway.http() as client:
            status = client.get("/v1/models", headers={"x-filler": "a" * (1024 * 1024)}).status_code
        assert 400 <= status < 500
    except httpx.TransportError:
        pass  # a closed connection is an acceptable answer too
    with gateway.http() as client:
        assert client.get("/v1/models").status_code == 200
