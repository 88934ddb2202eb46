"""Faithful fake LLM upstreams for the rosettad conformance tests.

Two real HTTP/1.1 servers on 127.0.0.1 (port 0, read the real one from
``.port``/``.url``), each started in a background thread:

``FakeOpenAI``      OpenAI Chat Completions: ``POST /v1/chat/completions``,
                    ``GET /v1/models``.
``FakeAnthropic``   Anthropic Messages: ``POST /v1/messages``,
                    ``GET /v1/models``.

Both validate requests the way the real services do (unknown top-level fields,
wrong types, missing required fields, content-part shapes, tool call / tool
result pairing, image encodings, ...) and answer 400 in their own error
envelope, so a gateway that translates badly fails loudly here instead of
silently passing. Streams are chunked-encoded SSE, as the real services send.

Authentication
--------------
* OpenAI: when built with ``api_key``, ``Authorization: Bearer <api_key>`` is
  required (401 ``invalid_api_key`` otherwise).
* Anthropic: when built with ``api_key``, ``x-api-key: <api_key>`` (or, as the
  current API and SDK also do, ``Authorization: Bearer <api_key>``) is required
  (401 ``authentication_error``); ``anthropic-version`` is always required
  (400 ``invalid_request_error``); ``max_tokens`` is required (400).
* Only models whose name starts with ``fake-gpt`` (OpenAI) or ``fake-claude``
  (Anthropic) exist; any other model gets the service's 404, so a request that
  was not renamed to the upstream model fails.

Scripted replies (deterministic, chosen by the request)
-------------------------------------------------------
Text is split into "pieces" (a word plus its trailing whitespace); one piece
is one streamed delta and one output token.

* Plain text: ``"echo: <text of the last user message>"``.
* Tool results: when the last message carries tool results (OpenAI ``tool``
  messages / Anthropic ``tool_result`` blocks), the reply is
  ``"tool result: <result texts joined by '; '>"``.
* Tool calls: when tools are offered and ``tool_choice`` is not none, the fake
  calls tools if tool_choice forces it (``required``/``any`` -> the first tool,
  a named tool -> that tool), or if the last user text contains ``weather``
  (-> the first tool) or ``all tools`` (-> every tool, in order; only the first
  when parallel tool calls are disabled). Arguments are derived from the
  tool's JSON schema: for each property an enum's first value, strings
  ``"Paris"``, integers/numbers ``1``, booleans ``true``, arrays ``[]``,
  objects ``{}``. So ``get_weather(location: string)`` gets
  ``{"location": "Paris"}``. OpenAI answers with ``content: null`` and
  ``tool_calls``; Anthropic, like Claude, first says
  ``"I'll call <names>."`` in a text block, then the ``tool_use`` blocks.
  Finish: ``tool_calls`` / ``tool_use``.
* Reasoning: when requested (OpenAI ``reasoning_effort`` other than ``none``;
  Anthropic ``thinking`` of type ``enabled``/``adaptive``) the reply starts
  with the reasoning ``"thinking about: <last user text>"``: OpenAI
  ``reasoning_content`` (message field / deltas), Anthropic a ``thinking``
  block with a ``signature`` (``signature_for(text)``). Anthropic rejects a
  ``thinking`` block in the history whose signature it did not issue.
* Stop sequences (``stop`` / ``stop_sequences``): the text is cut before the
  earliest match; OpenAI finishes ``stop``, Anthropic ``stop_sequence`` with
  ``stop_sequence`` set.
* ``max_tokens`` (or ``max_completion_tokens``) smaller than the number of
  text pieces: only that many pieces are sent, finish ``length`` /
  ``max_tokens``. (Reasoning pieces do not count.)
* Usage: input tokens = number of whitespace-separated words in the system
  prompt and all message texts (tool results included); output tokens =
  reasoning pieces + text pieces + tool-argument fragments. Recorded on the
  exchange as ``usage = {"input": n, "output": m}``.

Fault models (a suffix of the model name, e.g. ``fake-gpt-slow``)
-----------------------------------------------------------------
``-slow``          the text is ``SLOW_TEXT``: ``SLOW_CHUNKS`` pieces, one every
                   ``SLOW_INTERVAL`` s (a whole response waits as long); the
                   client's disconnect is noticed while waiting.
``-long``          the text is ``LONG_TEXT``: ``LONG_CHUNKS`` pieces, fast.
``-break``         after ``BREAK_AFTER`` text pieces the connection is closed
                   without the final events and without the chunked
                   terminator (a whole response: half the body, then close).
``-truncate``      after ``BREAK_AFTER`` text pieces the HTTP body ends
                   cleanly, but the final events never come (no finish_reason
                   / ``[DONE]``; no ``message_delta`` / ``message_stop``); a
                   whole response is cut like ``-break``.
``-stream-error``  after ``BREAK_AFTER`` text pieces a mid-stream error: OpenAI
                   ``data: {"error": {...}}``, Anthropic ``event: error``
                   (``overloaded_error``), then the body ends; a whole request
                   gets OpenAI 500 ``server_error`` / Anthropic 529
                   ``overloaded_error``.
``-status-NNN``    HTTP status NNN in the service's error envelope (429 adds
                   ``retry-after``).

Recording
---------
Every request is recorded as an ``Exchange`` (method, path, query, lower-cased
headers, raw and parsed body, status, ``usage``, what was streamed, the
validation error if any) with an ``outcome``: ``pending`` while being
answered, then ``complete``, ``rejected`` (error status), ``broken`` (the
fault models above) or ``aborted`` (the client went away before the response
was finished: a write failed or the peer closed while the fake waited).
``view(exchange)`` gives a format-neutral ``RequestView`` of a chat request,
which both the fakes' scripts and the tests use. Tests poll with
``wait_for(predicate)`` / ``settled_chat()`` (bounded), never sleep.

Faults need a reply of more than ``BREAK_AFTER`` pieces (ask for a long
sentence); ``-slow`` and ``-long`` ignore the prompt.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

SLOW_CHUNKS = 40
SLOW_INTERVAL = 0.1
SLOW_TEXT = "".join(f"tick{i} " for i in range(SLOW_CHUNKS))
LONG_CHUNKS = 200
LONG_TEXT = "".join(f"c{i} " for i in range(LONG_CHUNKS))
BREAK_AFTER = 3
CREATED = 1_700_000_000
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


# --------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------


@dataclass
class Exchange:
    """One request the fake received and how it answered."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    raw_body: bytes
    body: Any = None
    status: int | None = None
    streamed: bool = False
    outcome: str = "pending"  # pending | complete | rejected | broken | aborted
    error: str | None = None
    usage: dict[str, int] | None = None
    response: Any = None  # whole JSON response, if one was sent
    events: list[Any] = field(default_factory=list)  # streamed payloads

    @property
    def finished(self) -> bool:
        return self.outcome != "pending"

    def summary(self) -> str:
        model = self.body.get("model") if isinstance(self.body, dict) else None
        text = f"{self.method} {self.path} model={model!r} status={self.status} outcome={self.outcome}"
        return text + (f" error={self.error!r}" if self.error else "")


