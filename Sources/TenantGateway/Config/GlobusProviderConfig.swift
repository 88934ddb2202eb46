/// The Globus native-app login settings of an `alcf` provider (its `globus:` block), with ALCF's public defaults.
///
/// Every URL is configurable so that tests can point the login and the refreshes at a fake Globus.
package struct GlobusProviderConfig: Sendable, Equatable {
    /// The public native client that ALCF's own scripts use.
    package static let inferenceClientID = "58fdd3bc-e1c3-4ce5-80ea-8d6b87cfb944"
    /// The ALCF inference gateway's Globus resource server.
    package static let inferenceResourceServer = "681c10cc-f684-4540-bcd7-0b4df3bc26ef"

    /// The `action_all` scope of a resource server.
    package static func actionAllScope(for resourceServer: String) -> String {
        "https://auth.globus.org/scopes/\(resourceServer)/action_all"
    }

    /// The Globus Auth base URL, without a trailing slash.
    package var authURL: String = "https://auth.globus.org"
    /// The native client id.
    package var clientID: String = GlobusProviderConfig.inferenceClientID
    /// The resource server whose token the gateway accepts.
    package var resourceServer: String = GlobusProviderConfig.inferenceResourceServer
    /// The scopes requested at login, space-separated.
    package var scope: String = GlobusProviderConfig.actionAllScope(for: GlobusProviderConfig.inferenceResourceServer)

    /// The defaults.
    package init() {}
}
