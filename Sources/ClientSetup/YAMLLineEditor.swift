import Yams

/// A line-based editor for a few top-level keys of a YAML file (Yams would drop comments on a round trip).
///
/// It edits a top-level scalar key, or scalar keys inside a top-level block mapping, keeping every other line,
/// comment and blank line as it was. Callers verify the result with `YAMLLineEditor.load` before writing it.
struct YAMLLineEditor {
    /// The file's lines, without newline characters.
    private(set) var lines: [String]

    /// Splits a YAML text into lines (an absent file is empty).
    init(_ text: String?) {
        let text = text ?? ""
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if text.hasSuffix("\n") || text.isEmpty { lines.removeLast() }
        self.lines = lines
    }

    /// The edited text, ending with a newline.
    var text: String {
        lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
    }

    /// Parses YAML into plain values (`[String: Any]` mappings), or throws `unparsable_config`.
    static func load(_ text: String?, path: String) throws(ClientSetupError) -> [String: Any] {
        guard let text, !text.trimmingWhitespace.isEmpty else { return [:] }
        let loaded: Any?
        do {
            loaded = try Yams.load(yaml: text)
        } catch {
            throw ClientSetupError(code: "unparsable_config", message: "\(path) is not valid YAML; fix it and run setup again", cause: "\(error)")
        }
        guard let loaded else { return [:] }
        guard let mapping = loaded as? [String: Any] else {
            throw ClientSetupError(code: "unsupported_layout", message: "\(path) is not a YAML mapping at the top level")
        }
        return mapping
    }

    // MARK: Finding blocks

    private static func indentation(_ line: Substring) -> Int { line.prefix { $0 == " " }.count }
    private static func indentation(_ line: String) -> Int { indentation(Substring(line)) }

    private static func isBlankOrComment(_ line: String) -> Bool {
        let trimmed = line.trimmingWhitespace
        return trimmed.isEmpty || trimmed.hasPrefix("#")
    }

    /// The value text after `key:` when `line` (at `indent` spaces) is that key's line.
    private static func valueAfterKey(_ key: String, in line: String, indent: Int) -> String? {
        guard indentation(line) == indent else { return nil }
        let body = line.dropFirst(indent)
        for spelling in [key, "\"\(key)\"", "'\(key)'"] where body.hasPrefix(spelling) {
            var rest = body.dropFirst(spelling.count)
            while rest.first == " " { rest = rest.dropFirst() }
            guard rest.first == ":" else { continue }
            rest = rest.dropFirst()
            guard rest.isEmpty || rest.first == " " || rest.first == "\t" else { continue }
            return String(rest).trimmingWhitespace
        }
        return nil
    }

    /// The key line at `indent` within `range`, and the end of its block (its more-indented lines, trailing blanks excluded).
    private func block(of key: String, indent: Int, within range: Range<Int>) -> (line: Int, value: String, end: Int)? {
        for index in range {
            guard let value = Self.valueAfterKey(key, in: lines[index], indent: indent) else { continue }
            var end = index + 1
            var lastContent = index
            while end < range.upperBound {
                let line = lines[end]
                if !Self.isBlankOrComment(line) {
                    guard Self.indentation(line) > indent else { break }
                    lastContent = end
                }
                end += 1
            }
            return (index, value, lastContent + 1)
        }
        return nil
    }

    /// The value text and trailing comment of a one-line scalar, or nil for block scalars, flow collections, anchors.
    private static func splitScalar(_ value: String) -> (value: String, comment: String)? {
        guard let first = value.first else { return ("", "") }
        if "|>{[&*!".contains(first) { return nil }
        var index = value.startIndex
        if first == "\"" || first == "'" {
            index = value.index(after: index)
            var escaped = false
            while index < value.endIndex {
                let character = value[index]
                if escaped { escaped = false } else if character == "\\" && first == "\"" { escaped = true } else if character == first { break }
                index = value.index(after: index)
            }
            guard index < value.endIndex else { return nil }
            index = value.index(after: index)
        } else {
            var previous: Character = " "
            while index < value.endIndex, !(value[index] == "#" && previous == " ") {
                previous = value[index]
                index = value.index(after: index)
            }
        }
        // The spaces before a comment belong to the comment, so they survive a change of value.
        while index > value.startIndex, value[value.index(before: index)] == " " || value[value.index(before: index)] == "\t" {
            index = value.index(before: index)
        }
        let rest = String(value[index...])
        if rest.trimmingWhitespace.isEmpty { return (String(value[..<index]), "") }
        guard rest.trimmingWhitespace.hasPrefix("#") else { return nil }
        return (String(value[..<index]), rest.hasPrefix(" ") || rest.hasPrefix("\t") ? rest : " " + rest)
    }

