import Testing
@testable import TenantGateway

private func config(_ yaml: String) throws -> GatewayConfig {
    try GatewayConfig.parse(yaml: yaml, file: "test.yaml", environment: [:])
}

private let aliasConfig = """
providers:
  oai: {type: openai_chat, base_url: "http://o/v1"}
  ant: {type: anthropic, base_url: "http://a"}
models:
  gpt-5: {provider: oai}
  claude-sonnet-4: {provider: ant}
  gemini-pro: {provider: oai, vendor: google}
  Mixed: {provider: oai}
  mixed: {provider: ant}
"""

@Suite("Model aliases")
struct ModelAliasTests {
    @Test("bare, vendor-prefixed and case-insensitive names reach the model")
    func forms() throws {
        let catalog = ModelCatalog(config: try config(aliasConfig))
        #expect(try catalog.resolve("gpt-5").model.alias == "gpt-5")
        #expect(try catalog.resolve("openai/gpt-5").model.alias == "gpt-5")
        #expect(try catalog.resolve("OpenAI/GPT-5").model.alias == "gpt-5")
        #expect(try catalog.resolve("anthropic/claude-sonnet-4").model.alias == "claude-sonnet-4")
        #expect(try catalog.resolve("CLAUDE-SONNET-4").model.alias == "claude-sonnet-4")
        #expect(try catalog.resolve("google/gemini-pro").model.alias == "gemini-pro")
    }

    @Test("another vendor's prefix does not match")
    func wrongVendor() throws {
        let catalog = ModelCatalog(config: try config(aliasConfig))
        for name in ["anthropic/gpt-5", "google/gpt-5", "openai/claude-sonnet-4", "openai/gemini-pro"] {
            let error = expectGatewayError { () throws(GatewayError) in _ = try catalog.resolve(name) }
            #expect(error?.status == 404, "\(name)")
        }
    }

    @Test("an ambiguous case-insensitive name is a 400 listing the candidates; exact names still win")
    func ambiguous() throws {
        let catalog = ModelCatalog(config: try config(aliasConfig))
        #expect(try catalog.resolve("Mixed").provider.name == "oai")
        #expect(try catalog.resolve("mixed").provider.name == "ant")
        let error = expectGatewayError { () throws(GatewayError) in _ = try catalog.resolve("MIXED") }
        #expect(error?.status == 400)
        #expect(error?.code == "ambiguous_model")
        #expect(error?.message.contains("Mixed, mixed") == true)
        // the vendor prefix disambiguates
        #expect(try catalog.resolve("openai/MIXED").provider.name == "oai")
        #expect(try catalog.resolve("anthropic/MIXED").provider.name == "ant")
    }

    @Test("the model list carries the bare and the vendor-prefixed ids")
    func listedNames() throws {
        let catalog = ModelCatalog(config: try config(aliasConfig))
        let names = catalog.models.flatMap(catalog.listedNames(of:))
        #expect(names.contains("gpt-5") && names.contains("openai/gpt-5"))
        #expect(names.contains("anthropic/claude-sonnet-4") && names.contains("google/gemini-pro"))
        #expect(!names.contains("openai/gemini-pro"))
    }

    @Test("an unknown vendor is a config error")
    func unknownVendor() {
        #expect(throws: ConfigError.self) {
            _ = try config("providers:\n  o: {type: openai_chat, base_url: \"http://o\"}\nmodels:\n  m: {provider: o, vendor: meta}\n")
        }
    }
}

@Suite("Capability checks")
struct CapabilityCheckTests {
    func model(_ capabilities: Set<ModelCapability>) -> ModelConfig {
        ModelConfig(alias: "m", provider: "p", upstreamModel: "m", capabilities: capabilities, defaultMaxTokens: 100)
    }

    static let images = [
        #"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x/i.png"}}]}]}"#,
        #"{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"http://x"}}]}]}"#,
        #"{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{"type":"url","url":"u"}}]}]}]}"#,
        #"{"input":[{"role":"user","content":[{"type":"input_image","image_url":"http://x"}]}]}"#,
        #"{"contents":[{"role":"user","parts":[{"inlineData":{"mimeType":"image/png","data":"AAAA"}}]}]}"#,
    ]

    @Test("an image to a model without vision is refused", arguments: images)
    func imageRefused(body: String) throws {
        let json = try jsonFixture(body)
        let error = expectGatewayError { () throws(GatewayError) in try CapabilityCheck.requireCapabilities(of: json, model: model([.text])) }
        #expect(error?.status == 400)
        #expect(error?.code == "model_lacks_vision")
        try CapabilityCheck.requireCapabilities(of: json, model: model([.text, .vision]))
        try CapabilityCheck.requireCapabilities(of: json, model: model([]))
    }

