// The intermediate representation (IR) that every dialect translates to and from.
//
// A client body is decoded into a `ChatRequest`, which is encoded into the upstream's dialect;
// an upstream body is decoded into a `ChatResponse`, which is encoded into the client's dialect;
// upstream stream events become `StreamEvent`s, which become the client's stream events.
// Everything here is a plain value: no I/O, no clocks, no randomness.

/// A chat request in dialect-neutral form.
package struct ChatRequest: Sendable, Equatable {
    /// The model name to send upstream.
    package var model: String
    /// The system prompt, as the separate text parts the client sent (OpenAI system/developer messages, Anthropic `system`).
    package var system: [String]
    /// The conversation, oldest first.
    package var messages: [ChatMessage]
    /// The tools the model may call.
    package var tools: [ToolDefinition]
    /// How the model must use the tools; `nil` leaves it to the upstream's default.
    package var toolChoice: ToolChoice?
    /// Whether the model may call several tools in one turn; `nil` leaves it to the upstream's default.
    package var parallelToolCalls: Bool?
    /// Sampling and length settings.
    package var generation: GenerationSettings
    /// How much the model should reason before answering; `nil` leaves it to the upstream's default.
    package var reasoning: ReasoningSetting?
    /// Whether the client asked for a streamed response.
    package var stream: Bool
    /// Whether a streamed OpenAI-format response must end with a usage chunk (`stream_options.include_usage`).
    package var includeUsage: Bool

    /// Creates a request; everything but the model and the messages defaults to "not set".
    package init(
        model: String,
        system: [String] = [],
        messages: [ChatMessage],
        tools: [ToolDefinition] = [],
        toolChoice: ToolChoice? = nil,
        parallelToolCalls: Bool? = nil,
        generation: GenerationSettings = GenerationSettings(),
        reasoning: ReasoningSetting? = nil,
        stream: Bool = false,
        includeUsage: Bool = false
    ) {
        self.model = model
        self.system = system
        self.messages = messages
        self.tools = tools
        self.toolChoice = toolChoice
        self.parallelToolCalls = parallelToolCalls
        self.generation = generation
        self.reasoning = reasoning
        self.stream = stream
        self.includeUsage = includeUsage
    }
}

/// Sampling and length settings of a request; `nil` means "not set by the client".
package struct GenerationSettings: Sendable, Equatable {
    /// The most tokens the model may produce (including reasoning tokens, in both dialects).
    package var maxTokens: Int?
    /// Sampling temperature.
    package var temperature: Double?
    /// Nucleus sampling probability mass.
    package var topP: Double?
    /// Top-k sampling (Anthropic; an extension on some OpenAI-compatible servers).
    package var topK: Int?
    /// Sequences that stop generation.
    package var stopSequences: [String]
    /// An opaque end-user identifier (OpenAI `user`, Anthropic `metadata.user_id`).
    package var user: String?

    /// Creates settings; everything defaults to "not set".
    package init(
        maxTokens: Int? = nil,
        temperature: Double? = nil,
        topP: Double? = nil,
        topK: Int? = nil,
        stopSequences: [String] = [],
        user: String? = nil
    ) {
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topP = topP
        self.topK = topK
        self.stopSequences = stopSequences
        self.user = user
    }
}

/// One turn of the conversation.
package struct ChatMessage: Sendable, Equatable {
    /// Who speaks in a turn; system prompts live in `ChatRequest.system`, tool results in user turns.
    package enum Role: String, Sendable, Hashable {
        /// The user (and tool results, as in Anthropic's format).
        case user
        /// The model.
        case assistant
    }

    /// Who speaks.
    package var role: Role
    /// The content, in order.
    package var parts: [ContentPart]

    /// Creates a message.
    package init(role: Role, parts: [ContentPart]) {
        self.role = role
        self.parts = parts
    }
}

/// One typed piece of a message's content.
package enum ContentPart: Sendable, Equatable {
    /// Plain text.
    case text(String)
    /// An image.
    case image(ImageSource)
    /// A tool call made by the model (assistant turns).
    case toolCall(ToolCall)
    /// The result of a tool call (user turns).
    case toolResult(ToolResult)
    /// Visible reasoning (OpenAI-compatible `reasoning_content`, Anthropic `thinking`).
    case reasoning(Reasoning)
    /// Reasoning the upstream keeps encrypted (Anthropic `redacted_thinking.data`); only Anthropic can read it back.
    case redactedReasoning(data: String)
}

