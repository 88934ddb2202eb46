"""A faithful fake OpenAI Responses upstream (``POST /v1/responses``) for the conformance tests.

``FakeResponses`` builds on the shared plumbing of fakes.py (recording, polling, scripted
replies through ``plan_reply``) and speaks the Responses API as OpenAI does:

* Validation: unknown top-level fields, wrong types, input item shapes (messages with
  ``input_text``/``input_image``/``output_text`` parts, ``function_call``,
  ``function_call_output``, ``custom_tool_call``, ``custom_tool_call_output``, ``reasoning``),
  a tool output whose ``call_id`` answers no earlier call, tool shapes (``function``, ``custom``),
  ``tool_choice`` naming an unknown tool, reasoning effort values -> 400 in OpenAI's envelope.
  ``Authorization: Bearer <api_key>`` is required when built with ``api_key``; only models starting
  with ``fake-resp`` exist (404 otherwise).
* Reasoning (``reasoning.effort`` other than ``none``) answers with a reasoning item whose summary is
  ``"thinking about: <last user text>"``; with ``include: ["reasoning.encrypted_content"]`` it carries
  ``encrypted_content`` = ``"enc:" + base64(summary)``. A reasoning item sent back must carry an
  ``encrypted_content`` this fake issued (a 400 otherwise, as OpenAI cannot verify it with store=false).
* Tools: chosen like the other fakes (``weather`` / ``all tools`` / forced tool_choice). A call to a
  ``custom`` tool becomes a ``custom_tool_call`` with input ``CUSTOM_INPUT``; function calls get
  arguments from their schema. Tool outputs answer with ``"tool result: <outputs joined by '; '>"``.
* Streams: the Responses event sequence with ``sequence_number``s (created, in_progress, output items,
  content parts, text / argument / custom input / reasoning summary deltas, completed or incomplete).
* Faults as in fakes.py by model suffix; ``-stream-error`` sends an ``error`` event mid-stream.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from fakes import (BREAK_AFTER, CREATED, SLOW_CHUNKS, SLOW_INTERVAL, ApiError, Exchange, FakeUpstream, Reply,
                   RequestView, _check, _image_from_url, _is_int, _is_number, fault_of, json_fragments, pieces,
                   plan_reply)

CUSTOM_INPUT = "*** Begin Patch\n*** Add File: hello.txt\n+hello \"world\"\n*** End Patch\n"
RESPONSES_FIELDS = {
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
    "temperature", "top_p", "reasoning", "stream", "store", "previous_response_id", "include", "text", "metadata",
    "user", "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "service_tier", "truncation",
    "background", "conversation", "max_tool_calls", "prompt", "top_logprobs", "stream_options",
}
ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
               429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}


def encrypted_for(summary: str) -> str:
    return "enc:" + base64.b64encode(summary.encode()).decode()


def _text_parts(content: Any, where: str, allowed: tuple[str, ...]) -> tuple[str, list]:
    """The text of a message's content and its images; raises on parts of other types."""
    if isinstance(content, str):
        return content, []
    _check(isinstance(content, list), f"Invalid type for '{where}': expected a string or an array.", param=where,
           code="invalid_type")
    texts, images = [], []
    for k, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        _check(kind in allowed, f"Invalid value: '{kind}'. Supported values are: "
               + ", ".join(f"'{a}'" for a in allowed) + ".", param=f"{where}[{k}].type", code="invalid_value")
        if kind == "input_image":
            url = part.get("image_url")
            _check(isinstance(url, str), f"Missing required parameter: '{where}[{k}].image_url'.",
                   param=f"{where}[{k}].image_url", code="missing_required_parameter")
            images.append(_image_from_url(url))
        elif kind == "refusal":
            texts.append(part.get("refusal") or "")
        else:
            _check(isinstance(part.get("text"), str), f"Missing required parameter: '{where}[{k}].text'.",
                   param=f"{where}[{k}].text", code="missing_required_parameter")
            texts.append(part["text"])
    return "".join(texts), images


