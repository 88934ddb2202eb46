/// A JSON value that keeps object key order and the exact text of numbers.
///
/// The gateway parses client and upstream bodies into this type, edits or translates
/// them, and serializes them again; key order and number spelling survive a round trip,
/// so a pass-through body differs from the original only where the gateway changed it.
package enum JSON: Sendable, Hashable {
    /// The `null` literal.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number, kept as its JSON text (for example `1`, `-0.5`, `1e-7`).
    case number(String)
    /// A string.
    case string(String)
    /// An array of values.
    case array([JSON])
    /// An object as ordered key–value pairs.
    case object(JSONObject)
}

/// An ordered JSON object: keys keep the order in which they were parsed or inserted.
package struct JSONObject: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    /// The members in order.
    package private(set) var members: [(key: String, value: JSON)]

    /// Creates an object from ordered members; later duplicates of a key replace earlier ones.
    package init(_ members: [(key: String, value: JSON)] = []) {
        self.members = []
        self.members.reserveCapacity(members.count)
        for member in members { self[member.key] = member.value }
    }

    /// Creates an object from parsed members, checking for duplicate keys only as much as needed.
    init(parsedMembers: [(key: String, value: JSON)]) {
        if parsedMembers.count < 2 || !JSONObject.hasDuplicateKeys(parsedMembers) {
            self.members = parsedMembers
        } else {
            self.members = JSONObject(parsedMembers).members
        }
    }

    private static func hasDuplicateKeys(_ members: [(key: String, value: JSON)]) -> Bool {
        if members.count <= 8 {
            for first in 0..<members.count {
                for second in (first + 1)..<members.count where members[first].key == members[second].key {
                    return true
                }
            }
            return false
        }
        var seen = Set<String>(minimumCapacity: members.count)
        for member in members where !seen.insert(member.key).inserted { return true }
        return false
    }

    /// Creates an object from a literal, keeping the literal's order.
    package init(dictionaryLiteral elements: (String, JSON)...) {
        self.init(elements.map { (key: $0.0, value: $0.1) })
    }

    /// The number of members.
    package var count: Int { members.count }

    /// Whether the object has no members.
    package var isEmpty: Bool { members.isEmpty }

    /// The keys in order.
    package var keys: [String] { members.map(\.key) }

    /// The value for a key; assigning `nil` removes the key, assigning a value replaces it in place or appends it.
    package subscript(key: String) -> JSON? {
        get {
            for member in members where member.key == key { return member.value }
            return nil
        }
        set {
            if let index = members.firstIndex(where: { $0.key == key }) {
                if let newValue { members[index].value = newValue } else { members.remove(at: index) }
            } else if let newValue {
                members.append((key: key, value: newValue))
            }
        }
    }

    /// Removes a key and returns its value, if present.
    @discardableResult
    package mutating func removeValue(forKey key: String) -> JSON? {
        guard let index = members.firstIndex(where: { $0.key == key }) else { return nil }
        return members.remove(at: index).value
    }

    /// Iterates the members in order.
    package func makeIterator() -> IndexingIterator<[(key: String, value: JSON)]> {
        members.makeIterator()
    }

    package static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        for (left, right) in zip(lhs.members, rhs.members) where left.key != right.key || left.value != right.value {
            return false
        }
        return true
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(members.count)
        for member in members {
            hasher.combine(member.key)
            hasher.combine(member.value)
        }
    }
}

// MARK: - Literals

extension JSON: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    /// Creates a string value from a literal.
    package init(stringLiteral value: String) { self = .string(value) }
    /// Creates a boolean value from a literal.
    package init(booleanLiteral value: Bool) { self = .bool(value) }
    /// Creates a number value from an integer literal.
    package init(integerLiteral value: Int) { self = .number(String(value)) }
    /// Creates a number value from a floating-point literal.
    package init(floatLiteral value: Double) { self = JSON(value) }
    /// Creates an array value from a literal.
    package init(arrayLiteral elements: JSON...) { self = .array(elements) }
    /// Creates an object value from a literal, keeping its order.
    package init(dictionaryLiteral elements: (String, JSON)...) {
        self = .object(JSONObject(elements.map { (key: $0.0, value: $0.1) }))
    }
    /// Creates `null` from the `nil` literal.
    package init(nilLiteral: ()) { self = .null }
}

// MARK: - Construction and access

extension JSON {
    /// Creates a number value from an integer.
    package init(_ value: Int) { self = .number(String(value)) }

    /// Creates a number value from a double; non-finite values become `null`, integral values print without a fraction.
    package init(_ value: Double) {
        guard value.isFinite else {
            self = .null
            return
        }
        if value == value.rounded(), abs(value) < 1e15 {
            self = .number(String(Int64(value)))
        } else {
            self = .number(String(value))
        }
    }

    /// The object's members, or `nil` when this is not an object.
    package var objectValue: JSONObject? {
        if case .object(let object) = self { return object }
        return nil
    }

    /// The array's elements, or `nil` when this is not an array.
    package var arrayValue: [JSON]? {
        if case .array(let array) = self { return array }
        return nil
    }

    /// The string, or `nil` when this is not a string.
    package var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    /// The boolean, or `nil` when this is not a boolean.
    package var boolValue: Bool? {
        if case .bool(let bool) = self { return bool }
        return nil
    }

    /// The number as a double, or `nil` when this is not a number.
    package var doubleValue: Double? {
        if case .number(let text) = self { return Double(text) }
        return nil
    }

    /// The number as an integer when it is integral and in range, or `nil` otherwise.
    package var intValue: Int? {
        guard case .number(let text) = self else { return nil }
        if let int = Int(text) { return int }
        guard let double = Double(text), double == double.rounded(), abs(double) < 9e15 else { return nil }
        return Int(double)
    }

    /// Whether this is `null`.
    package var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// A short name of the value's JSON type, for error messages (`object`, `array`, `string`, …).
    package var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// The member for a key when this is an object; `nil` otherwise or when absent.
    package subscript(key: String) -> JSON? {
        get { objectValue?[key] }
        set {
            guard case .object(var object) = self else { return }
            object[key] = newValue
            self = .object(object)
        }
    }

    /// The element at an index when this is an array and the index is in range; `nil` otherwise.
    package subscript(index: Int) -> JSON? {
        guard case .array(let array) = self, array.indices.contains(index) else { return nil }
        return array[index]
    }
}
