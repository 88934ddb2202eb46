/// Assembles the final response head from the header lines curl reports one at a time.
///
/// curl hands every line of every head to its header callback: status lines, fields, the blank line
/// ending each head, interim 1xx heads (`100 Continue`, `103 Early Hints`) and, after a chunked body,
/// trailer fields. The parser skips the interim heads and the trailers and yields the final head once.
package struct UpstreamResponseHeadParser: Sendable {
    /// What consuming one line produced.
    package enum Event: Sendable, Equatable {
        /// Nothing to report yet (a field, a skipped interim head, or a line after the final head).
        case none
        /// The blank line ended the final head.
        case headComplete(UpstreamResponseHead)
    }

    private var status: Int?
    private var fields: [UpstreamHeaderField] = []
    private var finished = false

    /// Creates a parser awaiting the first status line.
    package init() {}

    /// Whether the final head has been yielded.
    package var isComplete: Bool { finished }

    /// Consumes one header line, with or without its line ending.
    package mutating func consume<Line: Collection<UInt8>>(line rawLine: Line) -> Event {
        guard !finished else { return .none }
        var line = Array(rawLine)
        while let last = line.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") {
            line.removeLast()
        }
        if line.isEmpty {
            return endOfHead()
        }
        if line.starts(with: Self.httpPrefix) {
            status = Self.parseStatus(line)
            fields.removeAll(keepingCapacity: true)
            return .none
        }
        if line[0] == UInt8(ascii: " ") || line[0] == UInt8(ascii: "\t") {
            if !fields.isEmpty {
                let continuation = Self.trimmed(line[...])
                if !continuation.isEmpty {
                    fields[fields.count - 1].value += " " + String(decoding: continuation, as: UTF8.self)
                }
            }
            return .none
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return .none }
        let name = String(decoding: line[..<colon], as: UTF8.self)
        let value = String(decoding: Self.trimmed(line[(colon + 1)...]), as: UTF8.self)
        fields.append(UpstreamHeaderField(name: name, value: value))
        return .none
    }

    private mutating func endOfHead() -> Event {
        guard let status else { return .none }
        if (100..<200).contains(status) {
            self.status = nil
            fields.removeAll(keepingCapacity: true)
            return .none
        }
        finished = true
        return .headComplete(UpstreamResponseHead(status: status, headers: fields))
    }

    private static let httpPrefix = Array("HTTP/".utf8)

    private static func parseStatus(_ line: [UInt8]) -> Int? {
        let parts = line.split(separator: UInt8(ascii: " "), maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[1].count == 3 else { return nil }
        return Int(String(decoding: parts[1], as: UTF8.self))
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var slice = bytes
        while let first = slice.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
            slice.removeFirst()
        }
        while let last = slice.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") {
            slice.removeLast()
        }
        return slice
    }
}
