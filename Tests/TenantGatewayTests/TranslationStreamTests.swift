import Testing

import TenantGateway

// MARK: - Fixtures

/// Realistic upstream streams, as the servers send them.
enum StreamFixtures {
    /// One `chat.completion.chunk` event as OpenAI writes it.
    static func openAIChunk(_ choices: String, usage: String = "null", id: String = "chatcmpl-AbC123") -> String {
        #"data: {"id":"\#(id)","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_eb9dce56a8","choices":\#(choices),"usage":\#(usage)}"#
            + "\n\n"
    }

    static func openAIDelta(_ delta: String, finish: String = "null") -> String {
        openAIChunk(#"[{"index":0,"delta":\#(delta),"logprobs":null,"finish_reason":\#(finish)}]"#)
    }

    static let openAIUsage = openAIChunk(
        "[]",
        usage: #"{"prompt_tokens":1200,"completion_tokens":10,"total_tokens":1210,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}"#)

    /// A text answer with accents and an emoji (so byte-by-byte feeding splits UTF-8 sequences), usage in a final empty-choices chunk.
    static let openAIText =
        openAIDelta(#"{"role":"assistant","content":"","refusal":null}"#)
        + openAIDelta(#"{"content":"Bonjour"}"#)
        + openAIDelta(#"{"content":" à tous 👋"}"#)
        + openAIDelta(#"{}"#, finish: #""stop""#)
        + openAIUsage
        + "data: [DONE]\n\n"

    /// vLLM-style reasoning (`reasoning_content`, then the newer `reasoning` field) before the answer; CRLF line ends.
    static let openAIReasoning = (
        openAIDelta(#"{"role":"assistant","content":null,"reasoning_content":"The user"}"#)
            + openAIDelta(#"{"reasoning":" greets me."}"#)
            + openAIDelta(#"{"content":"Hello!"}"#)
            + openAIDelta(#"{"content":""}"#, finish: #""length""#)
            + "data: [DONE]\n\n"
    ).replacingLineFeeds(with: "\r\n")

    /// Text, then two tool calls streamed one after the other by index, then usage.
    static let openAIToolCalls =
        openAIDelta(#"{"role":"assistant","content":"Checking."}"#)
        + openAIDelta(#"{"tool_calls":[{"index":0,"id":"call_DdmO9pD3xa9XTPNJ32zg2hcA","type":"function","function":{"name":"get_weather","arguments":""}}]}"#)
        + openAIDelta(#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"lo"}}]}"#)
        + openAIDelta(#"{"tool_calls":[{"index":0,"function":{"arguments":"cation\": \"Paris\"}"}}]}"#)
        + openAIDelta(#"{"tool_calls":[{"index":1,"id":"call_ABC","type":"function","function":{"name":"get_time","arguments":"{}"}}]}"#)
        + openAIDelta(#"{}"#, finish: #""tool_calls""#)
        + openAIUsage
        + "data: [DONE]\n\n"

    static func anthropicEvent(_ name: String, _ data: String) -> String {
        "event: \(name)\ndata: \(data)\n\n"
    }

    static let anthropicStart = anthropicEvent(
        "message_start",
        #"{"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":1,"service_tier":"standard"}}}"#)

    /// A text answer with a ping, as the Messages API streams it.
    static let anthropicText =
        anthropicStart
        + anthropicEvent("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#)
        + anthropicEvent("ping", #"{"type": "ping"}"#)
        + anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#)
        + anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" wörld 🌍"}}"#)
        + anthropicEvent("content_block_stop", #"{"type":"content_block_stop","index":0}"#)
        + anthropicEvent("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#)
        + anthropicEvent("message_stop", #"{"type":"message_stop"}"#)

    /// Thinking with a signature, text, and two tool calls (the second without arguments).
    static let anthropicThinkingAndTools =
        anthropicStart
        + anthropicEvent("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#)
        + anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"I need the weather."}}"#)
        + anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}}"#)
        + anthropicEvent("content_block_stop", #"{"type":"content_block_stop","index":0}"#)
        + anthropicEvent("content_block_start", #"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#)
        + anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Let me check."}}"#)
        + anthropicEvent("content_block_stop", #"{"type":"content_block_stop","index":1}"#)
        + anthropicEvent("content_block_start", #"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}"#)
        + anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}"#)
        + anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"location\": \"San Fra"}}"#)
        + anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"ncisco, CA\"}"}}"#)
        + anthropicEvent("content_block_stop", #"{"type":"content_block_stop","index":2}"#)
        + anthropicEvent("content_block_start", #"{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_02","name":"get_time","input":{}}}"#)
        + anthropicEvent("content_block_stop", #"{"type":"content_block_stop","index":3}"#)
        + anthropicEvent("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}"#)
        + anthropicEvent("message_stop", #"{"type":"message_stop"}"#)
}

extension String {
    func replacingLineFeeds(with separator: String) -> String {
        split(separator: "\n", omittingEmptySubsequences: false).joined(separator: separator)
    }

    /// The text with its last `count` characters removed.
    func droppingLast(_ count: Int) -> String { String(dropLast(count)) }
}

// MARK: - SSE parser

@Suite("SSE parser")
struct SSEParserTests {
    static let sample = "event: greeting\ndata: hello\ndata: world\n\n: a comment\nid: 7\nretry: 1000\ndata:{\"no\":\"space\"}\n\ndata\n\nevent: empty\n\ndata: [DONE]\n\n"

    static let expected = [
        SSEEvent(event: "greeting", data: "hello\nworld"),
        SSEEvent(event: nil, data: #"{"no":"space"}"#),
        SSEEvent(event: nil, data: ""),
        SSEEvent(event: nil, data: "[DONE]"),
    ]

    @Test("events, multi-line data, comments, ids and field forms parse the same in every chunking", arguments: ByteChunking.allCases)
    func chunkings(chunking: ByteChunking) {
        var parser = SSEParser()
        var events: [SSEEvent] = []
        for chunk in chunking.split(Array(Self.sample.utf8)) { events += parser.feed(chunk) }
        events += parser.finish()
        #expect(events == Self.expected)
        #expect(events.last?.isDoneMarker == true)
    }

    @Test("CRLF and lone CR line ends work, also when a CRLF pair is split between chunks")
    func lineEnds() {
        let crlf = Array("event: a\r\ndata: 1\r\n\r\ndata: 2\r\r".utf8)
        for split in 0...crlf.count {
            var parser = SSEParser()
            let events = parser.feed(Array(crlf[..<split])) + parser.feed(Array(crlf[split...])) + parser.finish()
            #expect(events == [SSEEvent(event: "a", data: "1"), SSEEvent(data: "2")], "split at \(split)")
        }
    }

    @Test("a UTF-8 sequence split between chunks decodes intact; a leading BOM is ignored")
    func utf8AndBOM() {
        let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("data: 🎉é\n\n".utf8)
        var parser = SSEParser()
        var events: [SSEEvent] = []
        for byte in bytes { events += parser.feed([byte]) }
        #expect(events == [SSEEvent(data: "🎉é")])
    }

    @Test("an event is delivered as soon as its blank line arrives, not before")
    func incremental() {
        var parser = SSEParser()
        #expect(parser.feed(Array("data: a\n".utf8)).isEmpty)
        #expect(parser.feed(Array("\nda".utf8)) == [SSEEvent(data: "a")])
        #expect(parser.feed(Array("ta: b".utf8)).isEmpty)
        #expect(parser.finish() == [SSEEvent(data: "b")])
        #expect(parser.finish().isEmpty)
    }
}

// MARK: - OpenAI upstream → Anthropic client

@Suite("Stream translation: OpenAI upstream → Anthropic client")
struct TranslationOpenAIToAnthropicStreamTests {
    @Test("a text stream becomes message_start, one text block, message_delta and message_stop", arguments: ByteChunking.allCases)
    func text(chunking: ByteChunking) throws {
        let result = translateStream(StreamFixtures.openAIText, upstream: .openAIChat, client: .anthropicMessages, chunking: chunking)
        #expect(result.finishError == nil)
        #expect(result.translator.isCompleted)
        #expect(result.eventNames == [
            "message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop",
        ])
        let events = try result.payloads()
        try expectSameJSON(events[0], #"""
            {"type":"message_start","message":{"id":"msg_AbC123","type":"message","role":"assistant","model":"client-model","content":[],
             "stop_reason":null,"stop_sequence":null,
             "usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}}
            """#)
        try expectSameJSON(events[1], #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#)
        try expectSameJSON(events[2], #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Bonjour"}}"#)
        try expectSameJSON(events[3], #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" à tous 👋"}}"#)
        try expectSameJSON(events[4], #"{"type":"content_block_stop","index":0}"#)
        try expectSameJSON(events[5], #"""
            {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},
             "usage":{"input_tokens":176,"cache_creation_input_tokens":0,"cache_read_input_tokens":1024,"output_tokens":10}}
            """#)
        try expectSameJSON(events[6], #"{"type":"message_stop"}"#)
        // Every chunking yields the same bytes, and fed event by event, output follows every content event.
        #expect(result.bytes == translateStream(StreamFixtures.openAIText, upstream: .openAIChat, client: .anthropicMessages).bytes)
        // role → message_start, two deltas, finish → block stop, [DONE] → message_delta + message_stop.
        if chunking == .lineAligned { #expect(result.nonEmptyFeeds == 5) }
    }

    @Test("events are written as soon as each upstream event arrives")
    func noBuffering() {
        var translator = StreamTranslator(upstream: .openAIChat, client: .anthropicMessages, clientModel: "c", includeUsage: false)
        let first = translator.feed(Array((StreamFixtures.openAIDelta(#"{"role":"assistant","content":""}"#)).utf8))
        #expect(String(decoding: first, as: UTF8.self).hasPrefix("event: message_start\n"))
        let second = translator.feed(Array(StreamFixtures.openAIDelta(#"{"content":"Hi"}"#).utf8))
        let text = String(decoding: second, as: UTF8.self)
        #expect(text.contains("event: content_block_start") && text.contains(#""text":"Hi""#))
        #expect(translator.feed(Array("data: {\"id\":\"x\",\"choi".utf8)).isEmpty)
        #expect(!translator.isFinished)
    }

    @Test("reasoning deltas become a thinking block before the text block; length becomes max_tokens", arguments: ByteChunking.allCases)
    func reasoning(chunking: ByteChunking) throws {
        let result = translateStream(StreamFixtures.openAIReasoning, upstream: .openAIChat, client: .anthropicMessages, chunking: chunking)
        #expect(result.translator.isCompleted)
        let events = try result.payloads()
        #expect(events.map { $0["type"]?.stringValue ?? "" } == [
            "message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
            "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop",
        ])
        try expectSameJSON(events[1], #"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#)
        try expectSameJSON(events[2], #"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user"}}"#)
        try expectSameJSON(events[3], #"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":" greets me."}}"#)
        try expectSameJSON(events[5], #"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#)
        try expectSameJSON(events[6], #"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hello!"}}"#)
        #expect(events[8]["delta"]?["stop_reason"] == "max_tokens")
        #expect(events[8]["usage"]?["output_tokens"] == 0)
    }

    @Test("parallel tool calls become separate tool_use blocks with input_json_delta fragments", arguments: ByteChunking.allCases)
    func toolCalls(chunking: ByteChunking) throws {
        let result = translateStream(StreamFixtures.openAIToolCalls, upstream: .openAIChat, client: .anthropicMessages, chunking: chunking)
        #expect(result.translator.isCompleted)
        let events = try result.payloads()
        let expected = [
            #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking."}}"#,
            #"{"type":"content_block_stop","index":0}"#,
            #"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"call_DdmO9pD3xa9XTPNJ32zg2hcA","name":"get_weather","input":{}}}"#,
            #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"lo"}}"#,
            #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"cation\": \"Paris\"}"}}"#,
            #"{"type":"content_block_stop","index":1}"#,
            #"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"call_ABC","name":"get_time","input":{}}}"#,
            #"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
            #"{"type":"content_block_stop","index":2}"#,
        ]
        #expect(events.count == expected.count + 3)
        for (event, text) in zip(events.dropFirst(), expected) { try expectSameJSON(event, text) }
        #expect(events[events.count - 2]["delta"]?["stop_reason"] == "tool_use")
    }

    @Test("interleaved tool call arguments cannot be represented and fail the stream with an error event")
    func interleavedToolCalls() {
        let upstream =
            StreamFixtures.openAIDelta(#"{"tool_calls":[{"index":0,"id":"a","type":"function","function":{"name":"f","arguments":""}}]}"#)
            + StreamFixtures.openAIDelta(#"{"tool_calls":[{"index":1,"id":"b","type":"function","function":{"name":"g","arguments":""}}]}"#)
            + StreamFixtures.openAIDelta(#"{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}"#)
        let result = translateStream(upstream, upstream: .openAIChat, client: .anthropicMessages)
        #expect(result.translator.failure?.kind == .upstream)
        #expect(result.eventNames.last == "error")
        #expect(result.finishError == nil)
    }

    @Test("a stream that ends before [DONE] or before a finish reason fails", arguments: [
        StreamFixtures.openAIText.droppingLast("data: [DONE]\n\n".count),
        StreamFixtures.openAIDelta(#"{"role":"assistant","content":"Hel"}"#),
        String(StreamFixtures.openAIText.prefix(100)),
        "",
    ])
    func truncatedAtEOF(upstream: String) {
        for chunking in ByteChunking.allCases {
            let result = translateStream(upstream, upstream: .openAIChat, client: .anthropicMessages, chunking: chunking)
            #expect(result.finishError?.kind == .upstream)
            #expect(result.finishError?.message == "the upstream stream ended before completing")
            #expect(result.translator.failure != nil)
            #expect(!result.eventNames.contains("message_stop"))
        }
    }

    @Test("[DONE] without a finish reason is a cut-short answer: the client gets an error event")
    func doneWithoutFinish() throws {
        let upstream = StreamFixtures.openAIDelta(#"{"role":"assistant","content":"Hel"}"#) + "data: [DONE]\n\n"
        let result = translateStream(upstream, upstream: .openAIChat, client: .anthropicMessages)
        #expect(result.finishError == nil)
        #expect(result.translator.failure?.code == "upstream_stream_truncated")
        let error = try #require(result.events.last)
        #expect(error.event == "error")
        let payload = try JSON.parse(error.data)
        #expect(payload["type"] == "error")
        #expect(payload["error"]?["type"] == "api_error")
        #expect(payload["error"]?["message"] == "the upstream stream ended before completing")
    }

    @Test("an error chunk mid-stream becomes an Anthropic error event and ends the stream", arguments: [
        (#"data: {"error":{"message":"Rate limit reached","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}"#, "rate_limit_error"),
        (#"data: {"object":"error","message":"StreamingTimeoutError","type":"StreamingTimeoutError","param":null,"code":504}"#, "timeout_error"),
    ])
    func midStreamError(errorLine: String, anthropicType: String) throws {
        let upstream = StreamFixtures.openAIDelta(#"{"role":"assistant","content":"Partial"}"#) + errorLine + "\n\ndata: [DONE]\n\n"
        var translator = StreamTranslator(upstream: .openAIChat, client: .anthropicMessages, clientModel: "c", includeUsage: true)
        let bytes = translator.feed(Array(upstream.utf8))
        #expect(translator.failure != nil)
        var parser = SSEParser()
        let events = parser.feed(bytes)
        #expect(events.map { $0.event ?? "" } == ["message_start", "content_block_start", "content_block_delta", "error"])
        let payload = try JSON.parse(try #require(events.last).data)
        #expect(payload["error"]?["type"] == .string(anthropicType))
        #expect(payload["error"]?["message"]?.stringValue?.hasPrefix("upstream: ") == true)
        #expect(translator.feed(Array(StreamFixtures.openAIDelta(#"{"content":"more"}"#).utf8)).isEmpty)
        #expect(try translator.finish().isEmpty)
    }
}

// MARK: - Anthropic upstream → OpenAI client

@Suite("Stream translation: Anthropic upstream → OpenAI client")
struct TranslationAnthropicToOpenAIStreamTests {
    @Test("a text stream becomes chunks with one id, role first, finish_reason, a usage chunk and [DONE]", arguments: ByteChunking.allCases)
    func text(chunking: ByteChunking) throws {
        let result = translateStream(StreamFixtures.anthropicText, upstream: .anthropicMessages, client: .openAIChat, includeUsage: true, chunking: chunking)
        #expect(result.finishError == nil)
        #expect(result.translator.isCompleted)
        #expect(result.events.last?.isDoneMarker == true)
        let chunks = try result.payloads()
        #expect(chunks.count == 5)
        for chunk in chunks {
            #expect(chunk["id"] == "chatcmpl-01XFDUDYJgAACzvnptvVoYEL")
            #expect(chunk["object"] == "chat.completion.chunk")
            #expect(chunk["created"] == 1_700_000_000)
            #expect(chunk["model"] == "client-model")
        }
        let header = #""id":"chatcmpl-01XFDUDYJgAACzvnptvVoYEL","object":"chat.completion.chunk","created":1700000000,"model":"client-model""#
        try expectSameJSON(chunks[0], #"{\#(header),"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}"#)
        try expectSameJSON(chunks[1], #"{\#(header),"choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}"#)
        try expectSameJSON(chunks[2], #"{\#(header),"choices":[{"index":0,"delta":{"content":" wörld 🌍"},"logprobs":null,"finish_reason":null}],"usage":null}"#)
        try expectSameJSON(chunks[3], #"{\#(header),"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}"#)
        try expectSameJSON(chunks[4], #"""
            {\#(header),"choices":[],
             "usage":{"prompt_tokens":2572,"completion_tokens":15,"total_tokens":2587,"prompt_tokens_details":{"cached_tokens":2000}}}
            """#)
        #expect(result.bytes == translateStream(StreamFixtures.anthropicText, upstream: .anthropicMessages, client: .openAIChat).bytes)
        if chunking == .lineAligned { #expect(result.nonEmptyFeeds == 4) }
    }

    @Test("without include_usage there is no usage chunk and no usage field")
    func withoutUsage() throws {
        let result = translateStream(StreamFixtures.anthropicText, upstream: .anthropicMessages, client: .openAIChat, includeUsage: false)
        let chunks = try result.payloads()
        #expect(chunks.count == 4)
        #expect(chunks.allSatisfy { $0["usage"] == nil })
        #expect(result.events.last?.isDoneMarker == true)
    }

    @Test("thinking, text and tool calls become reasoning_content, content and tool_calls deltas", arguments: ByteChunking.allCases)
    func thinkingAndTools(chunking: ByteChunking) throws {
        let result = translateStream(StreamFixtures.anthropicThinkingAndTools, upstream: .anthropicMessages, client: .openAIChat, includeUsage: false, chunking: chunking)
        #expect(result.translator.isCompleted)
        let deltas = try result.payloads().map { $0["choices"]?[0]?["delta"] ?? .null }
        let expected = [
            #"{"role":"assistant","content":""}"#,
            #"{"reasoning_content":"I need the weather."}"#,
            #"{"content":"Let me check."}"#,
            #"{"tool_calls":[{"index":0,"id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","type":"function","function":{"name":"get_weather","arguments":""}}]}"#,
            #"{"tool_calls":[{"index":0,"function":{"arguments":"{\"location\": \"San Fra"}}]}"#,
            #"{"tool_calls":[{"index":0,"function":{"arguments":"ncisco, CA\"}"}}]}"#,
            #"{"tool_calls":[{"index":1,"id":"toolu_02","type":"function","function":{"name":"get_time","arguments":""}}]}"#,
            #"{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]}"#,
            #"{}"#,
        ]
        #expect(deltas.count == expected.count)
        for (delta, text) in zip(deltas, expected) { try expectSameJSON(delta, text) }
        #expect(try result.payloads().last?["choices"]?[0]?["finish_reason"] == "tool_calls")
    }

    @Test("stop reasons become finish reasons", arguments: [("max_tokens", "length"), ("stop_sequence", "stop"), ("refusal", "content_filter")])
    func stopReasons(stop: String, finish: String) throws {
        let upstream =
            StreamFixtures.anthropicStart
            + StreamFixtures.anthropicEvent("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"\#(stop)","stop_sequence":null},"usage":{"output_tokens":3}}"#)
            + StreamFixtures.anthropicEvent("message_stop", #"{"type":"message_stop"}"#)
        let result = translateStream(upstream, upstream: .anthropicMessages, client: .openAIChat, includeUsage: false)
        #expect(try result.payloads().last?["choices"]?[0]?["finish_reason"] == .string(finish))
    }

    @Test("an error event mid-stream becomes an OpenAI error chunk and ends the stream")
    func midStreamError() throws {
        let upstream =
            StreamFixtures.anthropicStart
            + StreamFixtures.anthropicEvent("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#)
            + StreamFixtures.anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#)
            + StreamFixtures.anthropicEvent("error", #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)
        let result = translateStream(upstream, upstream: .anthropicMessages, client: .openAIChat)
        #expect(result.finishError == nil)
        #expect(result.translator.failure?.kind == .overloaded)
        let last = try #require(try result.payloads().last)
        #expect(last["error"]?["message"] == "upstream: Overloaded")
        #expect(last["error"]?["type"] == "server_error")
        #expect(!result.events.contains { $0.isDoneMarker })
    }

    @Test("a stream that ends before message_stop fails at end of file", arguments: ByteChunking.allCases)
    func truncated(chunking: ByteChunking) {
        let upstream = StreamFixtures.anthropicText.droppingLast(StreamFixtures.anthropicEvent("message_stop", #"{"type":"message_stop"}"#).count)
        let result = translateStream(upstream, upstream: .anthropicMessages, client: .openAIChat, chunking: chunking)
        #expect(result.finishError?.code == "upstream_stream_truncated")
        #expect(result.translator.failure != nil)
        #expect(!result.events.contains { $0.isDoneMarker })
    }

    @Test("a final event without its blank line is still accepted at end of file")
    func missingFinalBlankLine() {
        let result = translateStream(StreamFixtures.anthropicText.droppingLast(1), upstream: .anthropicMessages, client: .openAIChat)
        #expect(result.finishError == nil)
        #expect(result.translator.isCompleted)
        #expect(result.events.last?.isDoneMarker == true)
    }
}

// MARK: - Same-dialect pass-through

@Suite("Stream pass-through in the same dialect")
struct TranslationStreamPassThroughTests {
    @Test("OpenAI chunks pass through with only the model renamed", arguments: ByteChunking.allCases)
    func openAI(chunking: ByteChunking) {
        let result = translateStream(StreamFixtures.openAIText, upstream: .openAIChat, client: .openAIChat, clientModel: "gpt-4o", chunking: chunking)
        #expect(result.translator.isCompleted)
        let renamed = StreamFixtures.openAIText.split(separator: "gpt-4o-2024-08-06", omittingEmptySubsequences: false).joined(separator: "gpt-4o")
        #expect(String(decoding: result.bytes, as: UTF8.self) == renamed)
    }

    @Test("a chunk spelled with spaces is renamed too, and a chunk without a model is left alone")
    func openAISpacedChunks() throws {
        let upstream = """
            data: {"id": "c1", "model": "llama", "choices": [{"index": 0, "delta": {"content": "model: \\"llama\\""}, "finish_reason": null}]}

            data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

            data: [DONE]


            """
        let result = translateStream(upstream, upstream: .openAIChat, client: .openAIChat, clientModel: "my-llama")
        #expect(result.translator.isCompleted)
        let chunks = try result.payloads()
        #expect(chunks[0]["model"] == "my-llama")
        #expect(chunks[0]["choices"]?[0]?["delta"]?["content"] == #"model: "llama""#)
        #expect(chunks[1]["model"] == nil)
        #expect(result.events.last?.isDoneMarker == true)
    }

    @Test("Anthropic events pass through with only message_start's model renamed", arguments: ByteChunking.allCases)
    func anthropic(chunking: ByteChunking) {
        let result = translateStream(StreamFixtures.anthropicThinkingAndTools, upstream: .anthropicMessages, client: .anthropicMessages, clientModel: "claude-x", chunking: chunking)
        #expect(result.translator.isCompleted)
        let renamed = StreamFixtures.anthropicThinkingAndTools.split(separator: "claude-sonnet-4-5-20250929", omittingEmptySubsequences: false)
            .joined(separator: "claude-x")
        #expect(String(decoding: result.bytes, as: UTF8.self) == renamed)
    }

    @Test("pass-through still detects truncation")
    func truncation() {
        let openAI = translateStream(StreamFixtures.openAIText.droppingLast("data: [DONE]\n\n".count), upstream: .openAIChat, client: .openAIChat)
        #expect(openAI.finishError?.code == "upstream_stream_truncated")
        let openAIUnfinished = translateStream(StreamFixtures.openAIDelta(#"{"content":"x"}"#) + "data: [DONE]\n\n", upstream: .openAIChat, client: .openAIChat)
        #expect(openAIUnfinished.translator.failure?.code == "upstream_stream_truncated")
        #expect(!openAIUnfinished.events.contains { $0.isDoneMarker })
        let anthropic = translateStream(String(StreamFixtures.anthropicText.prefix(600)), upstream: .anthropicMessages, client: .anthropicMessages)
        #expect(anthropic.finishError?.code == "upstream_stream_truncated")
    }

    @Test("pass-through turns upstream error events into the client's error event")
    func errors() throws {
        let alcf = StreamFixtures.openAIDelta(#"{"content":"x"}"#)
            + #"data: {"object":"error","message":"An error occurred during processing","type":"InternalServerError","param":null,"code":500}"# + "\n\ndata: [DONE]\n\n"
        let openAI = translateStream(alcf, upstream: .openAIChat, client: .openAIChat)
        #expect(openAI.translator.failure?.status == 500)
        #expect(try openAI.payloads().last?["error"]?["message"] == "upstream: An error occurred during processing")
        #expect(!openAI.events.contains { $0.isDoneMarker })

        let anthropicError = StreamFixtures.anthropicStart
            + StreamFixtures.anthropicEvent("error", #"{"type":"error","error":{"type":"rate_limit_error","message":"quota exceeded"}}"#)
        let anthropic = translateStream(anthropicError, upstream: .anthropicMessages, client: .anthropicMessages)
        #expect(anthropic.translator.failure?.kind == .rateLimited)
        #expect(anthropic.eventNames == ["message_start", "error"])
        #expect(try anthropic.payloads().last?["error"]?["type"] == "rate_limit_error")
    }

    @Test("input after completion is ignored")
    func afterCompletion() throws {
        var translator = StreamTranslator(upstream: .anthropicMessages, client: .anthropicMessages, clientModel: "c", includeUsage: true)
        _ = translator.feed(Array(StreamFixtures.anthropicText.utf8))
        #expect(translator.isCompleted)
        #expect(translator.feed(Array("event: ping\ndata: {}\n\n".utf8)).isEmpty)
        #expect(try translator.finish().isEmpty)
    }
}
