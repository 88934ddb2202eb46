/// A PKCE (RFC 7636) verifier and its S256 challenge for one login attempt.
package struct PKCEPair: Sendable, Equatable {
    /// The secret the daemon keeps and sends with the code exchange: base64url of 32 random bytes (43 characters).
    package let verifier: String
    /// `base64url(sha256(verifier))`, sent in the authorize URL.
    package let challenge: String

    /// Creates a pair from a given verifier (tests) or a fresh random one.
    package init(verifier: String? = nil) {
        let verifier = verifier ?? {
            var generator = SystemRandomNumberGenerator()
            return Base64URL.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
        }()
        self.verifier = verifier
        self.challenge = Base64URL.encode(SHA256.hash(Array(verifier.utf8)))
    }
}

/// The Globus native-app settings for one provider: where to log in and what to ask for.
package struct GlobusSettings: Sendable, Equatable {
    /// The Globus Auth base URL, e.g. `https://auth.globus.org`.
    package var authURL: String
    /// The public native client id.
    package var clientID: String
    /// The resource server whose token the gateway needs.
    package var resourceServer: String
    /// The scopes to request, space-separated.
    package var scope: String
    /// Where Globus sends the user after consent: the page that shows the code to paste.
    package var redirectURI: String { authURL + "/v2/web/auth-code" }

    /// Creates settings.
    package init(authURL: String, clientID: String, resourceServer: String, scope: String) {
        var base = authURL
        while base.hasSuffix("/") { base.removeLast() }
        self.authURL = base
        self.clientID = clientID
        self.resourceServer = resourceServer
        self.scope = scope
    }

    /// The authorize URL for the paste-the-code flow, with `access_type=offline` so a refresh token is issued.
    package func authorizeURL(pkce: PKCEPair, state: String) -> String {
        let parameters: [(String, String)] = [
            ("client_id", clientID),
            ("redirect_uri", redirectURI),
            ("scope", scope),
            ("state", state),
            ("response_type", "code"),
            ("code_challenge", pkce.challenge),
            ("code_challenge_method", "S256"),
            ("access_type", "offline"),
        ]
        return authURL + "/v2/oauth2/authorize?" + FormEncoding.encode(parameters)
    }
}

/// `application/x-www-form-urlencoded` encoding for query strings and token request bodies.
package enum FormEncoding {
    /// Encodes name–value pairs, percent-escaping everything but unreserved characters.
    package static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { escape($0.0) + "=" + escape($0.1) }.joined(separator: "&")
    }

    /// Percent-escapes a string for a form value.
    package static func escape(_ text: String) -> String {
        var output = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                output.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                output += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return output
    }
}
