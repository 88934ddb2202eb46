"""Test harness: the rosettad process, its config, SDK clients and reply collectors.

Fixtures in conftest.py build on this; tests import the helpers they need.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

import anthropic
import httpx
import openai
import pytest

from fakes import FakeAnthropic, FakeOpenAI

REPO_ROOT = Path(__file__).resolve().parents[2]

OPENAI_UPSTREAM_KEY = "upstream-openai-key"
ANTHROPIC_UPSTREAM_KEY = "upstream-anthropic-key"
# The OpenAI provider's key reaches the daemon through ${VAR} substitution.
OPENAI_KEY_VARIABLE = "ROSETTA_IT_OPENAI_KEY"
EXTRA_HEADER = ("X-Extra", "v")
UNIX_CLIENT_KEY = "client-key-on-the-unix-socket"  # any string works on the socket; must never go upstream

CLIENT_FORMATS = ("openai", "anthropic")
UPSTREAMS = ("openai", "anthropic")
TRANSPORTS = ("tcp", "unix")
FAULTS = ("slow", "long", "break", "truncate", "stream-error", "status-429", "status-503", "status-529")
FULL_CAPABILITIES = ["text", "vision", "tools", "reasoning"]

# finish/stop reasons in each client's vocabulary
FINISH = {
    "openai": {"stop": "stop", "length": "length", "tool": "tool_calls"},
    "anthropic": {"stop": "end_turn", "length": "max_tokens", "tool": "tool_use"},
}


def sdk_httpx(sdk: ModuleType) -> ModuleType:
    """The HTTP library an SDK is built on: httpx, or httpx2 in newer releases (which reject httpx clients)."""
    base = importlib.import_module(f"{sdk.__name__}._base_client")
    return getattr(base, "httpx2", None) or getattr(base, "httpx")


# errors an SDK stream may raise when the stream fails (the SDKs wrap some
# transport errors and let others through)
STREAM_FAILURES = (openai.APIError, anthropic.APIError, httpx.HTTPError,
                   *{sdk_httpx(sdk).HTTPError for sdk in (openai, anthropic)})

# a 1x1 PNG
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
IMAGE_URL = "https://example.com/cat.png"


# --------------------------------------------------------------------------
# Models and config
# --------------------------------------------------------------------------


ALIAS_PREFIX = {"openai": "gpt", "anthropic": "claude"}


def alias(upstream: str, variant: str = "test") -> str:
    """The model name a client uses: gpt-test, claude-slow, gpt-status-429, ..."""
    return f"{ALIAS_PREFIX[upstream]}-{variant}"


def upstream_model(upstream: str, variant: str = "test") -> str:
    """The model name the fake upstream sees for alias(upstream, variant)."""
    base = {"openai": "fake-gpt", "anthropic": "fake-claude"}[upstream]
    return base if variant in ("test", "textonly") else f"{base}-{variant}"


def configured_aliases() -> list[str]:
    return [alias(u, v) for u in UPSTREAMS for v in ("test", "textonly", *FAULTS)]


def gateway_config(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, **extra: Any) -> dict:
    """The config both fakes are reachable through; extra top-level keys are merged in."""
    providers = {
        "fake-openai": {"type": "openai_chat", "base_url": f"{fake_openai.url}/v1",
                        "api_key": f"${{{OPENAI_KEY_VARIABLE}}}"},
        "fake-anthropic": {"type": "anthropic", "base_url": fake_anthropic.url, "api_key": ANTHROPIC_UPSTREAM_KEY,
                           "headers": {EXTRA_HEADER[0]: EXTRA_HEADER[1]}},
    }
    models = {}
    for upstream, provider in (("openai", "fake-openai"), ("anthropic", "fake-anthropic")):
        for variant in ("test", *FAULTS):
            models[alias(upstream, variant)] = {"provider": provider,
                                                "upstream_model": upstream_model(upstream, variant),
                                                "capabilities": FULL_CAPABILITIES}
        models[alias(upstream, "textonly")] = {"provider": provider, "upstream_model": upstream_model(upstream),
                                               "capabilities": ["text"]}
    return {"providers": providers, "models": models, **extra}


def to_yaml(value: dict, indent: int = 0) -> str:
    """A small block-style YAML writer; scalars are JSON (valid YAML flow scalars)."""
    lines = []
    pad = " " * indent
    for key, item in value.items():
        if isinstance(item, dict) and item:
            lines.append(f"{pad}{key}:")
            lines.append(to_yaml(item, indent + 2))
        else:
            lines.append(f"{pad}{key}: {json.dumps(item)}")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------


def binary(name: str, variable: str) -> Path:
    path = Path(os.environ.get(variable) or REPO_ROOT / ".build" / "debug" / name).absolute()
    if not os.access(path, os.X_OK):
        pytest.fail(f"{name} not found at {path}: build it (swift build) or set {variable}")
    return path


def rosettad_binary() -> Path:
    return binary("rosettad", "ROSETTAD_BIN")


def rosetta_binary() -> Path:
    return binary("rosetta", "ROSETTA_BIN")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def eventually(probe: Callable[[], Any], *, timeout: float = 5.0, interval: float = 0.02, what: str = "") -> Any:
    """Poll probe until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}")
        time.sleep(interval)


