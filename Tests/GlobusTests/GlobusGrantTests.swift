#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization
import Testing
import TenantGateway
@testable import Globus

/// A manual clock the tests move.
final class ManualClock: Sendable {
    private let seconds = Mutex<Double>(1_000_000)
    var now: @Sendable () -> Double { { [self] in seconds.withLock { $0 } } }
    func set(_ value: Double) { seconds.withLock { $0 = value } }
}

/// A scripted token endpoint: answers from closures, counts calls, and can hold refreshes until released.
actor ScriptedTokenEndpoint: GlobusTokenEndpoint {
    var exchanges: [(code: String, verifier: String)] = []
    var refreshes: [String] = []
    var revoked: [String] = []
    var refreshResult: Result<JSON, GlobusAuthError>
    var exchangeResult: Result<JSON, GlobusAuthError>
    private var holdRefreshes = false
    private var held: [CheckedContinuation<Void, Never>] = []

    init(exchange: Result<JSON, GlobusAuthError>, refresh: Result<JSON, GlobusAuthError>) {
        exchangeResult = exchange
        refreshResult = refresh
    }

    func setRefresh(_ result: Result<JSON, GlobusAuthError>) { refreshResult = result }
    func hold() { holdRefreshes = true }
    func release() {
        holdRefreshes = false
        for continuation in held { continuation.resume() }
        held.removeAll()
    }

    func exchange(code: String, verifier: String) async throws(GlobusAuthError) -> JSON {
        exchanges.append((code, verifier))
        return try exchangeResult.get()
    }

    func refresh(refreshToken: String) async throws(GlobusAuthError) -> JSON {
        refreshes.append(refreshToken)
        if holdRefreshes { await withCheckedContinuation { held.append($0) } }
        return try refreshResult.get()
    }

    func revoke(token: String) async throws(GlobusAuthError) {
        revoked.append(token)
    }
}

let gatewayServer = "681c10cc-f684-4540-bcd7-0b4df3bc26ef"

func tokenResponse(access: String, refresh: String?, expiresIn: Int, nested: Bool) -> JSON {
    var gateway: JSONObject = [
        "access_token": .string(access), "scope": .string("https://auth.globus.org/scopes/\(gatewayServer)/action_all"),
        "resource_server": .string(gatewayServer), "expires_in": JSON(expiresIn), "token_type": "Bearer",
    ]
    if let refresh { gateway["refresh_token"] = .string(refresh) }
    guard nested else { return .object(gateway.merging(["other_tokens": []])) }
    return [
        "access_token": "openid-token", "scope": "openid", "resource_server": "auth.globus.org", "expires_in": 172800,
        "token_type": "Bearer", "refresh_token": "openid-refresh", "other_tokens": [.object(gateway)],
    ]
}

extension JSONObject {
    func merging(_ other: JSONObject) -> JSONObject {
        var result = self
        for (key, value) in other { result[key] = value }
        return result
    }
}

func temporaryDirectory() -> String {
    var template = Array("/tmp/globus-grant-XXXXXX".utf8CString)
    let path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    return path
}

func makeGrant(_ endpoint: ScriptedTokenEndpoint, clock: ManualClock, directory: String) -> GlobusGrant {
    GlobusGrant(
        providerName: "alcf",
        settings: GlobusSettings(authURL: "https://auth.example", clientID: "client", resourceServer: gatewayServer,
                                 scope: "https://auth.globus.org/scopes/\(gatewayServer)/action_all"),
        endpoint: endpoint, storePath: directory + "/globus-alcf.json", clock: clock.now,
        logger: Logger(label: "test"))
}

/// Logs a grant in (start, approve, finish) and returns the authorize URL.
@discardableResult
func logIn(_ grant: GlobusGrant) async throws -> String {
    let url = await grant.startLogin()
    _ = try await grant.finishLogin(code: "the-code\n")
    return url
}

@Suite("GlobusGrant")
struct GlobusGrantTests {
    @Test func loginSendsTheVerifierOfTheChallengeAndStoresThePrivateGrant() async throws {
        let endpoint = ScriptedTokenEndpoint(
            exchange: .success(tokenResponse(access: "A1", refresh: "R1", expiresIn: 100, nested: true)),
            refresh: .success(tokenResponse(access: "A2", refresh: nil, expiresIn: 100, nested: false)))
        let clock = ManualClock()
        let directory = temporaryDirectory()
        let grant = makeGrant(endpoint, clock: clock, directory: directory)
        let url = try await logIn(grant)
        let exchange = try #require(await endpoint.exchanges.first)
        #expect(exchange.code == "the-code")
        #expect(url.contains("code_challenge=\(PKCEPair(verifier: exchange.verifier).challenge)&"))
        #expect(try await grant.accessToken() == "A1")

        var info = stat()
        #expect(lstat(directory + "/globus-alcf.json", &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        let reloaded = makeGrant(endpoint, clock: clock, directory: directory)
        #expect(try await reloaded.accessToken() == "A1")
        #expect(await endpoint.refreshes.isEmpty)
    }