class FakeResponses(FakeUpstream):
    chat_path = "/v1/responses"
    model_prefix = "fake-resp"

    def error_body(self, error: ApiError) -> Any:
        kind = error.kind or ERROR_TYPES.get(error.status, "invalid_request_error")
        return {"error": {"message": error.message, "type": kind, "param": error.param, "code": error.code}}

    def route(self, reply: Reply, serial: int) -> None:
        exchange = reply.exchange
        if self.api_key is not None and exchange.headers.get("authorization") != f"Bearer {self.api_key}":
            raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
        if (exchange.method, exchange.path) == ("POST", self.chat_path):
            self._respond(reply, serial)
        else:
            raise ApiError(404, f"Invalid URL ({exchange.method} {exchange.path})")

    # validation -----------------------------------------------------------
    def validate(self, body: dict) -> None:
        for key in body:
            _check(key in RESPONSES_FIELDS, f"Unknown parameter: '{key}'.", param=key, code="unknown_parameter")
        _check(isinstance(body.get("model"), str), "Missing required parameter: 'model'.", param="model",
               code="missing_required_parameter")
        _check(body.get("previous_response_id") is None or body.get("store") is not False,
               "Previous response cannot be used with store=false.", param="previous_response_id")
        for name, high in (("temperature", 2), ("top_p", 1)):
            value = body.get(name)
            _check(value is None or (_is_number(value) and 0 <= value <= high), f"Invalid '{name}'.", param=name)
        value = body.get("max_output_tokens")
        _check(value is None or (_is_int(value) and value >= 16),
               f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got {value}"
               " instead.", param="max_output_tokens", code="integer_below_min_value")
        reasoning = body.get("reasoning")
        if reasoning is not None:
            _check(isinstance(reasoning, dict), "Invalid type for 'reasoning'.", param="reasoning")
            _check(reasoning.get("effort") in (None, "none", "minimal", "low", "medium", "high", "xhigh"),
                   f"Invalid value: '{reasoning.get('effort')}'.", param="reasoning.effort", code="invalid_value")
            _check(reasoning.get("summary") in (None, "auto", "concise", "detailed"),
                   f"Invalid value: '{reasoning.get('summary')}'.", param="reasoning.summary", code="invalid_value")
        for k, item in enumerate(body.get("include") or []):
            _check(item in ("reasoning.encrypted_content", "message.output_text.logprobs"),
                   f"Invalid value: '{item}'.", param=f"include[{k}]", code="invalid_value")
        tools = self._validate_tools(body)
        self._validate_input(body)
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            _check(choice.get("type") in ("function", "custom") and choice.get("name") in tools,
                   f"Tool choice '{choice.get('name')}' not found in 'tools' parameter.", param="tool_choice")
        else:
            _check(choice in (None, "auto", "none", "required"), f"Invalid value: '{choice}'.", param="tool_choice")

    def _validate_tools(self, body: dict) -> dict[str, str]:
        kinds: dict[str, str] = {}
        for j, tool in enumerate(body.get("tools") or []):
            _check(isinstance(tool, dict), f"Invalid type for 'tools[{j}]'.", param=f"tools[{j}]")
            kind = tool.get("type")
            _check(kind in ("function", "custom"), f"Invalid value: '{kind}'.", param=f"tools[{j}].type",
                   code="invalid_value")
            _check(isinstance(tool.get("name"), str), f"Missing required parameter: 'tools[{j}].name'.",
                   param=f"tools[{j}].name", code="missing_required_parameter")
            if kind == "function":
                _check(isinstance(tool.get("parameters", {}), dict) and "function" not in tool,
                       f"Invalid 'tools[{j}]': a Responses function tool has name and parameters at the top level.",
                       param=f"tools[{j}]")
            kinds[tool["name"]] = kind
        return kinds

    def _validate_input(self, body: dict) -> None:
        items = body.get("input")
        if isinstance(items, str):
            return
        _check(isinstance(items, list) and items, "Invalid 'input': expected a string or a non-empty array.",
               param="input")
        calls: set[str] = set()
        for i, item in enumerate(items):
            where = f"input[{i}]"
            _check(isinstance(item, dict), f"Invalid type for '{where}'.", param=where)
            kind = item.get("type", "message")
            if kind == "message":
                role = item.get("role")
                _check(role in ("user", "assistant", "system", "developer"), f"Invalid value: '{role}'.",
                       param=f"{where}.role", code="invalid_value")
                allowed = ("output_text", "refusal") if role == "assistant" else (
                    ("input_text", "input_image", "input_file") if role == "user" else ("input_text",))
                _text_parts(item.get("content"), f"{where}.content", allowed)
            elif kind in ("function_call", "custom_tool_call"):
                field = "arguments" if kind == "function_call" else "input"
                for name in ("call_id", "name", field):
                    _check(isinstance(item.get(name), str), f"Missing required parameter: '{where}.{name}'.",
                           param=f"{where}.{name}", code="missing_required_parameter")
                if kind == "function_call":
                    try:
                        json.loads(item["arguments"])
                    except ValueError:
                        raise ApiError(400, f"Invalid '{where}.arguments': not valid JSON.", param=f"{where}.arguments")
                calls.add(item["call_id"])
            elif kind in ("function_call_output", "custom_tool_call_output"):
                call_id = item.get("call_id")
                _check(call_id in calls, f"No tool call found for function call output with call_id {call_id}.",
                       param="input")
                output = item.get("output")
                if not isinstance(output, str):
                    _text_parts(output, f"{where}.output", ("input_text", "input_image"))
            elif kind == "reasoning":
                summary = item.get("summary")
                _check(isinstance(summary, list), f"Missing required parameter: '{where}.summary'.",
                       param=f"{where}.summary", code="missing_required_parameter")
                text = "".join(part.get("text", "") for part in summary)
                _check(item.get("encrypted_content") == encrypted_for(text),
                       f"Item '{where}' of type 'reasoning' could not be verified: its encrypted_content was not "
                       "issued for this summary (with store=false reasoning must be sent back unchanged).",
                       param=f"{where}.encrypted_content", code="invalid_encrypted_content")
            else:
                raise ApiError(400, f"Invalid value: '{kind}'.", param=f"{where}.type", code="invalid_value")

    # neutral view ----------------------------------------------------------
    def view(self, exchange: Exchange) -> RequestView:
        body = exchange.body
        system = [body["instructions"]] if body.get("instructions") else []
        turns, images, history_calls, results = [], [], [], []
        items = body["input"] if isinstance(body["input"], list) else [
            {"type": "message", "role": "user", "content": body["input"]}]
        for item in items:
            kind = item.get("type", "message")
            if kind == "message":
                allowed = ("input_text", "input_image", "input_file", "output_text", "refusal")
                text, found = _text_parts(item["content"], "content", allowed)
                if item["role"] in ("system", "developer"):
                    system.append(text)
                    continue
                images += found
                if text:
                    turns.append((item["role"], text))
                results = []
            elif kind in ("function_call", "custom_tool_call"):
                args = json.loads(item["arguments"]) if kind == "function_call" else {"input": item["input"]}
                history_calls.append((item["call_id"], item["name"], args))
                results = []
            elif kind in ("function_call_output", "custom_tool_call_output"):
                output = item["output"]
                text = output if isinstance(output, str) else _text_parts(output, "output", (
                    "input_text", "input_image"))[0]
                turns.append(("tool", text))
                results.append((item["call_id"], text))
        last = items[-1]
        last_user = ""
        if last.get("type", "message") == "message" and last.get("role") == "user":
            last_user = _text_parts(last["content"], "content", ("input_text", "input_image", "input_file"))[0]
        choice = body.get("tool_choice")
        effort = (body.get("reasoning") or {}).get("effort")
        return RequestView(
            model=body["model"], system="\n".join(system) if system else None, turns=turns,
            last_user_text=last_user, images=images,
            tools=[(t["name"], t.get("description"), t.get("parameters", {})) for t in body.get("tools") or []],
            tool_choice=("tool", choice["name"]) if isinstance(choice, dict) else choice,
            parallel_tool_calls=body.get("parallel_tool_calls") is not False,
            tool_calls=history_calls, tool_results=results,
            reasoning=effort is not None and effort != "none",
            max_tokens=body.get("max_output_tokens"), stop=[],
            temperature=body.get("temperature"), top_p=body.get("top_p"),
            stream=bool(body.get("stream")), include_usage=True,
        )

    # answering -------------------------------------------------------------
    def _respond(self, reply: Reply, serial: int) -> None:
        body = self.parse_json_body(reply.exchange)
        self.validate(body)
        model = body["model"]
        if not model.startswith(self.model_prefix):
            raise ApiError(404, f"The model `{model}` does not exist or you do not have access to it.",
                           code="model_not_found")
        fault, status = fault_of(model)
        if fault == "status":
            raise ApiError(status, f"fake upstream answered {status} as scripted",
                           code="rate_limit_exceeded" if status == 429 else None)
        view = self.view(reply.exchange)
        plan = plan_reply(view, fault, tool_preamble=False)
        kinds = {t["name"]: t["type"] for t in body.get("tools") or []}
        encrypted = "reasoning.encrypted_content" in (body.get("include") or [])
        reply.exchange.usage = {"input": plan.input_tokens, "output": plan.output_tokens}
        ident = f"resp_fake{serial:06d}"
        usage = {"input_tokens": plan.input_tokens, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": plan.output_tokens,
                 "output_tokens_details": {"reasoning_tokens": len(plan.reasoning)},
                 "total_tokens": plan.input_tokens + plan.output_tokens}

        output: list[dict] = []
        if plan.reasoning:
            summary = "".join(plan.reasoning)
            item = {"id": f"rs_{serial}", "type": "reasoning", "summary": [{"type": "summary_text", "text": summary}]}
            if encrypted:
                item["encrypted_content"] = encrypted_for(summary)
            output.append(item)
        if plan.text:
            output.append({"id": f"msg_{serial}", "type": "message", "status": "completed", "role": "assistant",
                           "content": [{"type": "output_text", "text": "".join(plan.text), "annotations": [],
                                        "logprobs": []}]})
        for i, (name, args) in enumerate(plan.tool_calls):
            call_id = f"call_{hashlib.sha1(f'{serial}/{i}'.encode()).hexdigest()[:24]}"
            if kinds.get(name) == "custom":
                output.append({"id": f"ctc_{serial}_{i}", "type": "custom_tool_call", "status": "completed",
                               "call_id": call_id, "name": name, "input": CUSTOM_INPUT})
            else:
                output.append({"id": f"fc_{serial}_{i}", "type": "function_call", "status": "completed",
                               "call_id": call_id, "name": name, "arguments": json.dumps(args)})
        incomplete = plan.finish == "length"
        response = {"id": ident, "object": "response", "created_at": CREATED,
                    "status": "incomplete" if incomplete else "completed", "error": None,
                    "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
                    "instructions": body.get("instructions"), "model": model, "output": output,
                    "parallel_tool_calls": view.parallel_tool_calls, "store": body.get("store", True),
                    "tools": body.get("tools") or [], "tool_choice": body.get("tool_choice", "auto"),
                    "usage": usage, "metadata": {}}
        headers = {"x-request-id": f"req_{serial}"}
        if view.stream:
            self._stream(reply, response, plan, fault, headers)
            return
        if fault == "slow":
            reply.wait(SLOW_CHUNKS * SLOW_INTERVAL)
        if fault == "stream-error":
            raise ApiError(500, "The server had an error while processing your request.")
        reply.json(200, response, headers, cut=fault in ("break", "truncate"))

    def _stream(self, reply: Reply, response: dict, plan: Any, fault: str | None, headers: dict) -> None:
        number = iter(range(1_000_000))

        def send(event: dict) -> None:
            event["sequence_number"] = next(number)
            reply.sse(event, event["type"])

        reply.start_stream(headers)
        shell = {**response, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
        send({"type": "response.created", "response": shell})
        send({"type": "response.in_progress", "response": shell})
        for index, item in enumerate(response["output"]):
            kind = item["type"]
            added = {**item, "status": "in_progress"} if "status" in item else dict(item)
            if kind == "message":
                added["content"] = []
            elif kind == "reasoning":
                added["summary"] = []
                added.pop("encrypted_content", None)
            elif kind == "function_call":
                added["arguments"] = ""
            elif kind == "custom_tool_call":
                added["input"] = ""
            send({"type": "response.output_item.added", "output_index": index, "item": added})
            ident = item["id"]
            if kind == "reasoning":
                text = item["summary"][0]["text"]
                send({"type": "response.reasoning_summary_part.added", "item_id": ident, "output_index": index,
                      "summary_index": 0, "part": {"type": "summary_text", "text": ""}})
                for piece in plan.reasoning:
                    send({"type": "response.reasoning_summary_text.delta", "item_id": ident, "output_index": index,
                          "summary_index": 0, "delta": piece})
                send({"type": "response.reasoning_summary_text.done", "item_id": ident, "output_index": index,
                      "summary_index": 0, "text": text})
                send({"type": "response.reasoning_summary_part.done", "item_id": ident, "output_index": index,
                      "summary_index": 0, "part": {"type": "summary_text", "text": text}})
            elif kind == "message":
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                send({"type": "response.content_part.added", "item_id": ident, "output_index": index,
                      "content_index": 0, "part": part})
                for n, piece in enumerate(plan.text):
                    if fault in ("break", "truncate", "stream-error") and n == BREAK_AFTER:
                        return self._fail_stream(reply, fault, send)
                    if fault == "slow":
                        reply.wait(SLOW_INTERVAL)
                    send({"type": "response.output_text.delta", "item_id": ident, "output_index": index,
                          "content_index": 0, "delta": piece, "logprobs": []})
                text = item["content"][0]["text"]
                send({"type": "response.output_text.done", "item_id": ident, "output_index": index,
                      "content_index": 0, "text": text, "logprobs": []})
                send({"type": "response.content_part.done", "item_id": ident, "output_index": index,
                      "content_index": 0, "part": {**part, "text": text}})
            elif kind == "function_call":
                for fragment in json_fragments(json.loads(item["arguments"])):
                    send({"type": "response.function_call_arguments.delta", "item_id": ident,
                          "output_index": index, "delta": fragment})
                send({"type": "response.function_call_arguments.done", "item_id": ident, "output_index": index,
                      "arguments": item["arguments"]})
            elif kind == "custom_tool_call":
                for piece in pieces(item["input"]):
                    send({"type": "response.custom_tool_call_input.delta", "item_id": ident, "output_index": index,
                          "delta": piece})
                send({"type": "response.custom_tool_call_input.done", "item_id": ident, "output_index": index,
                      "input": item["input"]})
            send({"type": "response.output_item.done", "output_index": index, "item": item})
        final = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        send({"type": final, "response": response})
        reply.end_stream()

    def _fail_stream(self, reply: Reply, fault: str, send: Any) -> None:
        reply.exchange.outcome = "broken"
        if fault == "break":
            reply.break_off()
            return
        if fault == "stream-error":
            send({"type": "error", "code": "server_error",
                  "message": "The server had an error while processing your request.", "param": None})
        reply.end_stream()
