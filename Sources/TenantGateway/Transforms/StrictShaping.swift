/// The request edits behind the strict-gateway actions (`allow_fields`, `allow_values`, `sanitize_tool_names`,
/// `function_tools_only`): pure functions on JSON bodies that return notes for the log.
package enum StrictShaping {
    /// Keeps only `fields` in the body, or in the object (or each object of the array) at `container`.
    static func allowFields(_ fields: Set<String>, in container: FieldPath?, body: inout JSON) -> [String] {
        var dropped: [String] = []
        func prune(_ value: inout JSON) {
            switch value {
            case .object(var object):
                for key in object.keys where !fields.contains(key) {
                    object.removeValue(forKey: key)
                    if !dropped.contains(key) { dropped.append(key) }
                }
                value = .object(object)
            case .array(var items):
                for index in items.indices { prune(&items[index]) }
                value = .array(items)
            default:
                break
            }
        }
        if let container {
            FieldEditor.edit(container, in: &body) { object, key in
                guard var child = object[key] else { return }
                prune(&child)
                object[key] = child
            }
        } else {
            prune(&body)
        }
        guard !dropped.isEmpty else { return [] }
        let place = container.map { " of \($0.description)" } ?? ""
        return ["dropped \(dropped.joined(separator: ", "))\(place), which the upstream does not accept (allow_fields)"]
    }

    /// Keeps a string member only when allowed, replacing mapped values and dropping the rest.
    static func allowValues(_ field: FieldPath, allowed: [String], replacements: [String: String], body: inout JSON) -> [String] {
        var notes: [String] = []
        FieldEditor.edit(field, in: &body) { object, key in
            guard let value = object[key], value != .null else { return }
            if let text = value.stringValue, allowed.contains(text) { return }
            if let text = value.stringValue, let replacement = replacements[text] {
                object[key] = .string(replacement)
                notes.append("changed \(field.description) from '\(text)' to '\(replacement)' (allow_values)")
            } else {
                object.removeValue(forKey: key)
                notes.append("dropped \(field.description) '\(value.stringValue ?? value.typeName)', not one of \(allowed.joined(separator: "/")) (allow_values)")
            }
        }
        return notes
    }

    /// A tool name the strictest OpenAI-compatible servers accept: `[A-Za-z0-9_-]`, at most 64 characters.
    package static func sanitizedToolName(_ name: String) -> String {
        var output = ""
        for scalar in name.unicodeScalars {
            let allowed = ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar) || scalar == "_" || scalar == "-"
            output.unicodeScalars.append(allowed ? scalar : "_")
        }
        if output.isEmpty { output = "_" }
        return String(output.prefix(64))
    }

    /// The function names an OpenAI Chat body declares in `tools`.
    static func toolNames(in body: JSON) -> [String] {
        guard case .array(let tools)? = body["tools"] else { return [] }
        return tools.compactMap { $0["function"]?["name"]?.stringValue }
    }

    /// Sanitized name → declared name, for the names sanitizing changes (first declaration wins a collision).
    static func restorations(for declared: [String]) -> [String: String] {
        var map: [String: String] = [:]
        for name in declared {
            let clean = sanitizedToolName(name)
            if clean != name, map[clean] == nil { map[clean] = name }
        }
        return map
    }

    /// Sanitizes the names in `tools`, `tool_choice` and the history's `tool_calls` of an OpenAI Chat body.
    static func sanitizeToolNames(in body: inout JSON) -> [String] {
        var changed: [String] = []
        func clean(_ holder: inout JSON) {
            guard let name = holder["name"]?.stringValue else { return }
            let fixed = sanitizedToolName(name)
            if fixed != name {
                holder["name"] = .string(fixed)
                if !changed.contains(name) { changed.append(name) }
            }
        }
        if case .array(var tools)? = body["tools"] {
            for index in tools.indices {
                guard var function = tools[index]["function"] else { continue }
                clean(&function)
                tools[index]["function"] = function
            }
            body["tools"] = .array(tools)
        }
        if var choice = body["tool_choice"], var function = choice["function"] {
            clean(&function)
            choice["function"] = function
            body["tool_choice"] = choice
        }
        if case .array(var messages)? = body["messages"] {
            for index in messages.indices {
                guard case .array(var calls)? = messages[index]["tool_calls"] else { continue }
                for call in calls.indices {
                    guard var function = calls[call]["function"] else { continue }
                    clean(&function)
                    calls[call]["function"] = function
                }
                messages[index]["tool_calls"] = .array(calls)
            }
            body["messages"] = .array(messages)
        }
        guard !changed.isEmpty else { return [] }
        return ["renamed tools \(changed.joined(separator: ", ")) to names the upstream accepts (sanitize_tool_names)"]
    }

    /// Renames tool calls in a whole OpenAI Chat answer or one stream chunk back to the declared names.
    static func restoreToolNames(_ names: [String: String], in body: inout JSON) {
        guard case .array(var choices)? = body["choices"] else { return }
        for index in choices.indices {
            for holder in ["message", "delta"] {
                guard var part = choices[index][holder], case .array(var calls)? = part["tool_calls"] else { continue }
                for call in calls.indices {
                    guard var function = calls[call]["function"], let name = function["name"]?.stringValue,
                          let declared = names[name] else { continue }
                    function["name"] = .string(declared)
                    calls[call]["function"] = function
                }
                part["tool_calls"] = .array(calls)
                choices[index][holder] = part
            }
        }
        body["choices"] = .array(choices)
    }

    /// Removes non-function tools; without tools left, `tool_choice` and `parallel_tool_calls` go too.
    static func functionToolsOnly(in body: inout JSON) -> [String] {
        guard case .array(let tools)? = body["tools"] else { return [] }
        let kept = tools.filter { $0["type"]?.stringValue == "function" }
        guard kept.count != tools.count else { return [] }
        let removed = tools.filter { $0["type"]?.stringValue != "function" }.map { $0["type"]?.stringValue ?? "untyped" }
        if kept.isEmpty {
            body["tools"] = nil
            body["tool_choice"] = nil
            body["parallel_tool_calls"] = nil
        } else {
            body["tools"] = .array(kept)
        }
        return ["removed \(removed.count) non-function tool(s) (\(removed.joined(separator: ", "))), which the upstream does not accept (function_tools_only)"]
    }
}

