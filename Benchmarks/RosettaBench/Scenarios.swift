import TenantGateway

/// The format a client speaks when it sends a target's request.
enum ClientFormat: Sendable {
    /// OpenAI Chat Completions.
    case openAIChat
    /// Anthropic Messages.
    case anthropicMessages
}

/// A request in both shapes: sent straight to the fake upstream, and sent through rosettad.
struct BenchRoute: Sendable {
    /// The target and the format its answers come in.
    var target: BenchTarget
    /// The format of the answers.
    var format: ClientFormat
}

/// One benchmarked path: whole and streamed requests, direct to the fake and through the gateway.
struct BenchScenario: Sendable {
    /// A short name for the table (`translation`, `pass-through`).
    var name: String
    /// What the path is, in one line.
    var summary: String
    /// Whole request straight to the fake.
    var directWhole: BenchRoute
    /// Streamed request straight to the fake.
    var directStream: BenchRoute
    /// Whole request through rosettad (filled only when a gateway runs).
    var throughWhole: BenchRoute?
    /// Streamed request through rosettad (filled only when a gateway runs).
    var throughStream: BenchRoute?

    /// The benchmark's two scenarios against a fake on `upstreamPort` and, when given, a gateway.
    static func all(
        upstreamPort: Int,
        configuration: FakeUpstreamConfiguration,
        gateway: (port: Int, token: String)?
    ) -> [BenchScenario] {
        let fake = "http://127.0.0.1:\(upstreamPort)"
        let system = "You are a terse assistant. Answer in one short sentence."
        let question = "Say hello in five words."

        func openAIBody(model: String, stream: Bool) -> [UInt8] {
            var body: JSONObject = [
                "model": .string(model),
                "messages": [
                    ["role": "system", "content": .string(system)],
                    ["role": "user", "content": .string(question)],
                ],
                "max_tokens": 256,
                "temperature": 0.2,
            ]
            if stream { body["stream"] = true }
            return JSON.object(body).bytes
        }
        func anthropicBody(model: String, stream: Bool) -> [UInt8] {
            var body: JSONObject = [
                "model": .string(model),
                "max_tokens": 256,
                "system": .string(system),
                "messages": [["role": "user", "content": .string(question)]],
                "temperature": 0.2,
            ]
            if stream { body["stream"] = true }
            return JSON.object(body).bytes
        }

        let json: [(name: String, value: String)] = [("Content-Type", "application/json")]
        let openAIDone = Array("data: [DONE]".utf8)
        let anthropicStop = Array(#""message_stop"}"#.utf8)
        let closingBrace = Array("}".utf8)

        func direct(_ path: String, _ headers: [(name: String, value: String)], _ body: [UInt8], ending: [UInt8], format: ClientFormat) -> BenchRoute {
            BenchRoute(target: BenchTarget(url: fake + path, headers: json + headers, body: body, expectedEnding: ending), format: format)
        }
        func through(_ body: [UInt8], ending: [UInt8]) -> BenchRoute? {
            guard let gateway else { return nil }
            return BenchRoute(
                target: BenchTarget(
                    url: "http://127.0.0.1:\(gateway.port)/v1/chat/completions",
                    headers: json + [("Authorization", "Bearer \(gateway.token)")],
                    body: body,
                    expectedEnding: ending
                ),
                format: .openAIChat
            )
        }

        let anthropicHeaders: [(name: String, value: String)] = [("x-api-key", configuration.anthropicKey), ("anthropic-version", "2023-06-01")]
        let openAIHeaders: [(name: String, value: String)] = [("Authorization", "Bearer \(configuration.openAIKey)")]
        return [
            BenchScenario(
                name: "translation",
                summary: "OpenAI Chat request (model bench-anthropic) → rosettad → Anthropic Messages fake; direct = the equivalent Anthropic request to the fake",
                directWhole: direct("/v1/messages", anthropicHeaders, anthropicBody(model: "fake-claude", stream: false), ending: closingBrace, format: .anthropicMessages),
                directStream: direct("/v1/messages", anthropicHeaders, anthropicBody(model: "fake-claude", stream: true), ending: anthropicStop, format: .anthropicMessages),
                throughWhole: through(openAIBody(model: "bench-anthropic", stream: false), ending: closingBrace),
                throughStream: through(openAIBody(model: "bench-anthropic", stream: true), ending: openAIDone)
            ),
            BenchScenario(
                name: "pass-through",
                summary: "OpenAI Chat request (model bench-openai) → rosettad → OpenAI Chat fake; direct = the same request to the fake",
                directWhole: direct("/v1/chat/completions", openAIHeaders, openAIBody(model: "fake-gpt", stream: false), ending: closingBrace, format: .openAIChat),
                directStream: direct("/v1/chat/completions", openAIHeaders, openAIBody(model: "fake-gpt", stream: true), ending: openAIDone, format: .openAIChat),
                throughWhole: through(openAIBody(model: "bench-openai", stream: false), ending: closingBrace),
                throughStream: through(openAIBody(model: "bench-openai", stream: true), ending: openAIDone)
            ),
        ]
    }
}

/// Checks one answer in full (parsed, text compared with what the fake sent) before a route is measured.
enum AnswerValidator {
    /// A problem with a whole answer, or nil when it carries the fake's text and a normal finish.
    static func checkWhole(_ exchange: BenchExchange, format: ClientFormat, expectedText: String) -> String? {
        guard exchange.status == 200 else { return "status \(exchange.status): \(preview(exchange.body))" }
        let answer: JSON
        do { answer = try JSON.parse(exchange.body) } catch { return "the body is not JSON (\(error)): \(preview(exchange.body))" }
        switch format {
        case .openAIChat:
            guard let choice = answer["choices"]?[0] else { return "no choices[0]: \(preview(exchange.body))" }
            guard choice["message"]?["content"]?.stringValue == expectedText else { return "choices[0].message.content differs: \(preview(exchange.body))" }
            guard choice["finish_reason"]?.stringValue == "stop" else { return "finish_reason is not stop: \(preview(exchange.body))" }
            guard answer["usage"]?["prompt_tokens"]?.intValue != nil else { return "no usage.prompt_tokens: \(preview(exchange.body))" }
        case .anthropicMessages:
            guard answer["content"]?[0]?["text"]?.stringValue == expectedText else { return "content[0].text differs: \(preview(exchange.body))" }
            guard answer["stop_reason"]?.stringValue == "end_turn" else { return "stop_reason is not end_turn: \(preview(exchange.body))" }
        }
        return nil
    }