/// Where an image's bytes come from.
package enum ImageSource: Sendable, Equatable {
    /// Base64-encoded bytes with their media type (for example `image/png`).
    case base64(mediaType: String, data: String)
    /// A URL the upstream fetches itself.
    case url(String)
}

/// A tool call made by the model.
package struct ToolCall: Sendable, Equatable {
    /// The call's id (OpenAI `call_…`, Anthropic `toolu_…`; either is kept as is in the other dialect).
    package var id: String
    /// The tool's name.
    package var name: String
    /// The arguments as JSON text (an object).
    package var arguments: String

    /// Creates a tool call.
    package init(id: String, name: String, arguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }
}

/// The result of a tool call, sent back by the client.
package struct ToolResult: Sendable, Equatable {
    /// The id of the call this answers.
    package var toolCallID: String
    /// The result's content: text and image parts only.
    package var content: [ContentPart]
    /// Whether the tool failed (Anthropic `is_error`).
    package var isError: Bool

    /// Creates a tool result.
    package init(toolCallID: String, content: [ContentPart], isError: Bool = false) {
        self.toolCallID = toolCallID
        self.content = content
        self.isError = isError
    }
}

/// Visible reasoning, with the signature Anthropic needs to accept it back.
package struct Reasoning: Sendable, Equatable {
    /// The reasoning text.
    package var text: String
    /// Anthropic's opaque signature over the text; `nil` when the reasoning did not come from Anthropic.
    package var signature: String?
    /// OpenAI Responses' opaque `encrypted_content` of a reasoning item; only an OpenAI Responses upstream can read it.
    package var encryptedContent: String?

    /// Creates a reasoning part.
    package init(text: String, signature: String? = nil, encryptedContent: String? = nil) {
        self.text = text
        self.signature = signature
        self.encryptedContent = encryptedContent
    }
}

/// A tool the model may call.
package struct ToolDefinition: Sendable, Equatable {
    /// The tool's name.
    package var name: String
    /// What the tool does.
    package var description: String?
    /// The JSON schema of the tool's arguments (an object schema).
    package var parameters: JSON

    /// Creates a tool definition.
    package init(name: String, description: String? = nil, parameters: JSON) {
        self.name = name
        self.description = description
        self.parameters = parameters
    }
}

/// How the model must use the tools.
package enum ToolChoice: Sendable, Equatable {
    /// The model decides (OpenAI `"auto"`, Anthropic `{type: auto}`).
    case auto
    /// The model must not call tools (OpenAI `"none"`, Anthropic `{type: none}`).
    case none
    /// The model must call at least one tool (OpenAI `"required"`, Anthropic `{type: any}`).
    case required
    /// The model must call this tool (OpenAI `{type: function, function: {name}}`, Anthropic `{type: tool, name}`).
    case tool(name: String)
}

/// A reasoning effort level, as OpenAI names them.
package enum ReasoningEffort: String, Sendable, Hashable, CaseIterable {
    /// The least reasoning short of none.
    case minimal
    /// Little reasoning.
    case low
    /// Balanced reasoning.
    case medium
    /// Thorough reasoning.
    case high
    /// The most reasoning (newest OpenAI models; Anthropic `max`).
    case xhigh
}

/// How much the model should reason, in whichever form the client expressed it.
package enum ReasoningSetting: Sendable, Equatable {
    /// No reasoning (OpenAI `reasoning_effort: "none"`, Anthropic `thinking: {type: disabled}`).
    case disabled
    /// An effort level (OpenAI `reasoning_effort`).
    case effort(ReasoningEffort)
    /// A token budget (Anthropic `thinking: {type: enabled, budget_tokens}`).
    case budget(tokens: Int)
    /// The model decides, optionally guided by an effort level (Anthropic `thinking: {type: adaptive}` + `output_config.effort`).
    case adaptive(effort: ReasoningEffort?)
}

extension ReasoningEffort {
    /// The Anthropic `thinking.budget_tokens` used for this effort level (see docs/translation.md).
    package var thinkingBudget: Int {
        switch self {
        case .minimal: 1024
        case .low: 2048
        case .medium: 8192
        case .high: 16384
        case .xhigh: 32768
        }
    }

    /// The effort level closest to an Anthropic thinking budget: below 4096 low, below 16384 medium, else high.
    package init(thinkingBudget budget: Int) {
        if budget < 4096 {
            self = .low
        } else if budget < 16384 {
            self = .medium
        } else {
            self = .high
        }
    }
}

