"""A fake ALCF inference gateway for the ALCF tests, faithful to UPSTREAMS.md §2.

Routes under ``/resource_server`` (all but /health need ``Authorization: Bearer <Globus token>``, checked
against the fake Globus; auth runs before body validation):

``GET  /health``                                   ``{"status":"ok"}``, no auth
``GET  /list-endpoints``                           clusters, frameworks, models
``GET  /{cluster}/jobs``                           running / queued / stopped jobs
``POST /{cluster}/{framework}/v1/chat/completions`` OpenAI Chat, validated with ``extra="forbid"`` at every
                                                   level (422 ``{"detail":[…]}`` exactly as django-ninja
                                                   answers), then answered by the scripted FakeOpenAI replies

401 bodies: missing header → ``{"detail": "Error: Missing ('Authorization': …"}``; a non-Bearer scheme, an
unknown, revoked or expired token → ``{"error":{"code":"unauthorized","message":…,"info":{}}}``; when
``policy_denies`` is set every token gets the 30-day "Permission denied from internal policies…high-assurance
timeout" message.

Scripted models: ``COLD_MODEL`` answers 408 ``request_timeout`` to its first request and 503
``internal_endpoint_error`` ("online but not ready") after; ``STREAM_ERROR_MODEL`` streams a few chunks and
then the in-band ``{"object":"error",…}`` event and ``[DONE]``. Unknown models → 404 ``endpoint_not_found``.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from fake_globus import FakeGlobus
from fakes import ApiError, FakeOpenAI, Reply

PREFIX = "/resource_server"
SOPHIA_MODELS = ["meta-llama/Llama-3.3-70B-Instruct", "openai/gpt-oss-120b", "openai/gpt-oss-20b", "sophia-cold-model",
                 "sophia-stream-error"]
METIS_MODELS = ["gpt-oss-120b"]
COLD_MODEL = "sophia-cold-model"
STREAM_ERROR_MODEL = "sophia-stream-error"
CLUSTERS = {"sophia": ("vllm", SOPHIA_MODELS), "metis": ("api", METIS_MODELS)}

ALLOWED = {"messages", "model", "frequency_penalty", "logit_bias", "logprobs", "max_completion_tokens", "max_tokens",
           "metadata", "modalities", "n", "parallel_tool_calls", "prediction", "presence_penalty", "reasoning_effort",
           "response_format", "seed", "service_tier", "stop", "stream", "stream_options", "store", "temperature",
           "tool_choice", "tools", "top_logprobs", "top_p", "user", "web_search_options", "extra_body"}
MESSAGE_FIELDS = {
    "system": {"role", "content", "name"},
    "developer": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "refusal", "audio", "function_call", "tool_calls", "reasoning",
                  "reasoning_content"},
    "tool": {"role", "content", "tool_call_id"},
}


class ALCFError(ApiError):
    """An answer with an exact body (the gateway's own envelopes)."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(status, str(body))
        self.body, self.headers = body, headers or {}


def app_error(status: int, code: str, message: str, **info: Any) -> ALCFError:
    return ALCFError(status, {"error": {"code": code, "message": message, "info": info}})


class FakeALCF(FakeOpenAI):
    chat_path = ""  # several chat paths; use chat_exchanges()
    model_prefix = ""

    def __init__(self, globus: FakeGlobus):
        super().__init__()
        self.globus = globus
        self.policy_denies = False
        self.cold_requests = 0
        self.jobs = {
            "sophia": {"running": [{"Models": "openai/gpt-oss-120b,openai/gpt-oss-20b", "Framework": "vllm",
                                    "Cluster": "sophia", "Model Status": "running", "Job ID": "1.sophia",
                                    "Job State": "R", "Host Name": "x1", "Nodes Reserved": "1",
                                    "Walltime": "24:00:00", "Estimated Start Time": ""}],
                       "queued": [{"Models": "meta-llama/Llama-3.3-70B-Instruct", "Framework": "vllm",
                                   "Cluster": "sophia", "Model Status": "starting", "Job ID": "2.sophia",
                                   "Job State": "Q"}],
                       "stopped": [], "others": [], "private_batch_running": [], "private_batch_queued": [],
                       "cluster_status": {}},
            "metis": {"running": [], "queued": [],
                      "stopped": [{"Models": "gpt-oss-120b", "Framework": "api", "Cluster": "metis",
                                   "Model Status": "stopped", "Description": "GPT OSS", "Model Version": "1"}],
                      "others": [], "private_batch_running": [], "private_batch_queued": [],
                      "cluster_status": {"cluster": "metis", "total_models": 1, "live_models": 0,
                                         "stopped_models": 1}},
        }
        self._lock_cold = threading.Lock()

    # records ---------------------------------------------------------------------
    def chat_exchanges(self) -> list:
        return [e for e in self.exchanges() if e.path.endswith("/v1/chat/completions")]

    def tokens_seen(self) -> list[str]:
        return [e.headers.get("authorization", "") for e in self.exchanges()]

    # envelopes -------------------------------------------------------------------
    def error_body(self, error: ApiError) -> Any:
        if isinstance(error, ALCFError):
            return error.body
        return {"error": {"code": error.code or "internal_error", "message": error.message, "info": {}}}

    def error_headers(self, error: ApiError) -> dict[str, str]:
        return error.headers if isinstance(error, ALCFError) else {}

    # auth ------------------------------------------------------------------------
    def _authenticate(self, exchange) -> None:
        header = exchange.headers.get("authorization")
        if not header:
            raise ALCFError(401, {"detail": "Error: Missing ('Authorization': 'Bearer <your-access-token>') in "
                                            "request headers."})
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer":
            raise app_error(401, "unauthorized", "Something went wrong while reading headers. Authorization type "
                                                 "should be Bearer.")
        problem = self.globus.is_active(token)
        if problem == "expired":
            raise app_error(401, "unauthorized", "Access token expired.")
        if problem:
            raise app_error(401, "unauthorized", "Token is either not active or invalid")
        if self.policy_denies:
            raise app_error(401, "unauthorized", "Error: Permission denied from internal policies. This is likely due "
                                                 "to a high-assurance timeout. Please logout and login again.")

    # routing ---------------------------------------------------------------------
    def route(self, reply: Reply, serial: int) -> None:
        exchange = reply.exchange
        path = exchange.path
        if not path.startswith(PREFIX + "/"):
            raise ALCFError(404, "<h1>Not Found</h1>")
        path = path[len(PREFIX):]
        if path in ("/health", "/status"):
            reply.json(200, {"status": "ok"})
            return
        self._authenticate(exchange)
        if exchange.method == "GET" and path == "/list-endpoints":
            reply.json(200, {"clusters": {name: {"base_url": f"{PREFIX}/{name}", "frameworks": {framework: {
                "models": sorted(models), "endpoints": ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]}}}
                for name, (framework, models) in CLUSTERS.items()}})
            return
        if exchange.method == "GET" and (m := re.fullmatch(r"/([^/]+)/jobs", path)):
            if m.group(1) not in CLUSTERS:
                raise app_error(404, "cluster_not_found", f"Cluster '{m.group(1)}' not found.")
            reply.json(200, self.jobs[m.group(1)])
            return
        if exchange.method == "POST" and (m := re.fullmatch(r"/([^/]+)/([^/]+)/v1/chat/completions", path)):
            self._chat_on(reply, serial, m.group(1), m.group(2))
            return
        raise ALCFError(404, "<h1>Not Found</h1>")

    def _chat_on(self, reply: Reply, serial: int, cluster: str, framework: str) -> None:
        if cluster not in CLUSTERS:
            raise app_error(404, "cluster_not_found", f"Cluster '{cluster}' not found.")
        if CLUSTERS[cluster][0] != framework:
            raise app_error(400, "unsupported_framework", f"Framework '{framework}' not supported on {cluster}.")
        body = self.parse_json_body(reply.exchange)
        self.strict_validate(body)
        model = body["model"]
        if model not in CLUSTERS[cluster][1]:
            slug = re.sub(r"[^a-z0-9-]", "", f"{cluster}-{framework}-{model}".lower())
            raise app_error(404, "endpoint_not_found", f"The requested endpoint '{slug}' does not exist.")
        if model == COLD_MODEL:
            with self._lock_cold:
                self.cold_requests += 1
                first = self.cold_requests == 1
            if first:
                raise app_error(408, "request_timeout", "TimeoutError while attempting to access compute resources. "
                                                        "Please try again later.", task_id="task-1")
            raise app_error(503, "internal_endpoint_error", "Error: Endpoint sophia-vllm-sophia-cold-model online "
                                                            "but not ready to receive tasks. Please try again later.")
        if model == STREAM_ERROR_MODEL and body.get("stream"):
            reply.start_stream()
            for piece in ("partial ", "answer "):
                reply.sse({"id": "chatcmpl-err", "object": "chat.completion.chunk", "created": 1, "model": model,
                           "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
            reply.sse({"object": "error", "message": "An error occurred during processing", "type": "InternalError",
                       "param": None, "code": 500})
            reply.sse("[DONE]")
            reply.end_stream()
            reply.exchange.outcome = "broken"
            return
        self._chat(reply, serial)

    # strict validation (extra="forbid" everywhere) -------------------------------------
    def strict_validate(self, body: dict) -> None:
        problems: list[dict] = []

        def problem(kind: str, loc: list, msg: str) -> None:
            problems.append({"type": kind, "loc": ["body", "payload", *loc], "msg": msg})

        for key in body:
            if key not in ALLOWED:
                problem("extra_forbidden", [key], "Extra inputs are not permitted")
        if not isinstance(body.get("model"), str) or not body.get("model"):
            problem("string_too_short", ["model"], "String should have at least 1 character")
        effort = body.get("reasoning_effort")
        if effort is not None and effort not in ("low", "medium", "high"):
            problem("enum", ["reasoning_effort"], "Input should be 'low', 'medium' or 'high'")
        stop = body.get("stop")
        if isinstance(stop, list) and len(stop) > 4:
            problem("too_long", ["stop"], "List should have at most 4 items after validation")
        if isinstance(body.get("n"), int) and body["n"] > 128:
            problem("less_than_equal", ["n"], "Input should be less than or equal to 128")
        if body.get("top_logprobs") is not None and not body.get("logprobs"):
            problem("value_error", ["top_logprobs"], "Value error, top_logprobs requires logprobs")
        for key in body.get("stream_options") or {}:
            if key != "include_usage":
                problem("extra_forbidden", ["stream_options", key], "Extra inputs are not permitted")
        for key in body.get("extra_body") or {}:
            if key != "use_beam_search":
                problem("extra_forbidden", ["extra_body", key], "Extra inputs are not permitted")
        for i, message in enumerate(body.get("messages") or []):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in MESSAGE_FIELDS:
                problem("union_tag_invalid", ["messages", i], f"Input tag '{role}' found using 'role' does not match "
                                                             "any of the expected tags")
                continue
            for key in message:
                if key not in MESSAGE_FIELDS[role]:
                    problem("extra_forbidden", ["messages", i, key], "Extra inputs are not permitted")
            content = message.get("content")
            if role in ("system", "developer", "tool") and isinstance(content, list):
                if not all(isinstance(part, str) for part in content):
                    problem("string_type", ["messages", i, "content", "str"], "Input should be a valid string")
                    problem("string_type", ["messages", i, "content", "list[str]", 0],
                            "Input should be a valid string")
        for j, tool in enumerate(body.get("tools") or []):
            if not isinstance(tool, dict) or tool.get("type") != "function":
                problem("literal_error", ["tools", j, "type"], "Input should be 'function'")
                continue
            for key in tool:
                if key not in ("type", "function"):
                    problem("extra_forbidden", ["tools", j, key], "Extra inputs are not permitted")
            name = (tool.get("function") or {}).get("name", "")
            if "." in name:
                problem("value_error", ["tools", j, "function", "name"],
                        "Value error, Function name must not contain dots")
        if problems:
            raise ALCFError(422, {"detail": problems})
