"""A faithful fake Google GenAI (Gemini API) upstream for the rosettad conformance tests.

``FakeGoogle`` serves ``POST /v1beta/models/{model}:generateContent`` and
``POST /v1beta/models/{model}:streamGenerateContent?alt=sse`` (and ``GET /v1beta/models``)
on 127.0.0.1, built on the shared plumbing of fakes.py. Like the real service it:

* requires ``x-goog-api-key: <api_key>`` (or ``?key=``) when built with one: 400
  ``INVALID_ARGUMENT`` "API key not valid" for a wrong key, 403 ``PERMISSION_DENIED`` for none;
* accepts every field under its proto name (snake_case) as well as its JSON name (camelCase), as
  protobuf JSON parsing does (the google-genai SDK sends ``thinking_config`` members in snake_case);
* takes the model from the URL, never the body (a ``model`` member is an unknown field);
* rejects unknown top-level and ``generationConfig`` fields, roles other than user/model, parts
  that are not exactly one of text / inlineData / fileData / functionCall / functionResponse,
  ``functionResponse`` parts that answer no ``functionCall`` of the previous model turn (by name),
  function declarations with neither or both of ``parameters`` / ``parametersJsonSchema``;
* answers errors as ``{"error":{"code":…,"message":…,"status":…}}``;
* streams ``data: <GenerateContentResponse>`` events whose LAST text piece arrives in the same
  chunk as ``finishReason`` and ``usageMetadata`` (as Gemini does), so a gateway that drops the
  text of the finishing chunk fails;
* with ``thinkingConfig.includeThoughts`` returns thought parts and puts a ``thoughtSignature`` on
  the first function call (as Gemini 3 does); a later turn replaying a function call the fake signed
  must carry that signature back, or the request is refused as Gemini 3 refuses it.

Only models whose name starts with ``fake-gemini`` exist (404 ``NOT_FOUND`` otherwise).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from fakes import (
    ApiError, Exchange, FakeUpstream, Reply, RequestView, _check, _is_int, _is_number, _valid_base64,
    fault_of, plan_reply,
)

GOOGLE_FIELDS = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings",
                 "cachedContent", "labels"}
GENERATION_FIELDS = {"stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "candidateCount",
                     "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty", "frequencyPenalty",
                     "responseLogprobs", "logprobs", "thinkingConfig", "responseModalities", "mediaResolution",
                     "speechConfig", "enableEnhancedCivicAnswers"}
PART_KINDS = ("text", "inlineData", "fileData", "functionCall", "functionResponse")
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
GOOGLE_FINISH = {"stop": "STOP", "stop_sequence": "STOP", "length": "MAX_TOKENS", "tool": "STOP"}
ROUTE = re.compile(r"^/v1beta/models/([^/:]+):(generateContent|streamGenerateContent)$")


def call_signature(name: str, args: dict) -> str:
    """The thought signature the fake puts on a function call (opaque to the client)."""
    digest = hashlib.sha256(f"fake-gemini-signature:{name}:{json.dumps(args, sort_keys=True)}".encode()).digest()
    return base64.b64encode(digest).decode()


class FakeGoogle(FakeUpstream):
    chat_path = "generate"  # exchanges are matched by the helper below, as the path names the model
    model_prefix = "fake-gemini"
    bad_json_message = "Invalid JSON payload received."

    def chat_exchanges(self) -> list[Exchange]:
        return [e for e in self.exchanges() if ROUTE.match(e.path)]

    def settled_chat(self, timeout: float = 5.0) -> Exchange:
        self.wait_for(lambda e: bool(ROUTE.match(e.path)) and e.finished, timeout)
        return self.only_chat()

    def error_body(self, error: ApiError) -> Any:
        return {"error": {"code": error.status, "message": error.message,
                          "status": error.kind or STATUS_NAMES.get(error.status, "UNKNOWN")}}

    def route(self, reply: Reply, serial: int) -> None:
        exchange = reply.exchange
        self._authenticate(exchange)
        if (exchange.method, exchange.path) == ("GET", "/v1beta/models"):
            reply.json(200, {"models": [{"name": "models/fake-gemini", "displayName": "Fake Gemini",
                                         "supportedGenerationMethods": ["generateContent"]}]})
            return
        match = ROUTE.match(exchange.path)
        if exchange.method != "POST" or not match:
            raise ApiError(404, f"Requested entity was not found. ({exchange.method} {exchange.path})")
        model, method = match.group(1), match.group(2)
        if method == "streamGenerateContent":
            _check("alt=sse" in exchange.query.split("&"), "the fake only streams with alt=sse")
        self._generate(reply, serial, model, stream=method == "streamGenerateContent")

    def _authenticate(self, exchange: Exchange) -> None:
        if self.api_key is None:
            return
        key = exchange.headers.get("x-goog-api-key")
        if key is None:
            match = re.search(r"(?:^|&)key=([^&]*)", exchange.query)
            key = match.group(1) if match else None
        if key is None:
            raise ApiError(403, "Method doesn't allow unregistered callers (callers without established identity)."
                                " Please use API Key or other form of API consumer identity to call this API.")
        if key != self.api_key:
            raise ApiError(400, "API key not valid. Please pass a valid API key.")

    # validation -----------------------------------------------------------
    def validate(self, body: dict) -> None:
        for key in body:
            _check(key in GOOGLE_FIELDS, f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.')
        contents = body.get("contents")
        _check(isinstance(contents, list) and contents, "* GenerateContentRequest.contents: contents is not specified")
        signed_calls: dict[str, str] = {}
        previous_calls: list[str] = []
        for i, content in enumerate(contents):
            _check(isinstance(content, dict), f"contents[{i}] must be an object")
            role = content.get("role", "user")
            _check(role in ("user", "model"), f"Please use a valid role: user, model. (contents[{i}].role={role!r})")
            parts = content.get("parts")
            _check(isinstance(parts, list) and parts, f"* GenerateContentRequest.contents[{i}].parts: contents.parts "
                                                      "must not be empty.")
            calls_here: list[str] = []
            responses: list[str] = []
            for j, part in enumerate(parts):
                where = f"contents[{i}].parts[{j}]"
                kinds = [k for k in PART_KINDS if k in part]
                _check(len(kinds) == 1, f"{where}: a part must have exactly one of {', '.join(PART_KINDS)}")
                for key in part:
                    _check(key in (*PART_KINDS, "thought", "thoughtSignature"), f'{where}: Unknown name "{key}"')
                kind = kinds[0]
                if kind == "text":
                    _check(isinstance(part["text"], str), f"{where}.text must be a string")
                elif kind == "inlineData":
                    data = part["inlineData"]
                    _check(isinstance(data, dict) and isinstance(data.get("mimeType"), str)
                           and _valid_base64(data.get("data")), f"{where}.inlineData needs mimeType and base64 data")
                elif kind == "fileData":
                    data = part["fileData"]
                    _check(isinstance(data, dict) and isinstance(data.get("fileUri"), str),
                           f"{where}.fileData needs a fileUri")
                elif kind == "functionCall":
                    _check(role == "model", f"{where}: functionCall is only allowed in model turns")
                    call = part["functionCall"]
                    _check(isinstance(call, dict) and isinstance(call.get("name"), str)
                           and isinstance(call.get("args", {}), dict), f"{where}.functionCall needs a name and object args")
                    expected = signed_calls.get(json.dumps([call["name"], call.get("args", {})], sort_keys=True))
                    if expected is not None:
                        _check(_signature_bytes(part.get("thoughtSignature")) == _signature_bytes(expected),
                               f"Function call is missing a thought_signature in functionCall parts. This is required "
                               f"for tools to work correctly ({where})")
                    calls_here.append(call["name"])
                else:
                    _check(role == "user", f"{where}: functionResponse is only allowed in user turns")
                    response = part["functionResponse"]
                    _check(isinstance(response, dict) and isinstance(response.get("name"), str)
                           and isinstance(response.get("response", {}), dict),
                           f"{where}.functionResponse needs a name and an object response")
                    responses.append(response["name"])
            if responses:
                _check(sorted(responses) == sorted(previous_calls),
                       "Please ensure that the number of function response parts is equal to the number of function "
                       f"call parts of the function call turn (contents[{i}])")
            previous_calls = calls_here
            if role == "model":
                for part in parts:
                    if "functionCall" in part and part.get("thoughtSignature"):
                        call = part["functionCall"]
                        signed_calls[json.dumps([call["name"], call.get("args", {})], sort_keys=True)] = \
                            part["thoughtSignature"]
        for t, tool in enumerate(body.get("tools") or []):
            for d, declaration in enumerate(tool.get("functionDeclarations") or []):
                where = f"tools[{t}].functionDeclarations[{d}]"
                _check(isinstance(declaration.get("name"), str), f"{where}.name is required")
                _check(not ("parameters" in declaration and "parametersJsonSchema" in declaration),
                       f"{where}: parameters and parametersJsonSchema are mutually exclusive")
        config = body.get("generationConfig") or {}
        for key in config:
            _check(key in GENERATION_FIELDS, f'Invalid JSON payload received. Unknown name "{key}" at '
                                             "'generation_config': Cannot find field.")
        for name in ("maxOutputTokens", "topK", "candidateCount"):
            _check(config.get(name) is None or (_is_int(config[name]) and config[name] >= 1),
                   f"generationConfig.{name} must be a positive integer")
        _check(config.get("temperature") is None or (_is_number(config["temperature"])
                                                     and 0 <= config["temperature"] <= 2),
               "generationConfig.temperature must be between 0 and 2")
        stops = config.get("stopSequences")
        _check(stops is None or (isinstance(stops, list) and len(stops) <= 5), "at most 5 stop sequences")

    def view(self, exchange: Exchange) -> RequestView:
        body = exchange.body
        model = ROUTE.match(exchange.path).group(1)
        system = " ".join(p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts", [])) or None
        turns: list[tuple[str, str]] = []
        images: list[tuple[str, str | None, str]] = []
        calls: list[tuple[str, str, dict]] = []
        results: list[tuple[str, str]] = []
        last_user = ""
        for index, content in enumerate(body["contents"]):
            role = content.get("role", "user")
            texts = [p["text"] for p in content["parts"] if "text" in p and not p.get("thought")]
            for part in content["parts"]:
                if "inlineData" in part:
                    images.append(("base64", part["inlineData"]["mimeType"], part["inlineData"]["data"]))
                if "fileData" in part:
                    images.append(("url", None, part["fileData"]["fileUri"]))
                if "functionCall" in part:
                    calls.append((part["functionCall"].get("id") or part["functionCall"]["name"],
                                  part["functionCall"]["name"], part["functionCall"].get("args", {})))
                if "functionResponse" in part and index == len(body["contents"]) - 1:
                    response = part["functionResponse"].get("response", {})
                    text = response.get("output", response.get("error", response))
                    results.append((part["functionResponse"]["name"], text if isinstance(text, str) else json.dumps(text)))
            text = " ".join(texts)
            turns.append(("user" if role == "user" else "assistant", text))
            if role == "user" and texts:
                last_user = text
        tools = [(d["name"], d.get("description"), d.get("parametersJsonSchema") or _lower_schema(d.get("parameters") or {}))
                 for tool in body.get("tools") or [] for d in tool.get("functionDeclarations") or []]
        calling = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {})
        mode = calling.get("mode", "AUTO")
        allowed = calling.get("allowedFunctionNames") or []
        choice: Any = {"AUTO": "auto", "NONE": "none", "ANY": "required"}.get(mode, "auto")
        if mode == "ANY" and len(allowed) == 1:
            choice = ("tool", allowed[0])
        config = body.get("generationConfig") or {}
        thinking = config.get("thinkingConfig") or {}
        return RequestView(
            model=model, system=system, turns=turns, last_user_text=last_user, images=images, tools=tools,
            tool_choice=choice, parallel_tool_calls=True, tool_calls=calls, tool_results=results,
            reasoning=bool(thinking.get("includeThoughts")) and thinking.get("thinkingBudget") != 0,
            max_tokens=config.get("maxOutputTokens"), stop=config.get("stopSequences") or [],
            temperature=config.get("temperature"), top_p=config.get("topP"),
            stream=exchange.path.endswith(":streamGenerateContent"), include_usage=True)

    # answering ------------------------------------------------------------
    def _generate(self, reply: Reply, serial: int, model: str, *, stream: bool) -> None:
        body = _camel_keys(self.parse_json_body(reply.exchange))
        reply.exchange.body = body
        self.validate(body)
        if not model.startswith(self.model_prefix):
            raise ApiError(404, f"models/{model} is not found for API version v1beta, or is not supported for "
                                "generateContent.")
        fault, status = fault_of(model)
        if fault == "status":
            raise ApiError(status, f"fake upstream answered {status} as scripted")
        view = self.view(reply.exchange)
        plan = plan_reply(view, fault, tool_preamble=False)
        thoughts = len(plan.reasoning)
        usage = {"promptTokenCount": plan.input_tokens, "candidatesTokenCount": plan.output_tokens - thoughts,
                 "totalTokenCount": plan.input_tokens + plan.output_tokens}
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        reply.exchange.usage = {"input": plan.input_tokens, "output": plan.output_tokens}
        call_parts = []
        for index, (name, args) in enumerate(plan.tool_calls):
            part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
            if index == 0 and view.reasoning:
                part["thoughtSignature"] = call_signature(name, args)
            call_parts.append(part)
        finish = GOOGLE_FINISH[plan.finish]
        ident = f"fakeresp{serial:06d}"

        def response(parts: list, *, last: bool) -> dict:
            candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
            if last:
                candidate["finishReason"] = finish
            data: dict[str, Any] = {"candidates": [candidate]}
            data["usageMetadata"] = usage if last else {"promptTokenCount": plan.input_tokens,
                                                         "totalTokenCount": plan.input_tokens}
            data.update({"modelVersion": model, "responseId": ident})
            return data

        if not stream:
            parts: list[dict] = []
            if plan.reasoning:
                parts.append({"text": "".join(plan.reasoning), "thought": True})
            if plan.text:
                parts.append({"text": "".join(plan.text)})
            parts += call_parts
            reply.json(200, response(parts or [{"text": ""}], last=True), cut=fault in ("break", "truncate"))
            return
        reply.start_stream()
        for piece in plan.reasoning:
            reply.sse(response([{"text": piece, "thought": True}], last=False))
        texts = list(plan.text)
        final_text = texts.pop() if texts and not call_parts else None
        for n, piece in enumerate(texts):
            if fault in ("break", "truncate", "stream-error") and n == 2:
                reply.exchange.outcome = "broken"
                if fault == "break":
                    reply.break_off()
                    return
                if fault == "stream-error":
                    reply.sse({"error": {"code": 500, "message": "An internal error has occurred.",
                                         "status": "INTERNAL"}})
                reply.end_stream()
                return
            reply.sse(response([{"text": piece}], last=False))
        # The finishing chunk carries the last text (or the function calls) together with finishReason and usage.
        last_parts = call_parts if call_parts else [{"text": final_text or ""}]
        reply.sse(response(last_parts, last=True))
        reply.end_stream()


def _signature_bytes(signature: Any) -> bytes | None:
    """A signature's bytes: protobuf JSON accepts standard and URL-safe base64 for bytes fields."""
    if not isinstance(signature, str):
        return None
    try:
        return base64.urlsafe_b64decode(signature.replace("+", "-").replace("/", "_") + "=" * (-len(signature) % 4))
    except ValueError:
        return None


USER_DATA_KEYS = {"args", "response", "parametersJsonSchema", "responseJsonSchema", "labels", "example", "default",
                  "enum"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _camel_keys(value: Any) -> Any:
    """Proto field names to JSON names, leaving user data (function args, schemas' property names) alone."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            name = _camel(key)
            if name in USER_DATA_KEYS:
                out[name] = item
            elif name == "properties" and isinstance(item, dict):
                out[name] = {k: _camel_keys(v) for k, v in item.items()}
            else:
                out[name] = _camel_keys(item)
        return out
    if isinstance(value, list):
        return [_camel_keys(item) for item in value]
    return value


def _lower_schema(schema: Any) -> Any:
    """A Google OpenAPI schema with lower-case type names, for the neutral view."""
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _lower_schema(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_lower_schema(v) for v in schema]
    return schema