/// A complete (non-streamed) model response in dialect-neutral form.
package struct ChatResponse: Sendable, Equatable {
    /// The upstream's response id.
    package var id: String
    /// The model name as the upstream reported it.
    package var model: String
    /// The assistant's content: reasoning, text and tool calls, in order.
    package var content: [ContentPart]
    /// Why generation stopped; `nil` when the upstream did not say.
    package var finishReason: FinishReason?
    /// The stop sequence that ended generation, when known.
    package var stopSequence: String?
    /// Token counts, when the upstream reported them.
    package var usage: Usage?

    /// Creates a response.
    package init(
        id: String,
        model: String,
        content: [ContentPart],
        finishReason: FinishReason?,
        stopSequence: String? = nil,
        usage: Usage? = nil
    ) {
        self.id = id
        self.model = model
        self.content = content
        self.finishReason = finishReason
        self.stopSequence = stopSequence
        self.usage = usage
    }
}

/// Why the model stopped generating.
package enum FinishReason: Sendable, Hashable {
    /// The model finished its turn (OpenAI `stop`, Anthropic `end_turn`).
    case stop
    /// A stop sequence matched (OpenAI `stop`, Anthropic `stop_sequence`).
    case stopSequence
    /// The token limit was reached (OpenAI `length`, Anthropic `max_tokens` / `model_context_window_exceeded`).
    case length
    /// The model called tools (OpenAI `tool_calls`, Anthropic `tool_use`).
    case toolCalls
    /// Output was withheld by a safety system (OpenAI `content_filter`, Anthropic `refusal`).
    case contentFilter
    /// Any other reason, kept verbatim (for example Anthropic `pause_turn`).
    case other(String)
}

/// Token counts of one response.
package struct Usage: Sendable, Equatable {
    /// All prompt tokens, cached or not (OpenAI `prompt_tokens`; Anthropic input + cache read + cache creation).
    package var inputTokens: Int
    /// Generated tokens, reasoning included.
    package var outputTokens: Int
    /// Prompt tokens read from cache (OpenAI `cached_tokens`, Anthropic `cache_read_input_tokens`).
    package var cachedInputTokens: Int?
    /// Prompt tokens written to cache (Anthropic `cache_creation_input_tokens`).
    package var cacheCreationInputTokens: Int?
    /// Generated tokens spent on reasoning (OpenAI `reasoning_tokens`).
    package var reasoningTokens: Int?

    /// Creates usage counts.
    package init(
        inputTokens: Int,
        outputTokens: Int,
        cachedInputTokens: Int? = nil,
        cacheCreationInputTokens: Int? = nil,
        reasoningTokens: Int? = nil
    ) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cachedInputTokens = cachedInputTokens
        self.cacheCreationInputTokens = cacheCreationInputTokens
        self.reasoningTokens = reasoningTokens
    }

    /// Prompt tokens that were neither read from nor written to cache (Anthropic `input_tokens`).
    package var uncachedInputTokens: Int {
        max(0, inputTokens - (cachedInputTokens ?? 0) - (cacheCreationInputTokens ?? 0))
    }
}

/// One step of a streamed response in dialect-neutral form, produced by an upstream stream decoder.
package enum StreamEvent: Sendable {
    /// The response began; carries the upstream's id and any usage known so far.
    case start(id: String, usage: Usage?)
    /// A fragment of answer text.
    case textDelta(String)
    /// A fragment of visible reasoning.
    case reasoningDelta(String)
    /// The signature of the current reasoning block (Anthropic).
    case reasoningSignature(String)
    /// A complete block of encrypted reasoning (Anthropic `redacted_thinking`).
    case redactedReasoning(data: String)
    /// A tool call began; `index` counts tool calls from 0 within the response.
    case toolCallStart(index: Int, id: String, name: String)
    /// A fragment of a tool call's JSON arguments.
    case toolCallArguments(index: Int, fragment: String)
    /// A tool call's arguments are complete.
    case toolCallEnd(index: Int)
    /// The usage counts so far (cumulative, replacing earlier ones).
    case usage(Usage)
    /// Why generation stopped.
    case finish(FinishReason, stopSequence: String?)
    /// The upstream completed the stream normally.
    case end
    /// The upstream reported an error or broke protocol; the stream ends as failed.
    case failure(GatewayError)
}
