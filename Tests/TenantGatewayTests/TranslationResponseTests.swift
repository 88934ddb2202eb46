import Testing

import TenantGateway

/// Translates a whole upstream body and parses the client body.
func translatedResponse(_ upstreamBody: String, upstream: Dialect, client: Dialect, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSON {
    let bytes = try Translation.translateResponse(Array(upstreamBody.utf8), upstream: upstream, client: client, clientModel: "client-model")
    return try jsonFixture(bytes, sourceLocation: sourceLocation)
}

@Suite("Whole response translation")
struct TranslationResponseTests {
    @Test("an OpenAI text completion becomes an Anthropic message with usage split into cached and uncached input")
    func openAITextToAnthropic() throws {
        let upstream = #"""
            {
              "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
              "object": "chat.completion",
              "created": 1741570283,
              "model": "gpt-4o-2024-08-06",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "The image shows a wooden boardwalk.", "refusal": null, "annotations": []},
                           "logprobs": null, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
                        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
                        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
              "service_tier": "default",
              "system_fingerprint": "fp_fc9f1d7035"
            }
            """#
        try expectSameJSON(try translatedResponse(upstream, upstream: .openAIChat, client: .anthropicMessages), #"""
            {"id": "msg_B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "type": "message", "role": "assistant", "model": "client-model",
             "content": [{"type": "text", "text": "The image shows a wooden boardwalk."}],
             "stop_reason": "end_turn", "stop_sequence": null,
             "usage": {"input_tokens": 93, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1024, "output_tokens": 46}}
            """#)
    }

    @Test("OpenAI reasoning and parallel tool calls become a thinking block and tool_use blocks")
    func openAIToolCallsToAnthropic() throws {
        let upstream = #"""
            {"id": "chatcmpl-9f1c", "object": "chat.completion", "created": 1741570300, "model": "openai/gpt-oss-120b",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "reasoning_content": "User wants weather; call tool.",
               "tool_calls": [
                 {"id": "chatcmpl-tool-abc", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"days\": 3}"}},
                 {"id": "chatcmpl-tool-def", "type": "function", "function": {"name": "get_time", "arguments": ""}}
               ]}, "logprobs": null, "finish_reason": "tool_calls"}],
             "usage": {"prompt_tokens": 200, "completion_tokens": 50, "total_tokens": 250, "completion_tokens_details": {"reasoning_tokens": 20}}}
            """#
        try expectSameJSON(try translatedResponse(upstream, upstream: .openAIChat, client: .anthropicMessages), #"""
            {"id": "msg_9f1c", "type": "message", "role": "assistant", "model": "client-model",
             "content": [
               {"type": "thinking", "thinking": "User wants weather; call tool.", "signature": ""},
               {"type": "tool_use", "id": "chatcmpl-tool-abc", "name": "get_weather", "input": {"city": "Paris", "days": 3}},
               {"type": "tool_use", "id": "chatcmpl-tool-def", "name": "get_time", "input": {}}
             ],
             "stop_reason": "tool_use", "stop_sequence": null,
             "usage": {"input_tokens": 200, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 50}}
            """#)
    }

    @Test("OpenAI finish reasons map to Anthropic stop reasons", arguments: [
        ("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"), ("content_filter", "refusal"),
        ("function_call", "tool_use"), ("something_new", "end_turn"),
    ])
    func openAIFinishReasons(finish: String, stop: String) throws {
        let upstream = #"{"id":"chatcmpl-1","choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"\#(finish)"}]}"#
        let message = try translatedResponse(upstream, upstream: .openAIChat, client: .anthropicMessages)
        #expect(message["stop_reason"] == .string(stop))
    }

    @Test("a server that says stop while calling tools is reported as tool use")
    func stopWithToolCalls() throws {
        let upstream = #"""
            {"id":"chatcmpl-2","choices":[{"index":0,"message":{"role":"assistant","content":"","tool_calls":[
              {"id":"call_1","type":"function","function":{"name":"ls","arguments":"{}"}}]},"finish_reason":"stop"}]}
            """#
        #expect(try translatedResponse(upstream, upstream: .openAIChat, client: .anthropicMessages)["stop_reason"] == "tool_use")
    }

    @Test("an Anthropic message with thinking, text and a tool call becomes a chat.completion")
    func anthropicToOpenAI() throws {
        let upstream = #"""
            {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
             "content": [
               {"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCkYIARgC"},
               {"type": "redacted_thinking", "data": "EmwKAhgBEgy3"},
               {"type": "text", "text": "I'll check "},
               {"type": "text", "text": "the weather."},
               {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {"location": "San Francisco, CA", "unit": "celsius"}}
             ],
             "stop_reason": "tool_use", "stop_sequence": null,
             "usage": {"input_tokens": 472, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 2000, "output_tokens": 89, "service_tier": "standard"}}
            """#
        var response = try translatedResponse(upstream, upstream: .anthropicMessages, client: .openAIChat)
        let created = try #require(response["created"]?.intValue)
        #expect(abs(created - currentUnixTime()) < 60)
        response["created"] = 0
        try expectSameJSON(response, #"""
            {"id": "chatcmpl-01XFDUDYJgAACzvnptvVoYEL", "object": "chat.completion", "created": 0, "model": "client-model",
             "choices": [{"index": 0, "message": {
                "role": "assistant", "content": "I'll check the weather.", "reasoning_content": "Let me think.",
                "thinking_blocks": [{"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCkYIARgC"},
                                    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3"}],
                "tool_calls": [{"id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
                                "function": {"name": "get_weather", "arguments": "{\"location\":\"San Francisco, CA\",\"unit\":\"celsius\"}"}}],
                "refusal": null},
               "logprobs": null, "finish_reason": "tool_calls"}],
             "usage": {"prompt_tokens": 2572, "completion_tokens": 89, "total_tokens": 2661, "prompt_tokens_details": {"cached_tokens": 2000}}}
            """#)
    }

    @Test("Anthropic stop reasons map to OpenAI finish reasons", arguments: [
        ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"), ("refusal", "content_filter"),
        ("pause_turn", "stop"), ("model_context_window_exceeded", "length"),
    ])
    func anthropicStopReasons(stop: String, finish: String) throws {
        let upstream = #"{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[{"type":"text","text":"x"}],"stop_reason":"\#(stop)","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}"#
        let response = try translatedResponse(upstream, upstream: .anthropicMessages, client: .openAIChat)
        #expect(response["choices"]?[0]?["finish_reason"] == .string(finish))
        #expect(response["choices"]?[0]?["message"]?["thinking_blocks"] == nil)
    }

    @Test("a tool call with no text gives null content; reasoning without signatures gives no thinking_blocks")
    func nullContent() throws {
        let upstream = #"""
            {"id":"msg_2","type":"message","role":"assistant","model":"c","content":[
              {"type":"thinking","thinking":"hmm","signature":""},
              {"type":"tool_use","id":"toolu_9","name":"noop","input":{}}],
             "stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4}}
            """#
        let message = try #require(try translatedResponse(upstream, upstream: .anthropicMessages, client: .openAIChat)["choices"]?[0]?["message"])
        #expect(message["content"] == .null)
        #expect(message["thinking_blocks"] == nil)
        #expect(message["reasoning_content"] == "hmm")
        #expect(message["tool_calls"]?[0]?["function"]?["arguments"] == "{}")
    }

    @Test("same-dialect responses pass through with only the model renamed")
    func passThrough() throws {
        let openAI = #"{"id":"chatcmpl-1","object":"chat.completion","created":1741570283,"model":"openai/gpt-oss-120b","choices":[{"index":0,"message":{"role":"assistant","content":"hi","reasoning_content":"r"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1.0,"total_tokens":6},"kv_transfer_params":null}"#
        let openAIOut = try Translation.translateResponse(Array(openAI.utf8), upstream: .openAIChat, client: .openAIChat, clientModel: "gpt-oss")
        #expect(String(decoding: openAIOut, as: UTF8.self)
            == #"{"id":"chatcmpl-1","object":"chat.completion","created":1741570283,"model":"gpt-oss","choices":[{"index":0,"message":{"role":"assistant","content":"hi","reasoning_content":"r"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1.0,"total_tokens":6},"kv_transfer_params":null}"#)

        let anthropic = #"{"id":"msg_1","type":"message","role":"assistant","model":"claudesonnet45","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}"#
        let anthropicOut = try Translation.translateResponse(Array(anthropic.utf8), upstream: .anthropicMessages, client: .anthropicMessages, clientModel: "claude-sonnet-4-5")
        #expect(String(decoding: anthropicOut, as: UTF8.self)
            == #"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}"#)
    }

    @Test("unusable upstream bodies are 502 errors that say they came from upstream", arguments: [
        ("not json", Dialect.openAIChat, Dialect.anthropicMessages, "not valid JSON"),
        (#"{"id":"x","choices":[]}"#, .openAIChat, .anthropicMessages, "no choices"),
        (#"{"id":"x","choices":[{"index":0}]}"#, .openAIChat, .anthropicMessages, "no message"),
        (#"{"id":"x","type":"message"}"#, .anthropicMessages, .openAIChat, "no content"),
        (#"[1,2]"#, .anthropicMessages, .anthropicMessages, "not a JSON object"),
        (#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{broken"}}]},"finish_reason":"tool_calls"}]}"#,
         .openAIChat, .anthropicMessages, "not a JSON object"),
    ])
    func unusableBodies(body: String, upstream: Dialect, client: Dialect, fragment: String) {
        let error = expectGatewayError { () throws(GatewayError) in
            _ = try Translation.translateResponse(Array(body.utf8), upstream: upstream, client: client, clientModel: "m")
        }
        #expect(error?.kind == .upstream)
        #expect(error?.status == 502)
        #expect(error?.message.hasPrefix("upstream: ") == true)
        #expect(error?.message.contains(fragment) == true, "message: \(error?.message ?? "")")
    }
}

@Suite("Upstream error decoding")
struct TranslationUpstreamErrorTests {
    @Test("the upstream's envelope, status and code are kept, in either dialect and the OpenAI-compatible variants", arguments: [
        (400, Dialect.openAIChat,
         #"{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
         GatewayError.Kind.invalidRequest, "context_length_exceeded", "upstream: This model's maximum context length is 128000 tokens.", "messages" as String?),
        (529, .anthropicMessages, #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#,
         .overloaded, "overloaded_error", "upstream: Overloaded", nil),
        (429, .anthropicMessages, #"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#,
         .rateLimited, "rate_limit_error", "upstream: Number of request tokens has exceeded your per-minute rate limit", nil),
        (401, .openAIChat, #"{"error":{"code":"unauthorized","message":"Token is either not active or invalid","info":{}}}"#,
         .authentication, "unauthorized", "upstream: Token is either not active or invalid", nil),
        (401, .openAIChat, #"{"detail":"Error: Missing ('Authorization': 'Bearer <your-access-token>') in request headers."}"#,
         .authentication, "upstream_error", "upstream: Error: Missing ('Authorization': 'Bearer <your-access-token>') in request headers.", nil),
        (422, .openAIChat, #"{"detail":[{"type":"extra_forbidden","loc":["body","payload","top_k"],"msg":"Extra inputs are not permitted","input":5}]}"#,
         .invalidRequest, "extra_forbidden", "upstream: body.payload.top_k: Extra inputs are not permitted", nil),
        (404, .openAIChat, #"{"object":"error","message":"The model `gpt-x` does not exist.","type":"NotFoundError","param":null,"code":404}"#,
         .notFound, "NotFoundError", "upstream: The model `gpt-x` does not exist.", nil),
        (500, .openAIChat, #"{"error":"Model started a function call but did not complete it."}"#,
         .upstream, "upstream_error", "upstream: Model started a function call but did not complete it.", nil),
        (400, .openAIChat, #"{"error":"invalid_grant"}"#, .invalidRequest, "invalid_grant", "upstream: invalid_grant", nil),
        (503, .openAIChat, #"{"error":{"code":"internal_endpoint_error","message":"Endpoint 'sophia-vllm-x' is offline.","info":{}}}"#,
         .overloaded, "internal_endpoint_error", "upstream: Endpoint 'sophia-vllm-x' is offline.", nil),
        (502, .anthropicMessages, "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n</body>\n</html>\n",
         .upstream, "upstream_error", "upstream: <html> <head><title>502 Bad Gateway</title></head> <body> <center><h1>502 Bad Gateway</h1></center> </body> </html>", nil),
        (503, .openAIChat, "", .overloaded, "upstream_error", "upstream: HTTP 503 with an empty body", nil),
        (504, .openAIChat, "upstream request timeout", .upstreamTimeout, "upstream_error", "upstream: upstream request timeout", nil),
    ])
    func envelopes(
        status: Int, upstream: Dialect, body: String, kind: GatewayError.Kind, code: String, message: String, parameter: String?
    ) {
        let error = Translation.decodeUpstreamError(status: status, body: Array(body.utf8), upstream: upstream)
        #expect(error.status == status)
        #expect(error.kind == kind)
        #expect(error.code == code)
        #expect(error.message == message)
        #expect(error.parameter == parameter)
    }

    @Test("the decoded error reaches each client in its own envelope with the upstream status")
    func clientEnvelopes() throws {
        let error = Translation.decodeUpstreamError(
            status: 529, body: Array(#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#.utf8), upstream: .anthropicMessages)
        let openAI = try jsonFixture(error.responseBody(in: .openAIChat))
        #expect(openAI["error"]?["message"] == "upstream: Overloaded")
        #expect(openAI["error"]?["type"] == "server_error")
        let anthropic = try jsonFixture(error.responseBody(in: .anthropicMessages))
        #expect(anthropic["error"]?["type"] == "overloaded_error")
        #expect(error.status == 529)
    }

    @Test("long or binary bodies are shortened to a readable message")
    func longBodies() {
        let long = String(repeating: "x", count: 5000)
        let error = Translation.decodeUpstreamError(status: 500, body: Array(long.utf8), upstream: .openAIChat)
        #expect(error.message == "upstream: " + String(repeating: "x", count: 500) + "…")
        let binary = Translation.decodeUpstreamError(status: 500, body: [0xFF, 0xFE, 0x41], upstream: .openAIChat)
        #expect(binary.message == "upstream: \u{FFFD}\u{FFFD}A")
    }
}
