/// Reads typed fields of one JSON object from a client body, turning every problem into a 400 that names the field.
///
/// `path` is the object's location in the body (`""` for the body itself, `messages[2]` for a message);
/// the full path of a field is only built when an error is reported.
struct FieldReader {
    /// The object being read.
    let object: JSONObject
    /// Where the object sits in the body.
    let path: String

    /// Reads the body itself, which must be an object.
    init(body: JSON) throws(GatewayError) {
        guard case .object(let object) = body else {
            throw RequestProblem.wrongType("the request body", expected: "a JSON object", found: body, parameter: nil)
        }
        self.object = object
        self.path = ""
    }

    /// Reads an object found at `path`.
    init(_ object: JSONObject, path: String) {
        self.object = object
        self.path = path
    }

    /// Reads a value that must be an object.
    init(_ value: JSON, path: String) throws(GatewayError) {
        guard case .object(let object) = value else {
            throw RequestProblem.wrongType(path, expected: "an object", found: value)
        }
        self.object = object
        self.path = path
    }

    /// The full path of a member.
    func path(_ key: String) -> String {
        path.isEmpty ? key : path + "." + key
    }

    /// The member's value, treating `null` as absent.
    func value(_ key: String) -> JSON? {
        guard let value = object[key], !value.isNull else { return nil }
        return value
    }

    /// An optional string member.
    func string(_ key: String) throws(GatewayError) -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let string) = value else {
            throw RequestProblem.wrongType(path(key), expected: "a string", found: value)
        }
        return string
    }

    /// A required string member.
    func requiredString(_ key: String) throws(GatewayError) -> String {
        guard let string = try string(key) else { throw RequestProblem.missing(path(key)) }
        return string
    }

    /// An optional boolean member.
    func bool(_ key: String) throws(GatewayError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard case .bool(let bool) = value else {
            throw RequestProblem.wrongType(path(key), expected: "a boolean", found: value)
        }
        return bool
    }

    /// An optional integer member.
    func int(_ key: String) throws(GatewayError) -> Int? {
        guard let value = value(key) else { return nil }
        guard let int = value.intValue else {
            throw RequestProblem.wrongType(path(key), expected: "an integer", found: value)
        }
        return int
    }

    /// An optional integer member that must be at least `minimum`.
    func int(_ key: String, atLeast minimum: Int) throws(GatewayError) -> Int? {
        guard let int = try int(key) else { return nil }
        guard int >= minimum else {
            throw RequestProblem.invalidValue(path(key), "must be at least \(minimum), but it is \(int)")
        }
        return int
    }

    /// An optional number member, which must lie in a closed range.
    func number(_ key: String, in range: ClosedRange<Double>? = nil) throws(GatewayError) -> Double? {
        guard let value = value(key) else { return nil }
        guard let double = value.doubleValue, double.isFinite else {
            throw RequestProblem.wrongType(path(key), expected: "a number", found: value)
        }
        if let range, !range.contains(double) {
            throw RequestProblem.invalidValue(
                path(key), "must be between \(Self.format(range.lowerBound)) and \(Self.format(range.upperBound)), but it is \(Self.format(double))")
        }
        return double
    }

    /// An optional array member.
    func array(_ key: String) throws(GatewayError) -> [JSON]? {
        guard let value = value(key) else { return nil }
        guard case .array(let array) = value else {
            throw RequestProblem.wrongType(path(key), expected: "an array", found: value)
        }
        return array
    }

    /// A required array member with at least one element; `itemName` names an element in the error ("message").
    func requiredNonEmptyArray(_ key: String, of itemName: String) throws(GatewayError) -> [JSON] {
        guard let array = try array(key) else { throw RequestProblem.missing(path(key)) }
        guard !array.isEmpty else { throw RequestProblem.invalidValue(path(key), "must contain at least one \(itemName)") }
        return array
    }

    /// A required member that is one string or an array of parts, read as a list: the string through `string`,
    /// each part (a reader at `key[i]`; parts must be objects) through `part`.
    func stringOrParts<Element>(
        _ key: String, string: (String) -> Element, part readPart: (FieldReader) throws(GatewayError) -> Element
    ) throws(GatewayError) -> [Element] {
        guard let value = value(key) else { throw RequestProblem.missing(path(key)) }
        switch value {
        case .string(let text):
            return [string(text)]
        case .array(let values):
            var elements: [Element] = []
            elements.reserveCapacity(values.count)
            for (index, element) in values.enumerated() {
                elements.append(try readPart(FieldReader(element, path: path(key) + "[\(index)]")))
            }
            return elements
        default:
            throw RequestProblem.wrongType(path(key), expected: "a string or an array of content parts", found: value)
        }
    }

    /// An optional object member, as a reader.
    func object(_ key: String) throws(GatewayError) -> FieldReader? {
        guard let value = value(key) else { return nil }
        guard case .object(let object) = value else {
            throw RequestProblem.wrongType(path(key), expected: "an object", found: value)
        }
        return FieldReader(object, path: path(key))
    }

    /// A required object member, as a reader.
    func requiredObject(_ key: String) throws(GatewayError) -> FieldReader {
        guard let reader = try object(key) else { throw RequestProblem.missing(path(key)) }
        return reader
    }

    /// A number printed without a needless `.0`.
    static func format(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}

/// Builders for the 400 errors a malformed or untranslatable client body produces.
enum RequestProblem {
    /// A required field is absent or null.
    static func missing(_ path: String) -> GatewayError {
        GatewayError(.invalidRequest, code: "missing_required_parameter", message: "\(path) is required", parameter: path)
    }

    /// A field has the wrong JSON type.
    static func wrongType(_ path: String, expected: String, found: JSON) -> GatewayError {
        wrongType(path, expected: expected, found: found, parameter: path)
    }

    /// A field has the wrong JSON type; `parameter` is what the envelope's `param` names.
    static func wrongType(_ path: String, expected: String, found: JSON, parameter: String?) -> GatewayError {
        GatewayError(
            .invalidRequest, code: "invalid_type",
            message: "\(path) must be \(expected), but it is \(describe(found))",
            parameter: parameter)
    }

    /// The JSON type of a value with its article, for messages (`an array`, `a number`, `null`).
    static func describe(_ value: JSON) -> String {
        switch value {
        case .null: "null"
        case .array, .object: "an \(value.typeName)"
        default: "a \(value.typeName)"
        }
    }

    /// A field has the right type but a value that is not allowed; `detail` completes the sentence "<path> …".
    static func invalidValue(_ path: String, _ detail: String) -> GatewayError {
        GatewayError(.invalidRequest, code: "invalid_value", message: "\(path) \(detail)", parameter: path)
    }

    /// A field or value that has no equivalent in the upstream's dialect; `detail` is a full sentence.
    static func unsupported(_ path: String, _ detail: String) -> GatewayError {
        GatewayError(.invalidRequest, code: "unsupported_parameter", message: detail, parameter: path)
    }
}
