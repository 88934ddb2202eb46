"""A fake Argo (UPSTREAMS.md §3) over HTTPS with a test CA, plus the loopback sshd the tunnel goes through.

FakeArgo serves /argoapi/v1/models, /argoapi/v1/chat/completions (GPT, Gemini), /argoapi/v1/messages (Claude) and
/argoapi/v1/responses (GPT only), records every request, insists on a registered `user` in the body (else HTTP 500,
as Argo does), answers an unregistered one with the HTTP 200 AUTHENTICATION NOTICE, and streams slowly for prompts
containing "slow". It reproduces the quirks of UPSTREAMS.md §3 as refusals, so a request the gateway failed to
shape fails:
  * chat: `developer` role → 400; Gemini: null content → 500 (it crashes), non-string system content → 400,
    an assistant turn with several tool_calls → 400; GPT-5/o-series/Gemini with temperature → an empty stream.
  * messages: `strict` on a tool → 400 FAILED_PRECONDITION; an empty thinking block → 400; Haiku/Sonnet with
    adaptive thinking → 400; Opus 4.7/4.8 with enabled thinking → 400.
  * responses: `Authorization: Bearer <registered user>` required (x-api-key alone → 401), no `user` needed,
    a Claude or Gemini model → 400 "Use a supported GPT model name.".
  * prompts containing "vertex-token-failure" → HTTP 500 with Argo's Vertex token failure text; "quota" on
    /messages → HTTP 200 whose event stream carries an `event: error` (rate_limit_error).
  * `models_failure` (an HTTP status) makes GET /v1/models fail; `extra_models` are listed after MODELS.
LoopbackSSHD is a real OpenSSH sshd on 127.0.0.1 run as the current user (PLATFORM-NOTES.md).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ARGO_HOST = "argo.test"
REGISTERED_USERS = {"alice", "bob"}
NOTICE_USER = "unregistered"
AUTH_NOTICE = ("\u26a0\ufe0f **IMPORTANT AUTHENTICATION NOTICE FROM ARGO** \u26a0\ufe0f\n\n"
               "Your username is not registered with Argo. Please contact the Argo team.")
MODELS = [
    {"id": "GPT-4o", "internal_id": "gpt4o", "owned_by": "openai"},
    {"id": "GPT-5", "internal_id": "gpt5", "owned_by": "openai"},
    {"id": "Claude Opus 4.8", "internal_id": "claudeopus48", "owned_by": "anthropic"},
    {"id": "Claude Sonnet 4.5", "internal_id": "claudesonnet45", "owned_by": "anthropic"},
    {"id": "Gemini 2.5 Pro", "internal_id": "gemini25pro", "owned_by": "google"},
    {"id": "gpt35", "model_name": "GPT-3.5 Turbo"},  # Argo's older list format
]
VERTEX_TOKEN_FAILURE = ("Internal Server Error: HTTPSConnectionPool(host='oauth2.googleapis.com', port=443): "
                        "Max retries exceeded with url: /token (Caused by NewConnectionError)")


def model_ids(models: list[dict]) -> dict[str, dict]:
    """Every id a model is known by (display and internal), to its entry."""
    known = {}
    for model in models:
        known[model["id"]] = model
        known[model.get("internal_id") or model["id"]] = model
        if "model_name" in model:
            known[model["model_name"]] = model
    return known


def vendor_of(model: dict) -> str:
    owner = model.get("owned_by")
    if owner:
        return owner
    name = (model.get("model_name") or model["id"]).lower()
    return "anthropic" if "claude" in name else "google" if "gemini" in name else "openai"


def compact(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def thinking_family(model: dict) -> str:
    """Which thinking type a Claude model accepts on Vertex: "enabled" (Haiku, Sonnet) or "adaptive" (Opus 4.7+)."""
    name = compact(model.get("internal_id") or model["id"])
    if "haiku" in name or "sonnet" in name:
        return "enabled"
    if any(name.startswith(f"claudeopus{v}") for v in ("47", "48", "5")):
        return "adaptive"
    return "either"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_test_pki(directory: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for ARGO_HOST signed by it: (ca.pem, server.pem, server.key)."""
    directory.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=rosetta test CA",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=directory)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={ARGO_HOST}", "-keyout", "server.key",
            "-out", "server.csr", cwd=directory)
    (directory / "san.ext").write_text(f"subjectAltName=DNS:{ARGO_HOST}\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=directory)
    return directory / "ca.pem", directory / "server.pem", directory / "server.key"


@dataclass
class Exchange:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeArgo:
    """Argo's OpenAI/Anthropic-compatible API on https://127.0.0.1:<port>/argoapi with a certificate for argo.test."""

    def __init__(self, pki_dir: Path) -> None:
        self.ca, cert, key = make_test_pki(pki_dir)
        self.exchanges: list[Exchange] = []
        self.extra_models: list[dict] = []
        self.models_failure: int | None = None
        self.lock = threading.Lock()
        self.port = free_port()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.record(self, None)
                if self.path.rstrip("/") != "/argoapi/v1/models":
                    return self.send_json(404, {"error": "not found"})
                if fake.models_failure:
                    return self.send_json(fake.models_failure, {"error": "model list unavailable"})
                self.send_json(200, {"object": "list", "data": fake.models()})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                fake.record(self, body)
                path = self.path.rstrip("/")
                if path not in ("/argoapi/v1/chat/completions", "/argoapi/v1/messages", "/argoapi/v1/responses"):
                    return self.send_json(404, {"error": "not found"})
                if not isinstance(body, dict):
                    return self.send_json(400, {"error": "invalid json"})
                if path.endswith("/responses"):
                    return self.answer_responses(body)
                if body.get("user") == NOTICE_USER:
                    return self.send_text(200, AUTH_NOTICE)
                if body.get("user") not in REGISTERED_USERS:
                    return self.send_json(500, {"error": "Internal Server Error: user is required"})
                model = model_ids(fake.models()).get(body.get("model"))
                if model is None:
                    return self.send_json(400, {"error": {"message": "Invalid model", "type": "invalid_request_error"}})
                if "vertex-token-failure" in fake.prompt_text(body):
                    return self.send_json(500, {"error": VERTEX_TOKEN_FAILURE})
                text = fake.reply_text(body)
                if path.endswith("/messages"):
                    problem = fake.messages_problem(body, model)
                    if problem:
                        return self.send_json(400, {"type": "error", "error": {"type": "invalid_request_error", "message": problem}})
                    if "quota" in fake.prompt_text(body) and body.get("stream"):
                        self.start_sse()
                        self.sse({"type": "error", "error": {"type": "rate_limit_error",
                                                             "message": "Quota exceeded for aiplatform.googleapis.com"}},
                                 event="error")
                        return self.write_chunk(b"")
                    return self.messages(body, text)
                status, problem = fake.chat_problem(body, model)
                if problem:
                    return self.send_json(status, {"error": {"message": problem, "type": "invalid_request_error"}})
                if fake.empties_stream(body, model):
                    text = ""
                return self.chat(body, text)

            def answer_responses(self, body: dict) -> None:
                auth = self.headers.get("authorization") or ""
                if not auth.startswith("Bearer ") or auth[len("Bearer "):] not in REGISTERED_USERS:
                    return self.send_json(401, {"error": {"message": "Unauthorized: Authorization: Bearer <username> required",
                                                          "type": "authentication_error"}})
                model = model_ids(fake.models()).get(body.get("model"))
                if model is None or vendor_of(model) != "openai":
                    return self.send_json(400, {"error": {"message": "Use a supported GPT model name.",
                                                          "type": "invalid_request_error"}})
                if "input" not in body:
                    return self.send_json(400, {"error": {"message": "Missing required parameter: 'input'.",
                                                          "type": "invalid_request_error"}})
                text = f"hello from argo responses {body['model']}"
                item = {"type": "message", "id": "msg_argo", "status": "completed", "role": "assistant",
                        "content": [{"type": "output_text", "text": text, "annotations": []}]}
                response = {"id": "resp_argo", "object": "response", "created_at": 1, "status": "completed",
                            "model": body["model"], "output": [item], "parallel_tool_calls": True, "tools": [],
                            "tool_choice": "auto", "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8,
                                                             "input_tokens_details": {"cached_tokens": 0},
                                                             "output_tokens_details": {"reasoning_tokens": 0}}}
                if not body.get("stream"):
                    return self.send_json(200, response)
                self.start_sse()
                sequence = iter(range(1000))

                def send(event: dict) -> None:
                    event["sequence_number"] = next(sequence)
                    self.sse(event, event=event["type"])

                shell = dict(response, status="in_progress", output=[], usage=None)
                send({"type": "response.created", "response": shell})
                send({"type": "response.in_progress", "response": shell})
                send({"type": "response.output_item.added", "output_index": 0,
                      "item": dict(item, status="in_progress", content=[])})
                send({"type": "response.content_part.added", "item_id": "msg_argo", "output_index": 0, "content_index": 0,
                      "part": {"type": "output_text", "text": "", "annotations": []}})
                for piece in fake.pieces(text, body):
                    send({"type": "response.output_text.delta", "item_id": "msg_argo", "output_index": 0,
                          "content_index": 0, "delta": piece})
                send({"type": "response.output_text.done", "item_id": "msg_argo", "output_index": 0, "content_index": 0,
                      "text": text})
                send({"type": "response.content_part.done", "item_id": "msg_argo", "output_index": 0, "content_index": 0,
                      "part": item["content"][0]})
                send({"type": "response.output_item.done", "output_index": 0, "item": item})
                send({"type": "response.completed", "response": response})
                self.write_chunk(b"")

            # answers -----------------------------------------------------------
            def chat(self, body: dict, text: str) -> None:
                if not body.get("stream"):
                    return self.send_json(200, {
                        "id": "chatcmpl-argo", "object": "chat.completion", "created": 1, "model": body["model"],
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})
                self.start_sse()
                for piece in fake.pieces(text, body):
                    self.sse({"id": "chatcmpl-argo", "object": "chat.completion.chunk", "created": 1,
                              "model": body["model"],
                              "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
                    fake.pause(body)
                self.sse({"id": "chatcmpl-argo", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                          "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                self.sse({"id": "chatcmpl-argo", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                          "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})
                self.write_chunk(b"data: [DONE]\n\n")
                self.write_chunk(b"")

            def messages(self, body: dict, text: str) -> None:
                if not body.get("stream"):
                    return self.send_json(200, {
                        "id": "msg_argo", "type": "message", "role": "assistant", "model": body["model"],
                        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                        "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 3}})
                self.start_sse()
                self.sse({"type": "message_start", "message": {
                    "id": "msg_argo", "type": "message", "role": "assistant", "model": body["model"], "content": [],
                    "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 0}}},
                    event="message_start")
                self.sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                         event="content_block_start")
                for piece in fake.pieces(text, body):
                    self.sse({"type": "content_block_delta", "index": 0,
                              "delta": {"type": "text_delta", "text": piece}}, event="content_block_delta")
                    fake.pause(body)
                self.sse({"type": "content_block_stop", "index": 0}, event="content_block_stop")
                self.sse({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                          "usage": {"output_tokens": 3}}, event="message_delta")
                self.sse({"type": "message_stop"}, event="message_stop")
                self.write_chunk(b"")

            # plumbing ----------------------------------------------------------
            def send_json(self, status: int, value: Any) -> None:
                data = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def send_text(self, status: int, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("content-type", "text/plain; charset=utf-8")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def start_sse(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()

            def sse(self, value: Any, event: str | None = None) -> None:
                prefix = f"event: {event}\n" if event else ""
                self.write_chunk(f"{prefix}data: {json.dumps(value)}\n\n".encode())

            def write_chunk(self, data: bytes) -> None:
                try:
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                except OSError:
                    pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def record(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        with self.lock:
            self.exchanges.append(Exchange(handler.command, handler.path,
                                           {k.lower(): v for k, v in handler.headers.items()}, body))

    def models(self) -> list[dict]:
        with self.lock:
            return MODELS + self.extra_models

    @staticmethod
    def chat_problem(body: dict, model: dict) -> tuple[int, str | None]:
        """Why Argo's chat endpoint would refuse this body (status, message), or (200, None)."""
        gemini = vendor_of(model) == "google"
        for message in body.get("messages", []):
            if message.get("role") == "developer":
                return 400, "Invalid role: developer"
            if gemini and message.get("content") is None:
                return 500, "Internal Server Error: 'NoneType' object is not iterable"
            if gemini and message.get("role") == "system" and not isinstance(message.get("content"), str):
                return 400, "Gemini system content must be a string"
            if gemini and len(message.get("tool_calls") or []) > 1:
                return 400, "Gemini: parallel function calls are not supported in the history"
        if "max_tokens" in body and vendor_of(model) == "openai" and compact(model["id"]).startswith("gpt5"):
            return 400, "Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens' instead."
        return 200, None

    @staticmethod
    def empties_stream(body: dict, model: dict) -> bool:
        """GPT-5, o-series and Gemini answer an empty stream instead of an error when sent temperature."""
        name = compact(model["id"])
        return "temperature" in body and (name.startswith("gpt5") or vendor_of(model) == "google")

    @staticmethod
    def messages_problem(body: dict, model: dict) -> str | None:
        """Why Argo's (Vertex's) messages endpoint would refuse this body, or None."""
        for tool in body.get("tools") or []:
            if "strict" in tool:
                return "400 FAILED_PRECONDITION: strict tools are disabled by the organization policy"
        for message in body.get("messages", []):
            content = message.get("content")
            for block in content if isinstance(content, list) else []:
                if block.get("type") == "thinking" and not (block.get("thinking") or "").strip():
                    return "messages: thinking blocks must not be empty"
        thinking = (body.get("thinking") or {}).get("type")
        family = thinking_family(model)
        if thinking == "adaptive" and family == "enabled":
            return "thinking.type: adaptive is not supported for this model; use enabled with budget_tokens"
        if thinking == "enabled" and family == "adaptive":
            return "thinking.type: enabled is not supported for this model; use adaptive"
        return None

    @staticmethod
    def prompt_text(body: dict) -> str:
        texts = []
        for message in body.get("messages", []):
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts += [part.get("text", "") for part in content if isinstance(part, dict)]
        if isinstance(body.get("input"), str):
            texts.append(body["input"])
        return " ".join(texts)

    def reply_text(self, body: dict) -> str:
        if "slow" in self.prompt_text(body):
            return " ".join(f"word{i}" for i in range(40))
        return f"hello from argo {body['model']}"

    def pieces(self, text: str, body: dict) -> list[str]:
        words = text.split(" ")
        return [word + (" " if i < len(words) - 1 else "") for i, word in enumerate(words)]

    def pause(self, body: dict) -> None:
        if "slow" in self.prompt_text(body):
            time.sleep(0.1)

    def posts(self) -> list[Exchange]:
        with self.lock:
            return [e for e in self.exchanges if e.method == "POST"]

    def model_listings(self) -> list[Exchange]:
        with self.lock:
            return [e for e in self.exchanges if e.method == "GET" and e.path.rstrip("/").endswith("/v1/models")]

    def clear(self) -> None:
        with self.lock:
            self.exchanges.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class LoopbackSSHD:
    """A real sshd on 127.0.0.1 as the current user, with its own host key and an authorized test key."""

    directory: Path
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        for name in ("host_ed25519", "client_key", "wrong_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
        shutil.copy(d / "client_key.pub", d / "authorized_keys")
        host_key = (d / "host_ed25519.pub").read_text().split()
        (d / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {host_key[0]} {host_key[1]}\n")
        (d / "empty_known_hosts").write_text("")
        (d / "sshd_config").write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host_ed25519'}", f"PidFile {d / 'sshd.pid'}",
            f"AuthorizedKeysFile {d / 'authorized_keys'}", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no", "AllowTcpForwarding local", "StrictModes no",
            "PermitRootLogin prohibit-password", "LogLevel VERBOSE", ""]))
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
        self.process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", str(d / "sshd_config"), "-E", str(d / "sshd.log")])
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sshd did not start: {self.log()}")
                time.sleep(0.05)

    @property
    def user(self) -> str:
        import pwd
        return pwd.getpwuid(os.geteuid()).pw_name

    def log(self) -> str:
        try:
            return (self.directory / "sshd.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