    // MARK: Editing

    /// Sets a top-level key to a scalar (rendered YAML), replacing any nested block it had; a new key is appended.
    mutating func setTopLevel(_ key: String, to rendered: String) {
        guard let found = block(of: key, indent: 0, within: 0..<lines.count) else {
            lines.append("\(key): \(rendered)")
            return
        }
        let comment = found.end == found.line + 1 ? (Self.splitScalar(found.value)?.comment ?? "") : ""
        lines.replaceSubrange(found.line..<found.end, with: ["\(key): \(rendered)\(comment)"])
    }

    /// Sets scalar keys inside the top-level block mapping `key` (created, or replacing a scalar value, when needed).
    mutating func setNested(_ key: String, _ pairs: [(key: String, rendered: String)]) {
        guard let found = block(of: key, indent: 0, within: 0..<lines.count) else {
            lines.append("\(key):")
            lines.append(contentsOf: pairs.map { "  \($0.key): \($0.rendered)" })
            return
        }
        let childLines = (found.line + 1)..<found.end
        let firstChild = childLines.first { !Self.isBlankOrComment(lines[$0]) }
        guard found.value.isEmpty || found.value.hasPrefix("#"), let firstChild,
              !lines[firstChild].trimmingWhitespace.hasPrefix("-") else {
            // A scalar, a flow mapping or a list: rosetta's mapping replaces it.
            lines.replaceSubrange(found.line..<found.end, with: ["\(key):"] + pairs.map { "  \($0.key): \($0.rendered)" })
            return
        }
        let indent = Self.indentation(lines[firstChild])
        var end = found.end
        for pair in pairs {
            if let child = block(of: pair.key, indent: indent, within: (found.line + 1)..<end) {
                let comment = child.end == child.line + 1 ? (Self.splitScalar(child.value)?.comment ?? "") : ""
                let replacement = String(repeating: " ", count: indent) + "\(pair.key): \(pair.rendered)\(comment)"
                lines.replaceSubrange(child.line..<child.end, with: [replacement])
                end -= (child.end - child.line) - 1
            } else {
                lines.insert(String(repeating: " ", count: indent) + "\(pair.key): \(pair.rendered)", at: end)
                end += 1
            }
        }
    }

    /// A YAML scalar: plain when that reads back as the same string, double-quoted otherwise.
    static func scalar(_ value: String) -> String {
        let specials: Set<String> = ["true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"]
        let plainSafe = !value.isEmpty
            && value.unicodeScalars.allSatisfy { $0.value < 128 && ($0.properties.isAlphabetic || ("0"..."9").contains(Character($0)) || "-_./:@+".unicodeScalars.contains($0)) }
            && !specials.contains(value.lowercased())
            && Double(value) == nil
            && !value.hasPrefix("-") && !value.hasSuffix(":")
        if plainSafe { return value }
        var escaped = "\""
        for character in value {
            switch character {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\t": escaped += "\\t"
            default: escaped.append(character)
            }
        }
        return escaped + "\""
    }
}

extension Dictionary where Key == String, Value == Any {
    /// The string form of a scalar at a path of mapping keys.
    func scalarString(at path: [String]) -> String? {
        var current: Any = self
        for key in path {
            guard let mapping = current as? [String: Any], let next = mapping[key] else { return nil }
            current = next
        }
        if current is [String: Any] || current is [Any] { return nil }
        return "\(current)"
    }
}
