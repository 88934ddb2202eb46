import TenantGateway

/// Parsing and printing JSON config files: key order and number spelling survive, layout becomes two-space indentation.
enum JSONConfigText {
    /// The file's root object; an absent or blank file is an empty object.
    static func parseObject(_ text: String?, path: String) throws(ClientSetupError) -> JSONObject {
        guard let text, !text.trimmingWhitespace.isEmpty else { return [:] }
        let parsed: JSON
        do {
            parsed = try JSON.parse(text)
        } catch {
            throw ClientSetupError(code: "unparsable_config",
                                   message: "\(path) is not plain JSON (comments or trailing commas?); fix it or move it aside and run setup again",
                                   cause: error.description)
        }
        guard let object = parsed.objectValue else {
            throw ClientSetupError(code: "unsupported_layout", message: "\(path) holds a JSON \(parsed.typeName), not an object")
        }
        return object
    }

    /// Two-space indented JSON with a final newline, as editors and the clients themselves write it.
    static func render(_ object: JSONObject) -> String {
        var output = ""
        append(.object(object), indent: 0, to: &output)
        return output + "\n"
    }

    private static func append(_ value: JSON, indent: Int, to output: inout String) {
        let padding = String(repeating: " ", count: indent + 2)
        switch value {
        case .object(let object) where !object.isEmpty:
            output += "{\n"
            for (position, member) in object.members.enumerated() {
                output += padding + JSON.string(member.key).text + ": "
                append(member.value, indent: indent + 2, to: &output)
                output += position == object.count - 1 ? "\n" : ",\n"
            }
            output += String(repeating: " ", count: indent) + "}"
        case .array(let elements) where !elements.isEmpty:
            output += "[\n"
            for (position, element) in elements.enumerated() {
                output += padding
                append(element, indent: indent + 2, to: &output)
                output += position == elements.count - 1 ? "\n" : ",\n"
            }
            output += String(repeating: " ", count: indent) + "]"
        default:
            output += value.text
        }
    }
}

extension JSONObject {
    /// Sets a value at a path of object keys, creating (or replacing non-object) intermediate objects in place.
    mutating func set(_ value: JSON, at path: [String]) {
        guard let key = path.first else { return }
        if path.count == 1 {
            self[key] = value
            return
        }
        var child = self[key]?.objectValue ?? [:]
        child.set(value, at: Array(path.dropFirst()))
        self[key] = .object(child)
    }

    /// The value at a path of object keys.
    func value(at path: [String]) -> JSON? {
        guard let key = path.first else { return .object(self) }
        guard let child = self[key] else { return nil }
        if path.count == 1 { return child }
        return child.objectValue?.value(at: Array(path.dropFirst()))
    }
}

/// Comma-separated host lists (`NO_PROXY`) extended without duplicates.
enum HostList {
    /// `existing` with each of `hosts` appended unless already present.
    static func appending(_ hosts: [String], to existing: String?) -> String {
        var entries = (existing ?? "").split(separator: ",").map { String($0).trimmingWhitespace }.filter { !$0.isEmpty }
        for host in hosts where !entries.contains(host) { entries.append(host) }
        return entries.joined(separator: ",")
    }
}