/// The built-in rules for ALCF Inference Endpoints, whose gateway rejects every field it does not know with
/// HTTP 422 (UPSTREAMS.md §2; docs/alcf.md lists the rules).
package enum ALCFTransforms {
    /// The top-level members the gateway's chat-completions schema accepts.
    package static let chatFields: Set<String> = [
        "messages", "model", "frequency_penalty", "logit_bias", "logprobs", "max_completion_tokens", "max_tokens",
        "metadata", "modalities", "n", "parallel_tool_calls", "prediction", "presence_penalty", "reasoning_effort",
        "response_format", "seed", "service_tier", "stop", "stream", "stream_options", "store", "temperature",
        "tool_choice", "tools", "top_logprobs", "top_p", "user", "web_search_options", "extra_body",
    ]
    /// The members a message may carry (the union over the roles).
    package static let messageFields: Set<String> = [
        "role", "content", "name", "tool_calls", "tool_call_id", "refusal", "audio", "function_call", "reasoning", "reasoning_content",
    ]

    /// The rule set, matched by provider type `alcf`.
    package static let rules: [TransformRule] = [
        TransformRule(match: TransformMatch(providerType: .alcf), actions: [
            .allowFields(container: nil, fields: chatFields),
            .allowFields(container: FieldPath("messages"), fields: messageFields),
            .allowFields(container: FieldPath("stream_options"), fields: ["include_usage"]),
            .allowFields(container: FieldPath("extra_body"), fields: ["use_beam_search"]),
            .allowValues(field: FieldPath("reasoning_effort")!, allowed: ["low", "medium", "high"],
                         replacements: ["none": "low", "minimal": "low", "xhigh": "high", "max": "high"]),
            .flattenContent(roles: ["system", "developer", "tool"], separator: "\n\n"),
            .functionToolsOnly,
            .sanitizeToolNames,
        ]),
    ]
}