    @Test func finishingWithoutStartingIsRefused() async {
        let endpoint = ScriptedTokenEndpoint(exchange: .success([:]), refresh: .success([:]))
        let grant = makeGrant(endpoint, clock: ManualClock(), directory: temporaryDirectory())
        await #expect(throws: GatewayError.self) { _ = try await grant.finishLogin(code: "x") }
        #expect(await endpoint.exchanges.isEmpty)
    }

    @Test func concurrentRequestsAfterExpiryShareOneRefresh() async throws {
        let endpoint = ScriptedTokenEndpoint(
            exchange: .success(tokenResponse(access: "A1", refresh: "R1", expiresIn: 100, nested: true)),
            refresh: .success(tokenResponse(access: "A2", refresh: nil, expiresIn: 100, nested: false)))
        let clock = ManualClock()
        let grant = makeGrant(endpoint, clock: clock, directory: temporaryDirectory())
        try await logIn(grant)
        clock.set(1_000_000 + 150)  // expired: everyone must wait for the refresh
        await endpoint.hold()
        let tokens = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<10 { group.addTask { try await grant.accessToken() } }
            while await endpoint.refreshes.isEmpty { await Task.yield() }
            await endpoint.release()
            var tokens: [String] = []
            for try await token in group { tokens.append(token) }
            return tokens
        }
        #expect(tokens == Array(repeating: "A2", count: 10))
        #expect(await endpoint.refreshes == ["R1"])
        #expect(await grant.refreshCount == 1)
        // the refresh response had no refresh token: the old one is kept
        clock.set(1_000_000 + 150 + 95)
        await endpoint.setRefresh(.success(tokenResponse(access: "A3", refresh: nil, expiresIn: 100, nested: false)))
        #expect(try await grant.accessToken() == "A3")
        #expect(await endpoint.refreshes == ["R1", "R1"])
    }

    @Test func aRefusedRefreshNeedsALoginAndSurvivesARestart() async throws {
        let endpoint = ScriptedTokenEndpoint(
            exchange: .success(tokenResponse(access: "A1", refresh: "R1", expiresIn: 100, nested: false)),
            refresh: .failure(GlobusAuthError.classify(status: 400, body: Array(#"{"error":"invalid_grant"}"#.utf8))))
        let clock = ManualClock()
        let directory = temporaryDirectory()
        let grant = makeGrant(endpoint, clock: clock, directory: directory)
        try await logIn(grant)
        clock.set(1_000_000 + 200)
        do {
            _ = try await grant.accessToken()
            Issue.record("a refused refresh must fail the request")
        } catch {
            #expect(error.code == "alcf_login_required")
            #expect(error.message.contains("rosetta login alcf"))
        }
        let restarted = makeGrant(endpoint, clock: clock, directory: directory)
        guard case .needsLogin = await restarted.state else {
            Issue.record("the refusal was not stored")
            return
        }
        #expect(await endpoint.refreshes.count == 1)
    }

    @Test func aTransientFailureKeepsTheStillValidTokenAndBacksOff() async throws {
        let endpoint = ScriptedTokenEndpoint(
            exchange: .success(tokenResponse(access: "A1", refresh: "R1", expiresIn: 100, nested: false)),
            refresh: .failure(GlobusAuthError.classify(status: 503, body: [])))
        let clock = ManualClock()
        let grant = makeGrant(endpoint, clock: clock, directory: temporaryDirectory())
        try await logIn(grant)
        clock.set(1_000_000 + 96)  // inside the margin, not expired
        #expect(try await grant.accessToken() == "A1")
        #expect(try await grant.accessToken() == "A1")
        #expect(await endpoint.refreshes.count == 1)
        clock.set(1_000_000 + 100.5)  // expired, within the back-off: a clear error, no refresh storm
        await #expect(throws: GatewayError.self) { _ = try await grant.accessToken() }
        #expect(await endpoint.refreshes.count == 1)
        clock.set(1_000_000 + 107)
        await endpoint.setRefresh(.success(tokenResponse(access: "A2", refresh: nil, expiresIn: 100, nested: false)))
        #expect(try await grant.accessToken() == "A2")
    }

    @Test func aRejectedTokenIsRefreshedOnceUnlessPolicyDemandsALogin() async throws {
        let endpoint = ScriptedTokenEndpoint(
            exchange: .success(tokenResponse(access: "A1", refresh: "R1", expiresIn: 100, nested: false)),
            refresh: .success(tokenResponse(access: "A2", refresh: "R1", expiresIn: 100, nested: false)))
        let grant = makeGrant(endpoint, clock: ManualClock(), directory: temporaryDirectory())
        try await logIn(grant)
        #expect(try await grant.tokenAfterUnauthorized(used: "A1", demandsLogin: false) == "A2")
        // a second 401 for the old token, after someone else refreshed: use the new one, no second refresh
        #expect(try await grant.tokenAfterUnauthorized(used: "A1", demandsLogin: false) == "A2")
        #expect(await endpoint.refreshes.count == 1)
        await #expect(throws: GatewayError.self) { _ = try await grant.tokenAfterUnauthorized(used: "A2", demandsLogin: true) }
        #expect(await endpoint.refreshes.count == 1)
    }

    @Test func logoutRevokesBothTokensAndDeletesTheFile() async throws {
        let endpoint = ScriptedTokenEndpoint(
            exchange: .success(tokenResponse(access: "A1", refresh: "R1", expiresIn: 100, nested: false)),
            refresh: .success([:]))
        let directory = temporaryDirectory()
        let grant = makeGrant(endpoint, clock: ManualClock(), directory: directory)
        try await logIn(grant)
        let result = await grant.logout()
        #expect(result.hadGrant && result.revoked)
        #expect(await endpoint.revoked == ["R1", "A1"])
        #expect(access(directory + "/globus-alcf.json", F_OK) != 0)
        await #expect(throws: GatewayError.self) { _ = try await grant.accessToken() }
    }

    @Test func tokenEndpointErrorsAreClassified() {
        #expect(GlobusAuthError.classify(status: 401, body: Array(#"{"error":"invalid_grant"}"#.utf8)).kind == .refused)
        #expect(GlobusAuthError.classify(status: 400, body: Array(#"{"error":"invalid_grant"}"#.utf8)).kind == .refused)
        #expect(GlobusAuthError.classify(status: 502, body: []).kind == .transient)
        #expect(GlobusAuthError.classify(status: 429, body: []).kind == .transient)
        #expect(GlobusAuthError.classify(status: 401, body: Array(#"{"error":"invalid_client"}"#.utf8)).kind == .refused)
    }
}

@Suite("ALCF provider pieces")
struct ALCFProviderPieceTests {
    @Test func upstreamModelNamesCarryTheirCluster() {
        #expect(ALCFModelTarget(upstreamModel: "sophia/openai/gpt-oss-120b") == ALCFModelTarget(cluster: "sophia", framework: "vllm", model: "openai/gpt-oss-120b"))
        #expect(ALCFModelTarget(upstreamModel: "metis/gpt-oss-120b").path("/v1/chat/completions") == "/metis/api/v1/chat/completions")
        #expect(ALCFModelTarget(upstreamModel: "openai/gpt-oss-20b").cluster == "sophia")
        #expect(ALCFModelTarget(upstreamModel: "newcluster/m", knownClusters: ["newcluster": "sglang"]).path("") == "/newcluster/sglang")
    }

    @Test func gatewayFailuresAreClassified() {
        func classify(_ status: Int, _ body: String) -> ALCFFailure.Classification {
            ALCFFailure(status: status, body: Array(body.utf8)).classification
        }
        #expect(classify(401, #"{"error":{"code":"unauthorized","message":"Token is either not active or invalid","info":{}}}"#) == .unauthorized(demandsLogin: false))
        #expect(classify(401, #"{"error":{"code":"unauthorized","message":"Error: Permission denied from internal policies. This is likely due to a high-assurance timeout.","info":{}}}"#) == .unauthorized(demandsLogin: true))
        #expect(classify(408, #"{"error":{"code":"request_timeout","message":"TimeoutError","info":{}}}"#) == .notReady(maintenance: false))
        #expect(classify(503, #"{"error":{"code":"cluster_under_maintenance","message":"down","info":{}}}"#) == .notReady(maintenance: true))
        #expect(classify(422, #"{"detail":[{"type":"extra_forbidden","loc":["body","payload","top_k"],"msg":"Extra inputs are not permitted"}]}"#) == .validation("top_k: Extra inputs are not permitted"))
        #expect(classify(404, #"{"error":{"code":"endpoint_not_found","message":"no","info":{}}}"#) == .other)
    }

    @Test func discoveryReadsEndpointsAndJobs() throws {
        let endpoints = try JSON.parse(Array(#"{"clusters":{"sophia":{"base_url":"/resource_server/sophia","frameworks":{"vllm":{"models":["a","b","c"],"endpoints":[]}}}}}"#.utf8))
        let parsed = ALCFDiscoveryParser.endpoints(endpoints)
        #expect(parsed.count == 1 && parsed[0].cluster == "sophia" && parsed[0].framework == "vllm" && parsed[0].models == ["a", "b", "c"])
        let jobs = try JSON.parse(Array(#"{"running":[{"Models":"a, b","Model Status":"running"},{"Models":"c","Model Status":"starting"}],"queued":[{"Models":"a"}],"stopped":[{"Models":"d"}]}"#.utf8))
        #expect(ALCFDiscoveryParser.statuses(jobs) == ["a": .running, "b": .running, "c": .queued, "d": .stopped])
    }
}
