/// A minimal TOML editor that changes only named top-level keys and named tables, leaving every other byte alone.
///
/// It understands enough TOML to find table headers and top-level key lines (strings, multi-line strings and
/// multi-line arrays are skipped over); it does not rewrite or re-order anything it was not asked to change.
struct TOMLLineEditor {
    /// The file's lines, without their newline characters.
    private(set) var lines: [String]
    private let endsWithNewline: Bool

    /// Splits a TOML text into lines (an absent file is empty).
    init(_ text: String?) {
        let text = text ?? ""
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        endsWithNewline = text.isEmpty || text.hasSuffix("\n")
        if text.hasSuffix("\n") || text.isEmpty { lines.removeLast() }
        self.lines = lines
    }

    /// The edited text (always ending with a newline when it has content).
    var text: String {
        lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
    }

    // MARK: Structure

    /// A line's role, found by one pass that tracks multi-line strings and brackets.
    private enum Role: Equatable {
        case header(path: [String])
        case key(name: String)
        case continuation
        case other
    }

    private func roles() -> [Role] {
        var roles: [Role] = []
        var openString: String?
        var depth = 0
        for line in lines {
            if let delimiter = openString {
                roles.append(.continuation)
                if line.components(separatedBy: delimiter).count % 2 == 0 { openString = nil }
                continue
            }
            if depth > 0 {
                roles.append(.continuation)
                depth = max(0, depth + Self.bracketDelta(line))
                continue
            }
            let trimmed = line.trimmingWhitespace
            if trimmed.hasPrefix("[") {
                roles.append(.header(path: Self.headerPath(trimmed)))
                continue
            }
            if trimmed.isEmpty || trimmed.hasPrefix("#") {
                roles.append(.other)
                continue
            }
            if let (name, value) = Self.splitKeyLine(trimmed) {
                roles.append(.key(name: name))
                for delimiter in ["\"\"\"", "'''"] where value.hasPrefix(delimiter) {
                    if value.components(separatedBy: delimiter).count % 2 == 0 { openString = delimiter }
                }
                if openString == nil { depth = max(0, Self.bracketDelta(value)) }
            } else {
                roles.append(.other)
            }
        }
        return roles
    }

    /// `[a."b".c]` or `[[a.b]]` → `["a", "b", "c"]`.
    private static func headerPath(_ trimmed: String) -> [String] {
        var inner = Substring(trimmed)
        while inner.first == "[" { inner = inner.dropFirst() }
        if let close = inner.firstIndex(of: "]") { inner = inner[..<close] }
        return inner.split(separator: ".").map { part in
            var name = String(part).trimmingWhitespace
            if name.count >= 2, let first = name.first, first == "\"" || first == "'", name.last == first {
                name = String(name.dropFirst().dropLast())
            }
            return name
        }
    }

    /// Splits `key = value` (a bare or quoted key) into the key and the value text.
    private static func splitKeyLine(_ trimmed: String) -> (String, String)? {
        guard let equals = trimmed.firstIndex(of: "=") else { return nil }
        var key = String(trimmed[..<equals]).trimmingWhitespace
        if key.count >= 2, let first = key.first, first == "\"" || first == "'", key.last == first {
            key = String(key.dropFirst().dropLast())
        }
        guard !key.isEmpty else { return nil }
        return (key, String(trimmed[trimmed.index(after: equals)...]).trimmingWhitespace)
    }

    /// Opening minus closing brackets and braces outside strings and comments.
    private static func bracketDelta(_ text: String) -> Int {
        var delta = 0
        var quote: Character?
        var escaped = false
        for character in text {
            if let open = quote {
                if escaped { escaped = false; continue }
                if character == "\\" && open == "\"" { escaped = true; continue }
                if character == open { quote = nil }
                continue
            }
            switch character {
            case "\"", "'": quote = character
            case "#": return delta
            case "[", "{": delta += 1
            case "]", "}": delta -= 1
            default: break
            }
        }
        return delta
    }

    /// The value text and the trailing comment (with its leading spaces) of a one-line scalar value.
    private static func splitValueAndComment(_ value: String) -> (value: String, comment: String)? {
        guard let first = value.first else { return nil }
        var index = value.startIndex
        if first == "\"" || first == "'" {
            if value.hasPrefix("\"\"\"") || value.hasPrefix("'''") { return nil }
            index = value.index(after: index)
            var escaped = false
            while index < value.endIndex {
                let character = value[index]
                if escaped { escaped = false } else if character == "\\" && first == "\"" { escaped = true } else if character == first { break }
                index = value.index(after: index)
            }
            guard index < value.endIndex else { return nil }
            index = value.index(after: index)
        } else if first == "[" || first == "{" {
            return nil
        } else {
            while index < value.endIndex, value[index] != "#" { index = value.index(after: index) }
        }
        let rest = String(value[index...])
        let restTrimmed = rest.trimmingWhitespace
        if restTrimmed.isEmpty { return (String(value[..<index]).trimmingWhitespace, "") }
        guard restTrimmed.hasPrefix("#") else { return nil }
        // Keep the spacing before the comment as it was.
        let spacing = rest.prefix { $0 == " " || $0 == "\t" }
        return (String(value[..<index]).trimmingWhitespace, (spacing.isEmpty ? " " : String(spacing)) + restTrimmed)
    }

