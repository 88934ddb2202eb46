/// Every transform rule the gateway knows: the built-in sets (from code) followed by the admin's (from config).
package struct TransformCatalog: Sendable {
    /// Rules shipped with the gateway, per provider type; later issues fill these (Argo, ALCF).
    package static let builtInRules: [TransformRule] = ALCFTransforms.rules + ArgoTransformRules.rules

    /// All rules, built-in first.
    package let rules: [TransformRule]

    /// Creates a catalog of the built-in rules followed by `configured`.
    package init(configured: [TransformRule], builtIn: [TransformRule] = TransformCatalog.builtInRules) {
        self.rules = builtIn + configured
    }

    /// The actions of every rule that matches a call, in rule order.
    package func plan(provider: String, providerType: ProviderType, upstreamModel: String) -> TransformPlan {
        TransformPlan(actions: rules
            .filter { $0.match.matches(provider: provider, providerType: providerType, upstreamModel: upstreamModel) }
            .flatMap(\.actions))
    }
}

/// The transform actions that apply to one upstream call, and their application to JSON bodies.
///
/// All of it is pure: bodies in, bodies (and notes for the log) out. A change the client could not
/// otherwise notice is either refused with a 400 naming the limit or recorded in `notes` for the log.
package struct TransformPlan: Sendable, Equatable {
    /// The actions, in order.
    package var actions: [TransformAction]

    /// Creates a plan.
    package init(actions: [TransformAction]) {
        self.actions = actions
    }

    /// Whether there is nothing to do.
    package var isEmpty: Bool { actions.isEmpty }

    /// Whether the upstream must be asked for a stream whatever the client asked for.
    package var forcesStream: Bool { actions.contains(.forceStream) }

    /// Whether responses (whole or streamed) are edited.
    package var editsResponses: Bool { actions.contains(where: \.editsResponses) }

    /// Applies the request actions to a translated upstream call; `notes` lists the changes worth logging.
    ///
    /// `plan` is the plan for the answer: this one, plus what undoes a request edit the client must not see
    /// (tool names that `sanitize_tool_names` changed).
    package func transformRequest(_ call: UpstreamCall, upstream: Dialect) throws(GatewayError) -> (call: UpstreamCall, notes: [String], plan: TransformPlan) {
        guard !actions.isEmpty else { return (call, [], self) }
        var body: JSON
        do {
            body = try JSON.parse(call.body)
        } catch {
            throw GatewayError(.internalError, code: "transform_failed", message: "The translated request is not JSON: \(error.description).", cause: error)
        }
        var call = call
        let declaredToolNames = actions.contains(.sanitizeToolNames) ? StrictShaping.toolNames(in: body) : []
        let notes = try applyToRequest(&body)
        if forcesStream, !call.stream {
            Self.requestStream(in: &body, upstream: upstream)
            call.stream = true
        }
        call.body = body.bytes
        var answerPlan = self
        let renamed = StrictShaping.restorations(for: declaredToolNames)
        if !renamed.isEmpty { answerPlan.actions.append(.restoreToolNames(renamed)) }
        return (call, notes, answerPlan)
    }

    /// Applies the request actions to an upstream request body.
    package func applyToRequest(_ body: inout JSON) throws(GatewayError) -> [String] {
        var notes: [String] = []
        for action in actions {
            switch action {
            case .rename(let field, let to, .request):
                FieldEditor.rename(field, to: to, in: &body)
            case .drop(let field, .request):
                FieldEditor.drop(field, in: &body)
            case .clamp(let field, let low, let high, .request):
                FieldEditor.clamp(field, min: low, max: high, in: &body)
            case .setDefault(let field, let value, .request):
                FieldEditor.setDefault(field, value: value, in: &body)
            case .rewriteRole(let from, let to):
                Self.forEachMessage(in: &body) { message in
                    if message["role"]?.stringValue == from { message["role"] = .string(to) }
                }
            case .flattenContent(let roles, let separator):
                try Self.flattenContent(in: &body, roles: roles, separator: separator)
            case .maxImages(let cap):
                let count = RequestContentScan.imageCount(in: body)
                if count > cap {
                    throw GatewayError(
                        .invalidRequest, code: "too_many_images",
                        message: "This model accepts at most \(cap) image\(cap == 1 ? "" : "s") per request (a max_images transform rule of the gateway), and the request has \(count). Send fewer images.",
                        parameter: "messages")
                }
            case .truncateToolDescriptions(let limit):
                notes += Self.truncateToolDescriptions(in: &body, limit: limit)
            case .allowFields(let container, let fields):
                notes += StrictShaping.allowFields(fields, in: container, body: &body)
            case .allowValues(let field, let allowed, let replacements):
                notes += StrictShaping.allowValues(field, allowed: allowed, replacements: replacements, body: &body)
            case .sanitizeToolNames:
                notes += StrictShaping.sanitizeToolNames(in: &body)
            case .functionToolsOnly:
                notes += StrictShaping.functionToolsOnly(in: &body)
            case .forceStream, .rename, .drop, .clamp, .setDefault, .restoreToolNames:
                break
            }
        }
        return notes
    }

    /// Applies the response actions to a whole upstream response or one stream event's JSON.
    package func applyToResponse(_ body: inout JSON) {
        for action in actions {
            switch action {
            case .rename(let field, let to, .response): FieldEditor.rename(field, to: to, in: &body)
            case .drop(let field, .response): FieldEditor.drop(field, in: &body)
            case .clamp(let field, let low, let high, .response): FieldEditor.clamp(field, min: low, max: high, in: &body)
            case .setDefault(let field, let value, .response): FieldEditor.setDefault(field, value: value, in: &body)
            case .restoreToolNames(let names): StrictShaping.restoreToolNames(names, in: &body)
            default: break
            }
        }
    }

    /// Applies the response actions to a whole upstream response body; the bytes are unchanged when there are none.
    package func transformResponse(_ bytes: [UInt8]) -> [UInt8] {
        guard editsResponses, var body = try? JSON.parse(bytes) else { return bytes }
        applyToResponse(&body)
        return body.bytes
    }

    /// Sets the body's stream flag for the upstream's format (OpenAI Chat also asks for the usage chunk).
    static func requestStream(in body: inout JSON, upstream: Dialect) {
        body["stream"] = true
        if upstream == .openAIChat {
            var options = body["stream_options"]?.objectValue ?? [:]
            options["include_usage"] = true
            body["stream_options"] = .object(options)
        }
    }

    /// Runs `edit` on every object in the body's `messages` and `input` arrays.
    static func forEachMessage<Failure: Error>(in body: inout JSON, _ edit: (inout JSONObject) throws(Failure) -> Void) throws(Failure) {
        for key in ["messages", "input"] {
            guard case .array(var messages)? = body[key] else { continue }
            for index in messages.indices {
                guard case .object(var message) = messages[index] else { continue }
                try edit(&message)
                messages[index] = .object(message)
            }
            body[key] = .array(messages)
        }
    }

    static func flattenContent(in body: inout JSON, roles: Set<String>, separator: String) throws(GatewayError) {
        try forEachMessage(in: &body) { (message: inout JSONObject) throws(GatewayError) in
            guard let role = message["role"]?.stringValue, roles.contains(role),
                  case .array(let parts)? = message["content"] else { return }
            var texts: [String] = []
            for part in parts {
                if case .string(let text) = part {
                    texts.append(text)
                    continue
                }
                let type = part["type"]?.stringValue
                guard type == "text" || type == "input_text" || type == "output_text", let text = part["text"]?.stringValue else {
                    throw GatewayError(
                        .invalidRequest, code: "content_not_flattenable",
                        message: "The model served here takes only text in '\(role)' messages (a flatten_content transform rule of the gateway), but one carries a '\(type ?? part.typeName)' part. Send text only in '\(role)' messages.",
                        parameter: "messages")
                }
                texts.append(text)
            }
            message["content"] = .string(texts.joined(separator: separator))
        }
    }

    /// Shortens descriptions in every tool format: `tools[].description`, `tools[].function.description`,
    /// `tools[].functionDeclarations[].description`.
    static func truncateToolDescriptions(in body: inout JSON, limit: Int) -> [String] {
        guard case .array(var tools)? = body["tools"] else { return [] }
        var notes: [String] = []
        func shorten(_ holder: inout JSON) {
            guard case .string(let text)? = holder["description"], text.count > limit else { return }
            let name = holder["name"]?.stringValue ?? "?"
            holder["description"] = .string(String(text.prefix(limit)))
            notes.append("truncated the description of tool '\(name)' from \(text.count) to \(limit) characters (truncate_tool_descriptions)")
        }
        for index in tools.indices {
            shorten(&tools[index])
            if var function = tools[index]["function"] {
                shorten(&function)
                tools[index]["function"] = function
            }
            if case .array(var declarations)? = tools[index]["functionDeclarations"] {
                for declaration in declarations.indices { shorten(&declarations[declaration]) }
                tools[index]["functionDeclarations"] = .array(declarations)
            }
        }
        body["tools"] = .array(tools)
        return notes
    }
}

