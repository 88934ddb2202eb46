#if canImport(Glibc)
import Glibc
#endif
import TenantGateway

/// A failure talking to Globus Auth's token endpoint; the message never contains a token, code or verifier.
package struct GlobusAuthError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Whether retrying later can help.
    package enum Kind: Sendable, Equatable {
        /// Globus refused (`invalid_grant` and other 4xx answers): only a new login helps.
        case refused
        /// Globus could not be reached, or answered with a server error or a rate limit: retry later.
        case transient
    }

    /// Whether retrying can help.
    package var kind: Kind
    /// A stable code: Globus's OAuth `error` (`invalid_grant`, …), or `unreachable`, `server_error`, `bad_response`.
    package var code: String
    /// What happened, for logs and the user.
    package var message: String
    /// The HTTP status Globus answered with, when it answered.
    package var status: Int?

    /// Creates an error.
    package init(kind: Kind, code: String, message: String, status: Int? = nil) {
        self.kind = kind
        self.code = code
        self.message = message
        self.status = status
    }

    /// The code and message.
    package var description: String { "\(code): \(message)" }

    /// Classifies a token endpoint's error answer: `invalid_grant` (RFC 6749's 400 or the 401 Globus's SDK
    /// fixtures show) and other 4xx answers are refusals; 408, 429 and 5xx are transient.
    package static func classify(status: Int, body: [UInt8]) -> GlobusAuthError {
        let parsed = try? JSON.parse(body)
        let code = parsed?["error"]?.stringValue ?? parsed?["errors"]?[0]?["code"]?.stringValue ?? "http_\(status)"
        let description = parsed?["error_description"]?.stringValue ?? parsed?["errors"]?[0]?["detail"]?.stringValue
        let message = "Globus answered HTTP \(status) (\(code))" + (description.map { ": \($0)" } ?? "")
        let transient = status == 408 || status == 429 || status >= 500
        if code == "invalid_grant" { return GlobusAuthError(kind: .refused, code: code, message: message, status: status) }
        return GlobusAuthError(kind: transient ? .transient : .refused, code: transient ? "server_error" : code, message: message, status: status)
    }
}

/// Globus Auth's token endpoint as the grant uses it: code exchange, refresh and revocation.
///
/// A protocol so that the grant's concurrency and persistence can be tested without a network.
package protocol GlobusTokenEndpoint: Sendable {
    /// Exchanges an authorization code (PKCE, no client secret) for a token response.
    func exchange(code: String, verifier: String) async throws(GlobusAuthError) -> JSON
    /// Exchanges a refresh token for a token response.
    func refresh(refreshToken: String) async throws(GlobusAuthError) -> JSON
    /// Revokes a token (access or refresh).
    func revoke(token: String) async throws(GlobusAuthError)
}

/// The token endpoint reached over HTTP with the gateway's upstream client: form-encoded POSTs to
/// `<auth_url>/v2/oauth2/token` and `<auth_url>/v2/oauth2/token/revoke`.
package struct GlobusTokenClient: GlobusTokenEndpoint {
    /// The login settings (auth URL, client id).
    package let settings: GlobusSettings
    /// The HTTP client.
    package let http: UpstreamHTTPClient
    /// A CA bundle for Globus, when not the system's.
    package let caFile: String?

    /// Creates a client.
    package init(settings: GlobusSettings, http: UpstreamHTTPClient, caFile: String? = nil) {
        self.settings = settings
        self.http = http
        self.caFile = caFile
    }

    /// `grant_type=authorization_code` with the verifier and the redirect URI the authorize URL named.
    package func exchange(code: String, verifier: String) async throws(GlobusAuthError) -> JSON {
        try await post("/v2/oauth2/token", form: [
            ("grant_type", "authorization_code"),
            ("client_id", settings.clientID),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", settings.redirectURI),
        ])
    }

    /// `grant_type=refresh_token`.
    package func refresh(refreshToken: String) async throws(GlobusAuthError) -> JSON {
        try await post("/v2/oauth2/token", form: [
            ("grant_type", "refresh_token"),
            ("client_id", settings.clientID),
            ("refresh_token", refreshToken),
        ])
    }

    /// `token` and `client_id` to the revoke endpoint.
    package func revoke(token: String) async throws(GlobusAuthError) {
        _ = try await post("/v2/oauth2/token/revoke", form: [("token", token), ("client_id", settings.clientID)])
    }

    private func post(_ path: String, form: [(String, String)]) async throws(GlobusAuthError) -> JSON {
        let request = UpstreamRequest(
            url: settings.authURL + path,
            method: "POST",
            headers: [
                ("content-type", "application/x-www-form-urlencoded"),
                ("accept", "application/json"),
                ("user-agent", "rosettad/\(RosettaVersion.current)"),
            ],
            body: Array(FormEncoding.encode(form).utf8),
            connectTimeout: .seconds(10),
            idleTimeout: .seconds(30),
            totalTimeout: .seconds(60),
            caFile: caFile)
        let body: [UInt8]
        let status: Int
        do {
            let response = try await http.execute(request)
            status = response.status
            body = try await response.collectBody(upTo: 1 << 20)
        } catch {
            throw GlobusAuthError(kind: .transient, code: "unreachable", message: "Globus Auth at \(settings.authURL) could not be reached: \(error.message)")
        }
        guard (200..<300).contains(status) else { throw GlobusAuthError.classify(status: status, body: body) }
        guard let json = try? JSON.parse(body), case .object = json else {
            throw GlobusAuthError(kind: .transient, code: "bad_response", message: "Globus Auth answered HTTP \(status) with a body that is not a JSON object", status: status)
        }
        return json
    }
}
