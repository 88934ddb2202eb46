import Logging

/// Turns one log record into journald fields and encodes them in the journal's native protocol; pure functions.
///
/// Metadata keys become upper-case field names with every character other than A–Z and 0–9 replaced by `_`
/// (`request.id` → `REQUEST_ID`, `tenant.uid` → `TENANT_UID`); a name that would start with a digit or `_`,
/// or collide with a field the handler sets itself, is prefixed `ROSETTA_`.
package enum JournalFields {
    /// The fields the handler sets itself, which metadata may not override.
    package static let reserved: Set<String> = [
        "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE", "CODE_FUNC", "LOGGER", "MESSAGE_ID",
        "SYSLOG_FACILITY", "SYSLOG_PID", "SYSLOG_TIMESTAMP", "ERRNO",
    ]
    /// The journal keeps field names to 64 bytes.
    package static let maxNameLength = 64
    /// Messages and values are cut at this many bytes, so a record always fits in one datagram.
    package static let maxValueBytes = 48 * 1024

    /// The syslog priority of a swift-log level (debug 7 … critical 2).
    package static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// The journal field name for a metadata key.
    package static func fieldName(forMetadataKey key: String) -> String {
        var name = String(String.UnicodeScalarView(key.unicodeScalars.map { scalar -> Unicode.Scalar in
            switch scalar {
            case "a"..."z": Unicode.Scalar(scalar.value - 32)!
            case "A"..."Z", "0"..."9": scalar
            default: "_"
            }
        }))
        if name.isEmpty || name.first == "_" || name.first!.isNumber || reserved.contains(name) { name = "ROSETTA_" + name }
        if name.utf8.count > maxNameLength { name = String(name.prefix(maxNameLength)) }
        return name
    }

    /// The fields of one record, in order: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, LOGGER, CODE_*, then metadata by name.
    package static func fields(
        message: String, level: Logger.Level, identifier: String, label: String, metadata: Logger.Metadata,
        file: String, function: String, line: UInt
    ) -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = [
            ("MESSAGE", cut(message)),
            ("PRIORITY", String(priority(level))),
            ("SYSLOG_IDENTIFIER", identifier),
            ("LOGGER", label),
            ("CODE_FILE", file),
            ("CODE_LINE", String(line)),
            ("CODE_FUNC", function),
        ]
        var named: [String: String] = [:]
        for (key, value) in metadata { named[fieldName(forMetadataKey: key)] = cut(render(value)) }
        for name in named.keys.sorted() { fields.append((name, named[name]!)) }
        return fields
    }

    /// A metadata value as text (lists and dictionaries as swift-log prints them).
    static func render(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        default: value.description
        }
    }

    static func cut(_ text: String) -> String {
        guard text.utf8.count > maxValueBytes else { return text }
        return String(decoding: text.utf8.prefix(maxValueBytes), as: UTF8.self)
    }

    /// The native protocol's datagram: `NAME=value\n`, or `NAME\n<64-bit little-endian length><value>\n` when the
    /// value holds a newline.
    package static func encode(_ fields: [(name: String, value: String)]) -> [UInt8] {
        var datagram: [UInt8] = []
        datagram.reserveCapacity(fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 10 })
        for (name, value) in fields {
            datagram += name.utf8
            if value.utf8.contains(0x0A) {
                datagram.append(0x0A)
                var length = UInt64(value.utf8.count).littleEndian
                withUnsafeBytes(of: &length) { datagram += $0 }
                datagram += value.utf8
            } else {
                datagram.append(UInt8(ascii: "="))
                datagram += value.utf8
            }
            datagram.append(0x0A)
        }
        return datagram
    }

    /// Decodes a native-protocol datagram (for tests and tools): the fields in order.
    package static func decode(_ datagram: [UInt8]) -> [(name: String, value: String)]? {
        var fields: [(name: String, value: String)] = []
        var index = datagram.startIndex
        while index < datagram.endIndex {
            guard let end = datagram[index...].firstIndex(where: { $0 == 0x0A || $0 == UInt8(ascii: "=") }) else { return nil }
            let name = String(decoding: datagram[index..<end], as: UTF8.self)
            if datagram[end] == UInt8(ascii: "=") {
                guard let newline = datagram[(end + 1)...].firstIndex(of: 0x0A) else { return nil }
                fields.append((name, String(decoding: datagram[(end + 1)..<newline], as: UTF8.self)))
                index = newline + 1
            } else {
                guard end + 9 <= datagram.endIndex else { return nil }
                var length: UInt64 = 0
                for (shift, byte) in datagram[(end + 1)..<(end + 9)].enumerated() { length |= UInt64(byte) << (8 * UInt64(shift)) }
                let start = end + 9
                guard length <= UInt64(datagram.endIndex - start - 1) else { return nil }
                let stop = start + Int(length)
                guard datagram[stop] == 0x0A else { return nil }
                fields.append((name, String(decoding: datagram[start..<stop], as: UTF8.self)))
                index = stop + 1
            }
        }
        return fields
    }
}