/// Field edits along a `FieldPath`; missing intermediate members make an edit a no-op.
enum FieldEditor {
    static func rename(_ path: FieldPath, to newKey: String, in body: inout JSON) {
        edit(path, in: &body) { object, key in
            guard let value = object.removeValue(forKey: key) else { return }
            object[newKey] = value
        }
    }

    static func drop(_ path: FieldPath, in body: inout JSON) {
        edit(path, in: &body) { object, key in object.removeValue(forKey: key) }
    }

    static func clamp(_ path: FieldPath, min low: Double?, max high: Double?, in body: inout JSON) {
        edit(path, in: &body) { object, key in
            guard let number = object[key]?.doubleValue else { return }
            var clamped = number
            if let low, clamped < low { clamped = low }
            if let high, clamped > high { clamped = high }
            if clamped != number { object[key] = JSON(clamped) }
        }
    }

    static func setDefault(_ path: FieldPath, value: JSON, in body: inout JSON) {
        edit(path, in: &body) { object, key in
            if object[key] == nil || object[key] == .null { object[key] = value }
        }
    }

    /// Walks to every object holding the path's last key and runs `change` on it.
    static func edit(_ path: FieldPath, in body: inout JSON, _ change: (inout JSONObject, String) -> Void) {
        walk(path.steps[...], &body, change)
    }

    private static func walk(_ steps: ArraySlice<FieldPath.Step>, _ value: inout JSON, _ change: (inout JSONObject, String) -> Void) {
        guard let step = steps.first else { return }
        let rest = steps.dropFirst()
        switch step {
        case .key(let key):
            guard case .object(var object) = value else { return }
            if rest.isEmpty {
                change(&object, key)
            } else {
                guard var child = object[key] else { return }
                walk(rest, &child, change)
                object[key] = child
            }
            value = .object(object)
        case .each:
            guard case .array(var items) = value else { return }
            for index in items.indices { walk(rest, &items[index], change) }
            value = .array(items)
        }
    }
}
