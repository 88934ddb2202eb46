import NIOHTTP1
import Testing

import TenantGateway

/// Prepares a Google client body (model and stream from the URL) for an upstream and returns the upstream body.
private func googleUpstreamBody(
    _ clientBody: String, upstream: Dialect, model: String = "upstream-model", stream: Bool = false,
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> (body: JSON, call: UpstreamCall) {
    let call = try Translation.prepareRequest(
        try jsonFixture(clientBody, sourceLocation: sourceLocation), client: .googleGenAI, upstream: upstream, upstreamModel: model,
        defaultMaxTokens: 4096, urlStream: stream)
    return (try jsonFixture(call.body, sourceLocation: sourceLocation), call)
}

/// A Google stream chunk as Gemini writes it (`alt=sse`).
private func googleChunk(_ parts: String, finish: String? = nil, usage: String? = nil) -> String {
    var candidate = #"{"content":{"parts":\#(parts),"role":"model"}"#
    if let finish { candidate += #","finishReason":"\#(finish)""# }
    candidate += #","index":0}"#
    var chunk = #"{"candidates":[\#(candidate)]"#
    if let usage { chunk += #","usageMetadata":\#(usage)"# }
    chunk += #","modelVersion":"gemini-2.5-flash","responseId":"resp-G1"}"#
    return "data: " + chunk + "\r\n\r\n"
}

@Suite("Google GenAI translation")
struct GoogleTranslationTests {
    // MARK: - Requests from a Google client

    @Test("a Google request becomes an OpenAI Chat body: system, images, id-less function calls answered by name, settings")
    func googleRequestToOpenAI() throws {
        let (body, call) = try googleUpstreamBody(
            #"""
            {"systemInstruction":{"parts":[{"text":"Be brief."}]},
             "contents":[
               {"role":"user","parts":[{"text":"Weather in Paris and Rome?"},{"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo="}},{"fileData":{"mimeType":"image/jpeg","fileUri":"https://example.com/a.jpg"}}]},
               {"role":"model","parts":[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}}},{"functionCall":{"name":"get_weather","args":{"city":"Rome"}}}]},
               {"role":"user","parts":[{"functionResponse":{"name":"get_weather","response":{"output":"sunny"}}},{"functionResponse":{"name":"get_weather","response":{"temp":21}}}]}
             ],
             "tools":[{"functionDeclarations":[{"name":"get_weather","description":"Weather","parameters":{"type":"OBJECT","properties":{"city":{"type":"STRING","nullable":true}},"required":["city"],"propertyOrdering":["city"]}}]}],
             "toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["get_weather"]}},
             "safetySettings":[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_NONE"}],
             "generationConfig":{"maxOutputTokens":300,"temperature":0.5,"topP":0.9,"stopSequences":["END"],"thinkingConfig":{"thinkingBudget":8192,"includeThoughts":true}}}
            """#, upstream: .openAIChat, stream: true)
        #expect(call.stream)
        try expectSameJSON(body, #"""
            {"model":"upstream-model",
             "messages":[
               {"role":"system","content":"Be brief."},
               {"role":"user","content":[{"type":"text","text":"Weather in Paris and Rome?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},{"type":"image_url","image_url":{"url":"https://example.com/a.jpg"}}]},
               {"role":"assistant","content":null,"tool_calls":[
                 {"id":"call_get_weather_0","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
                 {"id":"call_get_weather_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},
               {"role":"tool","tool_call_id":"call_get_weather_0","content":"sunny"},
               {"role":"tool","tool_call_id":"call_get_weather_1","content":"{\"temp\":21}"}
             ],
             "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":["string","null"]}},"required":["city"]}}}],
             "tool_choice":{"type":"function","function":{"name":"get_weather"}},
             "max_completion_tokens":300,"temperature":0.5,"top_p":0.9,"stop":["END"],"reasoning_effort":"medium",
             "stream":true,"stream_options":{"include_usage":true}}
            """#)
    }

    @Test("Gemini thought signatures reach an Anthropic upstream as signed thinking blocks; function call ids are echoed")
    func googleSignaturesToAnthropic() throws {
        let (body, _) = try googleUpstreamBody(
            #"""
            {"contents":[
               {"role":"user","parts":[{"text":"Hi"}]},
               {"role":"model","parts":[{"text":"Let me","thought":true},{"text":" check.","thought":true,"thoughtSignature":"U0lHMQ=="},{"functionCall":{"id":"toolu_01","name":"lookup","args":{}}}]},
               {"role":"user","parts":[{"functionResponse":{"id":"toolu_01","name":"lookup","response":{"error":"not found"}}}]}
             ]}
            """#, upstream: .anthropicMessages)
        try expectSameJSON(body, #"""
            {"model":"upstream-model","max_tokens":4096,
             "messages":[
               {"role":"user","content":"Hi"},
               {"role":"assistant","content":[{"type":"thinking","thinking":"Let me check.","signature":"U0lHMQ=="},{"type":"tool_use","id":"toolu_01","name":"lookup","input":{}}]},
               {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":"not found","is_error":true}]}
             ]}
            """#)
    }

    @Test("Google requests the IR cannot honour are refused with a 400 naming the field")
    func googleRejections() throws {
        let candidates = try rejection(#"{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"candidateCount":2}}"#, client: .googleGenAI, upstream: .openAIChat)
        #expect(candidates?.status == 400)
        #expect(candidates?.parameter == "generationConfig.candidateCount")
        let orphan = try rejection(#"{"contents":[{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}"#, client: .googleGenAI, upstream: .openAIChat)
        #expect(orphan?.message.contains("no earlier functionCall named \"f\"") == true)
        let search = try rejection(#"{"contents":[{"parts":[{"text":"x"}]}],"tools":[{"googleSearch":{}}]}"#, client: .googleGenAI, upstream: .anthropicMessages)
        #expect(search?.parameter == "tools[0].googleSearch")
        let audio = try rejection(#"{"contents":[{"parts":[{"inlineData":{"mimeType":"audio/wav","data":"AA=="}}]}]}"#, client: .googleGenAI, upstream: .openAIChat)
        #expect(audio?.code == "unsupported_parameter")
        let missing = try rejection(#"{"generationConfig":{}}"#, client: .googleGenAI, upstream: .googleGenAI)
        #expect(missing?.parameter == "contents")
    }

    @Test("a Google body to a Google upstream passes through byte for byte, streaming from the URL")
    func googlePassThrough() throws {
        let text = #"{"contents":[{"role":"user","parts":[{"text":"x"}]}],"safetySettings":[],"cachedContent":"cachedContents/1"}"#
        let call = try Translation.prepareRequest(try jsonFixture(text), client: .googleGenAI, upstream: .googleGenAI, upstreamModel: "m", defaultMaxTokens: 1, urlStream: true)
        #expect(String(decoding: call.body, as: UTF8.self) == text)
        #expect(call.stream)
    }

    // MARK: - Requests to a Google upstream

    @Test("an OpenAI request becomes a Google body: roles, tool results by name, images, tools, thinking")
    func openAIRequestToGoogle() throws {
        let (body, call) = try upstreamBody(
            #"""
            {"model":"m","stream":true,"messages":[
               {"role":"system","content":"Sys"},
               {"role":"user","content":[{"type":"text","text":"Look"},{"type":"image_url","image_url":{"url":"https://x.test/p.png"}}]},
               {"role":"assistant","content":null,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"f","arguments":"{\"q\":1}"}},{"id":"call_b","type":"function","function":{"name":"g","arguments":""}}]},
               {"role":"tool","tool_call_id":"call_b","content":"B"},
               {"role":"tool","tool_call_id":"call_a","content":"A"},
               {"role":"user","content":"next"}],
             "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"q":{"type":"integer"}}}}}],
             "tool_choice":"required","max_completion_tokens":100,"reasoning_effort":"high"}
            """#, client: .openAIChat, upstream: .googleGenAI, model: "gemini-2.5-pro")
        #expect(call.stream)
        try expectSameJSON(body, #"""
            {"contents":[
               {"role":"user","parts":[{"text":"Look"},{"fileData":{"mimeType":"image/png","fileUri":"https://x.test/p.png"}}]},
               {"role":"model","parts":[{"functionCall":{"name":"f","args":{"q":1}}},{"functionCall":{"name":"g","args":{}}}]},
               {"role":"user","parts":[{"functionResponse":{"name":"g","response":{"output":"B"}}},{"functionResponse":{"name":"f","response":{"output":"A"}}},{"text":"next"}]}
             ],
             "systemInstruction":{"parts":[{"text":"Sys"}]},
             "tools":[{"functionDeclarations":[{"name":"f","parametersJsonSchema":{"type":"object","properties":{"q":{"type":"integer"}}}}]}],
             "toolConfig":{"functionCallingConfig":{"mode":"ANY"}},
             "generationConfig":{"maxOutputTokens":100,"thinkingConfig":{"thinkingBudget":16384,"includeThoughts":true}}}
            """#)
    }

    @Test("Gemini 3 upstreams get the documented skip sentinel on unsigned function calls; older models do not")
    func skipSentinel() throws {
        let request = #"{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"c2","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"1"},{"role":"tool","tool_call_id":"c2","content":"2"}]}"#
        let (gemini3, _) = try upstreamBody(request, client: .openAIChat, upstream: .googleGenAI, model: "models/gemini-3-pro-preview")
        let calls = gemini3["contents"]?.arrayValue?[1]["parts"]?.arrayValue
        #expect(calls?[0]["thoughtSignature"]?.stringValue == GoogleRequestCodec.skipSignatureSentinel)
        #expect(calls?[1]["thoughtSignature"] == nil)
        let (gemini25, _) = try upstreamBody(request, client: .openAIChat, upstream: .googleGenAI, model: "gemini-2.5-flash")
        #expect(gemini25["contents"]?.arrayValue?[1]["parts"]?.arrayValue?[0]["thoughtSignature"] == nil)
    }

    @Test("an Anthropic tool result for an unknown call cannot be sent to Google")
    func unknownToolResult() throws {
        let error = try rejection(
            #"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_x","content":"r"}]}]}"#,
            client: .anthropicMessages, upstream: .googleGenAI)
        #expect(error?.status == 400)
    }

    // MARK: - Whole responses

    @Test("a Google response with parallel function calls becomes OpenAI tool_calls with finish tool_calls and full usage")
    func googleResponseToOpenAI() throws {
        let upstream = #"""
            {"candidates":[{"content":{"parts":[{"text":"Thinking…","thought":true},{"functionCall":{"name":"f","args":{"a":1}},"thoughtSignature":"R1NJRw=="},{"functionCall":{"name":"f","args":{"a":2}}}],"role":"model"},"finishReason":"STOP","index":0}],
             "usageMetadata":{"promptTokenCount":100,"candidatesTokenCount":20,"totalTokenCount":150,"thoughtsTokenCount":30,"cachedContentTokenCount":64},
             "modelVersion":"gemini-2.5-flash","responseId":"abc"}
            """#
        let body = try jsonFixture(try Translation.translateResponse(Array(upstream.utf8), upstream: .googleGenAI, client: .openAIChat, clientModel: "client"))
        let message = body["choices"]?.arrayValue?.first?["message"]
        #expect(body["choices"]?.arrayValue?.first?["finish_reason"] == "tool_calls")
        #expect(message?["reasoning_content"] == "Thinking…")
        #expect(message?["tool_calls"]?.arrayValue?.count == 2)
        #expect(message?["tool_calls"]?.arrayValue?[1]["function"]?["arguments"] == #"{"a":2}"#)
        // The function call's signature survives as a signed thinking block a client can send back.
        #expect(message?["thinking_blocks"]?.arrayValue?.contains { $0["signature"] == "R1NJRw==" } == true)
        try expectSameJSON(body["usage"] ?? .null, #"{"prompt_tokens":100,"completion_tokens":50,"total_tokens":150,"prompt_tokens_details":{"cached_tokens":64},"completion_tokens_details":{"reasoning_tokens":30}}"#)
    }

    @Test("an Anthropic response becomes a GenerateContentResponse; its thinking signature round-trips back to Anthropic")
    func anthropicResponseToGoogleAndBack() throws {
        let upstream = #"""
            {"id":"msg_01","type":"message","role":"assistant","model":"claude","content":[
               {"type":"thinking","thinking":"Plan.","signature":"QU5USFJPUElD"},
               {"type":"redacted_thinking","data":"RU5DMA=="},
               {"type":"text","text":"Calling."},
               {"type":"tool_use","id":"toolu_9","name":"f","input":{"x":"y"}}],
             "stop_reason":"tool_use","stop_sequence":null,
             "usage":{"input_tokens":10,"cache_read_input_tokens":5,"cache_creation_input_tokens":0,"output_tokens":7}}
            """#
        let response = try jsonFixture(try Translation.translateResponse(Array(upstream.utf8), upstream: .anthropicMessages, client: .googleGenAI, clientModel: "client"))
        try expectSameJSON(response, #"""
            {"candidates":[{"content":{"parts":[
                 {"text":"Plan.","thought":true,"thoughtSignature":"QU5USFJPUElD"},
                 {"text":"","thought":true,"thoughtSignature":"cm9zZXR0YXJlZGFjdGVkRU5DMA=="},
                 {"text":"Calling."},
                 {"functionCall":{"id":"toolu_9","name":"f","args":{"x":"y"}}}],"role":"model"},
               "finishReason":"STOP","index":0}],
             "usageMetadata":{"promptTokenCount":15,"candidatesTokenCount":7,"totalTokenCount":22,"cachedContentTokenCount":5},
             "modelVersion":"client","responseId":"msg_01"}
            """#)
        // The Google client sends the model turn back as history: the Anthropic upstream gets its blocks back intact.
        let content = response["candidates"]?.arrayValue?[0]["content"] ?? .null
        let history: JSON = [
            "contents": [
                ["role": "user", "parts": [["text": "go"]]],
                content,
                ["role": "user", "parts": [["functionResponse": ["id": "toolu_9", "name": "f", "response": ["output": "done"]]]]],
            ]
        ]
        let call = try Translation.prepareRequest(history, client: .googleGenAI, upstream: .anthropicMessages, upstreamModel: "claude", defaultMaxTokens: 100)
        let assistant = try jsonFixture(call.body)["messages"]?.arrayValue?[1]
        try expectSameJSON(assistant ?? .null, #"""
            {"role":"assistant","content":[
               {"type":"thinking","thinking":"Plan.","signature":"QU5USFJPUElD"},
               {"type":"redacted_thinking","data":"RU5DMA=="},
               {"type":"text","text":"Calling."},
               {"type":"tool_use","id":"toolu_9","name":"f","input":{"x":"y"}}]}
            """#)
    }

    @Test("Google finish reasons and a blocked prompt map to the IR")
    func finishReasons() throws {
        #expect(GoogleResponseCodec.finishReason(from: "MAX_TOKENS") == .length)
        #expect(GoogleResponseCodec.finishReason(from: "SAFETY") == .contentFilter)
        #expect(GoogleResponseCodec.finishReason(from: "MALFORMED_FUNCTION_CALL") == .other("MALFORMED_FUNCTION_CALL"))
        #expect(GoogleResponseCodec.finishReasonText(.toolCalls) == "STOP")
        #expect(GoogleResponseCodec.finishReasonText(.length) == "MAX_TOKENS")
        let blocked = try GoogleResponseCodec.decode(try jsonFixture(#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":3,"totalTokenCount":3}}"#))
        #expect(blocked.finishReason == .contentFilter)
        #expect(blocked.content.isEmpty)
    }

    // MARK: - Streams

    @Test("a Google chunk with text and finishReason keeps its text; usage comes from the last chunk", arguments: ByteChunking.allCases)
    func googleStreamToOpenAI(chunking: ByteChunking) throws {
        let upstream = googleChunk(#"[{"text":"Hel"}]"#, usage: #"{"promptTokenCount":9,"totalTokenCount":9}"#)
            + googleChunk(#"[{"text":"lo 👋"}]"#, finish: "STOP", usage: #"{"promptTokenCount":9,"candidatesTokenCount":4,"totalTokenCount":13}"#)
        let result = translateStream(upstream, upstream: .googleGenAI, client: .openAIChat, chunking: chunking)
        #expect(result.finishError == nil)
        #expect(result.translator.isCompleted)
        let payloads = try result.payloads()
        let text = payloads.compactMap { $0["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue }.joined()
        #expect(text == "Hello 👋")
        #expect(payloads.contains { $0["choices"]?.arrayValue?.first?["finish_reason"] == "stop" })
        #expect(payloads.last?["usage"]?["completion_tokens"]?.intValue == 4)
        #expect(payloads.last?["usage"]?["prompt_tokens"]?.intValue == 9)
        #expect(result.events.last?.isDoneMarker == true)
    }

    @Test("Google parallel function calls with a signature stream to an Anthropic client as tool_use blocks", arguments: [ByteChunking.whole, .byteByByte])
    func googleStreamToAnthropic(chunking: ByteChunking) throws {
        let upstream = googleChunk(#"[{"text":"Hmm","thought":true}]"#)
            + googleChunk(#"[{"functionCall":{"name":"f","args":{"a":1}},"thoughtSignature":"U0lH"},{"functionCall":{"name":"g","args":{}}}]"#, finish: "STOP",
                usage: #"{"promptTokenCount":5,"candidatesTokenCount":6,"thoughtsTokenCount":2,"totalTokenCount":13}"#)
        let result = translateStream(upstream, upstream: .googleGenAI, client: .anthropicMessages, chunking: chunking)
        #expect(result.translator.isCompleted)
        let payloads = try result.payloads()
        let starts = payloads.filter { $0["type"] == "content_block_start" }.map { $0["content_block"]?["type"]?.stringValue ?? "" }
        #expect(starts == ["thinking", "tool_use", "tool_use"])
        #expect(payloads.contains { $0["delta"]?["type"] == "signature_delta" && $0["delta"]?["signature"] == "U0lH" })
        let delta = payloads.first { $0["type"] == "message_delta" }
        #expect(delta?["delta"]?["stop_reason"] == "tool_use")
        #expect(delta?["usage"]?["output_tokens"]?.intValue == 8)
    }

    @Test("a Google stream that closes before a finishReason is truncated; an error chunk fails it in the client's envelope")
    func googleStreamFailures() throws {
        let truncated = translateStream(googleChunk(#"[{"text":"Hi"}]"#), upstream: .googleGenAI, client: .openAIChat)
        #expect(truncated.finishError?.code == "upstream_stream_truncated")
        let failing = googleChunk(#"[{"text":"Hi"}]"#) + #"data: {"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}"# + "\n\n"
        let result = translateStream(failing, upstream: .googleGenAI, client: .anthropicMessages)
        #expect(result.translator.failure?.status == 429)
        #expect(result.translator.failure?.code == "RESOURCE_EXHAUSTED")
        #expect(result.eventNames.last == "error")
        // Google to Google passes chunks through and completes on a finishReason, or fails on an error chunk.
        let passed = translateStream(googleChunk(#"[{"text":"A"}]"#, finish: "STOP"), upstream: .googleGenAI, client: .googleGenAI)
        #expect(passed.translator.isCompleted)
        #expect(String(decoding: passed.bytes, as: UTF8.self).contains(#""modelVersion":"gemini-2.5-flash""#))
        let passedError = translateStream(failing, upstream: .googleGenAI, client: .googleGenAI)
        #expect(try passedError.payloads().last?["error"]?["status"] == "RESOURCE_EXHAUSTED")
    }

    @Test("an Anthropic stream reaches a Google client as chunks: signed thoughts, text, whole function calls, final usage")
    func anthropicStreamToGoogle() throws {
        func event(_ name: String, _ data: String) -> String { "event: \(name)\ndata: \(data)\n\n" }
        let upstream =
            event("message_start", #"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"usage":{"input_tokens":12,"output_tokens":1}}}"#)
            + event("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#)
            + event("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Plan"}}"#)
            + event("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"SIG"}}"#)
            + event("content_block_stop", #"{"type":"content_block_stop","index":0}"#)
            + event("content_block_start", #"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#)
            + event("content_block_delta", #"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Ok"}}"#)
            + event("content_block_stop", #"{"type":"content_block_stop","index":1}"#)
            + event("content_block_start", #"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}}"#)
            + event("content_block_delta", #"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}"#)
            + event("content_block_delta", #"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"1}"}}"#)
            + event("content_block_stop", #"{"type":"content_block_stop","index":2}"#)
            + event("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":20}}"#)
            + event("message_stop", #"{"type":"message_stop"}"#)
        let result = translateStream(upstream, upstream: .anthropicMessages, client: .googleGenAI, chunking: .threes)
        #expect(result.translator.isCompleted)
        let parts = try result.payloads().map { $0["candidates"]?.arrayValue?[0]["content"]?["parts"]?.arrayValue?[0] ?? .null }
        try expectSameJSON(.array(parts), #"""
            [{"text":"Plan","thought":true},{"text":"","thought":true,"thoughtSignature":"SIG"},{"text":"Ok"},
             {"functionCall":{"id":"toolu_1","name":"f","args":{"a":1}}},{"text":""}]
            """#)
        let last = try result.payloads().last
        #expect(last?["candidates"]?.arrayValue?[0]["finishReason"] == "STOP")
        try expectSameJSON(last?["usageMetadata"] ?? .null, #"{"promptTokenCount":12,"candidatesTokenCount":20,"totalTokenCount":32}"#)
        #expect(last?["modelVersion"] == "client-model")
        #expect(last?["responseId"] == "msg_1")
    }

    @Test("the JSON array framing of streamGenerateContent without alt=sse writes each event as it completes")
    func jsonArrayFraming() throws {
        var framer = GoogleJSONArrayFramer()
        #expect(framer.feed(Array("data: {\"a\":1}\n".utf8)).isEmpty)
        #expect(String(decoding: framer.feed(Array("\ndata: {\"b\":2}\n\n".utf8)), as: UTF8.self) == "[{\"a\":1},\r\n{\"b\":2}")
        #expect(String(decoding: framer.finish(), as: UTF8.self) == "]\n")
        var empty = GoogleJSONArrayFramer()
        let whole = try jsonFixture(empty.finish())
        #expect(whole == .array([]))
    }

    // MARK: - Errors, dialect detection, upstream URLs

    @Test("Google errors carry the HTTP code and a canonical status, whole and mid-stream")
    func googleErrorEnvelope() throws {
        let error = GatewayError(.rateLimited, code: "rate_limited", message: "slow down")
        try expectSameJSON(error.envelope(in: .googleGenAI), #"{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}"#)
        let event = String(decoding: error.streamEvent(in: .googleGenAI), as: UTF8.self)
        #expect(event.hasPrefix("data: {\"error\":{"))
        #expect(GatewayError(.authentication, code: "x", message: "m").errorType(in: .googleGenAI) == "UNAUTHENTICATED")
        #expect(GatewayError(.overloaded, code: "x", message: "m").errorType(in: .googleGenAI) == "UNAVAILABLE")
        let upstream = Translation.decodeUpstreamError(status: 400, body: Array(#"{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}"#.utf8), upstream: .googleGenAI)
        #expect(upstream.code == "INVALID_ARGUMENT")
        #expect(upstream.message == "upstream: bad")
    }

    @Test("Google clients are recognized by their paths", arguments: [
        ("/v1beta/models/gemini:generateContent", Dialect.googleGenAI),
        ("/v1beta/models", .googleGenAI),
        ("/v1/models/gemini:streamGenerateContent", .googleGenAI),
        ("/v1/models/llama3:8b", .openAIChat),
        ("/v1/chat/completions", .openAIChat),
    ])
    func dialectOfClient(path: String, dialect: Dialect) {
        #expect(Dialect.ofClient(path: path, hasAnthropicVersionHeader: false) == dialect)
    }

    @Test("a google provider posts to /models/{model}:generateContent or :streamGenerateContent?alt=sse with x-goog-api-key")
    func googleProviderURL() async throws {
        let config = try GatewayConfig.parse(
            yaml: """
                providers:
                  gem:
                    type: google
                    base_url: https://generativelanguage.googleapis.com/v1beta
                    api_key: secret
                models:
                  flash:
                    provider: gem
                    upstream_model: models/gemini-2.5-flash
                """, file: "t.yaml", environment: [:])
        let route = try ModelCatalog(config: config).resolve("flash")
        let provider = HTTPProvider(config: config.providers[0], timeouts: UpstreamTimeouts())
        #expect(provider.dialect == .googleGenAI)
        let whole = try await provider.request(for: UpstreamCall(body: [], stream: false, includeUsage: true), route: route, clientHeaders: [:])
        #expect(whole.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent")
        #expect(whole.headers.contains { $0.name == "x-goog-api-key" && $0.value == "secret" })
        #expect(!whole.headers.contains { $0.name == "authorization" })
        let streamed = try await provider.request(for: UpstreamCall(body: [], stream: true, includeUsage: true), route: route, clientHeaders: [:])
        #expect(streamed.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    }
}
