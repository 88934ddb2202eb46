import Testing

import TenantGateway

// MARK: - Fixtures

/// Responses bodies and streams as Codex and the OpenAI API send them.
enum ResponsesFixtures {
    /// A Codex-like second turn: instructions, a developer message, the user's request, the model's reasoning
    /// (with encrypted content), a function call and a custom `apply_patch` call with their outputs.
    static let codexRequest = #"""
        {"model":"gpt-5-codex","instructions":"You are Codex.","store":false,"stream":true,
         "include":["reasoning.encrypted_content"],"prompt_cache_key":"abc","parallel_tool_calls":false,
         "reasoning":{"effort":"high","summary":"auto"},"text":{"verbosity":"low"},"tool_choice":"auto",
         "input":[
          {"type":"message","role":"developer","content":[{"type":"input_text","text":"Sandbox: workspace-write"}]},
          {"type":"message","role":"user","content":[{"type":"input_text","text":"Fix the bug"},{"type":"input_image","image_url":"data:image/png;base64,iVBO","detail":"auto"}]},
          {"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"Looking at files"}],"encrypted_content":"gAAAA-secret"},
          {"type":"function_call","call_id":"call_1","name":"shell","arguments":"{\"command\":[\"ls\"]}"},
          {"type":"function_call_output","call_id":"call_1","output":"main.swift"},
          {"type":"custom_tool_call","call_id":"call_2","name":"apply_patch","input":"*** Begin Patch\n*** End Patch"},
          {"type":"custom_tool_call_output","call_id":"call_2","output":"Done!"},
          {"role":"assistant","content":[{"type":"output_text","text":"Patched."}]},
          {"role":"user","content":"thanks"}
         ],
         "tools":[
          {"type":"function","name":"shell","description":"Runs a command","strict":false,
           "parameters":{"type":"object","properties":{"command":{"type":"array","items":{"type":"string"}}},"required":["command"]}},
          {"type":"custom","name":"apply_patch","description":"Edit files","format":{"type":"grammar","syntax":"lark","definition":"start: patch"}}
         ]}
        """#

    static func event(_ data: String) -> String {
        let type = (try? JSON.parse(data))?["type"]?.stringValue ?? "message"
        return "event: \(type)\ndata: \(data)\n\n"
    }

    static let responseShell =
        #""id":"resp_0a1b","object":"response","created_at":1741290958,"model":"gpt-5-2025-08-07","store":false"#

    /// A Responses upstream stream: reasoning summary, text, a function call and a custom tool call, then completed.
    static let upstreamStream =
        event(#"{"type":"response.created","sequence_number":0,"response":{\#(responseShell),"status":"in_progress","output":[]}}"#)
        + event(#"{"type":"response.in_progress","sequence_number":1,"response":{\#(responseShell),"status":"in_progress","output":[]}}"#)
        + event(#"{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[]}}"#)
        + event(#"{"type":"response.reasoning_summary_part.added","sequence_number":3,"item_id":"rs_1","output_index":0,"summary_index":0,"part":{"type":"summary_text","text":""}}"#)
        + event(#"{"type":"response.reasoning_summary_text.delta","sequence_number":4,"item_id":"rs_1","output_index":0,"summary_index":0,"delta":"Think"}"#)
        + event(#"{"type":"response.output_item.done","sequence_number":5,"output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[{"type":"summary_text","text":"Think"}],"encrypted_content":"gAAA"}}"#)
        + event(#"{"type":"response.output_item.added","sequence_number":6,"output_index":1,"item":{"id":"msg_1","type":"message","status":"in_progress","role":"assistant","content":[]}}"#)
        + event(#"{"type":"response.content_part.added","sequence_number":7,"item_id":"msg_1","output_index":1,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}"#)
        + event(#"{"type":"response.output_text.delta","sequence_number":8,"item_id":"msg_1","output_index":1,"content_index":0,"delta":"Héllo 👋","logprobs":[]}"#)
        + event(#"{"type":"response.output_text.done","sequence_number":9,"item_id":"msg_1","output_index":1,"content_index":0,"text":"Héllo 👋","logprobs":[]}"#)
        + event(#"{"type":"response.output_item.done","sequence_number":10,"output_index":1,"item":{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Héllo 👋","annotations":[]}]}}"#)
        + event(#"{"type":"response.output_item.added","sequence_number":11,"output_index":2,"item":{"id":"fc_1","type":"function_call","status":"in_progress","call_id":"call_A","name":"shell","arguments":""}}"#)
        + event(#"{"type":"response.function_call_arguments.delta","sequence_number":12,"item_id":"fc_1","output_index":2,"delta":"{\"command\":"}"#)
        + event(#"{"type":"response.function_call_arguments.delta","sequence_number":13,"item_id":"fc_1","output_index":2,"delta":"[\"ls\"]}"}"#)
        + event(#"{"type":"response.function_call_arguments.done","sequence_number":14,"item_id":"fc_1","output_index":2,"arguments":"{\"command\":[\"ls\"]}"}"#)
        + event(#"{"type":"response.output_item.done","sequence_number":15,"output_index":2,"item":{"id":"fc_1","type":"function_call","status":"completed","call_id":"call_A","name":"shell","arguments":"{\"command\":[\"ls\"]}"}}"#)
        + event(#"{"type":"response.output_item.added","sequence_number":16,"output_index":3,"item":{"id":"ctc_1","type":"custom_tool_call","status":"in_progress","call_id":"call_B","name":"apply_patch","input":""}}"#)
        + event(#"{"type":"response.custom_tool_call_input.delta","sequence_number":17,"item_id":"ctc_1","output_index":3,"delta":"*** Begin \"Patch\"\n"}"#)
        + event(#"{"type":"response.custom_tool_call_input.done","sequence_number":18,"item_id":"ctc_1","output_index":3,"input":"*** Begin \"Patch\"\n"}"#)
        + event(#"{"type":"response.output_item.done","sequence_number":19,"output_index":3,"item":{"id":"ctc_1","type":"custom_tool_call","status":"completed","call_id":"call_B","name":"apply_patch","input":"*** Begin \"Patch\"\n"}}"#)
        + event(#"{"type":"response.completed","sequence_number":20,"response":{\#(responseShell),"status":"completed","output":[],"usage":{"input_tokens":100,"input_tokens_details":{"cached_tokens":64},"output_tokens":30,"output_tokens_details":{"reasoning_tokens":12},"total_tokens":130}}}"#)
}

/// The `sequence_number`s of a Responses stream's events, and their types.
func responsesEvents(_ result: TranslatedStream) throws -> [(type: String, payload: JSON)] {
    try result.payloads().map { ($0["type"]?.stringValue ?? "", $0) }
}

// MARK: - Requests

@Suite("Responses requests")
struct ResponsesRequestTests {
    @Test("a Codex turn becomes a Chat Completions body: instructions and developer text as system, items as messages, custom tool as a one-string function")
    func codexToChat() throws {
        let (body, call) = try upstreamBody(ResponsesFixtures.codexRequest, client: .openAIResponses, upstream: .openAIChat)
        #expect(call.stream)
        #expect(call.customToolNames == ["apply_patch"])
        try expectSameJSON(body, #"""
            {"model":"upstream-model",
             "messages":[
              {"role":"system","content":"You are Codex.\n\nSandbox: workspace-write"},
              {"role":"user","content":[{"type":"text","text":"Fix the bug"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBO"}}]},
              {"role":"assistant","content":null,"reasoning_content":"Looking at files","tool_calls":[
                {"id":"call_1","type":"function","function":{"name":"shell","arguments":"{\"command\":[\"ls\"]}"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"main.swift"},
              {"role":"assistant","content":null,"tool_calls":[
                {"id":"call_2","type":"function","function":{"name":"apply_patch","arguments":"{\"input\":\"*** Begin Patch\\n*** End Patch\"}"}}]},
              {"role":"tool","tool_call_id":"call_2","content":"Done!"},
              {"role":"assistant","content":"Patched."},
              {"role":"user","content":"thanks"}],
             "tools":[
              {"type":"function","function":{"name":"shell","description":"Runs a command",
               "parameters":{"type":"object","properties":{"command":{"type":"array","items":{"type":"string"}}},"required":["command"]}}},
              {"type":"function","function":{"name":"apply_patch",
               "description":"Edit files\n\nThe raw input for the tool, as free text that must follow this lark grammar:\nstart: patch",
               "parameters":{"type":"object","properties":{"input":{"type":"string","description":"The raw input for the tool, as free text that must follow this lark grammar:\nstart: patch"}},
                             "required":["input"],"additionalProperties":false}}}],
             "tool_choice":"auto","parallel_tool_calls":false,"reasoning_effort":"high",
             "stream":true,"stream_options":{"include_usage":true}}
            """#)
    }

    @Test("a Codex turn reaches an Anthropic upstream: tool_use/tool_result blocks, the custom tool with its input schema")
    func codexToAnthropic() throws {
        let (body, _) = try upstreamBody(ResponsesFixtures.codexRequest, client: .openAIResponses, upstream: .anthropicMessages)
        #expect(body["system"] != nil)
        let messages = try #require(body["messages"]?.arrayValue)
        let assistantCall = messages.first { $0["role"] == "assistant" && $0["content"]?[0]?["type"] == "tool_use" }
        #expect(assistantCall?["content"]?[0]?["name"] == "shell")
        let toolNames = body["tools"]?.arrayValue?.compactMap { $0["name"]?.stringValue }
        #expect(toolNames == ["shell", "apply_patch"])
        #expect(body["tools"]?[1]?["input_schema"]?["required"] == ["input"])
        #expect(body["thinking"]?["budget_tokens"] == 16384)
    }

    @Test("a Chat Completions client reaches a Responses upstream: input items, function tools, store false")
    func chatToResponses() throws {
        let (body, _) = try upstreamBody(#"""
            {"model":"m","stream":true,"max_tokens":50,"temperature":0.5,"reasoning_effort":"low",
             "messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"weather?"},
              {"role":"assistant","content":"Checking.","tool_calls":[{"id":"call_9","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
              {"role":"tool","tool_call_id":"call_9","content":"sunny"}],
             "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
             "tool_choice":{"type":"function","function":{"name":"get_weather"}}}
            """#, client: .openAIChat, upstream: .openAIResponses)
        try expectSameJSON(body, #"""
            {"model":"upstream-model","instructions":"Be brief.",
             "input":[
              {"type":"message","role":"user","content":[{"type":"input_text","text":"weather?"}]},
              {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Checking.","annotations":[]}]},
              {"type":"function_call","call_id":"call_9","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
              {"type":"function_call_output","call_id":"call_9","output":"sunny"}],
             "tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":false}],
             "tool_choice":{"type":"function","name":"get_weather"},
             "max_output_tokens":50,"temperature":0.5,
             "reasoning":{"effort":"low","summary":"auto"},"include":["reasoning.encrypted_content"],
             "store":false,"stream":true}
            """#)
    }

    @Test("encrypted reasoning from a Responses client goes back to a Responses upstream; Anthropic-signed reasoning does not")
    func reasoningRoundTrip() throws {
        let ir = ChatRequest(model: "m", messages: [
            ChatMessage(role: .user, parts: [.text("hi")]),
            ChatMessage(role: .assistant, parts: [
                .reasoning(Reasoning(text: "signed", signature: "sig")),
                .reasoning(Reasoning(text: "mine", encryptedContent: "gAAA")),
                .text("hello"),
            ]),
        ])
        let body = try ResponsesRequestCodec.encode(ir)
        try expectSameJSON(body["input"] ?? .null, #"""
            [{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]},
             {"type":"reasoning","summary":[{"type":"summary_text","text":"mine"}],"encrypted_content":"gAAA"},
             {"type":"message","role":"assistant","content":[{"type":"output_text","text":"hello","annotations":[]}]}]
            """#)
        // Reasoning, text and a call of one turn are separate items in Responses and one assistant message elsewhere.
        let request = try Translation.prepareRequest(
            try jsonFixture(#"""
                {"model":"x","input":[{"role":"user","content":"q"},{"type":"reasoning","summary":[{"type":"summary_text","text":"R"}],"encrypted_content":"E"},
                 {"type":"message","role":"assistant","content":[{"type":"output_text","text":"A"}]},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"}]}
                """#),
            client: .openAIResponses, upstream: .openAIChat, upstreamModel: "m", defaultMaxTokens: 100)
        try expectSameJSON(try jsonFixture(request.body)["messages"] ?? .null, #"""
            [{"role":"user","content":"q"},
             {"role":"assistant","content":"A","reasoning_content":"R","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]
            """#)
    }

    @Test("a Responses body for a Responses upstream passes through with only the model renamed")
    func passThrough() throws {
        let (body, call) = try upstreamBody(ResponsesFixtures.codexRequest, client: .openAIResponses, upstream: .openAIResponses)
        var expected = try jsonFixture(ResponsesFixtures.codexRequest)
        expected["model"] = "upstream-model"
        #expect(body == expected)
        #expect(call.stream)
        #expect(call.includeUsage)
    }

    @Test("requests that need server-side state get a 400 that says so, in every upstream dialect", arguments: [Dialect.openAIChat, .anthropicMessages, .openAIResponses])
    func statefulRequests(upstream: Dialect) throws {
        let previous = try rejection(#"{"model":"m","previous_response_id":"resp_1","input":"hi"}"#, client: .openAIResponses, upstream: upstream)
        #expect(previous?.status == 400)
        #expect(previous?.parameter == "previous_response_id")
        #expect(previous?.message.contains("keeps no response state") == true)
        #expect(previous?.message.contains("store: false") == true)
        let reference = try rejection(#"{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}"#, client: .openAIResponses, upstream: upstream)
        #expect(reference?.parameter == "input[0]")
        #expect(reference?.message.contains("keeps no response state") == true)
        let conversation = try rejection(#"{"model":"m","conversation":"conv_1","input":"hi"}"#, client: .openAIResponses, upstream: upstream)
        #expect(conversation?.parameter == "conversation")
    }

    @Test("store true is accepted (nothing is stored); harmless fields are ignored")
    func harmlessFields() throws {
        let (body, _) = try upstreamBody(
            #"{"model":"m","store":true,"input":"hi","metadata":{"a":"b"},"service_tier":"auto","truncation":"auto","prompt_cache_key":"k","text":{"format":{"type":"text"},"verbosity":"high"}}"#,
            client: .openAIResponses, upstream: .openAIChat)
        try expectSameJSON(body, #"{"model":"upstream-model","messages":[{"role":"user","content":"hi"}]}"#)
    }

    @Test("fields with behaviour the gateway cannot honour get a 400 naming the field")
    func unsupportedFields() throws {
        let cases: [(String, String)] = [
            (#"{"model":"m","input":"hi","tools":[{"type":"web_search"}]}"#, "tools[0].type"),
            (#"{"model":"m","input":"hi","text":{"format":{"type":"json_schema","name":"x","schema":{}}}}"#, "text.format"),
            (#"{"model":"m","input":"hi","include":["message.output_text.logprobs"]}"#, "include[0]"),
            (#"{"model":"m","input":"hi","background":true}"#, "background"),
            (#"{"model":"m","input":"hi","prompt":{"id":"pmpt_1"}}"#, "prompt"),
            (#"{"model":"m","input":[{"type":"file_search_call","id":"x"}]}"#, "input[0].type"),
            (#"{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]}"#, "input[0].content[0].type"),
            (#"{"model":"m"}"#, "input"),
            (#"{"model":"m","input":[]}"#, "input"),
            (#"{"model":"m","input":"hi","reasoning":{"effort":"extreme"}}"#, "reasoning.effort"),
        ]
        for (body, parameter) in cases {
            let error = try rejection(body, client: .openAIResponses, upstream: .openAIChat)
            #expect(error?.status == 400, "\(body)")
            #expect(error?.parameter == parameter, "\(body): \(error?.message ?? "")")
        }
    }
}

// MARK: - Whole responses

@Suite("Responses whole responses")
struct ResponsesResponseTests {
    @Test("a chat completion with reasoning, text and a custom tool call becomes a Responses response object")
    func chatToResponses() throws {
        let upstream = #"""
            {"id":"chatcmpl-XyZ","object":"chat.completion","created":1,"model":"up","choices":[{"index":0,"finish_reason":"tool_calls",
             "message":{"role":"assistant","content":"Applying.","reasoning_content":"Need a patch",
              "tool_calls":[{"id":"call_P","type":"function","function":{"name":"apply_patch","arguments":"{\"input\":\"*** Begin Patch\\n\"}"}},
                            {"id":"call_S","type":"function","function":{"name":"shell","arguments":"{\"command\":[\"ls\"]}"}}]}}],
             "usage":{"prompt_tokens":50,"completion_tokens":20,"total_tokens":70,"prompt_tokens_details":{"cached_tokens":8},"completion_tokens_details":{"reasoning_tokens":5}}}
            """#
        let body = try jsonFixture(try Translation.translateResponse(
            Array(upstream.utf8), upstream: .openAIChat, client: .openAIResponses, clientModel: "codex-model", customToolNames: ["apply_patch"]))
        #expect(body["id"] == "resp_XyZ")
        #expect(body["object"] == "response")
        #expect(body["status"] == "completed")
        #expect(body["model"] == "codex-model")
        #expect(body["incomplete_details"] == .null)
        try expectSameJSON(body["output"] ?? .null, #"""
            [{"id":"rs_XyZ_1","type":"reasoning","summary":[{"type":"summary_text","text":"Need a patch"}]},
             {"id":"msg_XyZ_2","type":"message","status":"completed","role":"assistant",
              "content":[{"type":"output_text","text":"Applying.","annotations":[],"logprobs":[]}]},
             {"id":"ctc_XyZ_3","type":"custom_tool_call","status":"completed","call_id":"call_P","name":"apply_patch","input":"*** Begin Patch\n"},
             {"id":"fc_XyZ_4","type":"function_call","status":"completed","call_id":"call_S","name":"shell","arguments":"{\"command\":[\"ls\"]}"}]
            """#)
        try expectSameJSON(body["usage"] ?? .null, #"""
            {"input_tokens":50,"input_tokens_details":{"cached_tokens":8},"output_tokens":20,"output_tokens_details":{"reasoning_tokens":5},"total_tokens":70}
            """#)
    }

    @Test("an Anthropic max_tokens stop becomes status incomplete with reason max_output_tokens")
    func incomplete() throws {
        let upstream = #"{"id":"msg_01A","type":"message","role":"assistant","model":"c","content":[{"type":"text","text":"Once"}],"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}"#
        let body = try jsonFixture(try Translation.translateResponse(Array(upstream.utf8), upstream: .anthropicMessages, client: .openAIResponses, clientModel: "c"))
        #expect(body["status"] == "incomplete")
        #expect(body["incomplete_details"] == ["reason": "max_output_tokens"])
        #expect(body["output"]?[0]?["content"]?[0]?["text"] == "Once")
    }

    @Test("a Responses upstream body becomes a chat completion and an Anthropic message")
    func responsesToOthers() throws {
        let upstream = #"""
            {"id":"resp_77","object":"response","created_at":1,"status":"completed","model":"gpt-5",
             "output":[{"id":"rs_1","type":"reasoning","summary":[{"type":"summary_text","text":"Hmm"}],"encrypted_content":"gAAA"},
                       {"id":"msg_1","type":"message","role":"assistant","status":"completed","content":[{"type":"output_text","text":"Hi","annotations":[]}]},
                       {"id":"fc_1","type":"function_call","call_id":"call_1","name":"f","arguments":"{}","status":"completed"},
                       {"id":"ctc_1","type":"custom_tool_call","call_id":"call_2","name":"apply_patch","input":"P"}],
             "usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":2},"output_tokens":4,"output_tokens_details":{"reasoning_tokens":1},"total_tokens":14}}
            """#
        let chat = try jsonFixture(try Translation.translateResponse(Array(upstream.utf8), upstream: .openAIResponses, client: .openAIChat, clientModel: "c"))
        #expect(chat["choices"]?[0]?["finish_reason"] == "tool_calls")
        #expect(chat["choices"]?[0]?["message"]?["content"] == "Hi")
        #expect(chat["choices"]?[0]?["message"]?["reasoning_content"] == "Hmm")
        #expect(chat["choices"]?[0]?["message"]?["tool_calls"]?[1]?["function"]?["arguments"] == #"{"input":"P"}"#)
        #expect(chat["usage"]?["prompt_tokens"] == 10)
        #expect(chat["usage"]?["completion_tokens_details"]?["reasoning_tokens"] == 1)
        let anthropic = try jsonFixture(try Translation.translateResponse(Array(upstream.utf8), upstream: .openAIResponses, client: .anthropicMessages, clientModel: "c"))
        #expect(anthropic["stop_reason"] == "tool_use")
        #expect(anthropic["content"]?[3]?["input"] == ["input": "P"])
        // Responses → Responses passes through, model renamed, encrypted reasoning intact.
        let same = try jsonFixture(try Translation.translateResponse(Array(upstream.utf8), upstream: .openAIResponses, client: .openAIResponses, clientModel: "c"))
        #expect(same["model"] == "c")
        #expect(same["output"]?[0]?["encrypted_content"] == "gAAA")
    }

    @Test("a failed Responses upstream body becomes an upstream error")
    func failed() throws {
        let upstream = #"{"id":"resp_1","object":"response","status":"failed","error":{"code":"server_error","message":"boom"},"output":[]}"#
        let error = expectGatewayError { () throws(GatewayError) in
            _ = try Translation.translateResponse(Array(upstream.utf8), upstream: .openAIResponses, client: .openAIChat, clientModel: "c")
        }
        #expect(error?.message == "upstream: boom")
        #expect(error?.status == 502)
    }

    @Test("errors use OpenAI's envelope; the stream error event carries the documented fields and the error object")
    func errorShapes() throws {
        let error = GatewayError(.invalidRequest, code: "unsupported_parameter", message: "no", parameter: "previous_response_id")
        try expectSameJSON(try jsonFixture(error.responseBody(in: .openAIResponses)), #"""
            {"error":{"message":"no","type":"invalid_request_error","param":"previous_response_id","code":"unsupported_parameter"}}
            """#)
        let text = String(decoding: error.responsesStreamEvent(sequenceNumber: 7), as: UTF8.self)
        #expect(text.hasPrefix("event: error\ndata: "))
        #expect(text.hasSuffix("\n\n"))
        let payload = try jsonFixture(String(text.dropFirst("event: error\ndata: ".count)))
        try expectSameJSON(payload, #"""
            {"type":"error","code":"unsupported_parameter","message":"no","param":"previous_response_id","sequence_number":7,
             "error":{"message":"no","type":"invalid_request_error","param":"previous_response_id","code":"unsupported_parameter"}}
            """#)
        #expect(Dialect.ofClient(path: "/v1/responses", hasAnthropicVersionHeader: false) == .openAIResponses)
        #expect(Dialect.ofClient(path: "/responses?x=1", hasAnthropicVersionHeader: false) == .openAIResponses)
    }
}

// MARK: - Streams

@Suite("Responses streams")
struct ResponsesStreamTests {
    @Test("an OpenAI chat stream becomes the Responses event sequence with increasing sequence numbers", arguments: ByteChunking.allCases)
    func chatToResponses(chunking: ByteChunking) throws {
        let result = translateStream(StreamFixtures.openAIToolCalls, upstream: .openAIChat, client: .openAIResponses, chunking: chunking)
        #expect(result.finishError == nil)
        #expect(result.translator.isCompleted)
        let events = try responsesEvents(result)
        #expect(events.map(\.type) == [
            "response.created", "response.in_progress",
            "response.output_item.added", "response.content_part.added", "response.output_text.delta",
            "response.output_text.done", "response.content_part.done", "response.output_item.done",
            "response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.delta",
            "response.function_call_arguments.done", "response.output_item.done",
            "response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.done", "response.output_item.done",
            "response.completed",
        ])
        #expect(events.map { $0.payload["sequence_number"]?.intValue } == Array(0..<events.count).map(Optional.some))
        #expect(result.eventNames == events.map(\.type))
        let created = events[0].payload["response"]
        #expect(created?["id"] == "resp_AbC123")
        #expect(created?["status"] == "in_progress")
        #expect(created?["model"] == "client-model")
        try expectSameJSON(events[4].payload, #"""
            {"type":"response.output_text.delta","item_id":"msg_AbC123_1","output_index":0,"content_index":0,"delta":"Checking.","logprobs":[],"sequence_number":4}
            """#)
        try expectSameJSON(events[11].payload, #"""
            {"type":"response.function_call_arguments.done","item_id":"fc_AbC123_2","output_index":1,"name":"get_weather",
             "arguments":"{\"location\": \"Paris\"}","sequence_number":11}
            """#)
        let completed = try #require(events.last?.payload["response"])
        #expect(completed["status"] == "completed")
        #expect(completed["output"]?.arrayValue?.count == 3)
        #expect(completed["output"]?[2]?["call_id"] == "call_ABC")
        #expect(completed["usage"]?["input_tokens"] == 1200)
        #expect(completed["usage"]?["input_tokens_details"]?["cached_tokens"] == 1024)
        #expect(result.bytes == translateStream(StreamFixtures.openAIToolCalls, upstream: .openAIChat, client: .openAIResponses).bytes)
    }

    @Test("reasoning becomes summary events; a length stop ends with response.incomplete")
    func reasoningAndLength() throws {
        let result = translateStream(StreamFixtures.openAIReasoning, upstream: .openAIChat, client: .openAIResponses)
        let events = try responsesEvents(result)
        #expect(events.map(\.type) == [
            "response.created", "response.in_progress",
            "response.output_item.added", "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done", "response.reasoning_summary_part.done", "response.output_item.done",
            "response.output_item.added", "response.content_part.added", "response.output_text.delta",
            "response.output_text.done", "response.content_part.done", "response.output_item.done",
            "response.incomplete",
        ])
        #expect(events[6].payload["text"] == "The user greets me.")
        #expect(events.last?.payload["response"]?["incomplete_details"] == ["reason": "max_output_tokens"])
    }

    @Test("a custom tool's call streams as one custom_tool_call_input delta with the raw input")
    func customToolStream() throws {
        let upstream =
            StreamFixtures.openAIDelta(#"{"role":"assistant","tool_calls":[{"index":0,"id":"call_P","type":"function","function":{"name":"apply_patch","arguments":""}}]}"#)
            + StreamFixtures.openAIDelta(#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"input\":\"*** Begin"}}]}"#)
            + StreamFixtures.openAIDelta(#"{"tool_calls":[{"index":0,"function":{"arguments":" Patch\\n\"}"}}]}"#)
            + StreamFixtures.openAIDelta("{}", finish: #""tool_calls""#)
            + "data: [DONE]\n\n"
        var translator = StreamTranslator(
            upstream: .openAIChat, client: .openAIResponses, clientModel: "c", includeUsage: true, created: 1, customToolNames: ["apply_patch"])
        let bytes = translator.feed(Array(upstream.utf8)) + (try translator.finish())
        var parser = SSEParser()
        let events = try (parser.feed(bytes) + parser.finish()).map { try JSON.parse($0.data) }
        #expect(events.compactMap { $0["type"]?.stringValue } == [
            "response.created", "response.in_progress", "response.output_item.added",
            "response.custom_tool_call_input.delta", "response.custom_tool_call_input.done", "response.output_item.done", "response.completed",
        ])
        #expect(events[2]["item"]?["type"] == "custom_tool_call")
        #expect(events[3]["delta"] == "*** Begin Patch\n")
        #expect(events[4]["input"] == "*** Begin Patch\n")
        try expectSameJSON(events[5]["item"] ?? .null, #"""
            {"id":"ctc_AbC123_1","type":"custom_tool_call","status":"completed","call_id":"call_P","name":"apply_patch","input":"*** Begin Patch\n"}
            """#)
    }

    @Test("a Responses upstream stream reaches a Chat client: reasoning, text, a function call and a custom call as JSON arguments", arguments: ByteChunking.allCases)
    func responsesToChat(chunking: ByteChunking) throws {
        let result = translateStream(ResponsesFixtures.upstreamStream, upstream: .openAIResponses, client: .openAIChat, chunking: chunking)
        #expect(result.finishError == nil)
        #expect(result.translator.isCompleted)
        let chunks = try result.payloads()
        var reasoning = "", text = "", arguments: [Int: String] = [:], names: [Int: String] = [:]
        for chunk in chunks {
            guard let delta = chunk["choices"]?[0]?["delta"] else { continue }
            reasoning += delta["reasoning_content"]?.stringValue ?? ""
            text += delta["content"]?.stringValue ?? ""
            for call in delta["tool_calls"]?.arrayValue ?? [] {
                let index = call["index"]?.intValue ?? -1
                if let name = call["function"]?["name"]?.stringValue { names[index] = name }
                arguments[index, default: ""] += call["function"]?["arguments"]?.stringValue ?? ""
            }
        }
        #expect(reasoning == "Think")
        #expect(text == "Héllo 👋")
        #expect(names == [0: "shell", 1: "apply_patch"])
        #expect(arguments[0] == #"{"command":["ls"]}"#)
        #expect(try JSON.parse(arguments[1] ?? "") == ["input": "*** Begin \"Patch\"\n"])
        let finish = chunks.compactMap { $0["choices"]?[0]?["finish_reason"]?.stringValue }
        #expect(finish == ["tool_calls"])
        #expect(chunks.last?["usage"]?["prompt_tokens"] == 100)
    }

    @Test("a Responses upstream stream reaches an Anthropic client as thinking, text and tool_use blocks")
    func responsesToAnthropic() throws {
        let result = translateStream(ResponsesFixtures.upstreamStream, upstream: .openAIResponses, client: .anthropicMessages)
        #expect(result.translator.isCompleted)
        let blocks = try result.payloads().filter { $0["type"] == "content_block_start" }.compactMap { $0["content_block"]?["type"]?.stringValue }
        #expect(blocks == ["thinking", "text", "tool_use", "tool_use"])
        let stop = try result.payloads().first { $0["type"] == "message_delta" }
        #expect(stop?["delta"]?["stop_reason"] == "tool_use")
    }

    @Test("Responses to Responses passes every event through, renaming the model in response objects only", arguments: ByteChunking.allCases)
    func passThrough(chunking: ByteChunking) throws {
        let result = translateStream(ResponsesFixtures.upstreamStream, upstream: .openAIResponses, client: .openAIResponses, chunking: chunking)
        #expect(result.translator.isCompleted)
        let upstream = try translateStreamEvents(ResponsesFixtures.upstreamStream)
        let client = try result.payloads()
        #expect(client.count == upstream.count)
        for (sent, received) in zip(upstream, client) {
            var expected = sent
            if case .object(var response)? = sent["response"] {
                response["model"] = "client-model"
                expected["response"] = .object(response)
            }
            #expect(received == expected)
        }
    }

    @Test("an upstream error event fails the stream with a Responses error event numbered after the last one", arguments: [Dialect.openAIChat, .openAIResponses])
    func upstreamError(upstream: Dialect) throws {
        let stream: String
        if upstream == .openAIResponses {
            stream = ResponsesFixtures.upstreamStream.prefix(before: "event: response.output_item.added")
                + ResponsesFixtures.event(#"{"type":"error","code":"rate_limit_exceeded","message":"slow down","param":null,"sequence_number":2}"#)
        } else {
            stream = StreamFixtures.openAIDelta(#"{"role":"assistant","content":"Hi"}"#)
                + #"data: {"error":{"message":"slow down","type":"rate_limit_error","code":"rate_limit_exceeded"}}"# + "\n\n"
        }
        let result = translateStream(stream, upstream: upstream, client: .openAIResponses)
        #expect(result.translator.failure?.kind == .rateLimited)
        let events = try responsesEvents(result)
        let last = try #require(events.last)
        #expect(last.type == "error")
        #expect(last.payload["message"] == "upstream: slow down")
        #expect(last.payload["error"]?["type"] == "rate_limit_error")
        let numbers = events.compactMap { $0.payload["sequence_number"]?.intValue }
        #expect(numbers == Array(0..<events.count))
    }

    @Test("a Responses upstream that stops before response.completed is reported as truncated", arguments: [Dialect.openAIChat, .openAIResponses, .anthropicMessages])
    func truncation(client: Dialect) throws {
        let cut = ResponsesFixtures.upstreamStream.prefix(before: "event: response.completed")
        let result = translateStream(cut, upstream: .openAIResponses, client: client)
        #expect(result.finishError?.code == "upstream_stream_truncated")
    }

    @Test("response.failed from the upstream fails the stream")
    func responseFailed() throws {
        let stream = ResponsesFixtures.event(#"{"type":"response.created","sequence_number":0,"response":{\#(ResponsesFixtures.responseShell),"status":"in_progress","output":[]}}"#)
            + ResponsesFixtures.event(#"{"type":"response.failed","sequence_number":1,"response":{\#(ResponsesFixtures.responseShell),"status":"failed","output":[],"error":{"code":"server_error","message":"model crashed"}}}"#)
        for client in [Dialect.openAIChat, .openAIResponses] {
            let result = translateStream(stream, upstream: .openAIResponses, client: client)
            #expect(result.translator.failure?.message == "upstream: model crashed")
            #expect(result.finishError == nil)
        }
    }

    @Test("the translator's error event for a late failure continues the sequence numbering")
    func lateErrorEvent() throws {
        var translator = StreamTranslator(upstream: .openAIChat, client: .openAIResponses, clientModel: "c", includeUsage: true)
        let first = translator.feed(Array(StreamFixtures.openAIDelta(#"{"role":"assistant","content":"Hi"}"#).utf8))
        var parser = SSEParser()
        let count = parser.feed(first).count
        #expect(count == 5)
        let late = translator.errorEvent(for: GatewayError(.upstream, code: "upstream_stream_truncated", message: "cut"))
        let payload = try JSON.parse(try #require(parser.feed(late).first).data)
        #expect(payload["sequence_number"]?.intValue == count)
        #expect(payload["type"] == "error")
    }
}

/// The JSON payloads of an upstream fixture's events.
func translateStreamEvents(_ text: String) throws -> [JSON] {
    var parser = SSEParser()
    return try (parser.feed(Array(text.utf8)) + parser.finish()).map { try JSON.parse($0.data) }
}

extension String {
    /// The text before the first occurrence of `marker` (all of it when absent).
    func prefix(before marker: String) -> String {
        guard let range = firstRange(of: marker) else { return self }
        return String(self[..<range.lowerBound])
    }
}
