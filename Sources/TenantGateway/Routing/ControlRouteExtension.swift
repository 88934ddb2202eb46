import NIOHTTP1

/// Serves extra control routes (under `/rosetta/v1/`, Unix socket only) for a part of the gateway, such as tunnels.
package protocol ControlRouteExtension: Sendable {
    /// Answers a control request, or returns `nil` when the route is not one of its own.
    func answer(method: HTTPMethod, route: Substring, body: [UInt8]) async throws(GatewayError) -> JSON?
}
