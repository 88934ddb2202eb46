/// One declarative transform rule: which upstream calls it matches and what it does to them.
///
/// Rules come from code (`TransformCatalog.builtInRules`, per provider type) and from the admin's
/// `transforms:` config section; docs/transforms.md describes every action.
package struct TransformRule: Sendable, Equatable {
    /// Which calls the rule applies to.
    package var match: TransformMatch
    /// What it does, in order.
    package var actions: [TransformAction]

    /// Creates a rule.
    package init(match: TransformMatch, actions: [TransformAction]) {
        self.match = match
        self.actions = actions
    }
}

/// Which upstream calls a rule applies to; every condition given must hold, and no condition matches all calls.
package struct TransformMatch: Sendable, Equatable {
    /// The provider's configured name.
    package var provider: String?
    /// The provider's type (for rule sets that belong to a kind of upstream).
    package var providerType: ProviderType?
    /// A pattern for the upstream model name (the `upstream_model` of the model config).
    package var model: ModelNamePattern?

    /// Creates a match; `nil` conditions are not checked.
    package init(provider: String? = nil, providerType: ProviderType? = nil, model: ModelNamePattern? = nil) {
        self.provider = provider
        self.providerType = providerType
        self.model = model
    }

    /// Whether a call to `upstreamModel` on a provider matches.
    package func matches(provider: String, providerType: ProviderType, upstreamModel: String) -> Bool {
        if let wanted = self.provider, wanted != provider { return false }
        if let wanted = self.providerType, wanted != providerType { return false }
        if let pattern = model, !pattern.matches(upstreamModel) { return false }
        return true
    }
}

/// A pattern for model names: a glob (`*` any run, `?` one character, case-insensitive) or a regular expression
/// that must match the whole name.
package enum ModelNamePattern: Sendable, Equatable {
    /// A case-insensitive glob.
    case glob(String)
    /// A regular expression (Swift `Regex` syntax) matched against the whole name.
    case regex(String)

    /// Whether the pattern is usable; for a regex, the compile error's description otherwise.
    package var problem: String? {
        guard case .regex(let pattern) = self else { return nil }
        do {
            _ = try Regex(pattern)
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Whether a model name matches.
    package func matches(_ name: String) -> Bool {
        switch self {
        case .glob(let pattern):
            return Self.globMatches(Array(pattern.lowercased()), Array(name.lowercased()))
        case .regex(let pattern):
            guard let regex = try? Regex(pattern) else { return false }
            return (try? regex.wholeMatch(in: name)) != nil
        }
    }

    /// Iterative glob matching with backtracking to the last `*`.
    private static func globMatches(_ pattern: [Character], _ name: [Character]) -> Bool {
        var p = 0, n = 0
        var star: Int?, resume = 0
        while n < name.count {
            if p < pattern.count, pattern[p] == "?" || pattern[p] == name[n] {
                p += 1
                n += 1
            } else if p < pattern.count, pattern[p] == "*" {
                star = p
                resume = n
                p += 1
            } else if let lastStar = star {
                p = lastStar + 1
                resume += 1
                n = resume
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }
}

/// Which body a field action edits.
package enum TransformTarget: String, Sendable, Equatable {
    /// The upstream request body, after translation into the upstream's format.
    case request
    /// The upstream response body (whole) or each stream event's JSON, before translation back.
    case response
}

/// A path to a field: keys separated by dots, `[]` after a key meaning every element of that array
/// (`max_tokens`, `stream_options.include_usage`, `messages[].name`).
package struct FieldPath: Sendable, Equatable, CustomStringConvertible {
    /// One step of a path.
    package enum Step: Sendable, Equatable {
        /// An object member.
        case key(String)
        /// Every element of an array.
        case each
    }

    /// The steps; the last one is always a key.
    package let steps: [Step]
    /// The path as written.
    package let description: String

    /// Parses a path; `nil` when it is empty, has an empty key, or ends in `[]`.
    package init?(_ text: String) {
        var steps: [Step] = []
        for segment in text.split(separator: ".", omittingEmptySubsequences: false) {
            var key = Substring(segment)
            var eachCount = 0
            while key.hasSuffix("[]") {
                key = key.dropLast(2)
                eachCount += 1
            }
            guard !key.isEmpty, !key.contains("["), !key.contains("]") else { return nil }
            steps.append(.key(String(key)))
            steps.append(contentsOf: repeatElement(.each, count: eachCount))
        }
        guard case .key? = steps.last else { return nil }
        self.steps = steps
        self.description = text
    }
}

/// One thing a rule does.
package enum TransformAction: Sendable, Equatable {
    /// Renames a member (keeping its value); `to` is a key in the same object.
    case rename(field: FieldPath, to: String, on: TransformTarget)
    /// Removes a member.
    case drop(field: FieldPath, on: TransformTarget)
    /// Limits a number to `[min, max]`; non-numbers are left alone.
    case clamp(field: FieldPath, min: Double?, max: Double?, on: TransformTarget)
    /// Sets a member that is absent (or `null`).
    case setDefault(field: FieldPath, value: JSON, on: TransformTarget)
    /// Changes a message role (`developer` → `system`) in `messages[]` and `input[]`.
    case rewriteRole(from: String, to: String)
    /// Turns list content of messages with these roles into one string; refused (400) when a part is not text.
    case flattenContent(roles: Set<String>, separator: String)
    /// Refuses (400) a request with more images than this.
    case maxImages(Int)
    /// Shortens tool descriptions longer than this many characters, and logs each one it shortened.
    case truncateToolDescriptions(maxCharacters: Int)
    /// Streams from the upstream even when the client did not ask to; a whole answer is assembled for it.
    case forceStream
    /// Keeps only these members of the request body (`container` nil) or of the object(s) at `container`
    /// (every element when it is an array); the rest are dropped and noted in the log.
    case allowFields(container: FieldPath?, fields: Set<String>)
    /// Keeps a string member only when its value is allowed; `replacements` maps other values to allowed
    /// ones (`xhigh` → `high`), and any other value is dropped.
    case allowValues(field: FieldPath, allowed: [String], replacements: [String: String])
    /// Rewrites tool names to `[A-Za-z0-9_-]{1,64}` (other characters become `_`) in `tools`, `tool_choice` and
    /// the history's tool calls; answers name the tools as the client declared them.
    case sanitizeToolNames
    /// Removes tools whose `type` is not `function` (and `tool_choice`/`parallel_tool_calls` when none is left).
    case functionToolsOnly
    /// Renames tool calls in answers back to the names the client declared (added by `sanitizeToolNames`
    /// for one request; not configurable).
    case restoreToolNames([String: String])

    /// Whether the action edits responses.
    package var editsResponses: Bool {
        switch self {
        case .rename(_, _, .response), .drop(_, .response), .clamp(_, _, _, .response), .setDefault(_, _, .response), .restoreToolNames: true
        default: false
        }
    }

    /// The action's name in configuration files.
    package var kindName: String {
        switch self {
        case .rename: "rename"
        case .drop: "drop"
        case .clamp: "clamp"
        case .setDefault: "default"
        case .rewriteRole: "rewrite_role"
        case .flattenContent: "flatten_content"
        case .maxImages: "max_images"
        case .truncateToolDescriptions: "truncate_tool_descriptions"
        case .forceStream: "force_stream"
        case .allowFields: "allow_fields"
        case .allowValues: "allow_values"
        case .sanitizeToolNames: "sanitize_tool_names"
        case .functionToolsOnly: "function_tools_only"
        case .restoreToolNames: "restore_tool_names"
        }
    }
}
