/// Argo's quirks that the declarative transform rules cannot express, applied by `ArgoProvider` to the upstream
/// body after the rules (UPSTREAMS.md §3): Gemini's parallel tool calls as sequential pairs, Claude's thinking
/// mode per family, and no empty thinking blocks for Claude.
package enum ArgoRequestShaping {
    /// Which `thinking` types a Claude family accepts through Argo (Vertex).
    package enum ClaudeThinkingFamily: Sendable, Equatable {
        /// Haiku 4.5 and the Sonnet 4 family: only `{"type": "enabled", "budget_tokens": N}`.
        case budgetOnly
        /// Opus 4.7, 4.8 and later: only `{"type": "adaptive"}` (with `output_config.effort`).
        case adaptiveOnly
        /// Other models: whatever the client sent.
        case either
    }

    /// Shapes an upstream body for `upstreamModel` in `dialect` (the format of the endpoint it goes to).
    package static func shape(_ body: inout JSONObject, upstreamModel: String, dialect: Dialect) {
        let folded = upstreamModel.lowercased()
        switch dialect {
        case .openAIChat where folded.contains("gemini"):
            if case .array(let messages)? = body["messages"] { body["messages"] = .array(splitParallelToolCalls(messages)) }
        case .anthropicMessages:
            if case .array(let messages)? = body["messages"] { body["messages"] = .array(droppingEmptyThinkingBlocks(messages)) }
            fitThinking(&body, family: thinkingFamily(of: upstreamModel))
        default:
            break
        }
    }

    // MARK: Gemini

    /// Turns each assistant message with several `tool_calls` and the tool results after it into one
    /// assistant message per call, each followed by that call's result (Gemini through Argo refuses parallel
    /// calls in the history). The text of the original message stays with the first call; `null` content
    /// becomes `""`; results that answer no call of the message stay after the last pair.
    package static func splitParallelToolCalls(_ messages: [JSON]) -> [JSON] {
        var output: [JSON] = []
        var index = 0
        while index < messages.count {
            let message = messages[index]
            guard message["role"]?.stringValue == "assistant", case .array(let calls)? = message["tool_calls"], calls.count > 1,
                  case .object(let assistant) = message else {
                output.append(message)
                index += 1
                continue
            }
            var next = index + 1
            var results: [JSON] = []
            while next < messages.count, messages[next]["role"]?.stringValue == "tool" {
                results.append(messages[next])
                next += 1
            }
            var used = Set<Int>()
            for (position, call) in calls.enumerated() {
                var single = assistant
                single["tool_calls"] = [call]
                if position > 0 || single["content"] == nil || single["content"] == .null { single["content"] = "" }
                output.append(.object(single))
                let id = call["id"]?.stringValue
                for (resultIndex, result) in results.enumerated() where !used.contains(resultIndex) {
                    guard let id, result["tool_call_id"]?.stringValue == id else { continue }
                    output.append(result)
                    used.insert(resultIndex)
                }
            }
            for (resultIndex, result) in results.enumerated() where !used.contains(resultIndex) { output.append(result) }
            index = next
        }
        return output
    }

    // MARK: Claude

    /// The thinking family of a Claude model by its Argo name (`claudehaiku45`, "Claude Sonnet 4.5", `claudeopus48`).
    package static func thinkingFamily(of upstreamModel: String) -> ClaudeThinkingFamily {
        let compact = String(upstreamModel.lowercased().unicodeScalars.filter { ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") }.map(Character.init))
        guard compact.contains("claude") else { return .either }
        if compact.contains("haiku") || compact.contains("sonnet") { return .budgetOnly }
        guard let opus = compact.range(of: "opus") else { return .either }
        let digits = compact[opus.upperBound...].prefix { $0.isNumber }
        guard let major = digits.first?.wholeNumberValue else { return .either }
        let minor = digits.dropFirst().first?.wholeNumberValue ?? 0
        return major >= 5 || (major == 4 && minor >= 7) ? .adaptiveOnly : .either
    }

    /// Converts `thinking` to the one type the family accepts: adaptive → enabled with the budget its effort
    /// implies (medium when none; thinking is left off when `max_tokens` leaves no room for the minimum
    /// budget of 1024); enabled → adaptive with the effort its budget implies (unless an effort was given).
    package static func fitThinking(_ body: inout JSONObject, family: ClaudeThinkingFamily) {
        guard let type = body["thinking"]?["type"]?.stringValue else { return }
        switch (family, type) {
        case (.budgetOnly, "adaptive"):
            var outputConfig = body["output_config"]?.objectValue
            let effort = outputConfig?["effort"]?.stringValue.flatMap(reasoningEffort(anthropicLevel:)) ?? .medium
            outputConfig?["effort"] = nil
            if let config = outputConfig, !config.isEmpty {
                body["output_config"] = .object(config)
            } else {
                body["output_config"] = nil
            }
            var budget = effort.thinkingBudget
            if let maxTokens = body["max_tokens"]?.intValue, budget >= maxTokens {
                guard maxTokens > 1024 else {
                    body["thinking"] = nil
                    return
                }
                budget = maxTokens - 1
            }
            body["thinking"] = ["type": "enabled", "budget_tokens": JSON(budget)]
        case (.adaptiveOnly, "enabled"):
            let budget = body["thinking"]?["budget_tokens"]?.intValue ?? ReasoningEffort.medium.thinkingBudget
            body["thinking"] = ["type": "adaptive"]
            var outputConfig = body["output_config"]?.objectValue ?? [:]
            if outputConfig["effort"] == nil {
                outputConfig["effort"] = .string(AnthropicRequestCodec.anthropicEffort(ReasoningEffort(thinkingBudget: budget)))
            }
            body["output_config"] = .object(outputConfig)
        default:
            break
        }
    }

    /// The effort of an Anthropic `output_config.effort` level.
    static func reasoningEffort(anthropicLevel level: String) -> ReasoningEffort? {
        switch level.lowercased() {
        case "low": .low
        case "medium": .medium
        case "high": .high
        case "max", "xhigh": .xhigh
        default: nil
        }
    }

    /// Removes thinking blocks with empty content (Vertex refuses them) from every message's content list;
    /// a message left with no content at all is removed (Anthropic joins the neighbouring turns).
    package static func droppingEmptyThinkingBlocks(_ messages: [JSON]) -> [JSON] {
        messages.compactMap { message in
            guard case .object(var object) = message, case .array(let blocks)? = object["content"] else { return message }
            let kept = blocks.filter { block in
                switch block["type"]?.stringValue {
                case "thinking": !(block["thinking"]?.stringValue ?? "").allSatisfy(\.isWhitespace)
                case "redacted_thinking": !(block["data"]?.stringValue ?? "").isEmpty
                default: true
                }
            }
            guard kept.count != blocks.count else { return message }
            guard !kept.isEmpty else { return nil }
            object["content"] = .array(kept)
            return .object(object)
        }
    }
}
