import Testing

import TenantGateway

@Suite("Request translation: OpenAI Chat client → Anthropic upstream")
struct TranslationOpenAIToAnthropicRequestTests {
    @Test("a full tool-using conversation maps roles, parts, tools and settings")
    func fullConversation() throws {
        let client = #"""
            {
              "model": "claude-sonnet",
              "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                {"role": "user", "content": [
                  {"type": "text", "text": "What is in this image?"},
                  {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
                  {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
                ]},
                {"role": "assistant", "content": "Let me check the weather.", "tool_calls": [
                  {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                  {"id": "call_def", "type": "function", "function": {"name": "get_time", "arguments": ""}}
                ]},
                {"role": "tool", "tool_call_id": "call_abc", "content": "18°C"},
                {"role": "tool", "tool_call_id": "call_def", "content": [{"type": "text", "text": "14:00"}]},
                {"role": "user", "content": "Thanks, and tomorrow?"}
              ],
              "tools": [
                {"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                  "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, "strict": true}},
                {"type": "function", "function": {"name": "get_time"}}
              ],
              "tool_choice": "required",
              "parallel_tool_calls": false,
              "stop": "END",
              "temperature": 0.2,
              "top_p": 0.9,
              "max_completion_tokens": 1024,
              "user": "user-123",
              "stream": true,
              "stream_options": {"include_usage": true},
              "store": false,
              "service_tier": "auto",
              "seed": 7
            }
            """#
        let (body, call) = try upstreamBody(client, client: .openAIChat, upstream: .anthropicMessages)
        #expect(call.stream)
        #expect(call.includeUsage)
        try expectSameJSON(body, #"""
            {
              "model": "upstream-model",
              "max_tokens": 1024,
              "system": [{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Answer in French."}],
              "messages": [
                {"role": "user", "content": [
                  {"type": "text", "text": "What is in this image?"},
                  {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                  {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
                ]},
                {"role": "assistant", "content": [
                  {"type": "text", "text": "Let me check the weather."},
                  {"type": "tool_use", "id": "call_abc", "name": "get_weather", "input": {"city": "Paris"}},
                  {"type": "tool_use", "id": "call_def", "name": "get_time", "input": {}}
                ]},
                {"role": "user", "content": [
                  {"type": "tool_result", "tool_use_id": "call_abc", "content": "18°C"},
                  {"type": "tool_result", "tool_use_id": "call_def", "content": "14:00"},
                  {"type": "text", "text": "Thanks, and tomorrow?"}
                ]}
              ],
              "tools": [
                {"name": "get_weather", "description": "Current weather",
                  "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
                {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
              ],
              "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
              "stop_sequences": ["END"],
              "temperature": 0.2,
              "top_p": 0.9,
              "metadata": {"user_id": "user-123"},
              "stream": true
            }
            """#)
    }

    @Test("consecutive turns of one role merge, a mid-conversation system message is hoisted, empty text is dropped")
    func mergingAndHoisting() throws {
        let client = #"""
            {"model": "m", "messages": [
              {"role": "user", "content": "first"},
              {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "text", "text": ""}]},
              {"role": "assistant", "content": "one"},
              {"role": "system", "content": "Late instruction."},
              {"role": "assistant", "content": ""},
              {"role": "assistant", "content": "two"},
              {"role": "user", "content": "third"}
            ]}
            """#
        let (body, call) = try upstreamBody(client, client: .openAIChat, upstream: .anthropicMessages)
        #expect(!call.stream)
        #expect(!call.includeUsage)
        try expectSameJSON(body, #"""
            {"model": "upstream-model", "max_tokens": 4096, "system": "Late instruction.", "messages": [
              {"role": "user", "content": [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]},
              {"role": "assistant", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
              {"role": "user", "content": "third"}
            ]}
            """#)
    }

    @Test("max tokens: max_completion_tokens wins over max_tokens; the caller's default fills an absent limit")
    func maxTokens() throws {
        let both = #"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":50,"max_completion_tokens":70}"#
        #expect(try upstreamBody(both, client: .openAIChat, upstream: .anthropicMessages).body["max_tokens"] == 70)
        let legacy = #"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":50}"#
        #expect(try upstreamBody(legacy, client: .openAIChat, upstream: .anthropicMessages).body["max_tokens"] == 50)
        let none = #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#
        #expect(try upstreamBody(none, client: .openAIChat, upstream: .anthropicMessages, defaultMaxTokens: 8192).body["max_tokens"] == 8192)
    }

    @Test("stop as an array becomes stop_sequences; an explicit null is the same as absent")
    func stopSequences() throws {
        let array = #"{"model":"m","messages":[{"role":"user","content":"hi"}],"stop":["\n\n","END"],"temperature":null}"#
        let body = try upstreamBody(array, client: .openAIChat, upstream: .anthropicMessages).body
        #expect(body["stop_sequences"] == ["\n\n", "END"])
        #expect(body["temperature"] == nil)
    }

    @Test("tool_choice maps auto, none and a named function; without tools it is dropped", arguments: [
        (#""auto""#, #"{"type":"auto"}"#),
        (#""none""#, #"{"type":"none"}"#),
        (#"{"type":"function","function":{"name":"get_weather"}}"#, #"{"type":"tool","name":"get_weather"}"#),
    ])
    func toolChoice(openAI: String, anthropic: String) throws {
        let client = """
            {"model":"m","messages":[{"role":"user","content":"hi"}],"tool_choice":\(openAI),
             "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{}}}}]}
            """
        try expectSameJSON(try upstreamBody(client, client: .openAIChat, upstream: .anthropicMessages).body["tool_choice"] ?? .null, anthropic)
        let withoutTools = #"{"model":"m","messages":[{"role":"user","content":"hi"}],"tool_choice":"none","parallel_tool_calls":false}"#
        let body = try upstreamBody(withoutTools, client: .openAIChat, upstream: .anthropicMessages).body
        #expect(body["tool_choice"] == nil)
        #expect(body["tools"] == nil)
    }

    @Test("parallel_tool_calls false without tool_choice becomes auto with parallel use disabled")
    func parallelWithoutChoice() throws {
        let client = #"""
            {"model":"m","messages":[{"role":"user","content":"hi"}],"parallel_tool_calls":false,
             "tools":[{"type":"function","function":{"name":"f"}}]}
            """#
        try expectSameJSON(
            try upstreamBody(client, client: .openAIChat, upstream: .anthropicMessages).body["tool_choice"] ?? .null,
            #"{"type":"auto","disable_parallel_tool_use":true}"#)
    }

    @Test("reasoning_effort becomes a thinking budget; a defaulted max_tokens grows to fit it", arguments: [
        ("minimal", 1024, 4096), ("low", 2048, 4096), ("medium", 8192, 12288), ("high", 16384, 20480), ("xhigh", 32768, 36864),
    ])
    func reasoningEffort(effort: String, budget: Int, maxTokens: Int) throws {
        let client = #"{"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"\#(effort)"}"#
        let body = try upstreamBody(client, client: .openAIChat, upstream: .anthropicMessages, defaultMaxTokens: 4096).body
        try expectSameJSON(body["thinking"] ?? .null, #"{"type":"enabled","budget_tokens":\#(budget)}"#)
        #expect(body["max_tokens"] == JSON(maxTokens))
    }

    @Test("a client's own max tokens caps the thinking budget; too small a limit is refused")
    func reasoningWithClientLimit() throws {
        let roomy = #"{"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"high","max_completion_tokens":10000}"#
        let body = try upstreamBody(roomy, client: .openAIChat, upstream: .anthropicMessages).body
        try expectSameJSON(body["thinking"] ?? .null, #"{"type":"enabled","budget_tokens":9999}"#)
        #expect(body["max_tokens"] == 10000)

        let tight = #"{"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"low","max_tokens":1000}"#
        let error = try rejection(tight, client: .openAIChat, upstream: .anthropicMessages)
        #expect(error?.parameter == "reasoning_effort")
        #expect(error?.status == 400)
        #expect(error?.message.contains("1024") == true)

        let none = #"{"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"none"}"#
        #expect(try upstreamBody(none, client: .openAIChat, upstream: .anthropicMessages).body["thinking"] == nil)
    }

    @Test("with the adaptive thinking style, effort goes to output_config")
    func adaptiveThinking() throws {
        let client = try jsonFixture(#"{"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"xhigh"}"#)
        let call = try Translation.prepareRequest(
            client, client: .openAIChat, upstream: .anthropicMessages, upstreamModel: "claude-opus-4-8", defaultMaxTokens: 4096,
            thinkingStyle: .adaptive)
        let body = try jsonFixture(call.body)
        try expectSameJSON(body["thinking"] ?? .null, #"{"type":"adaptive"}"#)
        try expectSameJSON(body["output_config"] ?? .null, #"{"effort":"max"}"#)
        #expect(body["max_tokens"] == 4096)
    }

    @Test("signed reasoning from thinking_blocks goes back first; unsigned reasoning_content is dropped")
    func reasoningHistory() throws {
        let client = #"""
            {"model": "m", "reasoning_effort": "medium", "messages": [
              {"role": "user", "content": "What is 2+2?"},
              {"role": "assistant", "content": "4", "reasoning_content": "Simple arithmetic.",
               "thinking_blocks": [{"type": "thinking", "thinking": "Simple arithmetic.", "signature": "EqQBCkYIARgCIkB"},
                                   {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}]},
              {"role": "user", "content": "And 3+3?"},
              {"role": "assistant", "content": "6", "reasoning_content": "Also simple."},
              {"role": "user", "content": "Thanks"}
            ]}
            """#
        let body = try upstreamBody(client, client: .openAIChat, upstream: .anthropicMessages).body
        try expectSameJSON(body["messages"] ?? .null, #"""
            [
              {"role": "user", "content": "What is 2+2?"},
              {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Simple arithmetic.", "signature": "EqQBCkYIARgCIkB"},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
                {"type": "text", "text": "4"}
              ]},
              {"role": "user", "content": "And 3+3?"},
              {"role": "assistant", "content": [{"type": "text", "text": "6"}]},
              {"role": "user", "content": "Thanks"}
            ]
            """#)
        try expectSameJSON(body["thinking"] ?? .null, #"{"type":"enabled","budget_tokens":8192}"#)
    }

    @Test("thinking is left off when the last assistant turn called tools without signed reasoning")
    func thinkingOffInUnsignedToolLoop() throws {
        let client = #"""
            {"model": "m", "reasoning_effort": "high", "messages": [
              {"role": "user", "content": "Weather?"},
              {"role": "assistant", "content": null, "reasoning_content": "Call the tool.",
               "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
              {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
            ], "tools": [{"type": "function", "function": {"name": "weather"}}]}
            """#
        let body = try upstreamBody(client, client: .openAIChat, upstream: .anthropicMessages).body
        #expect(body["thinking"] == nil)
        try expectSameJSON(body["messages"]?[1] ?? .null, #"""
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "weather", "input": {}}]}
            """#)
    }

    @Test("top_k (an OpenAI-compatible extension) and safety_identifier are carried")
    func extensions() throws {
        let client = #"{"model":"m","messages":[{"role":"user","content":"hi"}],"top_k":40,"safety_identifier":"hash-1"}"#
        let body = try upstreamBody(client, client: .openAIChat, upstream: .anthropicMessages).body
        #expect(body["top_k"] == 40)
        try expectSameJSON(body["metadata"] ?? .null, #"{"user_id":"hash-1"}"#)
    }

    @Test("fields with no Anthropic equivalent are refused with a 400 naming them", arguments: [
        (#""n":2"#, "n"),
        (#""logprobs":true"#, "logprobs"),
        (#""top_logprobs":3"#, "top_logprobs"),
        (#""response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}}"#, "response_format"),
        (#""response_format":{"type":"json_object"}"#, "response_format"),
        (#""frequency_penalty":0.5"#, "frequency_penalty"),
        (#""presence_penalty":-1"#, "presence_penalty"),
        (#""logit_bias":{"50256":-100}"#, "logit_bias"),
        (#""audio":{"voice":"alloy","format":"wav"}"#, "audio"),
        (#""modalities":["text","audio"]"#, "modalities[1]"),
        (#""web_search_options":{}"#, "web_search_options"),
        (#""functions":[{"name":"f"}]"#, "functions"),
        (#""temperature":1.5"#, "temperature"),
        (#""tools":[{"type":"custom","custom":{"name":"grammar"}}]"#, "tools[0].type"),
        (#""tool_choice":{"type":"allowed_tools","allowed_tools":{}}"#, "tool_choice.type"),
    ])
    func untranslatableFields(field: String, parameter: String) throws {
        let client = #"{"model":"m","messages":[{"role":"user","content":"hi"}],\#(field)}"#
        let error = try rejection(client, client: .openAIChat, upstream: .anthropicMessages)
        #expect(error?.kind == .invalidRequest)
        #expect(error?.status == 400)
        #expect(error?.code == "unsupported_parameter")
        #expect(error?.parameter == parameter)
        #expect(error?.message.contains(parameter.split(separator: "[").first.map(String.init) ?? parameter) == true)
    }

    @Test("harmless neutral values are accepted", arguments: [
        #""n":1"#, #""logprobs":false"#, #""presence_penalty":0"#, #""frequency_penalty":0.0"#, #""logit_bias":{}"#,
        #""response_format":{"type":"text"}"#, #""modalities":["text"]"#, #""store":true"#, #""service_tier":"flex""#,
        #""metadata":{"k":"v"}"#, #""prediction":{"type":"content","content":"x"}"#, #""stream_options":{"include_usage":false}"#,
        #""verbosity":"low""#, #""prompt_cache_key":"k""#,
    ])
    func harmlessFields(field: String) throws {
        let client = #"{"model":"m","messages":[{"role":"user","content":"hi"}],\#(field)}"#
        _ = try upstreamBody(client, client: .openAIChat, upstream: .anthropicMessages)
    }

    @Test("malformed bodies give clear errors naming the parameter", arguments: [
        (#"[]"#, nil as String?, "invalid_type", "the request body must be a JSON object"),
        (#"{"messages":[{"role":"user","content":"hi"}]}"#, "model", "missing_required_parameter", "model is required"),
        (#"{"model":5,"messages":[]}"#, "model", "invalid_type", "model must be a string, but it is a number"),
        (#"{"model":"m"}"#, "messages", "missing_required_parameter", "messages is required"),
        (#"{"model":"m","messages":[]}"#, "messages", "invalid_value", "messages must contain at least one message"),
        (#"{"model":"m","messages":{}}"#, "messages", "invalid_type", "messages must be an array, but it is an object"),
        (#"{"model":"m","messages":["hi"]}"#, "messages[0]", "invalid_type", "messages[0] must be an object, but it is a string"),
        (#"{"model":"m","messages":[{"content":"hi"}]}"#, "messages[0].role", "missing_required_parameter", "messages[0].role is required"),
        (#"{"model":"m","messages":[{"role":"robot","content":"hi"}]}"#, "messages[0].role", "invalid_value", "messages[0].role must be one of"),
        (#"{"model":"m","messages":[{"role":"user"}]}"#, "messages[0].content", "missing_required_parameter", "messages[0].content is required"),
        (#"{"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":7}]}"#, "messages[1].content", "invalid_type", "messages[1].content must be a string or an array of content parts, but it is a number"),
        (#"{"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]}"#, "messages[0].content[0].text", "missing_required_parameter", "messages[0].content[0].text is required"),
        (#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"input_audio","input_audio":{}}]}]}"#, "messages[0].content[1].type", "unsupported_parameter", "input_audio"),
        (#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}"#, "messages[0].content[0].image_url.url", "invalid_value", "http(s) URL"),
        (#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}"#, "messages[0].content[0].image_url.url", "invalid_value", "base64"),
        (#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:text/plain;base64,aGk="}}]}]}"#, "messages[0].content[0].image_url.url", "invalid_value", "text/plain"),
        (#"{"model":"m","messages":[{"role":"function","name":"f","content":"x"}]}"#, "messages[0].role", "unsupported_parameter", "function"),
        (#"{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{not json"}}]}]}"#, "messages[1].tool_calls[0].function.arguments", "invalid_value", "not valid JSON"),
        (#"{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}"#, "messages[1].tool_calls[0].function.arguments", "invalid_value", "encodes an array"),
        (#"{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f"}}]}]}"#, "messages[1].tool_calls[0].id", "missing_required_parameter", "messages[1].tool_calls[0].id is required"),
        (#"{"model":"m","messages":[{"role":"user","content":"a"},{"role":"tool","content":"x"}]}"#, "messages[1].tool_call_id", "missing_required_parameter", "messages[1].tool_call_id is required"),
        (#"{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x"}}]}]}"#, "messages[0].content[0].type", "unsupported_parameter", "only text parts"),
        (#"{"model":"m","messages":[{"role":"user","content":"a"}],"max_tokens":0}"#, "max_tokens", "invalid_value", "max_tokens must be at least 1, but it is 0"),
        (#"{"model":"m","messages":[{"role":"user","content":"a"}],"max_completion_tokens":2.5}"#, "max_completion_tokens", "invalid_type", "must be an integer"),
        (#"{"model":"m","messages":[{"role":"user","content":"a"}],"temperature":3}"#, "temperature", "invalid_value", "temperature must be between 0 and 2, but it is 3"),
        (#"{"model":"m","messages":[{"role":"user","content":"a"}],"top_p":"high"}"#, "top_p", "invalid_type", "top_p must be a number, but it is a string"),
        (#"{"model":"m","messages":[{"role":"user","content":"a"}],"stop":[1]}"#, "stop[0]", "invalid_type", "stop[0] must be a string"),
        (#"{"model":"m","messages":[{"role":"user","content":"a"}],"stream":"yes"}"#, "stream", "invalid_type", "stream must be a boolean, but it is a string"),
        (#"{"model":"m","messages":[{"role":"user","content":"a"}],"tools":[{"type":"function"}]}"#, "tools[0].function", "missing_required_parameter", "tools[0].function is required"),
        (#"{"model":"m","messages":[{"role":"user","content":"a"}],"tools":[{"type":"function","function":{"name":"f","parameters":"x"}}]}"#, "tools[0].function.parameters", "invalid_type", "JSON schema"),
        (#"{"model":"m","messages":[{"role":"user","content":"a"}],"tool_choice":"sometimes"}"#, "tool_choice", "invalid_value", "sometimes"),
        (#"{"model":"m","messages":[{"role":"user","content":"a"}],"tool_choice":{"type":"function","function":{}}}"#, "tool_choice.function.name", "missing_required_parameter", "tool_choice.function.name is required"),
        (#"{"model":"m","messages":[{"role":"user","content":"a"}],"reasoning_effort":"extreme"}"#, "reasoning_effort", "invalid_value", "extreme"),
        (#"{"model":"m","messages":[{"role":"user","content":"a"}],"stream_options":{"include_usage":"yes"}}"#, "stream_options.include_usage", "invalid_type", "boolean"),
    ])
    func malformedBodies(body: String, parameter: String?, code: String, messageFragment: String) throws {
        let error = try rejection(body, client: .openAIChat, upstream: .anthropicMessages)
        #expect(error?.kind == .invalidRequest)
        #expect(error?.status == 400)
        #expect(error?.parameter == parameter)
        #expect(error?.code == code)
        #expect(error?.message.contains(messageFragment) == true, "message: \(error?.message ?? "none")")
    }

    @Test("the rejection reaches the client as an OpenAI error envelope naming the parameter")
    func rejectionEnvelope() throws {
        let error = try #require(try rejection(#"{"model":"m","messages":[{"role":"user","content":"a"}],"n":3}"#, client: .openAIChat, upstream: .anthropicMessages))
        let envelope = try jsonFixture(error.responseBody(in: .openAIChat))
        #expect(envelope["error"]?["type"] == "invalid_request_error")
        #expect(envelope["error"]?["param"] == "n")
        #expect(envelope["error"]?["code"] == "unsupported_parameter")
    }
}

@Suite("Request translation: Anthropic client → OpenAI Chat upstream")
struct TranslationAnthropicToOpenAIRequestTests {
    @Test("a Claude Code style tool loop maps system, thinking, tool use and tool results")
    func claudeCodeToolLoop() throws {
        let client = #"""
            {
              "model": "claude-sonnet-4-5",
              "max_tokens": 32000,
              "system": [
                {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Be concise."}
              ],
              "messages": [
                {"role": "user", "content": "List files"},
                {"role": "assistant", "content": [
                  {"type": "thinking", "thinking": "Need ls.", "signature": "sig-1"},
                  {"type": "text", "text": "I'll list them."},
                  {"type": "tool_use", "id": "toolu_01A", "name": "Bash", "input": {"command": "ls", "timeout": 1.50}}
                ]},
                {"role": "user", "content": [
                  {"type": "tool_result", "tool_use_id": "toolu_01A", "content": [{"type": "text", "text": "a.txt"}, {"type": "text", "text": "b.txt"}]},
                  {"type": "text", "text": "Now read a.txt", "cache_control": {"type": "ephemeral"}}
                ]}
              ],
              "tools": [
                {"name": "Bash", "description": "Run a command",
                 "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
                 "cache_control": {"type": "ephemeral"}}
              ],
              "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
              "thinking": {"type": "enabled", "budget_tokens": 10000},
              "stop_sequences": ["</done>"],
              "temperature": 1,
              "top_p": 0.95,
              "metadata": {"user_id": "user_abc_account_1_session_2"},
              "stream": true
            }
            """#
        let (body, call) = try upstreamBody(client, client: .anthropicMessages, upstream: .openAIChat, model: "gpt-5")
        #expect(call.stream)
        #expect(call.includeUsage)
        try expectSameJSON(body, #"""
            {
              "model": "gpt-5",
              "messages": [
                {"role": "system", "content": "You are Claude Code.\n\nBe concise."},
                {"role": "user", "content": "List files"},
                {"role": "assistant", "content": "I'll list them.", "reasoning_content": "Need ls.",
                 "tool_calls": [{"id": "toolu_01A", "type": "function", "function": {"name": "Bash", "arguments": "{\"command\":\"ls\",\"timeout\":1.50}"}}]},
                {"role": "tool", "tool_call_id": "toolu_01A", "content": "a.txt\nb.txt"},
                {"role": "user", "content": "Now read a.txt"}
              ],
              "tools": [{"type": "function", "function": {"name": "Bash", "description": "Run a command",
                "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}],
              "tool_choice": "required",
              "parallel_tool_calls": false,
              "max_completion_tokens": 32000,
              "temperature": 1,
              "top_p": 0.95,
              "stop": ["</done>"],
              "reasoning_effort": "medium",
              "user": "user_abc_account_1_session_2",
              "stream": true,
              "stream_options": {"include_usage": true}
            }
            """#)
    }

    @Test("images map to image_url parts; images returned by tools follow in a user message; errors are marked")
    func imagesAndToolErrors() throws {
        let client = #"""
            {"model": "m", "max_tokens": 100, "messages": [
              {"role": "user", "content": [
                {"type": "text", "text": "Compare"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/b.png"}}
              ]},
              {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "screenshot", "input": {}},
                {"type": "tool_use", "id": "toolu_2", "name": "read", "input": {"path": "/nope"}}
              ]},
              {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                  {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}]},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "No such file", "is_error": true}
              ]}
            ]}
            """#
        let body = try upstreamBody(client, client: .anthropicMessages, upstream: .openAIChat).body
        try expectSameJSON(body["messages"] ?? .null, #"""
            [
              {"role": "user", "content": [
                {"type": "text", "text": "Compare"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}}
              ]},
              {"role": "assistant", "content": null, "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "screenshot", "arguments": "{}"}},
                {"id": "toolu_2", "type": "function", "function": {"name": "read", "arguments": "{\"path\":\"/nope\"}"}}
              ]},
              {"role": "tool", "tool_call_id": "toolu_1", "content": "[1 image returned by this tool follows in the next user message]"},
              {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: No such file"},
              {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}]}
            ]
            """#)
        #expect(body["max_completion_tokens"] == 100)
        #expect(body["stream"] == nil)
        #expect(body["stream_options"] == nil)
    }

    @Test("tool_choice maps auto, any, tool and none", arguments: [
        (#"{"type":"auto"}"#, #""auto""#), (#"{"type":"any"}"#, #""required""#), (#"{"type":"none"}"#, #""none""#),
        (#"{"type":"tool","name":"Bash"}"#, #"{"type":"function","function":{"name":"Bash"}}"#),
    ])
    func toolChoice(anthropic: String, openAI: String) throws {
        let client = """
            {"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"tool_choice":\(anthropic),
             "tools":[{"name":"Bash","input_schema":{"type":"object"}}]}
            """
        let body = try upstreamBody(client, client: .anthropicMessages, upstream: .openAIChat).body
        try expectSameJSON(body["tool_choice"] ?? .null, openAI)
        #expect(body["parallel_tool_calls"] == nil)
    }

    @Test("thinking budgets map to effort levels; adaptive thinking uses output_config.effort; disabled sends none", arguments: [
        (#""thinking":{"type":"enabled","budget_tokens":1024}"#, "low" as String?),
        (#""thinking":{"type":"enabled","budget_tokens":4096}"#, "medium"),
        (#""thinking":{"type":"enabled","budget_tokens":16000}"#, "medium"),
        (#""thinking":{"type":"enabled","budget_tokens":16384}"#, "high"),
        (#""thinking":{"type":"enabled","budget_tokens":64000}"#, "high"),
        (#""thinking":{"type":"adaptive"},"output_config":{"effort":"low"}"#, "low"),
        (#""thinking":{"type":"adaptive"},"output_config":{"effort":"max"}"#, "xhigh"),
        (#""thinking":{"type":"adaptive"}"#, nil),
        (#""thinking":{"type":"disabled"}"#, nil),
        (#""output_config":{"effort":"high"}"#, "high"),
    ])
    func thinking(field: String, effort: String?) throws {
        let client = #"{"model":"m","max_tokens":100000,"messages":[{"role":"user","content":"hi"}],\#(field)}"#
        let body = try upstreamBody(client, client: .anthropicMessages, upstream: .openAIChat).body
        #expect(body["reasoning_effort"] == effort.map(JSON.string))
    }

    @Test("without max_tokens no limit is sent to an OpenAI upstream")
    func noMaxTokens() throws {
        let body = try upstreamBody(#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#, client: .anthropicMessages, upstream: .openAIChat).body
        #expect(body["max_completion_tokens"] == nil)
        #expect(body["max_tokens"] == nil)
    }

    @Test("fields and blocks with no OpenAI equivalent are refused with a 400 naming them", arguments: [
        (#""top_k":5"#, "top_k"),
        (#""tools":[{"type":"web_search_20250305","name":"web_search"}]"#, "tools[0].type"),
        (#""mcp_servers":[{"type":"url","url":"https://x","name":"x"}]"#, "mcp_servers"),
        (#""container":"c1""#, "container"),
        (#""output_config":{"format":{"type":"json_schema","schema":{}}}"#, "output_config.format"),
    ])
    func untranslatableFields(field: String, parameter: String) throws {
        let client = #"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],\#(field)}"#
        let error = try rejection(client, client: .anthropicMessages, upstream: .openAIChat)
        #expect(error?.code == "unsupported_parameter")
        #expect(error?.parameter == parameter)
        #expect(error?.status == 400)
    }

    @Test("malformed bodies give clear errors naming the parameter", arguments: [
        (#"{"model":"m","max_tokens":10,"messages":[{"role":"system","content":"x"}]}"#, "messages[0].role", "invalid_value"),
        (#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"tool_use","id":"t","name":"n","input":{}}]}]}"#, "messages[0].content[0].type", "invalid_value"),
        (#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"document","source":{}}]}]}"#, "messages[0].content[0].type", "unsupported_parameter"),
        (#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}"#, "messages[0].content[0].source.type", "unsupported_parameter"),
        (#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","data":"x"}}]}]}"#, "messages[0].content[0].source.media_type", "missing_required_parameter"),
        (#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"tool_result"}]}]}"#, "messages[0].content[0].tool_use_id", "missing_required_parameter"),
        (#"{"model":"m","max_tokens":10,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"n","input":"x"}]}]}"#, "messages[0].content[0].input", "invalid_type"),
        (#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"thinking":{"type":"enabled"}}"#, "thinking.budget_tokens", "missing_required_parameter"),
        (#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"temperature":1.5}"#, "temperature", "invalid_value"),
        (#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"system":[{"type":"image"}]}"#, "system[0].type", "invalid_value"),
        (#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"x"}]}"#, "tools[0].input_schema", "missing_required_parameter"),
        (#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"tool_choice":{"type":"some"}}"#, "tool_choice.type", "invalid_value"),
        (#"{"model":"m","max_tokens":-1,"messages":[{"role":"user","content":"hi"}]}"#, "max_tokens", "invalid_value"),
        (#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"stop_sequences":"x"}"#, "stop_sequences", "invalid_type"),
    ])
    func malformedBodies(body: String, parameter: String, code: String) throws {
        let error = try rejection(body, client: .anthropicMessages, upstream: .openAIChat)
        #expect(error?.parameter == parameter)
        #expect(error?.code == code)
        #expect(error?.message.contains(parameter) == true, "message: \(error?.message ?? "none")")
        let envelope = try jsonFixture(try #require(error).responseBody(in: .anthropicMessages))
        #expect(envelope["type"] == "error")
        #expect(envelope["error"]?["type"] == "invalid_request_error")
    }
}

@Suite("Request pass-through in the same dialect")
struct TranslationPassThroughRequestTests {
    @Test("an OpenAI body passes through byte for byte except the model")
    func openAIPassThrough() throws {
        let client = #"{"temperature":0.70,"model":"gpt-alias","messages":[{"role":"user","content":"h\u00e9"}],"vendor_extension":{"x":[1,2.50]},"stream":true,"stream_options":{"include_usage":true},"n":3,"logprobs":true}"#
        let call = try Translation.prepareRequest(
            try jsonFixture(client), client: .openAIChat, upstream: .openAIChat, upstreamModel: "openai/gpt-oss-120b", defaultMaxTokens: 1)
        #expect(String(decoding: call.body, as: UTF8.self)
            == #"{"temperature":0.70,"model":"openai/gpt-oss-120b","messages":[{"role":"user","content":"hé"}],"vendor_extension":{"x":[1,2.50]},"stream":true,"stream_options":{"include_usage":true},"n":3,"logprobs":true}"#)
        #expect(call.stream)
        #expect(call.includeUsage)
    }

    @Test("an Anthropic body passes through except the model; a missing max_tokens gets the default")
    func anthropicPassThrough() throws {
        let withLimit = #"{"model":"claude","max_tokens":512,"messages":[{"role":"user","content":"hi"}],"top_k":3,"betas_field":true}"#
        let call = try Translation.prepareRequest(
            try jsonFixture(withLimit), client: .anthropicMessages, upstream: .anthropicMessages, upstreamModel: "claudesonnet45", defaultMaxTokens: 8192)
        #expect(String(decoding: call.body, as: UTF8.self)
            == #"{"model":"claudesonnet45","max_tokens":512,"messages":[{"role":"user","content":"hi"}],"top_k":3,"betas_field":true}"#)
        #expect(!call.stream)
        #expect(call.includeUsage)

        let withoutLimit = #"{"model":"claude","messages":[{"role":"user","content":"hi"}],"stream":true}"#
        let filled = try Translation.prepareRequest(
            try jsonFixture(withoutLimit), client: .anthropicMessages, upstream: .anthropicMessages, upstreamModel: "c", defaultMaxTokens: 8192)
        #expect(String(decoding: filled.body, as: UTF8.self)
            == #"{"model":"c","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":8192}"#)
        #expect(filled.stream)
    }

    @Test("pass-through still validates the essentials", arguments: [
        (Dialect.openAIChat, #"{"messages":[{"role":"user","content":"hi"}]}"#, "model"),
        (Dialect.openAIChat, #"{"model":"m","messages":[]}"#, "messages"),
        (Dialect.openAIChat, #"{"model":"m","messages":[{"role":"user","content":"a"},{"content":"b"}]}"#, "messages[1].role"),
        (Dialect.openAIChat, #"{"model":"m","messages":[{"role":"user","content":"a"}],"stream":1}"#, "stream"),
        (Dialect.anthropicMessages, #"{"model":"m","messages":"hi"}"#, "messages"),
        (Dialect.anthropicMessages, #"{"model":"m","messages":[{"role":"user","content":"a"}],"max_tokens":0}"#, "max_tokens"),
        (Dialect.anthropicMessages, #"{"model":["m"],"messages":[{"role":"user","content":"a"}]}"#, "model"),
    ])
    func passThroughValidation(dialect: Dialect, body: String, parameter: String) throws {
        let error = try rejection(body, client: dialect, upstream: dialect)
        #expect(error?.parameter == parameter)
        #expect(error?.status == 400)
    }
}
