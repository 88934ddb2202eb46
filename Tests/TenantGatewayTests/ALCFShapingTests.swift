import Testing
@testable import TenantGateway

@Suite("ALCF strict-gateway shaping")
struct ALCFShapingTests {
    func shaped(_ text: String) throws -> (body: JSON, plan: TransformPlan) {
        let plan = TransformCatalog(configured: []).plan(provider: "alcf", providerType: .alcf, upstreamModel: "sophia/openai/gpt-oss-120b")
        let call = UpstreamCall(body: Array(text.utf8), stream: false, includeUsage: false)
        let result = try plan.transformRequest(call, upstream: .openAIChat)
        return (try JSON.parse(result.call.body), result.plan)
    }

    @Test func unknownFieldsAreDroppedAndKnownOnesKept() throws {
        let (body, _) = try shaped(#"{"model":"m","messages":[{"role":"user","content":"hi","foo":1}],"chat_template_kwargs":{"x":1},"top_k":5,"min_p":0.1,"temperature":0.5,"stream_options":{"include_usage":true,"continuous_usage_stats":true},"reasoning_effort":"medium"}"#)
        #expect(body.objectValue?.keys == ["model", "messages", "temperature", "stream_options", "reasoning_effort"])
        #expect(body["messages"]?[0]?.objectValue?.keys == ["role", "content"])
        #expect(body["stream_options"]?.objectValue?.keys == ["include_usage"])
    }

    @Test func reasoningEffortIsClampedToTheGatewaysEnum() throws {
        #expect(try shaped(#"{"model":"m","messages":[],"reasoning_effort":"xhigh"}"#).body["reasoning_effort"] == "high")
        #expect(try shaped(#"{"model":"m","messages":[],"reasoning_effort":"none"}"#).body["reasoning_effort"] == "low")
        #expect(try shaped(#"{"model":"m","messages":[],"reasoning_effort":"bogus"}"#).body["reasoning_effort"] == nil)
        #expect(try shaped(#"{"model":"m","messages":[],"reasoning_effort":"low"}"#).body["reasoning_effort"] == "low")
    }

    @Test func listContentIsFlattenedForSystemDeveloperAndTool() throws {
        let (body, _) = try shaped(#"{"model":"m","messages":[{"role":"system","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},{"role":"user","content":[{"type":"text","text":"u"}]}]}"#)
        #expect(body["messages"]?[0]?["content"] == "a\n\nb")
        #expect(body["messages"]?[1]?["content"]?.arrayValue?.count == 1)
    }

    @Test func toolNamesAreSanitizedAndRestoredInAnswers() throws {
        let (body, plan) = try shaped(#"{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"geo.weather","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"x"}],"tools":[{"type":"function","function":{"name":"geo.weather"}},{"type":"web_search"}],"tool_choice":{"type":"function","function":{"name":"geo.weather"}}}"#)
        #expect(body["tools"]?.arrayValue?.count == 1)
        #expect(body["tools"]?[0]?["function"]?["name"] == "geo_weather")
        #expect(body["tool_choice"]?["function"]?["name"] == "geo_weather")
        #expect(body["messages"]?[0]?["tool_calls"]?[0]?["function"]?["name"] == "geo_weather")
        var answer = try JSON.parse(Array(#"{"choices":[{"index":0,"message":{"role":"assistant","tool_calls":[{"id":"d","type":"function","function":{"name":"geo_weather","arguments":"{}"}}]}}]}"#.utf8))
        plan.applyToResponse(&answer)
        #expect(answer["choices"]?[0]?["message"]?["tool_calls"]?[0]?["function"]?["name"] == "geo.weather")
        var chunk = try JSON.parse(Array(#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"geo_weather"}}]}}]}"#.utf8))
        plan.applyToResponse(&chunk)
        #expect(chunk["choices"]?[0]?["delta"]?["tool_calls"]?[0]?["function"]?["name"] == "geo.weather")
    }

    @Test func onlyNonFunctionToolsLeavesNoTools() throws {
        let (body, _) = try shaped(#"{"model":"m","messages":[],"tools":[{"type":"web_search"}],"tool_choice":"auto","parallel_tool_calls":true}"#)
        #expect(body["tools"] == nil && body["tool_choice"] == nil && body["parallel_tool_calls"] == nil)
    }

    @Test func otherProviderTypesAreUntouched() {
        #expect(TransformCatalog(configured: []).plan(provider: "x", providerType: .openAIChat, upstreamModel: "m").isEmpty)
    }

    @Test func alcfProvidersParseWithGlobusDefaultsAndOverrides() throws {
        let config = try GatewayConfig.parse(yaml: """
            providers:
              alcf:
                type: alcf
                base_url: https://inference-api.alcf.anl.gov/resource_server/
                globus:
                  auth_url: http://127.0.0.1:9/
                  client_id: c
              plain:
                type: alcf
                base_url: https://x/resource_server
            models:
              oss: {provider: alcf, upstream_model: sophia/openai/gpt-oss-120b}
            """, file: "t.yaml", environment: [:])
        let alcf = try #require(config.provider(named: "alcf"))
        #expect(alcf.baseURL == "https://inference-api.alcf.anl.gov/resource_server")
        #expect(alcf.globus?.authURL == "http://127.0.0.1:9" && alcf.globus?.clientID == "c")
        #expect(alcf.globus?.resourceServer == GlobusProviderConfig.inferenceResourceServer)
        #expect(config.provider(named: "plain")?.globus == GlobusProviderConfig())
        #expect(throws: ConfigError.self) {
            try GatewayConfig.parse(yaml: "providers:\n  o:\n    type: openai_chat\n    base_url: http://x\n    globus: {client_id: c}\n", file: "t.yaml", environment: [:])
        }
    }

    @Test func configuredRulesCanUseTheStrictActions() throws {
        let config = try GatewayConfig.parse(yaml: """
            transforms:
              - match: {provider: strict}
                apply:
                  - allow_fields: [model, messages]
                  - allow_values: {field: reasoning_effort, values: [low, high], replace: {medium: high}}
                  - sanitize_tool_names: true
                  - function_tools_only: true
            """, file: "t.yaml", environment: [:])
        #expect(config.transforms.first?.actions.map(\.kindName) == ["allow_fields", "allow_values", "sanitize_tool_names", "function_tools_only"])
    }
}
