"""Upstream failures and client disconnects: errors reach the client as errors, aborts reach the upstream."""

from __future__ import annotations

import anthropic
import openai
import pytest

from fakes import SLOW_CHUNKS, SLOW_INTERVAL
from harness import (CLIENT_FORMATS, STREAM_FAILURES, TRANSPORTS, UPSTREAMS, alias, ask, assert_error_in_format,
                     stream_text)

each_client = pytest.mark.parametrize("client_format", CLIENT_FORMATS)
each_upstream = pytest.mark.parametrize("upstream", UPSTREAMS)
whole_and_streamed = pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])


def status_error(client_format: str) -> type[Exception]:
    return openai.APIStatusError if client_format == "openai" else anthropic.APIStatusError


@each_client
@pytest.mark.parametrize("upstream, status", [("openai", 429), ("openai", 503), ("anthropic", 429),
                                              ("anthropic", 529)])
@whole_and_streamed
def test_upstream_error_status_reaches_the_client_in_its_format(gateway, client_format, upstream, status, stream):
    with pytest.raises(status_error(client_format)) as error:
        ask(gateway, client_format, model=alias(upstream, f"status-{status}"), stream=stream)

    got = error.value.status_code
    if status == 429:
        assert got == 429
    else:
        assert 500 <= got < 600
    assert_error_in_format(client_format, error.value.response, got)


@each_client
@each_upstream
def test_whole_response_cut_off_upstream_is_an_error(gateway, client_format, upstream):
    with pytest.raises(status_error(client_format)) as error:
        ask(gateway, client_format, model=alias(upstream, "break"), prompt="tell me a long story please")
    assert 500 <= error.value.status_code < 600
    assert_error_in_format(client_format, error.value.response, error.value.status_code)


@each_client
@each_upstream
@pytest.mark.parametrize("fault", ["break", "truncate", "stream-error"])
def test_stream_failing_upstream_is_an_error_not_a_clean_end(gateway, client_format, upstream, fault):
    received = []
    with pytest.raises(STREAM_FAILURES):
        for piece in stream_text(gateway, client_format, alias(upstream, fault)):
            received.append(piece)
    assert "".join(received).startswith("echo: ")  # it failed mid-way, after some text


@each_client
@each_upstream
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_client_disconnect_aborts_the_upstream_stream(gateway, fakes, client_format, upstream, transport):
    pieces = stream_text(gateway, client_format, alias(upstream, "slow"), transport=transport)
    assert next(pieces) == "tick0 "
    pieces.close()  # closes the connection mid-stream

    # the slow stream lasts SLOW_CHUNKS * SLOW_INTERVAL; only an abort ends it sooner
    exchange = fakes[upstream].wait_for(lambda e: e.finished, timeout=SLOW_CHUNKS * SLOW_INTERVAL + 2)
    assert exchange.outcome == "aborted"
    assert ask(gateway, client_format, model=alias(upstream)).text == "echo: hello there"
