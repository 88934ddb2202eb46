import Yams

/// Reads the `transforms:` section of a config file into rules, with file and line in every error.
///
/// ```yaml
/// transforms:
///   - match: {provider: argo, model: "gpt-5*"}
///     apply:
///       - rename: {field: max_tokens, to: max_completion_tokens}
///       - force_stream: true
/// ```
/// docs/transforms.md lists every action and its options.
package struct TransformRuleReader {
    /// The file being read, for errors.
    let file: String
    /// Reads a scalar as text with `${VAR}` substituted (the config reader's rule for every string).
    let text: (Node) throws(ConfigError) -> String

    /// Reads the section's list of rules.
    package static func read(_ node: Node, file: String, text: (Node) throws(ConfigError) -> String) throws(ConfigError) -> [TransformRule] {
        try withoutActuallyEscaping(text) { (text) throws(ConfigError) -> [TransformRule] in
            try TransformRuleReader(file: file, text: text).readRules(node)
        }
    }

    func error(_ code: String, _ message: String, at node: Node?) -> ConfigError {
        ConfigError(code: code, message: message, file: file, line: node?.mark?.line)
    }

    func readRules(_ node: Node) throws(ConfigError) -> [TransformRule] {
        if case .scalar(let scalar) = node, ["", "~", "null"].contains(scalar.string) { return [] }
        guard case .sequence(let items) = node else {
            throw error("invalid_type", "transforms must be a list of rules, each with 'match' and 'apply'", at: node)
        }
        var rules: [TransformRule] = []
        for (index, item) in items.enumerated() {
            rules.append(try readRule(item, index: index))
        }
        return rules
    }

    func readRule(_ node: Node, index: Int) throws(ConfigError) -> TransformRule {
        let what = "transforms[\(index)]"
        let map = try mapping(node, what, allowed: ["match", "apply"])
        var match = TransformMatch()
        if let matchNode = map["match"] {
            let conditions = try mapping(matchNode, "\(what).match", allowed: ["provider", "provider_type", "model", "model_regex"])
            match.provider = try conditions["provider"].map { node throws(ConfigError) in try text(node) }
            if let typeNode = conditions["provider_type"] {
                let name = try text(typeNode)
                guard let type = ProviderType(rawValue: name) else {
                    throw error("invalid_value", "\(what).match: unknown provider_type '\(name)' (known: \(ProviderType.allCases.map(\.rawValue).joined(separator: ", ")))", at: typeNode)
                }
                match.providerType = type
            }
            if let globNode = conditions["model"] { match.model = .glob(try text(globNode)) }
            if let regexNode = conditions["model_regex"] {
                guard match.model == nil else {
                    throw error("invalid_value", "\(what).match: give either 'model' (a glob) or 'model_regex', not both", at: regexNode)
                }
                let pattern = ModelNamePattern.regex(try text(regexNode))
                if let problem = pattern.problem {
                    throw error("invalid_value", "\(what).match: model_regex does not compile: \(problem)", at: regexNode)
                }
                match.model = pattern
            }
        }
        guard let applyNode = map["apply"], case .sequence(let actionNodes) = applyNode, !actionNodes.isEmpty else {
            throw error("missing_key", "\(what) needs 'apply': a non-empty list of actions (rename, drop, clamp, default, rewrite_role, flatten_content, max_images, truncate_tool_descriptions, force_stream)", at: map["apply"] ?? node)
        }
        var actions: [TransformAction] = []
        for actionNode in actionNodes { actions.append(try readAction(actionNode, what: "\(what).apply")) }
        return TransformRule(match: match, actions: actions)
    }

    func readAction(_ node: Node, what: String) throws(ConfigError) -> TransformAction {
        guard case .mapping(let entries) = node, entries.count == 1, let (kindNode, argument) = entries.first.map({ ($0.key, $0.value) }) else {
            throw error("invalid_type", "\(what): each action is a mapping with one key, the action's kind, e.g. '- drop: temperature'", at: node)
        }
        let kind = try text(kindNode)
        switch kind {
        case "rename":
            let map = try mapping(argument, "\(what).rename", allowed: ["field", "to", "on"])
            let to = try required(map, "to", in: "rename", at: argument)
            guard !to.isEmpty, !to.contains(".") else {
                throw error("invalid_value", "\(what).rename: 'to' is a key in the same object as the field, without dots", at: map["to"])
            }
            return .rename(field: try fieldPath(map, at: argument), to: to, on: try target(map))
        case "drop":
            if case .scalar = argument { return .drop(field: try path(argument), on: .request) }
            let map = try mapping(argument, "\(what).drop", allowed: ["field", "on"])
            return .drop(field: try fieldPath(map, at: argument), on: try target(map))
        case "clamp":
            let map = try mapping(argument, "\(what).clamp", allowed: ["field", "min", "max", "on"])
            let low = try map["min"].map { node throws(ConfigError) in try number(node) }
            let high = try map["max"].map { node throws(ConfigError) in try number(node) }
            guard low != nil || high != nil else { throw error("missing_key", "\(what).clamp needs 'min', 'max' or both", at: argument) }
            if let low, let high, low > high { throw error("invalid_value", "\(what).clamp: min is above max", at: argument) }
            return .clamp(field: try fieldPath(map, at: argument), min: low, max: high, on: try target(map))
        case "default":
            let map = try mapping(argument, "\(what).default", allowed: ["field", "value", "on"])
            guard let valueNode = map["value"] else { throw error("missing_key", "\(what).default needs 'value'", at: argument) }
            return .setDefault(field: try fieldPath(map, at: argument), value: try json(valueNode), on: try target(map))
        case "rewrite_role":
            let map = try mapping(argument, "\(what).rewrite_role", allowed: ["from", "to"])
            return .rewriteRole(from: try required(map, "from", in: "rewrite_role", at: argument), to: try required(map, "to", in: "rewrite_role", at: argument))
        case "flatten_content":
            var roles: [String] = []
            var separator = "\n\n"
            if case .sequence(let items) = argument {
                for item in items { roles.append(try text(item)) }
            } else {
                let map = try mapping(argument, "\(what).flatten_content", allowed: ["roles", "separator"])
                guard let rolesNode = map["roles"], case .sequence(let items) = rolesNode else {
                    throw error("missing_key", "\(what).flatten_content needs 'roles', a list such as [system, developer, tool]", at: argument)
                }
                for item in items { roles.append(try text(item)) }
                if let separatorNode = map["separator"] { separator = try text(separatorNode) }
            }
            guard !roles.isEmpty else { throw error("invalid_value", "\(what).flatten_content: roles must not be empty", at: argument) }
            return .flattenContent(roles: Set(roles), separator: separator)
        case "max_images":
            return .maxImages(try count(argument, allowZero: true))
        case "truncate_tool_descriptions":
            return .truncateToolDescriptions(maxCharacters: try count(argument, allowZero: false))
        case "force_stream":
            guard try text(argument) == "true" else {
                throw error("invalid_value", "\(what).force_stream takes 'true' (leave the action out to not force streaming)", at: argument)
            }
            return .forceStream
        case "allow_fields":
            var fields: [String] = []
            var container: FieldPath?
            if case .sequence(let items) = argument {
                for item in items { fields.append(try text(item)) }
            } else {
                let map = try mapping(argument, "\(what).allow_fields", allowed: ["in", "fields"])
                guard let fieldsNode = map["fields"], case .sequence(let items) = fieldsNode else {
                    throw error("missing_key", "\(what).allow_fields needs 'fields', a list of member names", at: argument)
                }
                for item in items { fields.append(try text(item)) }
                container = try map["in"].map { node throws(ConfigError) in try path(node) }
            }
            return .allowFields(container: container, fields: Set(fields))
        case "allow_values":
            let map = try mapping(argument, "\(what).allow_values", allowed: ["field", "values", "replace"])
            guard let valuesNode = map["values"], case .sequence(let items) = valuesNode, !items.isEmpty else {
                throw error("missing_key", "\(what).allow_values needs 'values', a non-empty list", at: argument)
            }
            var allowed: [String] = []
            for item in items { allowed.append(try text(item)) }
            var replacements: [String: String] = [:]
            if let replaceNode = map["replace"] {
                guard case .mapping(let pairs) = replaceNode else {
                    throw error("invalid_type", "\(what).allow_values: 'replace' maps values to allowed ones, e.g. {xhigh: high}", at: replaceNode)
                }
                for (from, to) in pairs { replacements[try text(from)] = try text(to) }
            }
            return .allowValues(field: try fieldPath(map, at: argument), allowed: allowed, replacements: replacements)
        case "sanitize_tool_names", "function_tools_only":
            guard try text(argument) == "true" else {
                throw error("invalid_value", "\(what).\(kind) takes 'true'", at: argument)
            }
            return kind == "sanitize_tool_names" ? .sanitizeToolNames : .functionToolsOnly
        default:
            throw error("invalid_value", "\(what): unknown action '\(kind)' (known: rename, drop, clamp, default, rewrite_role, flatten_content, max_images, truncate_tool_descriptions, force_stream, allow_fields, allow_values, sanitize_tool_names, function_tools_only)", at: kindNode)
        }
    }

    // MARK: Node helpers

    func mapping(_ node: Node, _ what: String, allowed: Set<String>) throws(ConfigError) -> [String: Node] {
        guard case .mapping(let mapping) = node else {
            throw error("invalid_type", "\(what) must be a mapping (keys: \(allowed.sorted().joined(separator: ", ")))", at: node)
        }
        var result: [String: Node] = [:]
        for (key, value) in mapping {
            let name = key.scalar?.string ?? "?"
            guard allowed.contains(name) else {
                throw error("unknown_key", "unknown key '\(name)' in \(what) (allowed: \(allowed.sorted().joined(separator: ", ")))", at: key)
            }
            result[name] = value
        }
        return result
    }

    func required(_ map: [String: Node], _ key: String, in action: String, at node: Node) throws(ConfigError) -> String {
        guard let value = map[key] else { throw error("missing_key", "\(action) needs '\(key)'", at: node) }
        return try text(value)
    }

    func fieldPath(_ map: [String: Node], at node: Node) throws(ConfigError) -> FieldPath {
        guard let fieldNode = map["field"] else { throw error("missing_key", "the action needs 'field', a path such as max_tokens or messages[].name", at: node) }
        return try path(fieldNode)
    }

    func path(_ node: Node) throws(ConfigError) -> FieldPath {
        let written = try text(node)
        guard let path = FieldPath(written) else {
            throw error("invalid_value", "'\(written)' is not a field path (keys separated by dots, [] after a key for every element: messages[].name)", at: node)
        }
        return path
    }

    func target(_ map: [String: Node]) throws(ConfigError) -> TransformTarget {
        guard let node = map["on"] else { return .request }
        let name = try text(node)
        guard let target = TransformTarget(rawValue: name) else {
            throw error("invalid_value", "'on' is 'request' or 'response', not '\(name)'", at: node)
        }
        return target
    }

    func number(_ node: Node) throws(ConfigError) -> Double {
        let written = try text(node)
        guard let value = Double(written), value.isFinite else { throw error("invalid_value", "expected a number, found '\(written)'", at: node) }
        return value
    }

    func count(_ node: Node, allowZero: Bool) throws(ConfigError) -> Int {
        let written = try text(node)
        guard let value = Int(written), value > 0 || (allowZero && value == 0) else {
            throw error("invalid_value", "expected a \(allowZero ? "non-negative" : "positive") integer, found '\(written)'", at: node)
        }
        return value
    }

    /// A YAML value as JSON: plain scalars that read as JSON (numbers, true, false, null) keep their type;
    /// quoted scalars are strings.
    func json(_ node: Node) throws(ConfigError) -> JSON {
        switch node {
        case .scalar(let scalar):
            let value = try text(node)
            if scalar.style == .plain {
                if value == "~" { return .null }
                if let parsed = try? JSON.parse(Array(value.utf8)), parsed.stringValue == nil { return parsed }
            }
            return .string(value)
        case .sequence(let items):
            var array: [JSON] = []
            for item in items { array.append(try json(item)) }
            return .array(array)
        case .mapping(let mapping):
            var object = JSONObject()
            for (key, value) in mapping { object[try text(key)] = try json(value) }
            return .object(object)
        case .alias:
            throw error("invalid_type", "YAML aliases are not supported in transform values", at: node)
        }
    }
}
