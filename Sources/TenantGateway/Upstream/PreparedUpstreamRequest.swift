import CCurl

/// An `UpstreamRequest` checked and turned into what curl is given: header lines, body mode, target name.
///
/// Preparing happens on the caller's task, so a bad request fails before anything reaches the curl thread.
struct PreparedUpstreamRequest: Sendable {
    /// How the method and body are expressed in curl options.
    enum BodyMode: Sendable, Equatable {
        /// A plain GET without body.
        case get
        /// A HEAD request: no response body is read.
        case head
        /// The body is sent with `Content-Length`; the custom method replaces POST when set.
        case fields(customMethod: String?)
        /// Another method without body.
        case custom(String)
    }

    /// The request as given.
    let request: UpstreamRequest
    /// `Name: value` lines for CURLOPT_HTTPHEADER, including the suppressions of curl's own defaults.
    let headerLines: [String]
    /// How the method and body are expressed.
    let bodyMode: BodyMode
    /// The upstream's `host:port`, plus the Unix socket when one is used, for messages and logs.
    let targetDescription: String
    /// Strings that must never appear in a message: header values and the URL's path and query.
    let sensitiveFragments: [String]

    /// Checks the request and prepares it, or fails with `invalidRequest`.
    init(_ request: UpstreamRequest) throws(UpstreamError) {
        let target = try Self.parseTarget(request.url)
        var description = "\(target.host):\(target.port)"
        if let socket = request.unixSocketPath {
            description += " (via unix socket \(socket))"
        }
        self.request = request
        self.targetDescription = description
        self.bodyMode = try Self.bodyMode(method: request.method, bodyIsEmpty: request.body.isEmpty, target: description)
        self.headerLines = try Self.headerLines(request.headers, hasBody: Self.sendsBody(bodyMode), target: description)

        var fragments = request.headers.map(\.value).filter { $0.utf8.count >= 4 }
        if target.pathAndQuery.utf8.count >= 4 { fragments.append(target.pathAndQuery) }
        self.sensitiveFragments = fragments
    }

    /// Removes every sensitive fragment from a text (curl's error buffer) before it goes into a message.
    func redacted(_ text: String) -> String {
        var result = text
        for fragment in sensitiveFragments where result.contains(fragment) {
            result = result.replacing(fragment, with: "[redacted]")
        }
        return result
    }

    private static func sendsBody(_ mode: BodyMode) -> Bool {
        if case .fields = mode { return true }
        return false
    }

    private static func bodyMode(method: String, bodyIsEmpty: Bool, target: String) throws(UpstreamError) -> BodyMode {
        guard !method.isEmpty, method.utf8.allSatisfy(isTokenCharacter) else {
            throw UpstreamError(.invalidRequest, message: "the method for \(target) is not an HTTP token")
        }
        switch method {
        case "GET" where bodyIsEmpty:
            return .get
        case "HEAD" where bodyIsEmpty:
            return .head
        case "POST":
            return .fields(customMethod: nil)
        case "PUT", "PATCH":
            return .fields(customMethod: method)
        default:
            return bodyIsEmpty ? .custom(method) : .fields(customMethod: method)
        }
    }

    private static func headerLines(
        _ headers: [(name: String, value: String)],
        hasBody: Bool,
        target: String
    ) throws(UpstreamError) -> [String] {
        var lines: [String] = []
        lines.reserveCapacity(headers.count + 2)
        var sawExpect = false
        var sawContentType = false
        for (name, value) in headers {
            guard !name.isEmpty, name.utf8.allSatisfy(isTokenCharacter) else {
                throw UpstreamError(.invalidRequest, message: "a header name for \(target) is not an HTTP token")
            }
            guard !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }) else {
                // The name is safe to show; the value may be a credential.
                throw UpstreamError(.invalidRequest, message: "the value of header \(name) for \(target) contains a line break")
            }
            switch name.lowercased() {
            case "content-length", "transfer-encoding":
                continue  // curl frames the body itself
            case "expect":
                sawExpect = true
            case "content-type":
                sawContentType = true
            default:
                break
            }
            // "Name:" would tell curl to remove the header; "Name;" sends it with an empty value.
            lines.append(value.isEmpty ? "\(name);" : "\(name): \(value)")
        }
        if !sawExpect { lines.append("Expect:") }
        if hasBody && !sawContentType { lines.append("Content-Type:") }
        return lines
    }

    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }

    private struct Target {
        var host: String
        var port: String
        var pathAndQuery: String
    }

    private static func parseTarget(_ url: String) throws(UpstreamError) -> Target {
        _ = CurlGlobal.initialized
        guard let handle = curl_url() else {
            throw UpstreamError(.invalidRequest, message: "could not allocate a URL parser")
        }
        defer { curl_url_cleanup(handle) }
        guard curl_url_set(handle, CURLUPART_URL, url, 0) == CURLUE_OK else {
            throw UpstreamError(.invalidRequest, message: "the upstream URL is malformed")
        }
        func part(_ which: CURLUPart, flags: UInt32 = 0) -> String? {
            var value: UnsafeMutablePointer<CChar>?
            guard curl_url_get(handle, which, &value, flags) == CURLUE_OK, let value else { return nil }
            defer { curl_free(value) }
            return String(cString: value)
        }
        let scheme = part(CURLUPART_SCHEME)?.lowercased()
        guard let scheme, scheme == "http" || scheme == "https" else {
            throw UpstreamError(.invalidRequest, message: "the upstream URL must use http or https")
        }
        guard let host = part(CURLUPART_HOST), !host.isEmpty else {
            throw UpstreamError(.invalidRequest, message: "the upstream URL has no host")
        }
        let port = part(CURLUPART_PORT, flags: UInt32(CURLU_DEFAULT_PORT)) ?? (scheme == "https" ? "443" : "80")
        var pathAndQuery = part(CURLUPART_PATH) ?? "/"
        if let query = part(CURLUPART_QUERY) { pathAndQuery += "?" + query }
        return Target(host: host, port: port, pathAndQuery: pathAndQuery)
    }
}

/// Runs `curl_global_init` once per process, before the first use of curl.
enum CurlGlobal {
    /// Whether the global initialisation succeeded; reading it performs the initialisation.
    static let initialized: Bool = curl_global_init(rosetta_global_default) == CURLE_OK
}