@dataclass
class RequestView:
    """A chat request in neutral terms (what was asked, not how it was spelt)."""

    model: str
    system: str | None
    turns: list[tuple[str, str]]  # (user|assistant|tool, text), system excluded
    last_user_text: str
    images: list[tuple[str, str | None, str]]  # ("base64", media type, data) | ("url", None, url)
    tools: list[tuple[str, str | None, dict]]  # (name, description, JSON schema)
    tool_choice: str | tuple[str, str] | None  # auto | none | required | ("tool", name)
    parallel_tool_calls: bool
    tool_calls: list[tuple[str, str, dict]]  # (id, name, args) in the assistant history
    tool_results: list[tuple[str, str]]  # (id, text) answering the last assistant turn
    reasoning: bool
    max_tokens: int | None
    stop: list[str]
    temperature: float | None
    top_p: float | None
    stream: bool
    include_usage: bool

    @property
    def input_tokens(self) -> int:
        texts = [self.system or ""] + [text for _, text in self.turns]
        return sum(len(t.split()) for t in texts)


class ApiError(Exception):
    """An error answer; each fake renders it in its own envelope."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, kind: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind


class ClientGone(Exception):
    """The client closed its side while the fake was answering."""


# --------------------------------------------------------------------------
# Scripted replies (format neutral)
# --------------------------------------------------------------------------


def pieces(text: str) -> list[str]:
    """Split text into stream pieces: a word plus its trailing whitespace."""
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


def signature_for(thinking: str) -> str:
    return base64.b64encode(hashlib.sha256(b"fake-signature:" + thinking.encode()).digest()).decode()


def json_fragments(args: dict) -> list[str]:
    text = json.dumps(args)
    return [text[i:i + 7] for i in range(0, len(text), 7)]


def fault_of(model: str) -> tuple[str | None, int | None]:
    """The fault a model name asks for, and the status for ``-status-NNN``."""
    if m := re.search(r"-status-(\d{3})$", model):
        return "status", int(m.group(1))
    for fault in ("slow", "long", "break", "truncate", "stream-error"):
        if model.endswith("-" + fault):
            return fault, None
    return None, None


def args_for(schema: dict) -> dict:
    defaults = {"string": "Paris", "integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}
    args = {}
    for name, spec in (schema.get("properties") or {}).items():
        if isinstance(spec, dict) and spec.get("enum"):
            args[name] = spec["enum"][0]
        else:
            args[name] = defaults.get(spec.get("type") if isinstance(spec, dict) else None, "Paris")
    return args


@dataclass
class Plan:
    reasoning: list[str]
    text: list[str]
    tool_calls: list[tuple[str, dict]]
    finish: str  # stop | stop_sequence | length | tool
    stop_sequence: str | None
    input_tokens: int

    @property
    def output_tokens(self) -> int:
        fragments = sum(len(json_fragments(args)) for _, args in self.tool_calls)
        return len(self.reasoning) + len(self.text) + fragments


def choose_tool_calls(view: RequestView) -> list[tuple[str, dict]]:
    if not view.tools or view.tool_choice == "none" or view.tool_results:
        return []
    schemas = {name: schema for name, _, schema in view.tools}
    names = list(schemas)
    asked = view.last_user_text.lower()
    if isinstance(view.tool_choice, tuple):
        chosen = [view.tool_choice[1]]
    elif "all tools" in asked:
        chosen = names
    elif view.tool_choice == "required" or "weather" in asked:
        chosen = names[:1]
    else:
        return []
    if not view.parallel_tool_calls:
        chosen = chosen[:1]
    return [(name, args_for(schemas[name])) for name in chosen]


def plan_reply(view: RequestView, fault: str | None, *, tool_preamble: bool) -> Plan:
    reasoning = pieces(f"thinking about: {view.last_user_text}") if view.reasoning else []
    calls: list[tuple[str, dict]] = []
    if fault == "slow":
        text = SLOW_TEXT
    elif fault == "long":
        text = LONG_TEXT
    elif view.tool_results:
        text = "tool result: " + "; ".join(result for _, result in view.tool_results)
    elif calls := choose_tool_calls(view):
        text = f"I'll call {', '.join(name for name, _ in calls)}." if tool_preamble else ""
    else:
        text = f"echo: {view.last_user_text}"

    finish, matched = ("tool" if calls else "stop"), None
    hits = [(text.find(s), s) for s in view.stop if s and s in text]
    if hits and not calls:
        cut, matched = min(hits)
        text, finish = text[:cut], "stop_sequence"
    parts = pieces(text)
    if not calls and view.max_tokens is not None and len(parts) > view.max_tokens:
        parts, finish, matched = parts[:view.max_tokens], "length", None
    return Plan(reasoning, parts, calls, finish, matched, view.input_tokens)


# --------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-upstream/1"

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self.server.fake._handle(self)  # type: ignore[attr-defined]

    do_POST = do_GET
    do_PUT = do_GET
    do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while (size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
                body += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return body
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: "FakeUpstream"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients going away is part of the tests, not noise


class Reply:
    """Writes one response (whole JSON or a chunked SSE stream)."""

    def __init__(self, handler: _Handler, exchange: Exchange):
        self.handler, self.exchange = handler, exchange

    def _write(self, data: bytes) -> None:
        try:
            self.handler.wfile.write(data)
            self.handler.wfile.flush()
        except OSError as error:
            raise ClientGone() from error

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.exchange.status = status
        self.handler.send_response(status)
        for name, value in headers.items():
            self.handler.send_header(name, value)
        try:
            self.handler.end_headers()
        except OSError as error:
            raise ClientGone() from error

    def json(self, status: int, obj: Any, headers: dict[str, str] | None = None, *, cut: bool = False) -> None:
        data = json.dumps(obj).encode()
        self.exchange.response = obj
        self._head(status, {"Content-Type": "application/json", "Content-Length": str(len(data)), **(headers or {})})
        self._write(data[: len(data) // 2] if cut else data)
        if cut:
            self.break_off()

    def start_stream(self, headers: dict[str, str] | None = None) -> None:
        self.exchange.streamed = True
        self._head(200, {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
                         "Transfer-Encoding": "chunked", **(headers or {})})

    def sse(self, data: Any, event: str | None = None) -> None:
        payload = data if isinstance(data, str) else json.dumps(data)
        self.exchange.events.append(data)
        text = (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"
        raw = text.encode()
        self._write(b"%X\r\n%s\r\n" % (len(raw), raw))

    def end_stream(self) -> None:
        self._write(b"0\r\n\r\n")

    def break_off(self) -> None:
        """Close the connection without finishing the response."""
        self.exchange.outcome = "broken"
        self.handler.close_connection = True
        try:
            self.handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def wait(self, seconds: float) -> None:
        """Sleep, but raise ClientGone as soon as the client closes its side."""
        sock = self.handler.connection
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([sock], [], [], left)
            if not readable:
                return
            try:
                if not sock.recv(1, socket.MSG_PEEK):
                    raise ClientGone()
            except (ConnectionError, OSError) as error:
                raise ClientGone() from error
            time.sleep(left)  # unexpected bytes (a pipelined request): just wait
            return


class FakeUpstream:
    """Shared server, recording and polling; subclasses speak one format."""

    chat_path = ""

    def __init__(self, *, api_key: str | None = None):
        self.api_key = api_key
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._ids = itertools.count(1)
        self._server: _Server | None = None

    # lifecycle ------------------------------------------------------------
    def start(self) -> "FakeUpstream":
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name=type(self).__name__, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeUpstream":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server, "fake not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # records --------------------------------------------------------------
    def exchanges(self, path: str | None = None) -> list[Exchange]:
        with self._lock:
            return [e for e in self._exchanges if path is None or e.path == path]

    def chat_exchanges(self) -> list[Exchange]:
        return self.exchanges(self.chat_path)

    def only_chat(self) -> Exchange:
        """The single chat request received since the last clear()."""
        found = self.chat_exchanges()
        assert len(found) == 1, f"expected exactly one {self.chat_path} request, got {self.describe()}"
        return found[0]

    def settled_chat(self, timeout: float = 5.0) -> Exchange:
        """The single chat request, once the fake has finished answering it."""
        return self.wait_for(lambda e: e.path == self.chat_path and e.finished, timeout) and self.only_chat()

    def last_view(self) -> RequestView:
        return self.view(self.only_chat())

    def clear(self) -> None:
        with self._lock:
            self._exchanges.clear()

    def describe(self) -> str:
        return "\n".join(e.summary() for e in self.exchanges()) or "(no requests)"

    def wait_for(self, predicate: Callable[[Exchange], bool], timeout: float = 5.0) -> Exchange:
        """Poll until a recorded exchange satisfies predicate (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            for exchange in self.exchanges():
                if predicate(exchange):
                    return exchange
            if time.monotonic() > deadline:
                raise AssertionError(f"{type(self).__name__}: no matching exchange within {timeout}s:\n"
                                     + self.describe())
            time.sleep(0.02)

    # request handling ------------------------------------------------------
    def _handle(self, handler: _Handler) -> None:
        raw = handler.read_body()
        target = urlsplit(handler.path)
        exchange = Exchange(method=handler.command, path=target.path, query=target.query,
                            headers={k.lower(): v for k, v in handler.headers.items()}, raw_body=raw)
        try:
            exchange.body = json.loads(raw) if raw else None
        except ValueError:
            exchange.body = None
        with self._lock:
            self._exchanges.append(exchange)
        reply = Reply(handler, exchange)
        try:
            try:
                self.route(reply, next(self._ids))
            except ApiError as error:
                exchange.error = error.message
                reply.json(error.status, self.error_body(error), self.error_headers(error))
                exchange.outcome = "rejected"
        except ClientGone:
            exchange.outcome = "aborted"
            handler.close_connection = True
        if exchange.outcome == "pending":
            exchange.outcome = "complete"

    def parse_json_body(self, exchange: Exchange) -> dict:
        if not isinstance(exchange.body, dict):
            raise ApiError(400, self.bad_json_message)
        return exchange.body

    # format specifics ------------------------------------------------------
    bad_json_message = "invalid JSON body"

    def route(self, reply: Reply, serial: int) -> None:
        raise NotImplementedError

    def error_body(self, error: ApiError) -> Any:
        raise NotImplementedError

    def error_headers(self, error: ApiError) -> dict[str, str]:
        return {"retry-after": "1"} if error.status == 429 else {}

    def view(self, exchange: Exchange) -> RequestView:
        raise NotImplementedError


# --------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------


def _check(condition: Any, message: str, *, param: str | None = None, code: str | None = None) -> None:
    if not condition:
        raise ApiError(400, message, param=param, code=code)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_DATA_URL = re.compile(r"^data:(image/[a-z]+);base64,(.*)$", re.S)


def _valid_base64(data: Any) -> bool:
    if not isinstance(data, str) or not data:
        return False
    try:
        base64.b64decode(data, validate=True)
    except ValueError:
        return False
    return True


def _image_from_url(url: str) -> tuple[str, str | None, str]:
    if m := _DATA_URL.match(url):
        return "base64", m.group(1), m.group(2)
    return "url", None, url


# --------------------------------------------------------------------------
# OpenAI Chat Completions
# --------------------------------------------------------------------------

OPENAI_FIELDS = {
    "messages", "model", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "metadata", "modalities", "moderation", "n", "parallel_tool_calls",
    "prediction", "presence_penalty", "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention",
    "reasoning_effort", "response_format", "safety_identifier", "seed",
    "service_tier", "stop", "store", "stream", "stream_options", "temperature", "tool_choice", "tools",
    "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
}
OPENAI_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
OPENAI_FINISH = {"stop": "stop", "stop_sequence": "stop", "length": "length", "tool": "tool_calls"}
OPENAI_ERROR_TYPES = {429: "requests", 500: "server_error", 502: "server_error", 503: "server_error",
                      529: "server_error"}


def _openai_text(content: Any, where: str, allowed: tuple[str, ...] = ("text",)) -> str:
    """Text of a message content (string or parts); validates the parts."""
    if content is None or isinstance(content, str):
        return content or ""
    _check(isinstance(content, list), f"Invalid type for '{where}': expected one of a string or array.",
           param=where, code="invalid_type")
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        _check(kind in allowed, f"Invalid value: '{kind}'. Supported values are: "
               + ", ".join(f"'{a}'" for a in allowed) + ".", param=f"{where}[{j}].type", code="invalid_value")
        if kind == "text":
            _check(isinstance(part.get("text"), str), f"Invalid type for '{where}[{j}].text': expected a string.",
                   param=f"{where}[{j}].text", code="invalid_type")
            texts.append(part["text"])
        elif kind == "image_url":
            url = (part.get("image_url") or {}).get("url") if isinstance(part.get("image_url"), dict) else None
            _check(isinstance(url, str), f"Missing required parameter: '{where}[{j}].image_url.url'.",
                   param=f"{where}[{j}].image_url.url", code="missing_required_parameter")
            data_url = _DATA_URL.match(url)
            _check(url.startswith(("http://", "https://")) or (
                data_url and data_url.group(1) in IMAGE_MEDIA_TYPES and _valid_base64(data_url.group(2))),
                "Invalid image URL: expected an http(s) URL or a base64 data URL of a supported image type.",
                param=f"{where}[{j}].image_url.url", code="invalid_image_url")
    return "".join(texts)


class FakeOpenAI(FakeUpstream):
    chat_path = "/v1/chat/completions"
    model_prefix = "fake-gpt"
    bad_json_message = ("We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                        "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
                        "sent was not valid JSON.)")

    def error_body(self, error: ApiError) -> Any:
        kind = error.kind or OPENAI_ERROR_TYPES.get(error.status, "invalid_request_error")
        return {"error": {"message": error.message, "type": kind, "param": error.param, "code": error.code}}

    def route(self, reply: Reply, serial: int) -> None:
        exchange = reply.exchange
        self._authenticate(exchange)
        if (exchange.method, exchange.path) == ("POST", self.chat_path):
            self._chat(reply, serial)
        elif (exchange.method, exchange.path) == ("GET", "/v1/models"):
            reply.json(200, {"object": "list", "data": [
                {"id": name, "object": "model", "created": CREATED, "owned_by": "fake"}
                for name in ("fake-gpt", "fake-gpt-mini")]}, {"x-request-id": f"req_{serial}"})
        elif (exchange.method, exchange.path) == ("POST", "/v1/embeddings"):  # added for issue 3 (embeddings)
            self._embeddings(reply)
        else:
            raise ApiError(404, f"Invalid URL ({exchange.method} {exchange.path})")

    def _embeddings(self, reply: Reply) -> None:
        """Embeddings (issue 3 addition): one deterministic 3-number vector per input string, from its length."""
        body = self.parse_json_body(reply.exchange)
        _check(isinstance(body.get("model"), str), "model is required", param="model")
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else inputs
        _check(isinstance(inputs, list) and inputs and all(isinstance(i, str) for i in inputs),
               "input must be a string or a list of strings", param="input")
        data = [{"object": "embedding", "index": i, "embedding": [float(len(text)), 0.5, -1.0]}
                for i, text in enumerate(inputs)]
        tokens = sum(len(text.split()) for text in inputs)
        reply.json(200, {"object": "list", "data": data, "model": body["model"],
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    def _authenticate(self, exchange: Exchange) -> None:
        if self.api_key is None:
            return
        header = exchange.headers.get("authorization", "")
        if not header:
            raise ApiError(401, "You didn't provide an API key. You need to provide your API key in an "
                                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        if header != f"Bearer {self.api_key}":
            shown = header.removeprefix("Bearer ")
            raise ApiError(401, f"Incorrect API key provided: {shown[:3]}***{shown[-4:]}. You can find your "
                                "API key at https://platform.openai.com/account/api-keys.", code="invalid_api_key")

    # validation -----------------------------------------------------------
    def validate(self, body: dict) -> None:
        for key in body:
            _check(key in OPENAI_FIELDS, f"Unrecognized request argument supplied: {key}")
        _check("model" in body, "you must provide a model parameter")
        _check(isinstance(body["model"], str), "Invalid type for 'model': expected a string.", param="model",
               code="invalid_type")
        _check("messages" in body, "Missing required parameter: 'messages'.", param="messages",
               code="missing_required_parameter")
        messages = body["messages"]
        _check(isinstance(messages, list), "Invalid type for 'messages': expected an array.", param="messages",
               code="invalid_type")
        _check(messages, "Invalid 'messages': empty array. Expected an array with minimum length 1.",
               param="messages", code="empty_array")
        self._validate_messages(messages)
        self._validate_tools(body)
        stop = body.get("stop")
        _check(stop is None or isinstance(stop, str) or (
            isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop)),
            "Invalid 'stop': expected a string or an array of at most 4 strings.", param="stop")
        for name, high in (("temperature", 2), ("top_p", 1), ("frequency_penalty", 2), ("presence_penalty", 2)):
            value = body.get(name)
            _check(value is None or (_is_number(value) and (0 if name in ("temperature", "top_p") else -2)
                                     <= value <= high), f"Invalid '{name}': out of range or wrong type.",
                   param=name)
        for name in ("max_tokens", "max_completion_tokens", "n"):
            value = body.get(name)
            _check(value is None or (_is_int(value) and value >= 1),
                   f"Invalid '{name}': expected an integer >= 1.", param=name)
        _check(not ("max_tokens" in body and "max_completion_tokens" in body),
               "max_tokens and max_completion_tokens cannot both be set", param="max_tokens")
        _check(isinstance(body.get("stream", False), bool), "Invalid type for 'stream': expected a boolean.",
               param="stream", code="invalid_type")
        if "stream_options" in body and body["stream_options"] is not None:
            _check(body.get("stream") is True,
                   "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                   param="stream_options")
            _check(isinstance(body["stream_options"], dict), "Invalid type for 'stream_options'.",
                   param="stream_options", code="invalid_type")
        effort = body.get("reasoning_effort")
        _check(effort is None or effort in ("none", "minimal", "low", "medium", "high", "xhigh"),
               f"Invalid value for 'reasoning_effort': {effort!r}.", param="reasoning_effort")

    def _validate_messages(self, messages: list) -> None:
        pending_calls: set[str] = set()
        for i, message in enumerate(messages):
            where = f"messages[{i}]"
            _check(isinstance(message, dict), f"Invalid type for '{where}': expected an object.", param=where)
            role = message.get("role")
            _check(role in OPENAI_ROLES, f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', "
                   "'user', 'function', 'tool', and 'developer'.", param=f"{where}.role", code="invalid_value")
            if role != "tool" and pending_calls:
                raise ApiError(400, "An assistant message with 'tool_calls' must be followed by tool messages "
                               "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                               f"response messages: {', '.join(sorted(pending_calls))}", param="messages")
            content = message.get("content")
            if role in ("system", "developer"):
                _check("content" in message, f"Missing required parameter: '{where}.content'.",
                       param=f"{where}.content", code="missing_required_parameter")
                _openai_text(content, f"{where}.content")
            elif role == "user":
                _check("content" in message and content is not None,
                       f"Missing required parameter: '{where}.content'.", param=f"{where}.content",
                       code="missing_required_parameter")
                _openai_text(content, f"{where}.content", ("text", "image_url", "input_audio", "file"))
            elif role == "assistant":
                calls = message.get("tool_calls")
                _check(content is not None or calls, f"Invalid value for '{where}.content': expected a string, "
                       "got null (content is required unless tool_calls is set).", param=f"{where}.content")
                _openai_text(content, f"{where}.content", ("text", "refusal"))
                for j, call in enumerate(calls or []):
                    fn = call.get("function") if isinstance(call, dict) else None
                    _check(isinstance(call, dict) and isinstance(call.get("id"), str) and call.get("type") ==
                           "function" and isinstance(fn, dict) and isinstance(fn.get("name"), str),
                           f"Invalid '{where}.tool_calls[{j}]'.", param=f"{where}.tool_calls[{j}]")
                    _check(isinstance(fn.get("arguments"), str), f"Invalid type for '{where}.tool_calls[{j}]"
                           ".function.arguments': expected a string.", param=f"{where}.tool_calls[{j}].function."
                           "arguments", code="invalid_type")
                    pending_calls.add(call["id"])
            elif role == "tool":
                call_id = message.get("tool_call_id")
                _check(isinstance(call_id, str), f"Missing required parameter: '{where}.tool_call_id'.",
                       param=f"{where}.tool_call_id", code="missing_required_parameter")
                _check(call_id in pending_calls, "Invalid parameter: messages with role 'tool' must be a response "
                       "to a preceeding message with 'tool_calls'.", param=f"{where}.role")
                pending_calls.discard(call_id)
                _openai_text(content, f"{where}.content")
        _check(not pending_calls, "An assistant message with 'tool_calls' must be followed by tool messages "
               f"responding to each 'tool_call_id': {', '.join(sorted(pending_calls))}", param="messages")

    def _validate_tools(self, body: dict) -> None:
        tools = body.get("tools")
        names = []
        if tools is not None:
            _check(isinstance(tools, list), "Invalid type for 'tools': expected an array.", param="tools",
                   code="invalid_type")
            for j, tool in enumerate(tools):
                fn = tool.get("function") if isinstance(tool, dict) else None
                _check(isinstance(tool, dict) and tool.get("type") == "function" and isinstance(fn, dict),
                       f"Invalid 'tools[{j}]': expected {{'type': 'function', 'function': {{...}}}}.",
                       param=f"tools[{j}]")
                name = fn.get("name")
                _check(isinstance(name, str) and re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name),
                       f"Invalid 'tools[{j}].function.name': string does not match pattern.",
                       param=f"tools[{j}].function.name")
                _check(isinstance(fn.get("parameters", {}), dict),
                       f"Invalid type for 'tools[{j}].function.parameters': expected an object.",
                       param=f"tools[{j}].function.parameters", code="invalid_type")
                names.append(name)
        choice = body.get("tool_choice")
        if choice is not None:
            _check(tools, "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
                   "specified.", param="tool_choice")
            if isinstance(choice, dict):
                name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
                _check(name in names, f"Invalid value for 'tool_choice': no function named {name!r} was "
                       "specified in the 'tools' parameter.", param="tool_choice")
            else:
                _check(choice in ("none", "auto", "required"), f"Invalid value for 'tool_choice': {choice!r}.",
                       param="tool_choice")
        if body.get("parallel_tool_calls") is not None:
            _check(tools, "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when "
                   "'tools' are specified.", param="parallel_tool_calls")

    # neutral view ----------------------------------------------------------
    def view(self, exchange: Exchange) -> RequestView:
        body = exchange.body
        system, turns, images, history_calls = [], [], [], []
        for message in body["messages"]:
            role, content = message["role"], message.get("content")
            if role in ("system", "developer"):
                system.append(_openai_text(content, "system", ("text",)))
                continue
            if isinstance(content, list):
                images += [_image_from_url(p["image_url"]["url"]) for p in content if p.get("type") == "image_url"]
            text = _openai_text(content, role, ("text", "image_url", "input_audio", "file", "refusal"))
            if text:
                turns.append((role, text))
            for call in message.get("tool_calls") or []:
                args = json.loads(call["function"]["arguments"] or "{}")
                history_calls.append((call["id"], call["function"]["name"], args))
        last = body["messages"][-1]
        trailing = list(itertools.takewhile(lambda m: m["role"] == "tool", reversed(body["messages"])))
        choice = body.get("tool_choice")
        stop = body.get("stop")
        effort = body.get("reasoning_effort")
        return RequestView(
            model=body["model"],
            system="\n".join(system) if system else None,
            turns=turns,
            last_user_text=_openai_text(last.get("content"), "last", ("text", "image_url", "input_audio", "file"))
            if last["role"] == "user" else "",
            images=images,
            tools=[(t["function"]["name"], t["function"].get("description"), t["function"].get("parameters", {}))
                   for t in body.get("tools") or []],
            tool_choice=("tool", choice["function"]["name"]) if isinstance(choice, dict) else choice,
            parallel_tool_calls=body.get("parallel_tool_calls") is not False,
            tool_calls=history_calls,
            tool_results=[(m["tool_call_id"], _openai_text(m.get("content"), "tool")) for m in reversed(trailing)],
            reasoning=effort is not None and effort != "none",
            max_tokens=body.get("max_completion_tokens", body.get("max_tokens")),
            stop=[stop] if isinstance(stop, str) else list(stop or []),
            temperature=body.get("temperature"),
            top_p=body.get("top_p"),
            stream=bool(body.get("stream")),
            include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
        )

    # answering -------------------------------------------------------------
    def _chat(self, reply: Reply, serial: int) -> None:
        body = self.parse_json_body(reply.exchange)
        self.validate(body)
        model = body["model"]
        if not model.startswith(self.model_prefix):
            raise ApiError(404, f"The model `{model}` does not exist or you do not have access to it.",
                           code="model_not_found")
        fault, status = fault_of(model)
        if fault == "status":
            raise ApiError(status, f"fake upstream answered {status} as scripted", code=(
                "rate_limit_exceeded" if status == 429 else None))
        view = self.view(reply.exchange)
        plan = plan_reply(view, fault, tool_preamble=False)
        usage = {"prompt_tokens": plan.input_tokens, "completion_tokens": plan.output_tokens,
                 "total_tokens": plan.input_tokens + plan.output_tokens,
                 "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                 "completion_tokens_details": {"reasoning_tokens": len(plan.reasoning), "audio_tokens": 0,
                                               "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
        reply.exchange.usage = {"input": plan.input_tokens, "output": plan.output_tokens}
        ident = f"chatcmpl-fake{serial:06d}"
        calls = [(f"call_{hashlib.sha1(f'{serial}/{i}'.encode()).hexdigest()[:24]}", name, args)
                 for i, (name, args) in enumerate(plan.tool_calls)]
        headers = {"x-request-id": f"req_{serial}", "openai-processing-ms": "1"}
        if view.stream:
            self._stream(reply, view, plan, fault, ident, model, calls, usage, headers)
            return
        if fault == "slow":
            reply.wait(SLOW_CHUNKS * SLOW_INTERVAL)
        if fault == "stream-error":
            raise ApiError(500, "The server had an error while processing your request.")
        message: dict[str, Any] = {"role": "assistant", "content": "".join(plan.text) if plan.text or not calls
                                   else None, "refusal": None, "annotations": []}
        if plan.reasoning:
            message["reasoning_content"] = "".join(plan.reasoning)
        if calls:
            message["tool_calls"] = [{"id": cid, "type": "function",
                                      "function": {"name": name, "arguments": json.dumps(args)}}
                                     for cid, name, args in calls]
        completion = {"id": ident, "object": "chat.completion", "created": CREATED, "model": model,
                      "system_fingerprint": "fp_fake", "service_tier": "default",
                      "choices": [{"index": 0, "message": message, "logprobs": None,
                                   "finish_reason": OPENAI_FINISH[plan.finish]}],
                      "usage": usage}
        reply.json(200, completion, headers, cut=fault in ("break", "truncate"))

    def _stream(self, reply: Reply, view: RequestView, plan: Plan, fault: str | None, ident: str, model: str,
                calls: list, usage: dict, headers: dict) -> None:
        def chunk(delta: dict | None, finish: str | None = None) -> None:
            data: dict[str, Any] = {"id": ident, "object": "chat.completion.chunk", "created": CREATED,
                                    "model": model, "system_fingerprint": "fp_fake", "service_tier": "default",
                                    "choices": [] if delta is None else [
                                        {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            if view.include_usage:
                data["usage"] = usage if delta is None else None
            reply.sse(data)

        reply.start_stream(headers)
        chunk({"role": "assistant", "content": "", "refusal": None})
        for piece in plan.reasoning:
            chunk({"reasoning_content": piece})
        for n, piece in enumerate(plan.text):
            if fault in ("break", "truncate", "stream-error") and n == BREAK_AFTER:
                return self._fail_stream(reply, fault)
            if fault == "slow":
                reply.wait(SLOW_INTERVAL)
            chunk({"content": piece})
        for index, (cid, name, args) in enumerate(calls):
            chunk({"tool_calls": [{"index": index, "id": cid, "type": "function",
                                   "function": {"name": name, "arguments": ""}}]})
            for fragment in json_fragments(args):
                chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
        chunk({}, OPENAI_FINISH[plan.finish])
        if view.include_usage:
            chunk(None)
        reply.sse("[DONE]")
        reply.end_stream()

    def _fail_stream(self, reply: Reply, fault: str) -> None:
        reply.exchange.outcome = "broken"
        if fault == "break":
            reply.break_off()
            return
        if fault == "stream-error":
            reply.sse({"error": {"message": "The server had an error while processing your request.",
                                 "type": "server_error", "param": None, "code": None}})
        reply.end_stream()


# --------------------------------------------------------------------------
# Anthropic Messages
# --------------------------------------------------------------------------

ANTHROPIC_FIELDS = {
    "model", "messages", "max_tokens", "metadata", "stop_sequences", "stream", "system", "temperature",
    "thinking", "tool_choice", "tools", "top_k", "top_p", "service_tier", "container", "mcp_servers",
    "context_management", "output_config", "inference_geo", "speed", "cache_control", "diagnostics",
    "user_profile_id", "workspace_id",
}
ANTHROPIC_STOP = {"stop": "end_turn", "stop_sequence": "stop_sequence", "length": "max_tokens", "tool": "tool_use"}
ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                         403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                         429: "rate_limit_error", 500: "api_error", 504: "timeout_error", 529: "overloaded_error"}
USER_BLOCKS = {"text", "image", "document", "tool_result", "search_result"}
ASSISTANT_BLOCKS = {"text", "tool_use", "thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result"}


def _anthropic_blocks(content: Any) -> list[dict]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _anthropic_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text")


class FakeAnthropic(FakeUpstream):
    chat_path = "/v1/messages"
    model_prefix = "fake-claude"

    def error_body(self, error: ApiError) -> Any:
        kind = error.kind or ANTHROPIC_ERROR_TYPES.get(error.status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": error.message},
                "request_id": "req_fake_error"}

    def route(self, reply: Reply, serial: int) -> None:
        exchange = reply.exchange
        self._authenticate(exchange)
        if (exchange.method, exchange.path) == ("POST", self.chat_path):
            self._messages(reply, serial)
        elif (exchange.method, exchange.path) == ("GET", "/v1/models"):
            models = [{"type": "model", "id": name, "display_name": name.replace("-", " ").title(),
                       "created_at": "2025-01-01T00:00:00Z"} for name in ("fake-claude", "fake-claude-mini")]
            reply.json(200, {"data": models, "has_more": False, "first_id": models[0]["id"],
                             "last_id": models[-1]["id"]}, {"request-id": f"req_{serial}"})
        else:
            raise ApiError(404, "Not Found")

    def _authenticate(self, exchange: Exchange) -> None:
        if self.api_key is not None:
            bearer = exchange.headers.get("authorization", "")
            key = exchange.headers.get("x-api-key") or (bearer[7:] if bearer.startswith("Bearer ") else None)
            if key is None:
                raise ApiError(401, "x-api-key header is required")
            if key != self.api_key:
                raise ApiError(401, "invalid x-api-key")
        if "anthropic-version" not in exchange.headers:
            raise ApiError(400, "anthropic-version: header is required")

    # validation -----------------------------------------------------------
    def validate(self, body: dict) -> None:
        for key in body:
            _check(key in ANTHROPIC_FIELDS, f"{key}: Extra inputs are not permitted")
        for key in ("model", "messages", "max_tokens"):
            _check(key in body, f"{key}: Field required")
        _check(isinstance(body["model"], str), "model: Input should be a valid string")
        _check(_is_int(body["max_tokens"]) and body["max_tokens"] >= 1,
               "max_tokens: Input should be a valid integer greater than or equal to 1")
        _check(isinstance(body["messages"], list), "messages: Input should be a valid list")
        self._validate_system(body.get("system"))
        names = self._validate_tools(body)
        self._validate_messages(body["messages"])
        choice = body.get("tool_choice")
        if choice is not None:
            _check(isinstance(choice, dict) and choice.get("type") in ("auto", "any", "tool", "none"),
                   "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'")
            _check(names or choice["type"] == "none", "tool_choice may only be specified while providing tools")
            if choice["type"] == "tool":
                _check(choice.get("name") in names, f"tool_choice.name: tool {choice.get('name')!r} not found")
        for name, low, high in (("temperature", 0, 1), ("top_p", 0, 1)):
            value = body.get(name)
            _check(value is None or (_is_number(value) and low <= value <= high),
                   f"{name}: Input should be a number between {low} and {high}")
        _check(body.get("top_k") is None or (_is_int(body["top_k"]) and body["top_k"] >= 0),
               "top_k: Input should be a valid integer")
        stops = body.get("stop_sequences")
        _check(stops is None or (isinstance(stops, list) and all(isinstance(s, str) and s.strip() for s in stops)),
               "stop_sequences: Input should be a list of non-empty strings")
        _check(isinstance(body.get("stream", False), bool), "stream: Input should be a valid boolean")
        metadata = body.get("metadata")
        _check(metadata is None or (isinstance(metadata, dict) and set(metadata) <= {"user_id"}),
               "metadata: Extra inputs are not permitted")
        thinking = body.get("thinking")
        if thinking is not None:
            kind = thinking.get("type") if isinstance(thinking, dict) else None
            _check(kind in ("enabled", "disabled", "adaptive"),
                   "thinking: Input tag does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'")
            if kind == "enabled":
                budget = thinking.get("budget_tokens")
                _check(_is_int(budget) and budget >= 1024, "thinking.enabled.budget_tokens: Input should be "
                       "greater than or equal to 1024")
                _check(budget < body["max_tokens"], "`max_tokens` must be greater than `thinking.budget_tokens`")

    def _validate_system(self, system: Any) -> None:
        if system is None or isinstance(system, str):
            return
        _check(isinstance(system, list) and all(
            isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str) and b["text"]
            for b in system), "system: Input should be a valid string or a list of non-empty text blocks")

    def _validate_tools(self, body: dict) -> list[str]:
        tools = body.get("tools")
        if tools is None:
            return []
        _check(isinstance(tools, list), "tools: Input should be a valid list")
        names = []
        for j, tool in enumerate(tools):
            _check(isinstance(tool, dict), f"tools.{j}: Input should be a valid dictionary")
            if tool.get("type") not in (None, "custom"):
                continue  # a server tool (web search, ...)
            for key in tool:
                _check(key in ("name", "description", "input_schema", "type", "cache_control", "strict"),
                       f"tools.{j}.custom.{key}: Extra inputs are not permitted")
            name = tool.get("name")
            _check(isinstance(name, str) and re.fullmatch(r"[a-zA-Z0-9_-]{1,128}", name),
                   f"tools.{j}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
            schema = tool.get("input_schema")
            _check(isinstance(schema, dict) and schema.get("type") == "object",
                   f"tools.{j}.custom.input_schema: JSON schema is invalid - its type must be 'object'")
            names.append(name)
        return names

    def _validate_messages(self, messages: list) -> None:
        for i, message in enumerate(messages):
            _check(isinstance(message, dict), f"messages.{i}: Input should be a valid dictionary")
            role = message.get("role")
            if role == "system":
                raise ApiError(400, 'messages: Unexpected role "system". The Messages API accepts a top-level '
                                    '`system` parameter, not "system" as an input message role.')
            _check(role in ("user", "assistant"), f"messages.{i}.role: Input should be 'user' or 'assistant'")
            content = message.get("content")
            _check(isinstance(content, (str, list)), f"messages.{i}.content: Field required")
            is_final_assistant = role == "assistant" and i == len(messages) - 1
            _check(content or is_final_assistant, f"messages.{i}: all messages must have non-empty content "
                   "except for the optional final assistant message")
            allowed = USER_BLOCKS if role == "user" else ASSISTANT_BLOCKS
            for j, block in enumerate(_anthropic_blocks(content)):
                self._validate_block(block, allowed, f"messages.{i}.content.{j}")
            self._validate_pairing(messages, i)

    def _validate_block(self, block: Any, allowed: set[str], where: str) -> None:
        kind = block.get("type") if isinstance(block, dict) else None
        _check(kind in allowed, f"{where}.type: Input tag '{kind}' found using 'type' does not match any of the "
               f"expected tags: {', '.join(sorted(allowed))}")
        if kind == "text":
            _check(isinstance(block.get("text"), str), f"{where}.text: Input should be a valid string")
            _check(block["text"], "messages: text content blocks must be non-empty")
        elif kind == "image":
            source = block.get("source")
            stype = source.get("type") if isinstance(source, dict) else None
            if stype == "base64":
                _check(source.get("media_type") in IMAGE_MEDIA_TYPES, f"{where}.source.base64.media_type: Input "
                       "should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'")
                _check(_valid_base64(source.get("data")), f"{where}.source.base64.data: invalid base64 data")
            else:
                _check(stype == "url" and isinstance(source.get("url"), str) and source["url"].startswith(
                    ("http://", "https://")), f"{where}.source: Input tag '{stype}' does not match 'base64' "
                       "or 'url'")
        elif kind == "tool_use":
            _check(isinstance(block.get("id"), str) and re.fullmatch(r"[a-zA-Z0-9_-]+", block["id"]),
                   f"{where}.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
            _check(isinstance(block.get("name"), str), f"{where}.name: Field required")
            _check(isinstance(block.get("input"), dict), f"{where}.input: Input should be a valid dictionary")
        elif kind == "tool_result":
            _check(isinstance(block.get("tool_use_id"), str), f"{where}.tool_use_id: Field required")
            inner = block.get("content", "")
            _check(isinstance(inner, str) or (isinstance(inner, list) and all(
                isinstance(b, dict) and b.get("type") in ("text", "image") for b in inner)),
                f"{where}.content: Input should be a valid string or a list of text/image blocks")
        elif kind == "thinking":
            _check(isinstance(block.get("thinking"), str) and isinstance(block.get("signature"), str),
                   f"{where}: thinking blocks need `thinking` and `signature`")
            _check(block["signature"] == signature_for(block["thinking"]),
                   f"{where}: Invalid `signature` in `thinking` block")

    def _validate_pairing(self, messages: list, i: int) -> None:
        content = _anthropic_blocks(messages[i]["content"])
        if messages[i]["role"] == "assistant":
            uses = [b["id"] for b in content if b.get("type") == "tool_use"]
            if uses and i + 1 < len(messages):
                following = _anthropic_blocks(messages[i + 1].get("content") or [])
                answered = {b.get("tool_use_id") for b in following
                            if isinstance(b, dict) and b.get("type") == "tool_result"}
                missing = [u for u in uses if u not in answered]
                _check(messages[i + 1].get("role") == "user" and not missing,
                       f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                       f"after: {', '.join(missing or uses)}. Each `tool_use` block must have a corresponding "
                       "`tool_result` block in the next message.")
            return
        results = [(j, b["tool_use_id"]) for j, b in enumerate(content) if b.get("type") == "tool_result"]
        previous = _anthropic_blocks(messages[i - 1]["content"]) if i and messages[i - 1]["role"] == "assistant" \
            else []
        offered = {b.get("id") for b in previous if b.get("type") == "tool_use"}
        for j, use_id in results:
            _check(use_id in offered, f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` "
                   f"blocks: {use_id}. Each `tool_result` block must have a corresponding `tool_use` block in the "
                   "previous message.")

    # neutral view ----------------------------------------------------------
    def view(self, exchange: Exchange) -> RequestView:
        body = exchange.body
        system = body.get("system")
        turns, images, history_calls = [], [], []
        for message in body["messages"]:
            role = message["role"]
            for block in _anthropic_blocks(message["content"]):
                kind = block["type"]
                if kind == "text":
                    turns.append((role, block["text"]))
                elif kind == "image":
                    source = block["source"]
                    images.append(("base64", source["media_type"], source["data"]) if source["type"] == "base64"
                                  else ("url", None, source["url"]))
                elif kind == "tool_use":
                    history_calls.append((block["id"], block["name"], block["input"]))
                elif kind == "tool_result":
                    turns.append(("tool", _anthropic_text(block.get("content", ""))))
        last = body["messages"][-1] if body["messages"] else {"role": "user", "content": ""}
        last_blocks = _anthropic_blocks(last["content"])
        choice = body.get("tool_choice")
        choice_view = {"auto": "auto", "any": "required", "none": "none"}.get(choice["type"], (
            "tool", choice.get("name"))) if choice else None
        thinking = (body.get("thinking") or {}).get("type")
        return RequestView(
            model=body["model"],
            system=system if isinstance(system, str) or system is None else "\n".join(b["text"] for b in system),
            turns=turns,
            last_user_text=_anthropic_text(last["content"]) if last["role"] == "user" else "",
            images=images,
            tools=[(t["name"], t.get("description"), t["input_schema"]) for t in body.get("tools") or []
                   if t.get("type") in (None, "custom")],
            tool_choice=choice_view,
            parallel_tool_calls=not (choice or {}).get("disable_parallel_tool_use", False),
            tool_calls=history_calls,
            tool_results=[(b["tool_use_id"], _anthropic_text(b.get("content", ""))) for b in last_blocks
                          if b.get("type") == "tool_result"] if last["role"] == "user" else [],
            reasoning=thinking in ("enabled", "adaptive"),
            max_tokens=body.get("max_tokens"),
            stop=list(body.get("stop_sequences") or []),
            temperature=body.get("temperature"),
            top_p=body.get("top_p"),
            stream=bool(body.get("stream")),
            include_usage=False,
        )

    # answering -------------------------------------------------------------
    def _messages(self, reply: Reply, serial: int) -> None:
        body = self.parse_json_body(reply.exchange)
        self.validate(body)
        model = body["model"]
        if not model.startswith(self.model_prefix):
            raise ApiError(404, f"model: {model}")
        fault, status = fault_of(model)
        if fault == "status":
            raise ApiError(status, f"fake upstream answered {status} as scripted")
        view = self.view(reply.exchange)
        plan = plan_reply(view, fault, tool_preamble=True)
        reply.exchange.usage = {"input": plan.input_tokens, "output": plan.output_tokens}
        ident = f"msg_fake{serial:06d}"
        calls = [(f"toolu_fake{serial:06d}{i:02d}", name, args) for i, (name, args) in enumerate(plan.tool_calls)]
        usage = {"input_tokens": plan.input_tokens, "output_tokens": plan.output_tokens,
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "service_tier": "standard"}
        headers = {"request-id": f"req_{serial}"}
        if view.stream:
            self._stream(reply, plan, fault, ident, model, calls, usage, headers)
            return
        if fault == "slow":
            reply.wait(SLOW_CHUNKS * SLOW_INTERVAL)
        if fault == "stream-error":
            raise ApiError(529, "Overloaded")
        content: list[dict[str, Any]] = []
        if plan.reasoning:
            thinking = "".join(plan.reasoning)
            content.append({"type": "thinking", "thinking": thinking, "signature": signature_for(thinking)})
        if plan.text:
            content.append({"type": "text", "text": "".join(plan.text)})
        content += [{"type": "tool_use", "id": cid, "name": name, "input": args} for cid, name, args in calls]
        message = {"id": ident, "type": "message", "role": "assistant", "model": model, "content": content,
                   "stop_reason": ANTHROPIC_STOP[plan.finish], "stop_sequence": plan.stop_sequence, "usage": usage}
        reply.json(200, message, headers, cut=fault in ("break", "truncate"))

    def _stream(self, reply: Reply, plan: Plan, fault: str | None, ident: str, model: str, calls: list,
                usage: dict, headers: dict) -> None:
        def event(kind: str, **data: Any) -> None:
            reply.sse({"type": kind, **data}, event=kind)

        index = itertools.count()
        pinged = False

        def block(start: dict, deltas: list[dict]) -> bool:
            """Send one content block; False when a fault ended the stream."""
            nonlocal pinged
            i = next(index)
            event("content_block_start", index=i, content_block=start)
            if not pinged:
                event("ping")
                pinged = True
            for n, delta in enumerate(deltas):
                if start["type"] == "text" and fault in ("break", "truncate", "stream-error") and n == BREAK_AFTER:
                    self._fail_stream(reply, fault)
                    return False
                if start["type"] == "text" and fault == "slow":
                    reply.wait(SLOW_INTERVAL)
                event("content_block_delta", index=i, delta=delta)
            event("content_block_stop", index=i)
            return True

        reply.start_stream(headers)
        event("message_start", message={
            "id": ident, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 1}})
        if plan.reasoning:
            thinking = "".join(plan.reasoning)
            deltas = [{"type": "thinking_delta", "thinking": p} for p in plan.reasoning]
            block({"type": "thinking", "thinking": "", "signature": ""},
                  deltas + [{"type": "signature_delta", "signature": signature_for(thinking)}])
        if plan.text and not block({"type": "text", "text": ""},
                                   [{"type": "text_delta", "text": p} for p in plan.text]):
            return
        for cid, name, args in calls:
            block({"type": "tool_use", "id": cid, "name": name, "input": {}},
                  [{"type": "input_json_delta", "partial_json": p} for p in ["", *json_fragments(args)]])
        event("message_delta", delta={"stop_reason": ANTHROPIC_STOP[plan.finish],
                                      "stop_sequence": plan.stop_sequence},
              usage={"output_tokens": plan.output_tokens})
        event("message_stop")
        reply.end_stream()

    def _fail_stream(self, reply: Reply, fault: str) -> None:
        reply.exchange.outcome = "broken"
        if fault == "break":
            reply.break_off()
            return
        if fault == "stream-error":
            reply.sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                      event="error")
        reply.end_stream()
