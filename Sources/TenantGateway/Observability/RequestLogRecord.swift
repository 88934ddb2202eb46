#if canImport(Glibc)
import Glibc
#endif
import NIOHTTP1

/// One line of a tenant's request log: what was asked, where it went, how it ended; no bodies unless debugging.
package struct RequestLogRecord: Sendable, Equatable {
    /// When the request arrived, in milliseconds since the epoch.
    package var startedAtMilliseconds: Int64
    /// The request's id (also in the journal's `REQUEST_ID`).
    package var requestID: String
    /// The HTTP method.
    package var method: String
    /// The path, without the query string.
    package var path: String
    /// The client's dialect.
    package var dialect: Dialect
    /// The model's catalog alias, when the request was routed.
    package var model: String?
    /// The upstream provider's name, when the request was routed.
    package var upstream: String?
    /// The HTTP status answered.
    package var status: Int
    /// Whether the response was streamed.
    package var stream: Bool
    /// Input tokens from the response's usage, when known.
    package var inputTokens: Int?
    /// Output tokens from the response's usage, when known.
    package var outputTokens: Int?
    /// How long the request took, in milliseconds.
    package var durationMilliseconds: Int
    /// The failure's class, when it failed.
    package var errorClass: String?
    /// The failure's code, when it failed.
    package var errorCode: String?
    /// The redacted request and response, only while the tenant's debug switch is on.
    package var debug: JSON?

    /// Creates a record.
    package init(
        startedAtMilliseconds: Int64, requestID: String, method: String, path: String, dialect: Dialect, model: String?,
        upstream: String?, status: Int, stream: Bool, inputTokens: Int?, outputTokens: Int?, durationMilliseconds: Int,
        errorClass: String?, errorCode: String?, debug: JSON? = nil
    ) {
        self.startedAtMilliseconds = startedAtMilliseconds
        self.requestID = requestID
        self.method = method
        self.path = path
        self.dialect = dialect
        self.model = model
        self.upstream = upstream
        self.status = status
        self.stream = stream
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.durationMilliseconds = durationMilliseconds
        self.errorClass = errorClass
        self.errorCode = errorCode
        self.debug = debug
    }

    /// The record as one JSON object, keys in a fixed order.
    package var json: JSON {
        var object: JSONObject = [
            "time": .string(WallClock.iso8601(milliseconds: startedAtMilliseconds)),
            "request_id": .string(requestID),
            "method": .string(method),
            "path": .string(path),
            "dialect": .string(dialect.rawValue),
            "model": model.map(JSON.string) ?? .null,
            "upstream": upstream.map(JSON.string) ?? .null,
            "status": JSON(status),
            "stream": .bool(stream),
            "tokens_in": inputTokens.map { JSON($0) } ?? .null,
            "tokens_out": outputTokens.map { JSON($0) } ?? .null,
            "duration_ms": JSON(durationMilliseconds),
            "error_class": errorClass.map(JSON.string) ?? .null,
            "error_code": errorCode.map(JSON.string) ?? .null,
        ]
        if let debug { object["debug"] = debug }
        return .object(object)
    }

    /// The record as one line of the log (JSON and a newline).
    package var line: [UInt8] { json.bytes + [0x0A] }
}

/// Removes secrets from what the debug switch logs: credential headers, key query parameters, key-named JSON
/// members, bearer tokens and key-shaped strings anywhere, and the given secrets (the tenant token) verbatim.
package struct Redactor: Sendable {
    /// What every redacted value becomes.
    package static let mask = "[redacted]"
    /// Headers whose values are always removed (compared in lower case).
    package static let secretHeaders: Set<String> = [
        "authorization", "proxy-authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie", "set-cookie",
    ]
    /// Query parameters and JSON member names whose values are always removed (compared in lower case).
    package static let secretNames: Set<String> = [
        "api_key", "apikey", "api-key", "key", "x-api-key", "authorization", "token", "access_token", "refresh_token",
        "id_token", "client_secret", "secret", "password",
    ]
    /// Prefixes of well-known key formats; a word starting with one and at least 16 characters long is removed.
    package static let keyPrefixes = ["sk-", "rst-", "AIza", "ghp_", "gho_", "xoxb-", "xoxp-", "glpat-", "Ag"]

    /// Secrets removed wherever they occur (the tenant token); empty strings are ignored.
    package let secrets: [String]

    /// Creates a redactor that also removes `secrets` verbatim.
    package init(secrets: [String]) {
        self.secrets = secrets.filter { $0.count >= 8 }
    }

    /// The headers, with credential headers' values masked and every other value scrubbed.
    package func headers(_ headers: HTTPHeaders) -> JSON {
        var object = JSONObject()
        for (name, value) in headers {
            let redacted = Self.secretHeaders.contains(name.lowercased()) ? Self.mask : text(value)
            if let existing = object[name.lowercased()]?.stringValue {
                object[name.lowercased()] = .string(existing + ", " + redacted)
            } else {
                object[name.lowercased()] = .string(redacted)
            }
        }
        return .object(object)
    }

    /// The query string with key-like parameters' values masked.
    package func query(_ query: String) -> String {
        query.split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { return text(String(pair)) }
            if Self.secretNames.contains(parts[0].lowercased()) { return "\(parts[0])=\(Self.mask)" }
            return "\(parts[0])=\(text(String(parts[1])))"
        }.joined(separator: "&")
    }

    /// A body: JSON with secret members masked and strings scrubbed, else the text scrubbed (cut at `limit` bytes).
    package func body(_ bytes: [UInt8], limit: Int = 64 * 1024) -> JSON {
        if let json = try? JSON.parse(bytes) { return value(json) }
        let cut = bytes.count > limit
        let shown = String(decoding: bytes.prefix(limit), as: UTF8.self)
        return .string(text(shown) + (cut ? "…[\(bytes.count - limit) bytes cut]" : ""))
    }

    /// A JSON value with secret-named members masked and every string scrubbed.
    package func value(_ json: JSON) -> JSON {
        switch json {
        case .object(let object):
            var result = JSONObject()
            for (key, member) in object {
                if Self.secretNames.contains(key.lowercased()), case .string = member {
                    result[key] = .string(Self.mask)
                } else {
                    result[key] = value(member)
                }
            }
            return .object(result)
        case .array(let items):
            return .array(items.map(value))
        case .string(let string):
            return .string(text(string))
        default:
            return json
        }
    }

    /// A string with the given secrets, `Bearer …` credentials and key-shaped words masked.
    package func text(_ input: String) -> String {
        var output = input
        for secret in secrets where output.contains(secret) {
            output = output.replacingAll(secret, with: Self.mask)
        }
        guard output.contains("Bearer ") || output.contains("bearer ") || Self.keyPrefixes.contains(where: { output.contains($0) }) else {
            return output
        }
        // Word by word: a word after "Bearer", or a long word with a key prefix, is masked.
        var result = ""
        var word = ""
        var previousWord = ""
        func flush() {
            guard !word.isEmpty else { return }
            if previousWord.lowercased() == "bearer", word.count >= 8 {
                result += Self.mask
            } else if word.count >= 16, Self.keyPrefixes.contains(where: { word.hasPrefix($0) }),
                      word.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." })
            {
                result += Self.mask
            } else {
                result += word
            }
            previousWord = word
            word = ""
        }
        for character in output {
            if character.isLetter || character.isNumber || character == "-" || character == "_" || character == "." {
                word.append(character)
            } else {
                flush()
                result.append(character)
            }
        }
        flush()
        return result
    }
}

extension String {
    /// The string with every occurrence of `target` replaced by `replacement`.
    fileprivate func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