    @Test("tool inputs that look like images are not images")
    func toolInputIgnored() throws {
        let json = try jsonFixture(#"{"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"n","input":{"type":"image"}}]}]}"#)
        try CapabilityCheck.requireCapabilities(of: json, model: model([.text]))
    }

    @Test("tools to a model without the tools capability are refused")
    func toolsRefused() throws {
        let json = try jsonFixture(#"{"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"a","input_schema":{"type":"object"}}]}"#)
        let error = expectGatewayError { () throws(GatewayError) in try CapabilityCheck.requireCapabilities(of: json, model: model([.text, .vision])) }
        #expect(error?.code == "model_lacks_tools")
        try CapabilityCheck.requireCapabilities(of: json, model: model([.text, .tools]))
        try CapabilityCheck.requireCapabilities(of: json, model: model([]))
    }
}

@Suite("Transforms")
struct TransformTests {
    func plan(_ actions: TransformAction...) -> TransformPlan { TransformPlan(actions: actions) }
    func path(_ text: String) -> FieldPath { FieldPath(text)! }

    @Test("field paths parse keys and [] steps and reject malformed ones")
    func paths() {
        #expect(FieldPath("messages[].name")?.steps == [.key("messages"), .each, .key("name")])
        #expect(FieldPath("a.b")?.steps == [.key("a"), .key("b")])
        for bad in ["", "a.", "a[]", "a[0].b", ".a"] { #expect(FieldPath(bad) == nil, "\(bad)") }
    }

    @Test("glob and regex patterns match model names")
    func patterns() {
        #expect(ModelNamePattern.glob("gpt-5*").matches("GPT-5.1-mini"))
        #expect(!ModelNamePattern.glob("gpt-5*").matches("gpt-4o"))
        #expect(ModelNamePattern.glob("*-mini").matches("o4-mini"))
        #expect(ModelNamePattern.glob("o?-*").matches("o3-pro"))
        #expect(ModelNamePattern.regex("claude-(opus|sonnet)-4.*").matches("claude-opus-4-1"))
        #expect(!ModelNamePattern.regex("opus").matches("claude-opus-4"))
        #expect(ModelNamePattern.regex("(").problem != nil)
    }

    @Test("rename, drop, clamp and default edit the request")
    func fieldEdits() throws {
        var body = try jsonFixture(#"{"max_tokens":100,"temperature":1.7,"top_p":0.5,"messages":[{"role":"user","name":"x","content":"hi"}]}"#)
        _ = try plan(
            .rename(field: path("max_tokens"), to: "max_completion_tokens", on: .request),
            .drop(field: path("top_p"), on: .request),
            .drop(field: path("messages[].name"), on: .request),
            .clamp(field: path("temperature"), min: 0, max: 1, on: .request),
            .setDefault(field: path("stream_options.include_usage"), value: true, on: .request),
            .setDefault(field: path("seed"), value: 7, on: .request),
            .setDefault(field: path("max_completion_tokens"), value: 5, on: .request),
            .drop(field: path("temperature"), on: .response)
        ).applyToRequest(&body)
        try expectSameJSON(body, #"{"max_completion_tokens":100,"temperature":1,"messages":[{"role":"user","content":"hi"}],"seed":7}"#)
    }

    @Test("roles are rewritten and list content is flattened")
    func rolesAndFlatten() throws {
        var body = try jsonFixture(#"{"messages":[{"role":"developer","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},{"role":"user","content":[{"type":"text","text":"c"}]}]}"#)
        _ = try plan(.rewriteRole(from: "developer", to: "system"), .flattenContent(roles: ["system", "tool"], separator: "\n")).applyToRequest(&body)
        try expectSameJSON(body, #"{"messages":[{"role":"system","content":"a\nb"},{"role":"user","content":[{"type":"text","text":"c"}]}]}"#)
    }

    @Test("flattening a non-text part is refused, not dropped")
    func flattenRefusesImages() throws {
        var body = try jsonFixture(#"{"messages":[{"role":"tool","tool_call_id":"t","content":[{"type":"image_url","image_url":{"url":"u"}}]}]}"#)
        let error = expectGatewayError { () throws(GatewayError) in _ = try plan(.flattenContent(roles: ["tool"], separator: "")).applyToRequest(&body) }
        #expect(error?.code == "content_not_flattenable")
    }

    @Test("more images than the cap is a 400 naming the cap")
    func imageCap() throws {
        var body = try jsonFixture(#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"a"}},{"type":"image_url","image_url":{"url":"b"}}]}]}"#)
        _ = try plan(.maxImages(2)).applyToRequest(&body)
        let error = expectGatewayError { () throws(GatewayError) in _ = try plan(.maxImages(1)).applyToRequest(&body) }
        #expect(error?.status == 400)
        #expect(error?.message.contains("at most 1 image") == true)
    }

    @Test("long tool descriptions are truncated in every tool format and noted")
    func truncation() throws {
        var body = try jsonFixture(#"{"tools":[{"type":"function","function":{"name":"f","description":"abcdef"}},{"name":"g","description":"abc"},{"functionDeclarations":[{"name":"h","description":"abcdefgh"}]}]}"#)
        let notes = try plan(.truncateToolDescriptions(maxCharacters: 4)).applyToRequest(&body)
        try expectSameJSON(body, #"{"tools":[{"type":"function","function":{"name":"f","description":"abcd"}},{"name":"g","description":"abc"},{"functionDeclarations":[{"name":"h","description":"abcd"}]}]}"#)
        #expect(notes.count == 2)
        #expect(notes[0].contains("'f'"))
    }

    @Test("force_stream asks the upstream for a stream, with usage for OpenAI")
    func forceStream() throws {
        let call = UpstreamCall(body: Array(#"{"model":"m","messages":[]}"#.utf8), stream: false, includeUsage: false)
        let result = try plan(.forceStream).transformRequest(call, upstream: .openAIChat)
        #expect(result.call.stream)
        try expectSameJSON(try jsonFixture(result.call.body), #"{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}"#)
    }

    @Test("response actions edit whole responses and each stream event")
    func responseEdits() throws {
        let edits = plan(.drop(field: path("choices[].logprobs"), on: .response), .rename(field: path("usage.total"), to: "total_tokens", on: .response))
        let whole = edits.transformResponse(Array(#"{"choices":[{"logprobs":null,"index":0}],"usage":{"total":3}}"#.utf8))
        try expectSameJSON(try jsonFixture(whole), #"{"choices":[{"index":0}],"usage":{"total_tokens":3}}"#)
        var transformer = StreamChunkTransformer(plan: edits)
        let stream = "data: {\"choices\":[{\"logprobs\":1}]}\n\ndata: [DONE]\n\n"
        var output = ByteChunking.byteByByte.split(Array(stream.utf8)).flatMap { transformer.feed($0) }
        output += transformer.finish()
        #expect(String(decoding: output, as: UTF8.self) == "data: {\"choices\":[{}]}\n\ndata: [DONE]\n\n")
    }

    @Test("rules match by provider, provider type and model pattern; built-in rules come first")
    func catalogMatching() {
        let builtIn = TransformRule(match: TransformMatch(providerType: .openAIChat), actions: [.forceStream])
        let admin = TransformRule(match: TransformMatch(provider: "argo", model: .glob("gpt-*")), actions: [.maxImages(1)])
        let catalog = TransformCatalog(configured: [admin], builtIn: [builtIn])
        #expect(catalog.plan(provider: "argo", providerType: .openAIChat, upstreamModel: "gpt-4o").actions == [.forceStream, .maxImages(1)])
        #expect(catalog.plan(provider: "argo", providerType: .openAIChat, upstreamModel: "claude").actions == [.forceStream])
        #expect(catalog.plan(provider: "argo", providerType: .anthropic, upstreamModel: "gpt-4o").actions == [.maxImages(1)])
        #expect(catalog.plan(provider: "other", providerType: .anthropic, upstreamModel: "gpt-4o").isEmpty)
    }

    @Test("the admin's transforms section parses every action kind")
    func configSection() throws {
        let parsed = try config("""
        providers:
          argo: {type: openai_chat, base_url: "http://a/v1"}
        transforms:
          - match: {provider: argo, model: "gpt-5*"}
            apply:
              - rename: {field: max_tokens, to: max_completion_tokens}
              - drop: temperature
              - drop: {field: usage.extra, on: response}
              - clamp: {field: top_p, min: 0, max: 1}
              - default: {field: metadata, value: {source: rosetta, n: 2}}
              - default: {field: user, value: "42"}
              - rewrite_role: {from: developer, to: system}
              - flatten_content: [system, tool]
              - max_images: 0
              - truncate_tool_descriptions: 1024
              - force_stream: true
          - match: {provider_type: anthropic, model_regex: "claude-.*"}
            apply: [{drop: top_k}]
        """)
        #expect(parsed.transforms.count == 2)
        #expect(parsed.transforms[0].match == TransformMatch(provider: "argo", model: .glob("gpt-5*")))
        #expect(parsed.transforms[0].actions == [
            .rename(field: path("max_tokens"), to: "max_completion_tokens", on: .request),
            .drop(field: path("temperature"), on: .request),
            .drop(field: path("usage.extra"), on: .response),
            .clamp(field: path("top_p"), min: 0, max: 1, on: .request),
            .setDefault(field: path("metadata"), value: ["source": "rosetta", "n": 2], on: .request),
            .setDefault(field: path("user"), value: "42", on: .request),
            .rewriteRole(from: "developer", to: "system"),
            .flattenContent(roles: ["system", "tool"], separator: "\n\n"),
            .maxImages(0),
            .truncateToolDescriptions(maxCharacters: 1024),
            .forceStream,
        ])
        #expect(parsed.transforms[1].match == TransformMatch(providerType: .anthropic, model: .regex("claude-.*")))
    }

    @Test("malformed transform rules are config errors with a line", arguments: [
        "transforms:\n  - apply: [{explode: x}]\n",
        "transforms:\n  - match: {model_regex: \"(\"}\n    apply: [{drop: a}]\n",
        "transforms:\n  - match: {provider: p}\n",
        "transforms:\n  - apply: [{clamp: {field: a}}]\n",
        "transforms:\n  - apply: [{rename: {field: a, to: b.c}}]\n",
        "transforms:\n  - apply: [{drop: \"a[0]\"}]\n",
    ])
    func configErrors(yaml: String) {
        do {
            _ = try config(yaml)
            Issue.record("expected a config error")
        } catch {
            #expect((error as? ConfigError)?.line != nil, "\(error)")
        }
    }
}

@Suite("Stream aggregation")
struct StreamAggregatorTests {
    static let openAIStream = [
        #"data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}"#,
        #"data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"lo"}}]}"#,
        #"data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}}]}"#,
        #"data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}}]}"#,
        #"data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        #"data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}"#,
        "data: [DONE]",
    ].joined(separator: "\n\n") + "\n\n"

    @Test("an OpenAI stream becomes one response however it is chunked", arguments: ByteChunking.allCases)
    func openAI(chunking: ByteChunking) throws {
        var aggregator = StreamAggregator(upstream: .openAIChat, model: "client")
        for chunk in chunking.split(Array(Self.openAIStream.utf8)) { aggregator.feed(chunk) }
        let response = try aggregator.finish()
        #expect(response.id == "c1")
        #expect(response.content == [.text("Hello"), .toolCall(ToolCall(id: "call_1", name: "f", arguments: #"{"a":1}"#))])
        #expect(response.finishReason == .toolCalls)
        #expect(response.usage?.inputTokens == 5 && response.usage?.outputTokens == 3)
    }

    @Test("an Anthropic stream keeps thinking with its signature")
    func anthropic() throws {
        let events = [
            ("message_start", #"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[],"stop_reason":null,"usage":{"input_tokens":4,"output_tokens":1}}}"#),
            ("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#),
            ("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#),
            ("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig"}}"#),
            ("content_block_stop", #"{"type":"content_block_stop","index":0}"#),
            ("content_block_start", #"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#),
            ("content_block_delta", #"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"ok"}}"#),
            ("content_block_stop", #"{"type":"content_block_stop","index":1}"#),
            ("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":9}}"#),
            ("message_stop", #"{"type":"message_stop"}"#),
        ]
        var aggregator = StreamAggregator(upstream: .anthropicMessages, model: "client")
        aggregator.feed(Array(events.map { "event: \($0.0)\ndata: \($0.1)\n\n" }.joined().utf8))
        let response = try aggregator.finish()
        #expect(response.content == [.reasoning(Reasoning(text: "hmm", signature: "sig")), .text("ok")])
        #expect(response.finishReason == .stop)
        #expect(response.usage?.outputTokens == 9)
    }

    @Test("a stream cut short is an error, not a partial answer")
    func truncated() {
        var aggregator = StreamAggregator(upstream: .openAIChat, model: "client")
        aggregator.feed(Array(Self.openAIStream.utf8.prefix(300)))
        let error = expectGatewayError { () throws(GatewayError) in _ = try aggregator.finish() }
        #expect(error?.kind == .upstream)
    }
}

@Suite("Token estimate")
struct TokenEstimateTests {
    @Test("text, messages, tools and images add up as documented")
    func estimate() {
        let plain = ChatRequest(model: "m", messages: [ChatMessage(role: .user, parts: [.text("abcdefgh")])])
        #expect(TokenEstimate.inputTokens(of: plain) == TokenEstimate.perMessage + 2)
        var rich = plain
        rich.system = ["abcd"]
        rich.messages.append(ChatMessage(role: .user, parts: [.image(.url("u"))]))
        rich.tools = [ToolDefinition(name: "f", parameters: ["type": "object"])]
        let expected = TokenEstimate.perMessage + 2 + TokenEstimate.perSystemPrompt + 1 + TokenEstimate.perMessage + TokenEstimate.perImage
            + TokenEstimate.toolUsePrompt + TokenEstimate.perTool + 1 + TokenEstimate.textTokens(#"{"type":"object"}"#)
        #expect(TokenEstimate.inputTokens(of: rich) == expected)
        #expect(TokenEstimate.textTokens("日本語") == 3)
    }
}