def unix_http(socket_path: Path, **kwargs: Any) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(uds=str(socket_path)), base_url="http://localhost",
                        **kwargs)


@dataclass
class RunAs:
    """Run the daemon as another account (root only)."""

    user: pwd.struct_passwd

    def prefix(self) -> list[str]:
        return ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}", "--init-groups", "--"]


@dataclass
class Daemon:
    """One `rosettad serve --user` process with its own HOME, socket, port and state."""

    config: dict
    env: dict[str, str] = field(default_factory=dict)
    run_as: RunAs | None = None

    def __post_init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rosetta-it-"))  # short: socket paths are limited to 108 bytes
        self.home = self.root / "home"
        self.home.mkdir()
        self.config_path = self.root / "config.yaml"
        self.socket = self.home / ".local" / "run" / "rosetta.sock"
        self.state_dir = self.home / ".local" / "state" / "rosetta"
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = self.root / "rosettad.log"
        self._clients: dict[tuple[str, str], Any] = {}
        self.executable = rosettad_binary()

    # lifecycle ------------------------------------------------------------
    @property
    def argv(self) -> list[str]:
        return [str(self.executable), "serve", "--user", "--config", str(self.config_path), "--socket",
                str(self.socket), "--port", str(self.port), "--state-dir", str(self.state_dir)]

    def process_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
        env.update(HOME=str(self.home), **{OPENAI_KEY_VARIABLE: OPENAI_UPSTREAM_KEY}, **self.env)
        if self.run_as:
            env.update(USER=self.run_as.user.pw_name, LOGNAME=self.run_as.user.pw_name)
        return env

    def launch(self) -> None:
        self.config_path.write_text(to_yaml(self.config) + "\n")
        if self.run_as:
            self._hand_over_to(self.run_as.user)
        with open(self.log_path, "wb") as log:
            prefix = self.run_as.prefix() if self.run_as else []
            self.process = subprocess.Popen(prefix + self.argv, env=self.process_env(), stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def start(self, timeout: float = 30.0) -> "Daemon":
        """Launch and wait until /health answers (over the socket, or over TCP when run as another user)."""
        self.launch()
        probe = self._tcp_health_ok if self.run_as else self._unix_health_ok
        deadline = time.monotonic() + timeout
        while not probe():
            if self.process.poll() is not None:
                pytest.fail(f"rosettad exited with {self.process.returncode} before it was ready:\n{self.logs()}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"rosettad not ready within {timeout}s:\n{self.logs()}")
            time.sleep(0.05)
        return self

    def _unix_health_ok(self) -> bool:
        try:
            with unix_http(self.socket, timeout=2) as client:
                return client.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def _tcp_health_ok(self) -> bool:
        try:
            with httpx.Client(base_url=self.tcp_url, timeout=2,
                              headers={"authorization": f"Bearer {self.token}"}) as client:
                return client.get("/health").status_code == 200
        except (httpx.HTTPError, OSError):
            return False

    def _hand_over_to(self, user: pwd.struct_passwd) -> None:
        for path in [self.root, *self.root.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
        self.root.chmod(0o700)
        probe = subprocess.run(self.run_as.prefix() + ["test", "-x", str(self.executable)], capture_output=True)
        if probe.returncode != 0:  # the build tree is not reachable for that user: use a copy
            copy = self.root / "rosettad"
            shutil.copy2(self.executable, copy)
            os.chown(copy, user.pw_uid, user.pw_gid)
            self.executable = copy

    def terminate(self) -> None:
        """Send SIGTERM (does not wait)."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.running:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after timeout; returns the exit status."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self.process is None:
            return None
        self.terminate()
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.returncode

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # access ----------------------------------------------------------------
    @property
    def token(self) -> str:
        return (self.state_dir / "token").read_text().strip()

    @property
    def tcp_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def http(self, transport: str = "tcp", *, token: str | None = "default", **kwargs: Any) -> httpx.Client:
        """A raw HTTP client; over TCP it sends the daemon's token as Bearer unless token=None or another."""
        kwargs.setdefault("timeout", 30)
        if transport == "unix":
            return unix_http(self.socket, **kwargs)
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers.setdefault("authorization", f"Bearer {self.token if token == 'default' else token}")
        return httpx.Client(base_url=self.tcp_url, headers=headers, **kwargs)

    def _sdk_transport(self, sdk: ModuleType, transport: str) -> tuple[str, str, Any]:
        """(base url, api key, http client) for an SDK over TCP or the Unix socket."""
        http = sdk_httpx(sdk)
        if transport == "unix":
            return "http://localhost", UNIX_CLIENT_KEY, http.Client(
                transport=http.HTTPTransport(uds=str(self.socket)), timeout=30)
        return self.tcp_url, self.token, http.Client(timeout=30)

    def openai(self, transport: str = "tcp") -> openai.OpenAI:
        key = ("openai", transport)
        if key not in self._clients:
            base, api_key, http = self._sdk_transport(openai, transport)
            self._clients[key] = openai.OpenAI(base_url=f"{base}/v1", api_key=api_key, http_client=http,
                                               max_retries=0)
        return self._clients[key]

    def anthropic(self, transport: str = "tcp") -> anthropic.Anthropic:
        key = ("anthropic", transport)
        if key not in self._clients:
            base, api_key, http = self._sdk_transport(anthropic, transport)
            self._clients[key] = anthropic.Anthropic(base_url=base, api_key=api_key, http_client=http,
                                                     max_retries=0)
        return self._clients[key]

    def client(self, client_format: str, transport: str = "tcp") -> openai.OpenAI | anthropic.Anthropic:
        return self.openai(transport) if client_format == "openai" else self.anthropic(transport)

    def cli(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run `rosetta ARGS --socket SOCK` with the daemon's HOME."""
        return subprocess.run([str(rosetta_binary()), *args, "--socket", str(self.socket)], capture_output=True,
                              text=True, timeout=timeout, env=self.process_env())


def refuses_new_connections(daemon: Daemon) -> bool:
    """True when neither front accepts a new request any more."""
    def refused(open_client: Callable[[], httpx.Client]) -> bool:
        try:
            with open_client() as client:
                return client.get("/health").status_code == 503
        except httpx.TransportError:
            return True
    return refused(lambda: daemon.http("tcp", timeout=2)) and refused(lambda: daemon.http("unix", timeout=2))


# --------------------------------------------------------------------------
# Replies: one shape for both SDKs, with the stream invariants checked
# --------------------------------------------------------------------------


@dataclass
class ToolCall:
    id: str
    name: str
    args: dict


@dataclass
class Reply:
    """What a client got, in the client's own vocabulary (finish: stop/end_turn/...)."""

    text: str
    finish: str | None
    usage: dict[str, int] | None  # {"input": n, "output": m}
    reasoning: str = ""
    signature: str | None = None  # of the (first) Anthropic thinking block
    tool_calls: list[ToolCall] = field(default_factory=list)
    id: str | None = None
    stop_sequence: str | None = None
    text_deltas: int = 0  # non-empty text deltas (streams only)
    raw: Any = None  # the completion / message, or the list of chunks / events

    def calls(self) -> list[tuple[str, dict]]:
        return [(call.name, call.args) for call in self.tool_calls]


def openai_chat(client: openai.OpenAI, *, stream: bool = False, **params: Any) -> Reply:
    if stream:
        with client.chat.completions.create(stream=True, **params) as chunks:
            collected = list(chunks)
        include_usage = bool((params.get("stream_options") or {}).get("include_usage"))
        return collect_openai_stream(collected, include_usage=include_usage)
    completion = client.chat.completions.create(**params)
    assert completion.object == "chat.completion"
    choice, usage = completion.choices[0], completion.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    calls = [ToolCall(c.id, c.function.name, json.loads(c.function.arguments))
             for c in choice.message.tool_calls or []]
    return Reply(text=choice.message.content or "", finish=choice.finish_reason, tool_calls=calls,
                 usage={"input": usage.prompt_tokens, "output": usage.completion_tokens},
                 reasoning=getattr(choice.message, "reasoning_content", None) or "", id=completion.id,
                 raw=completion)


def collect_openai_stream(chunks: list, *, include_usage: bool) -> Reply:
    """Assemble chat.completion.chunk objects, asserting the stream is well formed."""
    assert chunks, "empty stream"
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1, "chunk ids differ within one stream"
    with_choices = [c for c in chunks if c.choices]
    assert with_choices and with_choices[0].choices[0].delta.role == "assistant", "the first delta has no role"
    finishes = [i for i, c in enumerate(with_choices) if c.choices[0].finish_reason]
    assert finishes == [len(with_choices) - 1], "finish_reason must come once, in the last choice chunk"
    with_usage = [i for i, c in enumerate(chunks) if c.usage is not None]
    if include_usage:
        assert with_usage == [len(chunks) - 1] and chunks[-1].choices == [], \
            "include_usage: exactly one final chunk with usage and empty choices"
    else:
        assert not with_usage, "usage sent although stream_options.include_usage was not set"

    text, reasoning, deltas = [], [], 0
    calls: dict[int, dict[str, Any]] = {}
    for chunk in with_choices:
        delta = chunk.choices[0].delta
        if delta.content:
            text.append(delta.content)
            deltas += 1
        reasoning.append(getattr(delta, "reasoning_content", None) or "")
        for call in delta.tool_calls or []:
            if call.index not in calls:
                assert call.id and call.function and call.function.name, \
                    "a tool call's first delta must carry its id and function name"
                calls[call.index] = {"id": call.id, "name": call.function.name, "arguments": ""}
            calls[call.index]["arguments"] += (call.function.arguments or "") if call.function else ""
    usage = chunks[-1].usage
    return Reply(
        text="".join(text), finish=with_choices[-1].choices[0].finish_reason, reasoning="".join(reasoning),
        tool_calls=[ToolCall(c["id"], c["name"], json.loads(c["arguments"] or "{}"))
                    for _, c in sorted(calls.items())],
        usage={"input": usage.prompt_tokens, "output": usage.completion_tokens} if usage else None,
        id=chunks[0].id, text_deltas=deltas, raw=chunks)


RAW_ANTHROPIC_EVENTS = {"message_start", "content_block_start", "content_block_delta", "content_block_stop",
                        "message_delta", "message_stop"}
DELTAS_FOR_BLOCK = {"text": {"text_delta"}, "tool_use": {"input_json_delta"},
                    "thinking": {"thinking_delta", "signature_delta"}, "redacted_thinking": set()}


def sdk_compatible(create: Callable, params: dict) -> dict:
    """Move parameters this SDK release no longer takes (newer anthropic SDKs dropped temperature, top_p and
    top_k) into extra_body, so they are still sent as older clients send them."""
    accepted = inspect.signature(create).parameters
    extra = {k: params.pop(k) for k in list(params) if k not in accepted}
    if extra:
        params["extra_body"] = {**params.get("extra_body", {}), **extra}
    return params


def anthropic_chat(client: anthropic.Anthropic, *, stream: bool = False, **params: Any) -> Reply:
    params = sdk_compatible(client.messages.create, params)
    if not stream:
        message = client.messages.create(**params)
        return reply_from_message(message, raw=message)
    with client.messages.stream(**params) as events:
        collected = [e for e in events if e.type in RAW_ANTHROPIC_EVENTS]
        message = events.get_final_message()
    check_anthropic_events(collected)
    reply = reply_from_message(message, raw=collected)
    reply.text_deltas = sum(1 for e in collected if e.type == "content_block_delta"
                            and e.delta.type == "text_delta" and e.delta.text)
    return reply


def reply_from_message(message: Any, *, raw: Any) -> Reply:
    assert message.type == "message" and message.role == "assistant"
    blocks = message.content
    return Reply(
        text="".join(b.text for b in blocks if b.type == "text"),
        reasoning="".join(b.thinking for b in blocks if b.type == "thinking"),
        signature=next((b.signature for b in blocks if b.type == "thinking"), None),
        tool_calls=[ToolCall(b.id, b.name, b.input) for b in blocks if b.type == "tool_use"],
        finish=message.stop_reason, stop_sequence=message.stop_sequence, id=message.id,
        usage={"input": message.usage.input_tokens, "output": message.usage.output_tokens}, raw=raw)


def check_anthropic_events(events: list) -> None:
    """Assert the Messages stream grammar: start, blocks in index order, one message_delta, stop."""
    kinds = [e.type for e in events]
    assert kinds[:1] == ["message_start"] and kinds[-2:] == ["message_delta", "message_stop"], kinds
    assert kinds.count("message_delta") == 1 and kinds.count("message_start") == 1, kinds
    open_block, open_type, next_index = None, None, 0
    for event in events:
        if event.type == "content_block_start":
            assert open_block is None and event.index == next_index, f"block {event.index} starts out of order"
            open_block, open_type = event.index, event.content_block.type
        elif event.type == "content_block_delta":
            assert event.index == open_block, f"delta for block {event.index} while {open_block} is open"
            assert event.delta.type in DELTAS_FOR_BLOCK.get(open_type, {event.delta.type}), \
                f"{event.delta.type} inside a {open_type} block"
        elif event.type == "content_block_stop":
            assert event.index == open_block, f"stop for block {event.index} while {open_block} is open"
            open_block, next_index = None, next_index + 1
        elif event.type == "message_delta":
            assert open_block is None, "message_delta while a content block is open"


def chat(daemon: Daemon, client_format: str, *, stream: bool = False, transport: str = "tcp",
         **params: Any) -> Reply:
    """One request in the client's native format (Anthropic's max_tokens defaults to 256)."""
    if client_format == "openai":
        return openai_chat(daemon.openai(transport), stream=stream, **params)
    params.setdefault("max_tokens", 256)
    return anthropic_chat(daemon.anthropic(transport), stream=stream, **params)


def ask(daemon: Daemon, client_format: str, *, model: str, prompt: str = "hello there", system: str | None = None,
        max_tokens: int | None = None, stop: list[str] | None = None, temperature: float | None = None,
        top_p: float | None = None, stream: bool = False, include_usage: bool = False,
        transport: str = "tcp") -> Reply:
    """One user turn through the gateway, spelt in the client's format."""
    def present(**params: Any) -> dict:
        return {k: v for k, v in params.items() if v is not None}

    if client_format == "openai":
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt}]
        params = present(model=model, messages=messages, max_tokens=max_tokens, stop=stop,
                         temperature=temperature, top_p=top_p)
        if stream and include_usage:
            params["stream_options"] = {"include_usage": True}
    else:
        params = present(model=model, messages=[{"role": "user", "content": prompt}], system=system,
                         max_tokens=max_tokens, stop_sequences=stop, temperature=temperature, top_p=top_p)
    return chat(daemon, client_format, stream=stream, transport=transport, **params)


def stream_text(daemon: Daemon, client_format: str, model: str, *, prompt: str = "tell me a long story please",
                transport: str = "tcp") -> Iterator[str]:
    """Yield the text deltas of a streamed reply; closing the generator closes the connection."""
    client = daemon.client(client_format, transport)
    if client_format == "openai":
        with client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                            stream=True) as chunks:
            for chunk in chunks:
                for choice in chunk.choices:
                    if choice.delta.content:
                        yield choice.delta.content
    else:
        with client.messages.stream(model=model, max_tokens=256,
                                    messages=[{"role": "user", "content": prompt}]) as events:
            yield from events.text_stream


# --------------------------------------------------------------------------
# Assertions on what reached the upstream and on error envelopes
# --------------------------------------------------------------------------


def assert_upstream_credentials(exchange: Any, upstream: str, *client_secrets: str) -> None:
    """The configured upstream key was sent the upstream's way; no client secret leaked."""
    headers = exchange.headers
    if upstream == "openai":
        assert headers.get("authorization") == f"Bearer {OPENAI_UPSTREAM_KEY}"
        assert "x-api-key" not in headers
    else:
        assert headers.get("x-api-key") == ANTHROPIC_UPSTREAM_KEY
        assert headers.get(EXTRA_HEADER[0].lower()) == EXTRA_HEADER[1]
        assert "anthropic-version" in headers
    for secret in client_secrets:
        leaked = [name for name, value in headers.items() if secret in value]
        assert not leaked, f"client secret forwarded upstream in {leaked}"


def assert_openai_error(response: httpx.Response, status: int, error_type: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers.get("content-type", "").startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error.get("message"), str) and error["message"], error
    assert "type" in error, error
    if error_type:
        assert error["type"] == error_type, error
    return error


def assert_anthropic_error(response: httpx.Response, status: int, error_type: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers.get("content-type", "").startswith("application/json")
    body = response.json()
    assert body.get("type") == "error", body
    error = body["error"]
    assert isinstance(error.get("message"), str) and error["message"], error
    if error_type:
        assert error.get("type") == error_type, error
    return error


def assert_error_in_format(client_format: str, response: httpx.Response, status: int,
                           anthropic_type: str | None = None) -> dict:
    if client_format == "openai":
        return assert_openai_error(response, status)
    return assert_anthropic_error(response, status, anthropic_type)


CHAT_PATH = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}


def minimal_body(client_format: str, model: str, text: str = "hello there") -> dict:
    """The smallest valid request in a client format."""
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}]}
    if client_format == "anthropic":
        body["max_tokens"] = 64
    return body
