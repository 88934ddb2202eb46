"""A fake Argo (UPSTREAMS.md §3) over HTTPS with a test CA, plus the loopback sshd the tunnel goes through.

FakeArgo serves /argoapi/v1/models, /argoapi/v1/chat/completions (GPT, Gemini) and /argoapi/v1/messages (Claude),
records every request, insists on a registered `user` in the body (else HTTP 500, as Argo does), answers an
unregistered one with the HTTP 200 AUTHENTICATION NOTICE, and streams slowly for prompts containing "slow".
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
    {"id": "Gemini 2.5 Pro", "internal_id": "gemini25pro", "owned_by": "google"},
]
KNOWN_MODELS = {m["id"] for m in MODELS} | {m["internal_id"] for m in MODELS}


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
        self.lock = threading.Lock()
        self.port = free_port()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.record(self, None)
                if self.path.rstrip("/") == "/argoapi/v1/models":
                    self.send_json(200, {"object": "list", "data": MODELS})
                else:
                    self.send_json(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                fake.record(self, body)
                path = self.path.rstrip("/")
                if path not in ("/argoapi/v1/chat/completions", "/argoapi/v1/messages"):
                    return self.send_json(404, {"error": "not found"})
                if not isinstance(body, dict):
                    return self.send_json(400, {"error": "invalid json"})
                if body.get("user") == NOTICE_USER:
                    return self.send_text(200, AUTH_NOTICE)
                if body.get("user") not in REGISTERED_USERS:
                    return self.send_json(500, {"error": "Internal Server Error: user is required"})
                if body.get("model") not in KNOWN_MODELS:
                    return self.send_json(400, {"error": {"message": "Invalid model", "type": "invalid_request_error"}})
                text = fake.reply_text(body)
                if path.endswith("/messages"):
                    return self.messages(body, text)
                return self.chat(body, text)

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

    @staticmethod
    def prompt_text(body: dict) -> str:
        texts = []
        for message in body.get("messages", []):
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts += [part.get("text", "") for part in content if isinstance(part, dict)]
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