    // MARK: Reading

    /// A top-level key's string value (nil when absent or not a one-line string).
    func topLevelString(_ key: String) -> String? {
        let roles = roles()
        for (index, role) in roles.enumerated() {
            if case .header = role { return nil }
            if role == .key(name: key) { return Self.stringValue(of: lines[index]) }
        }
        return nil
    }

    /// A key's string value inside the table at `path`.
    func tableString(_ path: [String], _ key: String) -> String? {
        var inTable = false
        for (index, role) in roles().enumerated() {
            switch role {
            case .header(let header): inTable = header == path
            case .key(let name) where inTable && name == key: return Self.stringValue(of: lines[index])
            default: break
            }
        }
        return nil
    }

    /// Whether a table with this exact path exists.
    func hasTable(_ path: [String]) -> Bool {
        roles().contains(.header(path: path))
    }

    private static func stringValue(of line: String) -> String? {
        guard let (_, value) = splitKeyLine(line.trimmingWhitespace),
              let (scalar, _) = splitValueAndComment(value), let first = scalar.first, first == "\"" || first == "'" else { return nil }
        var inner = String(scalar.dropFirst().dropLast())
        if first == "\"" { inner = inner.replacingOccurrences(of: "\\\"", with: "\"").replacingOccurrences(of: "\\\\", with: "\\") }
        return inner
    }

    // MARK: Editing

    /// Sets a top-level key to a value (TOML text), keeping the line's trailing comment; a new key goes after the last top-level key.
    mutating func setTopLevel(_ key: String, to value: String) throws(ClientSetupError) {
        let roles = roles()
        var lastTopLevelLine: Int?
        for (index, role) in roles.enumerated() {
            if case .header = role { break }
            if case .continuation = role, lastTopLevelLine != nil { lastTopLevelLine = index; continue }
            guard case .key(let name) = role else { continue }
            lastTopLevelLine = index
            guard name == key else { continue }
            let line = lines[index]
            guard let (_, oldValue) = Self.splitKeyLine(line.trimmingWhitespace),
                  let (_, comment) = Self.splitValueAndComment(oldValue) else {
                throw ClientSetupError(code: "unsupported_layout", message: "the top-level `\(key)` is not a one-line value; set it by hand")
            }
            let indentation = String(line.prefix { $0 == " " || $0 == "\t" })
            lines[index] = indentation + "\(key) = \(value)" + comment
            return
        }
        let newLine = "\(key) = \(value)"
        if let lastTopLevelLine {
            lines.insert(newLine, at: lastTopLevelLine + 1)
        } else {
            let needsGap = !(lines.first?.trimmingWhitespace.isEmpty ?? true)
            lines.insert(contentsOf: [newLine] + (needsGap ? [""] : []), at: 0)
        }
    }

    /// Replaces every table whose path starts with `prefix` by `block`, at the first such table's place (or at the end).
    mutating func replaceTables(withPrefix prefix: [String], by block: [String]) {
        let roles = roles()
        // Each table: its header line and where it ends (the next header or the end).
        var sections: [(start: Int, end: Int, ours: Bool)] = []
        for (index, role) in roles.enumerated() {
            guard case .header(let path) = role else { continue }
            if !sections.isEmpty { sections[sections.count - 1].end = index }
            sections.append((index, lines.count, path.starts(with: prefix)))
        }
        // Runs of consecutive tables of ours, without the blank and comment lines that lead into the next table.
        var runs: [Range<Int>] = []
        var position = 0
        while position < sections.count {
            guard sections[position].ours else { position += 1; continue }
            var last = position
            while last + 1 < sections.count, sections[last + 1].ours { last += 1 }
            var end = sections[last].end
            while end > sections[position].start + 1 {
                let trimmed = lines[end - 1].trimmingWhitespace
                guard trimmed.isEmpty || trimmed.hasPrefix("#") else { break }
                end -= 1
            }
            runs.append(sections[position].start..<end)
            position = last + 1
        }
        guard let first = runs.first else {
            if let last = lines.last, !last.trimmingWhitespace.isEmpty { lines.append("") }
            lines.append(contentsOf: block)
            return
        }
        for run in runs.reversed() { lines.removeSubrange(run) }
        lines.insert(contentsOf: block, at: first.lowerBound)
    }

    /// A TOML basic string.
    static func string(_ value: String) -> String {
        "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
