/// A local estimate of a request's input tokens, for `POST /v1/messages/count_tokens`.
///
/// No upstream tokenizer is consulted: text costs one token per 4 ASCII characters (rounded up) and one per
/// other Unicode scalar (CJK and similar scripts run close to one token per character); every message,
/// the system prompt and every tool add a small fixed overhead; a request with tools adds the tool-use
/// system prompt Anthropic documents (346 tokens); every image costs 1,600 tokens, the most Anthropic charges
/// for one image after downscaling. docs/count_tokens.md states how far off this is known to be.
package enum TokenEstimate {
    /// Tokens for each message's role and framing.
    static let perMessage = 4
    /// Tokens for the framing of the system prompt, when there is one.
    static let perSystemPrompt = 4
    /// Tokens for each tool definition's framing.
    static let perTool = 8
    /// The tool-use system prompt Anthropic adds when a request declares tools.
    static let toolUsePrompt = 346
    /// Tokens charged for one image, whatever its size (Anthropic's cap for a downscaled image, about 1.15 megapixels / 750).
    static let perImage = 1600

    /// The estimated input tokens of a request.
    package static func inputTokens(of request: ChatRequest) -> Int {
        var total = 0
        if !request.system.isEmpty {
            total += perSystemPrompt + request.system.reduce(0) { $0 + textTokens($1) }
        }
        for message in request.messages {
            total += perMessage + message.parts.reduce(0) { $0 + partTokens($1) }
        }
        if !request.tools.isEmpty {
            total += toolUsePrompt
            for tool in request.tools {
                total += perTool + textTokens(tool.name) + textTokens(tool.description ?? "") + textTokens(tool.parameters.text)
            }
        }
        return total
    }

    static func partTokens(_ part: ContentPart) -> Int {
        switch part {
        case .text(let text): textTokens(text)
        case .image: perImage
        case .toolCall(let call): perTool + textTokens(call.name) + textTokens(call.arguments)
        case .toolResult(let result): perTool + result.content.reduce(0) { $0 + partTokens($1) }
        case .reasoning(let reasoning): textTokens(reasoning.text)
        case .redactedReasoning(let data): textTokens(data)
        }
    }

    /// One token per 4 ASCII scalars (rounded up) plus one per non-ASCII scalar.
    static func textTokens(_ text: String) -> Int {
        var ascii = 0
        var other = 0
        for scalar in text.unicodeScalars {
            if scalar.isASCII { ascii += 1 } else { other += 1 }
        }
        return (ascii + 3) / 4 + other
    }
}

extension GatewayHandler {
    /// Answers `POST /v1/messages/count_tokens` with `{"input_tokens": N}`, estimated locally (see `TokenEstimate`).
    ///
    /// The model must be a configured one, as for `/v1/messages`; the body is validated as a Messages request.
    func countTokens(_ request: GatewayRequest) throws(GatewayError) -> JSON {
        let body: JSON
        do {
            body = try JSON.parse(request.body)
        } catch {
            throw GatewayError(.invalidRequest, code: "invalid_json", message: "The request body is not valid JSON: \(error.description).", cause: error)
        }
        guard let modelName = body["model"]?.stringValue, !modelName.isEmpty else {
            throw GatewayError(.invalidRequest, code: "missing_model", message: "The request needs a 'model' string naming a configured model.", parameter: "model")
        }
        _ = try catalog.resolve(modelName)
        let parsed = try AnthropicRequestCodec.decode(body)
        return ["input_tokens": JSON(TokenEstimate.inputTokens(of: parsed))]
    }

    /// Answers Google's `models/{model}:countTokens` locally with the same estimate: `{"totalTokens": N}`.
    ///
    /// The body holds `contents` (with optional `systemInstruction` and `tools`) or a whole
    /// `generateContentRequest`; the model comes from the URL.
    func googleCountTokens(_ request: GatewayRequest, model: String) throws(GatewayError) -> JSON {
        let body: JSON
        do {
            body = try JSON.parse(request.body)
        } catch {
            throw GatewayError(.invalidRequest, code: "invalid_json", message: "The request body is not valid JSON: \(error.description).", cause: error)
        }
        _ = try catalog.resolve(model)
        let generateRequest = body["generateContentRequest"] ?? body
        let parsed = try GoogleRequestCodec.decode(generateRequest, model: model, stream: false)
        return ["totalTokens": JSON(TokenEstimate.inputTokens(of: parsed))]
    }
}