    /// A problem with a streamed answer, or nil; on success also the number of content events the client saw.
    static func checkStream(_ exchange: BenchExchange, format: ClientFormat, expectedText: String) -> (problem: String?, contentEvents: Int) {
        guard exchange.status == 200 else { return ("status \(exchange.status): \(preview(exchange.body))", 0) }
        var text = ""
        var contentEvents = 0
        var finished = false
        let lines = String(decoding: exchange.body, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
        for rawLine in lines {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            guard line.hasPrefix("data:") else { continue }
            let payload = line.dropFirst(5).drop { $0 == " " }
            if payload == "[DONE]" {
                guard format == .openAIChat else { return ("[DONE] in an Anthropic stream", contentEvents) }
                finished = true
                continue
            }
            let event: JSON
            do { event = try JSON.parse(String(payload)) } catch { return ("an event is not JSON (\(error)): \(payload.prefix(300))", contentEvents) }
            if event["error"] != nil { return ("the stream carries an error: \(payload.prefix(300))", contentEvents) }
            switch format {
            case .openAIChat:
                if let piece = event["choices"]?[0]?["delta"]?["content"]?.stringValue, !piece.isEmpty {
                    text += piece
                    contentEvents += 1
                }
            case .anthropicMessages:
                switch event["type"]?.stringValue {
                case "content_block_delta":
                    if let piece = event["delta"]?["text"]?.stringValue {
                        text += piece
                        contentEvents += 1
                    }
                case "message_stop":
                    finished = true
                default:
                    break
                }
            }
        }
        guard finished else { return ("the stream did not finish ([DONE] / message_stop missing)", contentEvents) }
        guard text == expectedText else {
            return ("the streamed text differs (\(text.utf8.count) bytes, expected \(expectedText.utf8.count))", contentEvents)
        }
        return (nil, contentEvents)
    }

    private static func preview(_ body: [UInt8]) -> String {
        String(decoding: body.prefix(400), as: UTF8.self)
    }
}
